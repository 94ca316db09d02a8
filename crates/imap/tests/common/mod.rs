//! The IMAP service over in-memory streams (with real TLS) and a temporary SQLite store:
//! the shared set-up is `sealpost_testkit::ServiceFixture`; here are the IMAP parts
//! (greeting, LOGIN, tagged responses).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sealpost_imap::service::ImapService;
use sealpost_net::ServiceKind;
use sealpost_testkit::ServiceFixture;

pub use sealpost_testkit::{LineClient as Client, PASSWORD};

pub type Fixture = ServiceFixture<ImapService>;

pub async fn fixture() -> Fixture {
    ServiceFixture::new(
        ServiceKind::Imaps,
        ServiceKind::Imap,
        |store, authenticator| ImapService::new("imap.test.example", store, authenticator),
    )
    .await
}

/// IMAP sessions on a [`Fixture`].
pub trait ImapSessions {
    /// An imaps session (TLS from the start), greeting read.
    async fn imaps(&self) -> Client;
    /// An imaps session whose connection read timeout (`[limits] idle_timeout_secs`)
    /// is `idle` instead of the default.
    async fn imaps_with_idle(&self, idle: Option<Duration>) -> Client;
    /// An imap session (plaintext, STARTTLS offered), greeting read.
    async fn imap(&self) -> Client;
    /// A logged-in imaps session.
    async fn login(&self, user: &str) -> Client;
}

impl ImapSessions for Fixture {
    async fn imaps(&self) -> Client {
        self.imaps_with_idle(None).await
    }

    async fn imaps_with_idle(&self, idle: Option<Duration>) -> Client {
        let mut client = self.connect_tls(idle).await;
        let greeting = client.line().await;
        assert!(greeting.starts_with("* OK "), "{greeting}");
        client
    }

    async fn imap(&self) -> Client {
        let mut client = self.connect_plain();
        let greeting = client.line().await;
        assert!(greeting.starts_with("* OK "), "{greeting}");
        client
    }

    async fn login(&self, user: &str) -> Client {
        let mut client = self.imaps().await;
        let reply = client.run(&format!("LOGIN {user} {PASSWORD}")).await;
        assert!(reply.last().unwrap().starts_with("t OK "), "{reply:?}");
        client
    }
}

/// Tagged commands on a [`Client`].
pub trait TaggedCommands {
    /// Sends `t <line>` and returns every line up to and including the tagged one.
    async fn run(&mut self, line: &str) -> Vec<String>;
    /// Lines up to and including the one tagged `tag`.
    async fn until_tagged(&mut self, tag: &str) -> Vec<String>;
}

impl TaggedCommands for Client {
    async fn run(&mut self, line: &str) -> Vec<String> {
        self.send(format!("t {line}\r\n").as_bytes()).await;
        self.until_tagged("t").await
    }

    async fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let prefix = format!("{tag} ");
        let mut lines = Vec::new();
        loop {
            let raw = self.raw_line().await;
            assert!(!raw.is_empty(), "connection closed after {lines:?}");
            let line = String::from_utf8_lossy(&raw)
                .trim_end_matches("\r\n")
                .to_string();
            let done = line.starts_with(&prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }
}
