//! What the integration tests of sender-auth share: a checker that never leaves the machine
//! (SPF, DMARC and iprev from a [`MemoryZone`], DKIM and ARC keys from the [`KeyCache`]), the
//! test vectors of `tests/data/{dkim,arc}` and golden files.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mail_auth::MessageAuthenticator;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use sealpost_sender_auth::{Assessment, Client, MemoryZone, SenderAuth, results};

/// The authserv-id of every Authentication-Results field the tests make.
pub const AUTHSERV_ID: &str = "mx.receiver.example";

/// How long published keys stay in the cache: longer than any test.
pub const KEY_TTL: Duration = Duration::from_secs(3600);

/// The client of most tests (RFC 5737 documentation address).
pub const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// A checker over `zone`, and the zone, to read its question log afterwards. mail-auth's
/// resolver has no name servers: a DKIM or ARC key that is not published in the key cache
/// fails as a DNS error, and nothing leaves the machine.
pub fn checker(zone: MemoryZone) -> (SenderAuth, Arc<MemoryZone>) {
    let zone = Arc::new(zone);
    let authenticator = MessageAuthenticator::new(
        ResolverConfig::from_parts(None, vec![], vec![]),
        ResolverOpts::default(),
    )
    .unwrap();
    let checker = SenderAuth::with_lookup(zone.clone(), authenticator);
    (checker, zone)
}

pub fn client(ip: IpAddr, helo: &str, mail_from: Option<&str>) -> Client {
    Client {
        ip,
        helo: helo.to_string(),
        mail_from: mail_from.map(str::to_string),
    }
}

/// SPF for `client`, then the whole assessment of `message`.
pub async fn assess(checker: &SenderAuth, client: &Client, message: &[u8]) -> Assessment {
    let spf = checker.spf(client, AUTHSERV_ID).await;
    checker.assess(client, spf, message).await
}

/// A file under `tests/data`.
pub fn data_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(relative)
}

/// One DKIM-Signature/ARC key, as published at `selector._domainkey.domain`.
#[derive(Debug, Clone)]
pub struct PublishedKey {
    pub selector: String,
    pub domain: String,
    pub record: String,
}

/// A test vector in mail-auth's format: lines "name value" giving the TXT records of the keys,
/// an empty line, then the message with LF line ends (given here with CRLF, as on the wire).
#[derive(Debug, Clone)]
pub struct Vector {
    pub keys: Vec<PublishedKey>,
    pub message: Vec<u8>,
}

impl Vector {
    pub fn read(relative: &str) -> Vector {
        let path = data_path(relative);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert!(!text.contains('\r'), "{relative}: expected LF line ends");
        let (records, message) = text
            .split_once("\n\n")
            .unwrap_or_else(|| panic!("{relative}: no empty line after the keys"));
        let keys = records
            .lines()
            .map(|line| {
                let (name, record) = line.split_once(' ').unwrap();
                let (selector, domain) = name.split_once("._domainkey.").unwrap();
                PublishedKey {
                    selector: selector.to_string(),
                    domain: domain.to_string(),
                    record: record.to_string(),
                }
            })
            .collect();
        Vector {
            keys,
            message: message.replace('\n', "\r\n").into_bytes(),
        }
    }

    /// Puts every key of the vector in `checker`'s key cache.
    pub fn publish(&self, checker: &SenderAuth) {
        for key in &self.keys {
            checker
                .keys()
                .publish_key(&key.selector, &key.domain, &key.record, KEY_TTL);
        }
    }

    /// The message with the first `from` replaced by `to`; panics when `from` is absent, so
    /// that a tampering that no longer applies cannot pass unnoticed.
    pub fn tampered(&self, from: &str, to: &str) -> Vec<u8> {
        let text = String::from_utf8(self.message.clone()).unwrap();
        assert!(text.contains(from), "{from:?} is not in the message");
        let changed = text.replacen(from, to, 1);
        assert_ne!(changed, text);
        changed.into_bytes()
    }
}

/// The method results of an Authentication-Results field, one per element, without the
/// separators (`;`, the folding and the final CRLF).
pub fn result_lines(field: &str) -> Vec<String> {
    let field = field.strip_suffix("\r\n").unwrap_or(field);
    field.split(";\r\n\t").skip(1).map(str::to_string).collect()
}

/// The `dkim=` results of the Authentication-Results field of `assessment`, one a line.
pub fn dkim_lines(assessment: &Assessment) -> String {
    let field = results::header_field(AUTHSERV_ID, assessment);
    let mut out = String::new();
    for line in result_lines(&field)
        .into_iter()
        .filter(|line| line.starts_with("dkim="))
    {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Compares `actual` with the golden file `tests/data/<relative>`. With `SEALPOST_BLESS=1`
/// the file is (re)written instead: review the diff before committing it.
pub fn assert_golden(relative: &str, actual: &str) {
    let path = data_path(relative);
    if std::env::var_os("SEALPOST_BLESS").is_some_and(|value| value == "1") {
        std::fs::write(&path, actual).unwrap();
        eprintln!("blessed {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error} (SEALPOST_BLESS=1 writes it)", path.display()));
    assert_eq!(
        actual,
        expected,
        "differs from the golden file {} (SEALPOST_BLESS=1 rewrites it)",
        path.display()
    );
}
