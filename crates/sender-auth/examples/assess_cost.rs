//! The CPU cost of sender authentication per inbound message (issue 7's budget: < 1 ms for
//! SPF + DKIM + DMARC on a 4 KiB message with one RSA-2048 signature), DNS answered locally:
//! SPF and DMARC records from an in-memory zone, the DKIM key from the key cache. Run by
//! `bench/sender_auth.sh`; prints one JSON line.
//!
//!     cargo run --release -p sealpost-sender-auth --example assess_cost -- [MESSAGES]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use mail_auth::MessageAuthenticator;
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use rcgen::{KeyPair, PKCS_RSA_SHA256, PublicKeyData, RsaKeySize};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sealpost_sender_auth::{Client, MemoryZone, SenderAuth, results};

const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 25);

/// A 4 KiB message from example.org, signed by example.org with RSA-2048.
fn signed_message(key: &KeyPair) -> Vec<u8> {
    let mut message = String::from(
        "From: Alice <alice@example.org>\r\nTo: bob@receiver.example\r\n\
         Subject: quarterly figures\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <bench.1@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n",
    );
    while message.len() < 4096 {
        message.push_str("The figures for the quarter are attached below, line by line.\r\n");
    }
    let der = PrivatePkcs8KeyDer::from(key.serialize_der());
    let signer =
        DkimSigner::from_key(RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(der)).unwrap())
            .domain("example.org")
            .selector("rsa2026")
            .headers(["From", "To", "Subject", "Date", "Message-ID"]);
    let signature = signer.sign(message.as_bytes()).unwrap();
    let mut signed = signature.to_header().into_bytes();
    signed.extend_from_slice(message.as_bytes());
    signed
}

/// CPU time of this process (user + system), from /proc/self/stat in clock ticks (100 Hz).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|field| field.parse().unwrap())
        .collect();
    Duration::from_millis((fields[0] + fields[1]) * 10)
}

fn main() {
    let messages: u32 = std::env::args()
        .nth(1)
        .map(|arg| arg.parse().expect("MESSAGES is a number"))
        .unwrap_or(5000);
    let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap();
    let message = signed_message(&key);
    let zone = MemoryZone::new()
        .txt("example.org", "v=spf1 ip4:192.0.2.0/24 -all")
        .txt(
            "_dmarc.example.org",
            "v=DMARC1; p=reject; rua=mailto:dmarc@example.org",
        )
        .ptr(IpAddr::V4(CLIENT_IP), "mail.example.org")
        .a("mail.example.org", CLIENT_IP);
    let no_servers = MessageAuthenticator::new(
        ResolverConfig::from_parts(None, vec![], vec![]),
        ResolverOpts::default(),
    )
    .unwrap();
    let checker = SenderAuth::with_lookup(Arc::new(zone), no_servers);
    let public_key =
        base64::engine::general_purpose::STANDARD.encode(key.subject_public_key_info());
    checker.keys().publish_key(
        "rsa2026",
        "example.org",
        &format!("v=DKIM1; k=rsa; p={public_key}"),
        Duration::from_secs(86_400),
    );
    let client = Client {
        ip: IpAddr::V4(CLIENT_IP),
        helo: "mail.example.org".to_string(),
        mail_from: Some("alice@example.org".to_string()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let check_one = || async {
        let spf = checker.spf(&client, "mx.receiver.example").await;
        let assessment = checker.assess(&client, spf, &message).await;
        results::header_field("mx.receiver.example", &assessment)
    };
    // Once untimed, and it must all pass: a benchmark of failing checks measures nothing.
    let header = runtime.block_on(check_one());
    for method in ["spf=pass", "dkim=pass", "dmarc=pass", "iprev=pass"] {
        assert!(header.contains(method), "{method} expected in {header}");
    }
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    runtime.block_on(async {
        for _ in 0..messages {
            std::hint::black_box(check_one().await);
        }
    });
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    let per_message_us = cpu.as_secs_f64() * 1e6 / f64::from(messages);
    println!(
        "{{\"bench\":\"sender_auth_assess\",\"messages\":{messages},\"message_bytes\":{},\"cpu_us_per_message\":{per_message_us:.1},\"wall_us_per_message\":{:.1},\"checks\":\"spf+dkim(rsa-2048)+dmarc+iprev+arc+a-r\"}}",
        message.len(),
        wall.as_secs_f64() * 1e6 / f64::from(messages)
    );
}
