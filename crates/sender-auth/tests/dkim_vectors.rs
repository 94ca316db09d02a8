//! DKIM verification (RFC 6376, RFC 8463) on known vectors, through the whole assessment:
//! the `dkim=` results of our Authentication-Results field are compared with golden files in
//! `tests/data/dkim` (see the README there; `SEALPOST_BLESS=1` rewrites them). Then messages
//! signed here with fresh keys, and the receiver's limits: `l=` (RFC 6376 §8.2), rsa-sha1
//! (RFC 8301 §3.1) and the number of signatures checked (SECURITY-TESTS DA-09).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::OnceLock;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner};
use rcgen::{KeyPair, PKCS_ED25519, PKCS_RSA_SHA256, PublicKeyData, RsaKeySize};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sealpost_sender_auth::AuthRules;
use sealpost_sender_auth::dkim::MAX_SIGNATURES;
use sealpost_sender_auth::policy::{self, Disposition};
use sealpost_sender_auth::{Assessment, DkimResult, DmarcResult, MemoryZone};
use support::{CLIENT_IP, Vector, assert_golden, checker, client, dkim_lines};

/// The assessment of `message`, with the keys of `vector` published and an empty zone (SPF,
/// DMARC and iprev find nothing: only the DKIM results matter here).
async fn assess_with_keys(vector: &Vector, message: &[u8]) -> Assessment {
    let (checker, _zone) = checker(MemoryZone::new());
    vector.publish(&checker);
    let client = client(CLIENT_IP, "client.example", None);
    support::assess(&checker, &client, message).await
}

/// Checks `message` against the keys of `vector` and compares the dkim= lines with the golden
/// file `dkim/<golden>.expected`; returns the verdicts.
async fn check_golden(vector: &Vector, message: &[u8], golden: &str) -> Assessment {
    let assessment = assess_with_keys(vector, message).await;
    assert_golden(&format!("dkim/{golden}.expected"), &dkim_lines(&assessment));
    assessment
}

fn results(assessment: &Assessment) -> Vec<DkimResult> {
    assessment
        .dkim
        .iter()
        .map(|verdict| verdict.result)
        .collect()
}

// ----- RFC 8463 Appendix A -----------------------------------------------------------------

