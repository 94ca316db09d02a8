//! Networking for sealpost: listeners, TLS (rustls), STARTTLS-upgradable connections,
//! connection limits and graceful shutdown.
//!
//! This is the only crate that knows about sockets and TLS. Protocol handlers receive a
//! [`Connection`] per client and drive it; the binary wires [`bind`], [`CertStore`] and
//! [`BoundListeners::serve`] together.
#![forbid(unsafe_code)]

pub mod connection;
pub mod error;
pub mod listener;
pub mod service;
pub mod tls;

#[cfg(test)]
#[path = "../tests/common/certs.rs"]
mod test_certs;

pub use connection::{AsyncStream, Connection, TlsInfo};
pub use error::{FileRole, NetError};
pub use listener::{BoundListeners, Handler, Limits, ListenerSpec, bind};
pub use service::ServiceKind;
pub use tls::{
    CertPaths, CertReport, CertStore, DaneMatcher, DaneVerdict, RootsError, dane_client_config,
    inspect_certificate, opportunistic_client_config, pkix_client_config, server_config,
    spawn_reload_on_sighup, trust_roots,
};
pub use tokio_util::sync::CancellationToken;
