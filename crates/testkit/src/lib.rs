//! Test support shared by the integration tests of the protocol crates (`sealpost-imap`,
//! `sealpost-pop3`, `sealpost-smtp`) and of `sealpost-net`: each of them drives a real
//! service over in-memory streams with real TLS and a temporary SQLite store, and they used
//! to carry identical copies of that set-up. Only what is the same for every protocol lives
//! here; the protocol-specific parts (greeting checks, login dialogues, tagged or
//! multi-line replies) stay in each crate's `tests/common`.
//!
//! A dev-dependency only (`publish = false`): nothing in the server links this crate.
// Test-support code: a failed set-up or expectation is a failed test, so unwrap/expect are
// the point (as in `sealpost_store::conformance`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod dns;
pub mod line_client;
pub mod service_fixture;
pub mod store;
pub mod tls;

pub use line_client::LineClient;
pub use service_fixture::ServiceFixture;
pub use store::{PASSWORD, fixture_store};
pub use tls::{self_signed_cert_store, tls_client};