/// RFC 8463 Appendix A.3: the message signed with Ed25519 (brisbane) and RSA (test) at
/// football.example.com, with the keys of Appendix A.2: both signatures pass.
#[tokio::test]
async fn rfc8463_appendix_a_passes_with_both_keys() {
    let vector = Vector::read("dkim/rfc8463-a.txt");
    let assessment = check_golden(&vector, &vector.message, "rfc8463-a").await;
    let verdicts: Vec<_> = assessment
        .dkim
        .iter()
        .map(|v| {
            (
                v.result,
                v.domain.as_str(),
                v.selector.as_str(),
                v.algorithm,
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            (
                DkimResult::Pass,
                "football.example.com",
                "brisbane",
                "ed25519-sha256"
            ),
            (
                DkimResult::Pass,
                "football.example.com",
                "test",
                "rsa-sha256"
            ),
        ]
    );
}

/// One byte of the body changed ("game" to "gamE"): the body hash of both signatures fails.
#[tokio::test]
async fn rfc8463_appendix_a_with_a_changed_body_byte_fails() {
    let vector = Vector::read("dkim/rfc8463-a.txt");
    let message = vector.tampered("We lost the game.", "We lost the gamE.");
    let assessment = check_golden(&vector, &message, "rfc8463-a.body-changed").await;
    assert_eq!(results(&assessment), [DkimResult::Fail, DkimResult::Fail]);
}

/// A signed header field changed (Subject, in h= of both): the signatures no longer verify.
#[tokio::test]
async fn rfc8463_appendix_a_with_a_changed_signed_header_fails() {
    let vector = Vector::read("dkim/rfc8463-a.txt");
    let message = vector.tampered("Subject: Is dinner ready?", "Subject: Is dinner ready!");
    let assessment = check_golden(&vector, &message, "rfc8463-a.header-changed").await;
    assert_eq!(results(&assessment), [DkimResult::Fail, DkimResult::Fail]);
}

/// Without the keys (none published, no name server): DNS trouble, never a pass.
#[tokio::test]
async fn rfc8463_appendix_a_without_keys_is_a_temporary_error() {
    let vector = Vector::read("dkim/rfc8463-a.txt");
    let without_keys = Vector {
        keys: Vec::new(),
        message: vector.message.clone(),
    };
    let assessment = assess_with_keys(&without_keys, &vector.message).await;
    assert_eq!(
        results(&assessment),
        [DkimResult::TempError, DkimResult::TempError]
    );
}

// ----- RFC 6376 Appendix A (re-signed, see tests/data/dkim/README.md) --------------------------

/// The message of RFC 6376 Appendix A, signed with c=simple/simple by selector newengland of
/// example.com (the key is in the vector file).
#[tokio::test]
async fn rfc6376_appendix_a_message_passes() {
    let vector = Vector::read("dkim/rfc6376-a.txt");
    let assessment = check_golden(&vector, &vector.message, "rfc6376-a").await;
    assert_eq!(results(&assessment), [DkimResult::Pass]);
    assert_eq!(assessment.dkim[0].domain, "example.com");
    assert_eq!(assessment.dkim[0].selector, "newengland");
}

#[tokio::test]
async fn rfc6376_appendix_a_message_with_a_changed_body_byte_fails() {
    let vector = Vector::read("dkim/rfc6376-a.txt");
    let message = vector.tampered("We lost the game.", "We lost the gamE.");
    let assessment = check_golden(&vector, &message, "rfc6376-a.body-changed").await;
    assert_eq!(results(&assessment), [DkimResult::Fail]);
}

#[tokio::test]
async fn rfc6376_appendix_a_message_with_a_changed_signed_header_fails() {
    let vector = Vector::read("dkim/rfc6376-a.txt");
    let message = vector.tampered("Subject: Is dinner ready?", "Subject: Is dinner ready!");
    let assessment = check_golden(&vector, &message, "rfc6376-a.header-changed").await;
    assert_eq!(results(&assessment), [DkimResult::Fail]);
}

/// simple/simple: one more space inside a signed header field breaks the signature, where
/// relaxed would have ignored it (RFC 6376 §3.4.1).
#[tokio::test]
async fn rfc6376_appendix_a_message_simple_canonicalization_keeps_whitespace() {
    let vector = Vector::read("dkim/rfc6376-a.txt");
    let message = vector.tampered("Subject: Is dinner", "Subject: Is  dinner");
    let assessment = assess_with_keys(&vector, &message).await;
    assert_eq!(results(&assessment), [DkimResult::Fail]);
}

// ----- Other vectors of mail-auth ------------------------------------------------------------

/// Messages signed by ietf.org (the same signature twice: a mailing list), facebookmail.com
/// and github.com (keys with t=s and h=sha256): every signature passes.
#[tokio::test]
async fn real_world_vectors_pass() {
    for name in ["ietf-list", "facebookmail", "github"] {
        let vector = Vector::read(&format!("dkim/{name}.txt"));
        let assessment = check_golden(&vector, &vector.message, name).await;
        assert!(!assessment.dkim.is_empty(), "{name}");
        assert!(
            assessment
                .dkim
                .iter()
                .all(|verdict| verdict.result == DkimResult::Pass),
            "{name}: {:?}",
            assessment.dkim
        );
    }
}

/// topicbox.com signed with x=1667930064 (2022-11-08 17:54 UTC): the signature has expired,
/// so it fails (RFC 6376 §3.5 x=: "Signatures MAY be considered invalid if the verification
/// time at the Verifier is past the expiration date").
#[tokio::test]
async fn an_expired_signature_fails() {
    let vector = Vector::read("dkim/topicbox.txt");
    let assessment = check_golden(&vector, &vector.message, "topicbox").await;
    assert_eq!(results(&assessment), [DkimResult::Fail]);
    assert!(
        assessment.dkim[0].reason.contains("xpired"),
        "{:?}",
        assessment.dkim[0]
    );
}

// ----- Messages signed here --------------------------------------------------------------------

const SIGNER_DOMAIN: &str = "signer.test";

/// A message from the signing domain, CRLF line ends.
const MESSAGE: &str = concat!(
    "From: Alice <alice@signer.test>\r\n",
    "To: Bob <bob@receiver.example>\r\n",
    "Subject: Hello\r\n",
    "Date: Thu, 14 May 2026 10:00:00 +0000\r\n",
    "Message-ID: <hello.1@signer.test>\r\n",
    "\r\n",
    "Hello\r\n",
);

/// What an attacker appends to a message signed with l= (SECURITY-TESTS DA-11).
const APPENDED: &str = "\r\n<a href=\"http://evil.test\">click</a>\r\n";

/// Keys made with rcgen, as `sealpost domain` makes them: (PKCS#8 DER of an Ed25519 key, its
/// raw public key) and (PKCS#8 DER of an RSA-2048 key, its SubjectPublicKeyInfo).
struct Keys {
    ed25519_pkcs8: Vec<u8>,
    ed25519_public: Vec<u8>,
    rsa_pkcs8: Vec<u8>,
    rsa_public: Vec<u8>,
}

/// Made once for the whole test binary (RSA-2048 generation takes a while).
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let ed25519 = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        let rsa = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap();
        Keys {
            ed25519_pkcs8: ed25519.serialize_der(),
            ed25519_public: ed25519.public_key_raw().to_vec(),
            rsa_pkcs8: rsa.serialize_der(),
            rsa_public: rsa.subject_public_key_info(),
        }
    })
}

