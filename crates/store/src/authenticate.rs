//! Password authentication over the directory, shared by SMTP AUTH, IMAP LOGIN/AUTHENTICATE
//! and POP3 USER/PASS/AUTH.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sealpost_sasl::{AuthCache, Credentials, FailureDelays, verify_password};
use sealpost_types::Address;

use crate::{Account, Directory, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong user, wrong password, or an identity the user may not act as: one answer for
    /// all of them, so that the reply never tells which accounts exist.
    #[error("authentication failed")]
    Failed,
    #[error("authentication is temporarily unavailable: {0}")]
    Temporary(String),
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        AuthError::Temporary(error.to_string())
    }
}

/// Checks credentials: growing delays for repeated failures, argon2 on a blocking thread,
/// and a cache of recent successes.
pub struct Authenticator {
    directory: Arc<dyn Directory>,
    cache: AuthCache,
    delays: FailureDelays,
    /// argon2 checks running at once: one per CPU. More would only queue in the blocking
    /// pool, each holding 19 MiB of working memory.
    hashing: tokio::sync::Semaphore,
}

/// Seconds a successful login is remembered (Dovecot's auth_cache_ttl default is one hour;
/// a shorter time bounds how long a revoked session secret stays useful in memory).
const CACHE_TTL: Duration = Duration::from_secs(15 * 60);
const CACHE_ENTRIES: usize = 100_000;

/// A valid hash that never matches, so unknown users cost the same argon2 time as known ones.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| sealpost_sasl::hash_password("sealpost-decoy").unwrap_or_default())
}

impl Authenticator {
    pub fn new(directory: Arc<dyn Directory>) -> Self {
        Self::with_delays(directory, FailureDelays::default())
    }

    pub fn with_delays(directory: Arc<dyn Directory>, delays: FailureDelays) -> Self {
        Self {
            directory,
            cache: AuthCache::new(CACHE_TTL, CACHE_ENTRIES),
            delays,
            hashing: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            ),
        }
    }

    /// Authenticates `credentials` coming from `client_ip`. Waits first if recent failures
    /// from this IP or for this account call for it.
    pub async fn authenticate(
        &self,
        credentials: &Credentials,
        client_ip: IpAddr,
    ) -> Result<Account, AuthError> {
        let login = credentials.authcid.to_lowercase();
        let wait = self.delays.delay(client_ip, &login);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        match self.check(credentials, &login).await {
            Ok(account) => {
                self.delays.record_success(client_ip, &login);
                Ok(account)
            }
            Err(AuthError::Failed) => {
                self.cache.forget(&login);
                self.delays.record_failure(client_ip, &login);
                tracing::info!(user = %login, ip = %client_ip, "authentication failed");
                Err(AuthError::Failed)
            }
            Err(other) => Err(other),
        }
    }

    async fn check(&self, credentials: &Credentials, login: &str) -> Result<Account, AuthError> {
        // RFC 4616 §2: an authzid other than the user's own asks for proxy rights, which
        // no account has.
        if !credentials.authzid.is_empty()
            && !credentials
                .authzid
                .eq_ignore_ascii_case(&credentials.authcid)
        {
            return Err(AuthError::Failed);
        }
        let account = match Address::parse(login) {
            Ok(address) => self.directory.account(&address).await?,
            Err(_) => None,
        };
        let password = credentials.password.expose().clone();
        let Some(account) = account else {
            self.verify_off_thread(password, decoy_hash().to_string())
                .await?;
            return Err(AuthError::Failed);
        };
        let stored = account.password_hash.expose().clone();
        if self.cache.matches(login, &stored, &password) {
            return Ok(account);
        }
        if self
            .verify_off_thread(password.clone(), stored.clone())
            .await?
        {
            self.cache.remember(login, &stored, &password);
            Ok(account)
        } else {
            Err(AuthError::Failed)
        }
    }

    async fn verify_off_thread(&self, password: String, stored: String) -> Result<bool, AuthError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|error| AuthError::Temporary(error.to_string()))?;
        // argon2 takes tens of milliseconds of CPU: never on the async worker threads.
        let outcome = tokio::task::spawn_blocking(move || verify_password(&password, &stored))
            .await
            .map_err(|error| AuthError::Temporary(error.to_string()))?;
        match outcome {
            Ok(matched) => Ok(matched),
            Err(error) => {
                tracing::error!(%error, "stored password hash is unusable");
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use sealpost_types::{Domain, Secret};

    use super::*;
    use crate::sqlite::SqliteStore;

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn credentials(user: &str, password: &str) -> Credentials {
        Credentials {
            authzid: String::new(),
            authcid: user.to_string(),
            password: Secret::new(password.to_string()),
        }
    }

    async fn setup() -> (tempfile::TempDir, Arc<SqliteStore>, Authenticator) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        store
            .add_domain(&Domain::parse("example.org").unwrap(), Vec::new())
            .await
            .unwrap();
        let hash = sealpost_sasl::hash_password("right").unwrap();
        store
            .add_account(&Address::parse("alice@example.org").unwrap(), &hash)
            .await
            .unwrap();
        let directory: Arc<dyn Directory> = store.clone();
        let authenticator = Authenticator::with_delays(
            directory,
            FailureDelays::new(
                Duration::from_millis(1),
                Duration::from_millis(5),
                Duration::from_secs(60),
            ),
        );
        (dir, store, authenticator)
    }

    #[tokio::test]
    async fn right_password_passes_and_is_cached() {
        let (_dir, _store, auth) = setup().await;
        let account = auth
            .authenticate(&credentials("Alice@Example.org", "right"), IP)
            .await
            .unwrap();
        assert_eq!(account.address.to_string(), "alice@example.org");
        assert!(
            auth.cache
                .matches("alice@example.org", account.password_hash.expose(), "right")
        );
        // Served from the cache the second time, with the same answer.
        auth.authenticate(&credentials("alice@example.org", "right"), IP)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn wrong_password_unknown_user_and_foreign_authzid_fail_alike() {
        let (_dir, _store, auth) = setup().await;
        for attempt in [
            credentials("alice@example.org", "wrong"),
            credentials("nobody@example.org", "right"),
            credentials("not an address", "right"),
            Credentials {
                authzid: "bob@example.org".to_string(),
                ..credentials("alice@example.org", "right")
            },
        ] {
            assert!(
                matches!(
                    auth.authenticate(&attempt, IP).await,
                    Err(AuthError::Failed)
                ),
                "{attempt:?}"
            );
        }
        // Failures slow the next attempt but do not lock the account.
        assert!(auth.delays.delay(IP, "alice@example.org") > Duration::ZERO);
        auth.authenticate(&credentials("alice@example.org", "right"), IP)
            .await
            .unwrap();
        assert_eq!(auth.delays.delay(IP, "alice@example.org"), Duration::ZERO);
    }

    #[tokio::test]
    async fn password_change_by_another_process_invalidates_the_cache() {
        let (_dir, store, auth) = setup().await;
        auth.authenticate(&credentials("alice@example.org", "right"), IP)
            .await
            .unwrap();
        // `sealpost user passwd` writes a new hash through its own store handle.
        let new_hash = sealpost_sasl::hash_password("new").unwrap();
        store
            .set_password(&Address::parse("alice@example.org").unwrap(), &new_hash)
            .await
            .unwrap();
        assert!(matches!(
            auth.authenticate(&credentials("alice@example.org", "right"), IP)
                .await,
            Err(AuthError::Failed)
        ));
        auth.authenticate(&credentials("alice@example.org", "new"), IP)
            .await
            .unwrap();
    }
}
