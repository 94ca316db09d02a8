//! The POP3 service over in-memory streams (with real TLS) and a temporary SQLite store:
//! the shared set-up is `sealpost_testkit::ServiceFixture`; here are the POP3 parts
//! (greeting, USER/PASS, multi-line responses).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use sealpost_net::ServiceKind;
use sealpost_pop3::service::Pop3Service;
use sealpost_testkit::ServiceFixture;

pub use sealpost_testkit::{LineClient as Client, PASSWORD};

pub type Fixture = ServiceFixture<Pop3Service>;

pub async fn fixture() -> Fixture {
    ServiceFixture::new(
        ServiceKind::Pop3s,
        ServiceKind::Pop3,
        |store, authenticator| Pop3Service::new("pop.test.example", store, authenticator),
    )
    .await
}

/// POP3 sessions on a [`Fixture`].
pub trait Pop3Sessions {
    /// A pop3s session (TLS from the start), greeting read.
    async fn pop3s(&self) -> Client;
    /// A pop3 session (plaintext, STLS offered), greeting read.
    async fn pop3(&self) -> Client;
    /// A logged-in pop3s session.
    async fn login(&self, user: &str) -> Client;
}

impl Pop3Sessions for Fixture {
    async fn pop3s(&self) -> Client {
        let mut client = self.connect_tls(None).await;
        let greeting = client.line().await;
        assert!(greeting.starts_with("+OK "), "{greeting}");
        client
    }

    async fn pop3(&self) -> Client {
        let mut client = self.connect_plain();
        let greeting = client.line().await;
        assert!(greeting.starts_with("+OK "), "{greeting}");
        client
    }

    async fn login(&self, user: &str) -> Client {
        let mut client = self.pop3s().await;
        assert_eq!(
            client.command(&format!("USER {user}")).await,
            "+OK Send PASS"
        );
        let reply = client.command(&format!("PASS {PASSWORD}")).await;
        assert!(reply.starts_with("+OK Logged in"), "{reply}");
        client
    }
}

/// Multi-line responses on a [`Client`].
pub trait MultiLine {
    /// The body of a multi-line response exactly as sent (stuffed), up to and excluding
    /// the terminating ".\r\n".
    async fn multiline_raw(&mut self) -> Vec<u8>;
}

impl MultiLine for Client {
    async fn multiline_raw(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = self.raw_line().await;
            assert!(
                !line.is_empty(),
                "connection closed inside a multi-line response"
            );
            if line == b".\r\n" {
                return body;
            }
            body.extend_from_slice(&line);
        }
    }
}

/// Reads a multi-line body back: one leading "." removed from each line that has one.
pub fn unstuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in body.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}