fn ed25519_key() -> Ed25519Key {
    let der = &keys().ed25519_pkcs8;
    Ed25519Key::from_pkcs8_der(der)
        .or_else(|_| Ed25519Key::from_pkcs8_maybe_unchecked_der(der))
        .unwrap()
}

fn rsa_key() -> RsaKey<Sha256> {
    let der = PrivatePkcs8KeyDer::from(keys().rsa_pkcs8.as_slice());
    RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(der)).unwrap()
}

/// The key records of both keys, as a vector to publish.
fn published_keys() -> Vector {
    Vector {
        keys: vec![
            support::PublishedKey {
                selector: "ed".to_string(),
                domain: SIGNER_DOMAIN.to_string(),
                record: format!(
                    "v=DKIM1; k=ed25519; p={}",
                    BASE64.encode(&keys().ed25519_public)
                ),
            },
            support::PublishedKey {
                selector: "rsa".to_string(),
                domain: SIGNER_DOMAIN.to_string(),
                record: format!("v=DKIM1; k=rsa; p={}", BASE64.encode(&keys().rsa_public)),
            },
        ],
        message: Vec::new(),
    }
}

/// `message` with a DKIM-Signature of `key` (relaxed/relaxed, as sealpost signs) prepended.
fn signed(key: impl SigningKey<Hasher = Sha256>, selector: &str, body_length: bool) -> Vec<u8> {
    let signature = DkimSigner::from_key(key)
        .domain(SIGNER_DOMAIN)
        .selector(selector)
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
        .body_length(body_length)
        .sign(MESSAGE.as_bytes())
        .unwrap();
    let mut out = signature.to_header().into_bytes();
    out.extend_from_slice(MESSAGE.as_bytes());
    out
}

/// The signing domain asks for p=reject; the SPF identity (MAIL FROM) is another domain
/// with no record, so DMARC passes only through an aligned DKIM pass.
async fn assess_signed(message: &[u8]) -> Assessment {
    let zone = MemoryZone::new().txt("_dmarc.signer.test", "v=DMARC1; p=reject");
    let (checker, _zone) = checker(zone);
    published_keys().publish(&checker);
    let client = client(CLIENT_IP, "client.example", Some("bounce@elsewhere.test"));
    support::assess(&checker, &client, message).await
}

#[tokio::test]
async fn a_message_signed_with_ed25519_passes_and_satisfies_dmarc() {
    let assessment = assess_signed(&signed(ed25519_key(), "ed", false)).await;
    assert_eq!(results(&assessment), [DkimResult::Pass]);
    assert_eq!(assessment.dkim[0].algorithm, "ed25519-sha256");
    assert_eq!(assessment.dmarc.result, DmarcResult::Pass);
    assert!(assessment.dmarc.dkim_aligned);
}

#[tokio::test]
async fn a_message_signed_with_rsa_2048_passes_and_satisfies_dmarc() {
    let assessment = assess_signed(&signed(rsa_key(), "rsa", false)).await;
    assert_eq!(results(&assessment), [DkimResult::Pass]);
    assert_eq!(assessment.dkim[0].algorithm, "rsa-sha256");
    assert_eq!(assessment.dmarc.result, DmarcResult::Pass);
}

/// l= covering the whole body: nothing was added, the signature passes.
#[tokio::test]
async fn a_body_length_covering_the_whole_body_passes() {
    for (message, algorithm) in [
        (signed(ed25519_key(), "ed", true), "ed25519-sha256"),
        (signed(rsa_key(), "rsa", true), "rsa-sha256"),
    ] {
        assert!(String::from_utf8_lossy(&message).contains(" l=7;"));
        let assessment = assess_signed(&message).await;
        assert_eq!(results(&assessment), [DkimResult::Pass], "{algorithm}");
        assert_eq!(assessment.dmarc.result, DmarcResult::Pass, "{algorithm}");
    }
}

