//! Authentication building blocks shared by SMTP, IMAP and POP3.
//!
//! - [`mechanism`]: the SASL step machine (PLAIN, LOGIN) that every protocol drives with the
//!   base64 lines it receives.
//! - [`password`]: argon2id hashing and verification (CPU-heavy: call from a blocking thread).
//! - [`cache`]: Dovecot-style cache of recent successful logins, keyed by a per-process secret.
//! - [`delay`]: growing delays after failed logins, per client IP and per account.
//!
//! No I/O and no async runtime here: the store's authenticator does the orchestration.
#![forbid(unsafe_code)]

pub mod cache;
pub mod delay;
pub mod mechanism;
pub mod password;

pub use cache::AuthCache;
pub use delay::FailureDelays;
pub use mechanism::{Credentials, Mechanism, SaslError, SaslExchange, Step};
pub use password::{PasswordError, hash_password, verify_password};
