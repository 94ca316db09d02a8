//! The cache mail-auth consults before it asks the DNS for a DKIM key or an ARC sealer's
//! key: parsed records kept until their TTL runs out, so a busy sender's key is fetched and
//! parsed once per TTL, not once per message.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::{ResolverCache, Txt};

/// At most this many names are kept; past it the cache starts again empty (a flood of
/// one-off selectors must not grow memory without bound).
const MAX_ENTRIES: usize = 10_000;

/// Parsed TXT records (DKIM keys) by owner name, each until the end of its TTL.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<Box<str>, (Txt, Instant)>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = self.entries.lock().map(|map| map.len()).unwrap_or_default();
        f.debug_struct("KeyCache").field("entries", &size).finish()
    }
}

impl KeyCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts a DKIM key record (the TXT text) at `selector._domainkey.domain` for `ttl`: how
    /// tests publish keys without a DNS server.
    pub fn publish_key(&self, selector: &str, domain: &str, record: &str, ttl: Duration) {
        // As mail-auth asks: lower case, absolute.
        let name =
            format!("{selector}._domainkey.{}.", domain.trim_end_matches('.')).to_ascii_lowercase();
        let value = match DomainKey::parse(record.as_bytes()) {
            Ok(key) => Txt::from(key),
            Err(error) => Txt::Error(error),
        };
        self.insert(name.into_boxed_str(), value, Instant::now() + ttl);
    }
}

impl ResolverCache<Box<str>, Txt> for KeyCache {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self.entries.lock().ok()?;
        match entries.get(name) {
            Some((value, valid_until)) if *valid_until > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(name);
                None
            }
            None => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries
            .lock()
            .ok()?
            .remove(name)
            .map(|(value, _)| value)
    }

    fn insert(&self, key: Box<str>, value: Txt, valid_until: Instant) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                // The expired go first; only a cache full of live keys starts again empty.
                let now = Instant::now();
                entries.retain(|_, (_, until)| *until > now);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key, (value, valid_until));
        }
    }
}