/// SECURITY-TESTS DA-11 / RFC 6376 §8.2: text appended after signing with l= is not covered:
/// the signature is `policy`, not `pass`, and DMARC does not count it (p=reject: rejected).
#[tokio::test]
async fn text_appended_past_the_body_length_is_policy_and_not_counted_by_dmarc() {
    for (mut message, algorithm) in [
        (signed(ed25519_key(), "ed", true), "ed25519-sha256"),
        (signed(rsa_key(), "rsa", true), "rsa-sha256"),
    ] {
        message.extend_from_slice(APPENDED.as_bytes());
        let assessment = assess_signed(&message).await;
        assert_eq!(results(&assessment), [DkimResult::Policy], "{algorithm}");
        assert_eq!(assessment.dkim[0].algorithm, algorithm);
        assert_eq!(
            assessment.dkim[0].reason,
            format!("l= leaves {} body bytes unsigned", APPENDED.len())
        );
        assert_eq!(assessment.dmarc.result, DmarcResult::Fail, "{algorithm}");
        assert!(!assessment.dmarc.dkim_aligned);
        assert!(matches!(
            policy::decide(&AuthRules::default(), &assessment),
            Disposition::Reject { .. }
        ));
    }
}

// ----- The receiver's limits -------------------------------------------------------------------

/// RFC 8301 §3.1: rsa-sha1 signatures fail, and their key is never fetched: the selector
/// "test" has no key anywhere, so a lookup would have given a DNS error (temperror).
#[tokio::test]
async fn rsa_sha1_fails_without_a_key_lookup() {
    let vector = Vector::read("dkim/rfc8463-a.txt");
    let message = vector.tampered("a=rsa-sha256", "a=rsa-sha1");
    let only_ed25519 = Vector {
        keys: vector
            .keys
            .iter()
            .filter(|key| key.selector == "brisbane")
            .cloned()
            .collect(),
        message: Vec::new(),
    };
    let assessment = assess_with_keys(&only_ed25519, &message).await;
    let sha1 = assessment
        .dkim
        .iter()
        .find(|verdict| verdict.selector == "test")
        .unwrap();
    assert_eq!(sha1.result, DkimResult::Fail, "{sha1:?}");
    assert_eq!(sha1.algorithm, "rsa-sha1");
    assert!(sha1.reason.contains("RFC 8301"), "{sha1:?}");
    // The Ed25519 signature of the same message is unaffected.
    let ed25519 = assessment
        .dkim
        .iter()
        .find(|verdict| verdict.selector == "brisbane")
        .unwrap();
    assert_eq!(ed25519.result, DkimResult::Pass);
    assert_eq!(assessment.dkim.len(), 2);
}

/// SECURITY-TESTS DA-09: 100 DKIM-Signature fields. The first [`MAX_SIGNATURES`] are checked
/// (their body hash matches the empty body, so their key is looked up: no key is published
/// and there is no name server, hence temperror); the 92 others are permerror "not checked",
/// without a key lookup.
#[tokio::test]
async fn only_the_first_eight_of_a_hundred_signatures_are_checked() {
    let mut message = String::from("From: a@ext.test\r\nTo: b@receiver.example\r\n");
    for i in 0..100 {
        message.push_str(&format!(
            "DKIM-Signature: v=1; a=rsa-sha256; d=ext.test; s=sel{i}; c=relaxed/relaxed; \
             h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
        ));
    }
    message.push_str("Subject: many signatures\r\n\r\n");

    let (checker, _zone) = checker(MemoryZone::new());
    let client = client(CLIENT_IP, "client.example", None);
    let started = Instant::now();
    let assessment = support::assess(&checker, &client, message.as_bytes()).await;
    eprintln!("100 signatures judged in {:?}", started.elapsed());

    assert_eq!(assessment.dkim.len(), 100);
    assert_eq!(MAX_SIGNATURES, 8);
    let (checked, skipped) = assessment.dkim.split_at(MAX_SIGNATURES);
    for (i, verdict) in checked.iter().enumerate() {
        assert_eq!(verdict.selector, format!("sel{i}"));
        assert_eq!(verdict.result, DkimResult::TempError, "{verdict:?}");
        assert!(!verdict.reason.contains("not checked"), "{verdict:?}");
    }
    for (i, verdict) in skipped.iter().enumerate() {
        assert_eq!(verdict.selector, format!("sel{}", i + MAX_SIGNATURES));
        assert_eq!(verdict.domain, "ext.test");
        assert_eq!(verdict.result, DkimResult::PermError, "{verdict:?}");
        assert_eq!(verdict.reason, "not checked: more than 8 signatures");
    }
    // Each one is reported.
    let lines = dkim_lines(&assessment);
    assert_eq!(lines.lines().count(), 100);
    assert_eq!(
        lines
            .lines()
            .filter(|line| line.starts_with("dkim=permerror (not checked"))
            .count(),
        92
    );
}
