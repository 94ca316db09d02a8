use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Growing delays after failed logins, kept per client IP and per account name.
///
/// The first failures cost little (a typo should not hurt); each further failure doubles
/// the wait up to `max_delay`, so guessing is slow. Counts are forgotten `forget_after` a
/// key's last failure, and a success clears the IP and the account, so nobody is locked
/// out for good: the worst a remote attacker can do to a real user is slow each of their
/// logins by `max_delay`.
pub struct FailureDelays {
    base_delay: Duration,
    max_delay: Duration,
    forget_after: Duration,
    max_keys: usize,
    failures: Mutex<HashMap<FailureKey, FailureCount>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum FailureKey {
    Ip(IpAddr),
    Account(String),
}

#[derive(Clone, Copy)]
struct FailureCount {
    count: u32,
    last: Instant,
}

/// Failures that are free before delays start.
const FREE_FAILURES: u32 = 1;

impl FailureDelays {
    pub fn new(base_delay: Duration, max_delay: Duration, forget_after: Duration) -> Self {
        Self {
            base_delay,
            max_delay,
            forget_after,
            max_keys: 100_000,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn delay_for_count(&self, count: u32) -> Duration {
        if count <= FREE_FAILURES {
            return Duration::ZERO;
        }
        let doublings = (count - FREE_FAILURES - 1).min(16);
        self.base_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }

    fn live_count(
        &self,
        map: &HashMap<FailureKey, FailureCount>,
        key: &FailureKey,
        now: Instant,
    ) -> u32 {
        match map.get(key) {
            Some(entry) if now.duration_since(entry.last) < self.forget_after => entry.count,
            _ => 0,
        }
    }

    /// How long to wait before checking the next password from `ip` for `account`.
    pub fn delay(&self, ip: IpAddr, account: &str) -> Duration {
        let now = Instant::now();
        let map = match self.failures.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        let by_ip = self.live_count(&map, &FailureKey::Ip(ip), now);
        let by_account = self.live_count(&map, &FailureKey::Account(account.to_string()), now);
        self.delay_for_count(by_ip.max(by_account))
    }

    pub fn record_failure(&self, ip: IpAddr, account: &str) {
        let now = Instant::now();
        let mut map = match self.failures.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() >= self.max_keys {
            let forget_after = self.forget_after;
            map.retain(|_, entry| now.duration_since(entry.last) < forget_after);
        }
        for key in [FailureKey::Ip(ip), FailureKey::Account(account.to_string())] {
            let count = self.live_count(&map, &key, now).saturating_add(1);
            map.insert(key, FailureCount { count, last: now });
        }
    }

    pub fn record_success(&self, ip: IpAddr, account: &str) {
        let mut map = match self.failures.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.remove(&FailureKey::Ip(ip));
        map.remove(&FailureKey::Account(account.to_string()));
    }
}

impl Default for FailureDelays {
    fn default() -> Self {
        Self::new(
            Duration::from_millis(500),
            Duration::from_secs(15),
            Duration::from_secs(15 * 60),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const OTHER_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn delays_grow_and_are_capped() {
        let delays = FailureDelays::new(
            Duration::from_secs(1),
            Duration::from_secs(8),
            Duration::from_secs(600),
        );
        assert_eq!(delays.delay(IP, "a"), Duration::ZERO);
        let mut seen = Vec::new();
        for _ in 0..7 {
            delays.record_failure(IP, "a");
            seen.push(delays.delay(IP, "a").as_secs());
        }
        assert_eq!(seen, vec![0, 1, 2, 4, 8, 8, 8]);
    }

    #[test]
    fn per_account_delay_applies_from_other_ips_and_success_clears() {
        let delays = FailureDelays::new(
            Duration::from_secs(1),
            Duration::from_secs(8),
            Duration::from_secs(600),
        );
        for _ in 0..3 {
            delays.record_failure(IP, "victim");
        }
        assert_eq!(delays.delay(OTHER_IP, "victim"), Duration::from_secs(2));
        assert_eq!(delays.delay(OTHER_IP, "someone-else"), Duration::ZERO);
        assert_eq!(delays.delay(IP, "someone-else"), Duration::from_secs(2));
        delays.record_success(IP, "victim");
        assert_eq!(delays.delay(IP, "victim"), Duration::ZERO);
    }

    #[test]
    fn failures_are_forgotten() {
        let delays = FailureDelays::new(
            Duration::from_secs(1),
            Duration::from_secs(8),
            Duration::ZERO,
        );
        for _ in 0..5 {
            delays.record_failure(IP, "a");
        }
        assert_eq!(delays.delay(IP, "a"), Duration::ZERO);
    }
}
