use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Remembers the last good password of each account for a short time, so that a client
/// that logs in many times a minute does not pay for argon2 each time (like Dovecot's
/// `auth_cache`).
///
/// Nothing reversible is kept: an entry is an HMAC-SHA256 under a key drawn at random when
/// the process starts, over the account name, the stored password hash and the password.
/// Because the stored hash is part of the MAC, a password change made by any process
/// (`sealpost user passwd`) invalidates the entry at once: the next check sees a new
/// stored hash and misses.
pub struct AuthCache {
    key: [u8; 32],
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<String, CacheEntry>>,
}

struct CacheEntry {
    mac: [u8; 32],
    expires: Instant,
}

impl AuthCache {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self {
            key,
            ttl,
            max_entries,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, account: &str, stored_hash: &str, password: &str) -> [u8; 32] {
        // new_from_slice only fails for invalid key lengths, which HMAC does not have.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return [0u8; 32],
        };
        // Length-prefix each field so that no two inputs share an encoding.
        for field in [account, stored_hash, password] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// True if `password` was verified for `account` against this `stored_hash` within the TTL.
    pub fn matches(&self, account: &str, stored_hash: &str, password: &str) -> bool {
        let candidate = self.mac(account, stored_hash, password);
        let entries = match self.entries.lock() {
            Ok(entries) => entries,
            Err(poisoned) => poisoned.into_inner(),
        };
        match entries.get(account) {
            Some(entry) if entry.expires > Instant::now() => entry.mac.ct_eq(&candidate).into(),
            _ => false,
        }
    }

    /// Records a password that argon2 has just verified.
    pub fn remember(&self, account: &str, stored_hash: &str, password: &str) {
        let mac = self.mac(account, stored_hash, password);
        let now = Instant::now();
        let mut entries = match self.entries.lock() {
            Ok(entries) => entries,
            Err(poisoned) => poisoned.into_inner(),
        };
        if entries.len() >= self.max_entries {
            entries.retain(|_, entry| entry.expires > now);
            if entries.len() >= self.max_entries {
                // Still full of live entries: start over rather than grow without bound.
                entries.clear();
            }
        }
        entries.insert(
            account.to_string(),
            CacheEntry {
                mac,
                expires: now + self.ttl,
            },
        );
    }

    /// Drops the entry of an account (after a failed login or a password change).
    pub fn forget(&self, account: &str) {
        let mut entries = match self.entries.lock() {
            Ok(entries) => entries,
            Err(poisoned) => poisoned.into_inner(),
        };
        entries.remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_only_the_same_password_and_hash() {
        let cache = AuthCache::new(Duration::from_secs(60), 10);
        assert!(!cache.matches("a@x", "H1", "pw"));
        cache.remember("a@x", "H1", "pw");
        assert!(cache.matches("a@x", "H1", "pw"));
        assert!(!cache.matches("a@x", "H1", "pW"));
        assert!(!cache.matches("b@x", "H1", "pw"));
        // A password change (new stored hash) invalidates the entry.
        assert!(!cache.matches("a@x", "H2", "pw"));
        cache.forget("a@x");
        assert!(!cache.matches("a@x", "H1", "pw"));
    }

    #[test]
    fn entries_expire() {
        let cache = AuthCache::new(Duration::from_millis(0), 10);
        cache.remember("a@x", "H", "pw");
        assert!(!cache.matches("a@x", "H", "pw"));
    }

    #[test]
    fn size_is_bounded() {
        let cache = AuthCache::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            cache.remember(&format!("u{i}"), "H", "pw");
        }
        assert!(cache.entries.lock().unwrap().len() <= 3);
        assert!(cache.matches("u9", "H", "pw"));
    }

    #[test]
    fn keys_differ_between_caches() {
        let a = AuthCache::new(Duration::from_secs(60), 3);
        let b = AuthCache::new(Duration::from_secs(60), 3);
        assert_ne!(a.mac("u", "H", "pw"), b.mac("u", "H", "pw"));
    }
}
