//! Connection limits: global and per client IP, and a rate-limited log for refusals.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connection and timing limits of every listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections over all listeners; more are closed at once (default 10 000).
    pub max_connections: usize,
    /// Open connections from one client IP over all listeners (default 50, Postfix's
    /// `smtpd_client_connection_count_limit`); IPv4-mapped IPv6 counts as the IPv4 address.
    pub max_connections_per_ip: usize,
    /// Time allowed for a TLS handshake, implicit or after STARTTLS (default 30 s).
    pub handshake_timeout: Duration,
    /// Time a read or write may wait without progress (default 5 min).
    pub idle_timeout: Duration,
    /// After shutdown is requested, how long connections may take to finish (default 30 s).
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_connections_per_ip: 50,
            handshake_timeout: Duration::from_secs(30),
            // RFC 5321 §4.5.3.2.7: the SMTP server timeout is at least 5 minutes.
            idle_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Open connections per client IP.
#[derive(Debug, Default)]
pub(crate) struct PerIp {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; the count goes down when this is dropped.
#[derive(Debug)]
pub(crate) struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    /// Counts a connection from `ip`, unless `max` are already open.
    pub(crate) fn try_acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= max {
            if *count == 0 {
                counts.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(IpSlot {
            table: Arc::clone(self),
            ip,
        })
    }

    #[cfg(test)]
    pub(crate) fn open(&self, ip: IpAddr) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(&ip.to_canonical()).copied().unwrap_or(0)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Lets one warning through per interval and counts the ones it swallowed.
#[derive(Debug)]
pub(crate) struct RateLimitedLog {
    interval: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl RateLimitedLog {
    pub(crate) fn new(interval: Duration) -> Self {
        RateLimitedLog {
            interval,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)`: log now, `n` similar events were not logged since the last line.
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(t) if now.duration_since(t) < self.interval => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.suppressed.swap(0, Ordering::Relaxed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_counts_and_releases() {
        let table = Arc::new(PerIp::default());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let a = table.try_acquire(ip, 2).unwrap();
        let _b = table.try_acquire(ip, 2).unwrap();
        assert!(table.try_acquire(ip, 2).is_none());
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(table.try_acquire(other, 2).is_some());
        drop(a);
        assert_eq!(table.open(ip), 1);
        assert!(table.try_acquire(ip, 2).is_some());
    }

    #[test]
    fn ipv4_mapped_counts_as_ipv4() {
        let table = Arc::new(PerIp::default());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let _a = table.try_acquire(v4, 1).unwrap();
        assert!(table.try_acquire(mapped, 1).is_none());
    }

    #[test]
    fn zero_limit_admits_nobody_and_leaves_no_entry() {
        let table = Arc::new(PerIp::default());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(table.try_acquire(ip, 0).is_none());
        assert_eq!(table.open(ip), 0);
        assert!(table.counts.lock().unwrap().is_empty());
    }

    #[test]
    fn rate_limited_log_counts_suppressed() {
        let log = RateLimitedLog::new(Duration::from_secs(3600));
        assert_eq!(log.allow(), Some(0));
        assert_eq!(log.allow(), None);
        assert_eq!(log.allow(), None);
        let log = RateLimitedLog::new(Duration::ZERO);
        assert_eq!(log.allow(), Some(0));
        assert_eq!(log.allow(), Some(0));
    }
}
