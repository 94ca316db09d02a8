use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::SupportedCipherSuite;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::CertificateDer;

use super::*;
use crate::error::FileRole;
use crate::test_certs::{Issued, KeyKind, TestCa, write_pair};

fn paths(dir: &std::path::Path, stem: &str, issued: &Issued) -> CertPaths {
    let (cert, key) = write_pair(dir, stem, issued);
    CertPaths { cert, key }
}

fn leaf_of(store: &CertStore, sni: Option<&str>) -> CertificateDer<'static> {
    store.select(sni, &[]).cert[0].clone()
}

#[test]
fn loads_all_three_key_types() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    for kind in KeyKind::ALL {
        let issued = ca.issue(&["mail.example.test"], kind);
        let p = paths(dir.path(), &format!("{kind:?}"), &issued);
        let store = CertStore::load(p.clone(), vec![]).unwrap();
        assert_eq!(leaf_of(&store, None), issued.leaf_der, "{kind:?}");
        // The chain file holds leaf + CA; both are served.
        assert_eq!(store.select(None, &[]).cert.len(), 2);
        let report = inspect_certificate(&p, "mail.example.test", SystemTime::now()).unwrap();
        assert_eq!(report.subject_names, ["mail.example.test"]);
        assert_eq!(report.chain_len, 2);
        let expected = match kind {
            KeyKind::Rsa => "RSA",
            KeyKind::EcdsaP256 => "ECDSA",
            KeyKind::Ed25519 => "ED25519",
        };
        assert_eq!(report.key_algorithm, expected);
    }
}

#[test]
fn key_of_another_certificate_is_refused_for_every_type() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    for kind in KeyKind::ALL {
        let a = ca.issue(&["a.test"], kind);
        let b = ca.issue(&["b.test"], kind);
        let pa = paths(dir.path(), "a", &a);
        let pb = paths(dir.path(), "b", &b);
        let mixed = CertPaths {
            cert: pa.cert.clone(),
            key: pb.key.clone(),
        };
        let err = CertStore::load(mixed.clone(), vec![]).unwrap_err();
        assert!(
            matches!(err, NetError::KeyMismatch { .. }),
            "{kind:?}: {err}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&*pa.cert.to_string_lossy()), "{msg}");
        assert!(msg.contains(&*pb.key.to_string_lossy()), "{msg}");
        assert!(matches!(
            inspect_certificate(&mixed, "a.test", SystemTime::now()),
            Err(NetError::KeyMismatch { .. })
        ));
    }
}

#[test]
fn file_errors_name_the_file_and_the_problem() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let good = paths(
        dir.path(),
        "good",
        &ca.issue(&["a.test"], KeyKind::EcdsaP256),
    );
    let missing = dir.path().join("missing.pem");

    let err = CertStore::load(
        CertPaths {
            cert: missing.clone(),
            key: good.key.clone(),
        },
        vec![],
    )
    .unwrap_err();
    assert!(matches!(
        err,
        NetError::FileMissing {
            role: FileRole::Certificate,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        format!("certificate file {} does not exist", missing.display())
    );

    let err = CertStore::load(
        CertPaths {
            cert: good.cert.clone(),
            key: missing.clone(),
        },
        vec![],
    )
    .unwrap_err();
    assert!(matches!(
        err,
        NetError::FileMissing {
            role: FileRole::PrivateKey,
            ..
        }
    ));

    // A directory opens but cannot be read.
    let err = CertStore::load(
        CertPaths {
            cert: dir.path().to_path_buf(),
            key: good.key.clone(),
        },
        vec![],
    )
    .unwrap_err();
    assert!(matches!(err, NetError::FileUnreadable { .. }), "{err}");
    assert!(
        err.to_string().starts_with("cannot read certificate file "),
        "{err}"
    );

    // Key file given as the certificate: no CERTIFICATE section.
    let err = CertStore::load(
        CertPaths {
            cert: good.key.clone(),
            key: good.key.clone(),
        },
        vec![],
    )
    .unwrap_err();
    assert!(matches!(err, NetError::NoCertificate { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("no certificate found in {}", good.key.display())
    );

    // Certificate given as the key: no key section.
    let err = CertStore::load(
        CertPaths {
            cert: good.cert.clone(),
            key: good.cert.clone(),
        },
        vec![],
    )
    .unwrap_err();
    assert!(matches!(err, NetError::NoKey { .. }), "{err}");

    // Garbage inside a key section.
    let bad_key = dir.path().join("bad.key");
    std::fs::write(
        &bad_key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = CertStore::load(
        CertPaths {
            cert: good.cert.clone(),
            key: bad_key,
        },
        vec![],
    )
    .unwrap_err();
    assert!(matches!(err, NetError::InvalidKey { .. }), "{err}");
}

#[test]
fn combined_pem_file_works_for_both() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let issued = ca.issue(&["a.test"], KeyKind::EcdsaP256);
    let both = dir.path().join("both.pem");
    std::fs::write(&both, format!("{}{}", issued.key_pem, issued.chain_pem)).unwrap();
    let store = CertStore::load(
        CertPaths {
            cert: both.clone(),
            key: both,
        },
        vec![],
    )
    .unwrap();
    assert_eq!(leaf_of(&store, None), issued.leaf_der);
}

#[test]
fn sni_selects_by_san_with_wildcards_and_falls_back_to_default() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let default = ca.issue(&["mail.example.test"], KeyKind::EcdsaP256);
    let other = ca.issue(&["mail.other.test", "imap.other.test"], KeyKind::Ed25519);
    let wild = ca.issue(&["*.wild.test"], KeyKind::Rsa);
    let exact_in_wild = ca.issue(&["exact.wild.test"], KeyKind::EcdsaP256);
    let store = CertStore::load(
        paths(dir.path(), "default", &default),
        vec![
            paths(dir.path(), "other", &other),
            paths(dir.path(), "wild", &wild),
            paths(dir.path(), "exact", &exact_in_wild),
        ],
    )
    .unwrap();
    assert_eq!(leaf_of(&store, None), default.leaf_der);
    assert_eq!(leaf_of(&store, Some("unknown.test")), default.leaf_der);
    assert_eq!(leaf_of(&store, Some("mail.example.test")), default.leaf_der);
    assert_eq!(leaf_of(&store, Some("imap.other.test")), other.leaf_der);
    assert_eq!(leaf_of(&store, Some("IMAP.Other.Test")), other.leaf_der);
    assert_eq!(leaf_of(&store, Some("x.wild.test")), wild.leaf_der);
    assert_eq!(leaf_of(&store, Some("a.b.wild.test")), default.leaf_der);
    assert_eq!(leaf_of(&store, Some("wild.test")), default.leaf_der);
    // An exact name beats an earlier wildcard.
    assert_eq!(
        leaf_of(&store, Some("exact.wild.test")),
        exact_in_wild.leaf_der
    );
}

#[test]
fn sni_prefers_a_certificate_the_client_can_verify() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ed = ca.issue(&["mail.example.test"], KeyKind::Ed25519);
    let ec = ca.issue(&["mail.example.test"], KeyKind::EcdsaP256);
    let store = CertStore::load(
        paths(dir.path(), "ed", &ed),
        vec![paths(dir.path(), "ec", &ec)],
    )
    .unwrap();
    let only_ecdsa = [SignatureScheme::ECDSA_NISTP256_SHA256];
    assert_eq!(
        store.select(Some("mail.example.test"), &only_ecdsa).cert[0],
        ec.leaf_der
    );
    assert_eq!(
        store
            .select(Some("mail.example.test"), &[SignatureScheme::ED25519])
            .cert[0],
        ed.leaf_der
    );
}

#[test]
fn reload_swaps_and_a_failed_reload_keeps_the_old_set() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let first = ca.issue(&["a.test"], KeyKind::EcdsaP256);
    let p = paths(dir.path(), "a", &first);
    let store = CertStore::load(p.clone(), vec![]).unwrap();

    let second = ca.issue(&["a.test"], KeyKind::EcdsaP256);
    write_pair(dir.path(), "a", &second);
    store.reload().unwrap();
    assert_eq!(leaf_of(&store, None), second.leaf_der);

    // A half-written key (as while an editor or certbot is still writing).
    let third = ca.issue(&["a.test"], KeyKind::EcdsaP256);
    std::fs::write(&p.cert, &third.chain_pem).unwrap();
    std::fs::write(&p.key, &third.key_pem[..third.key_pem.len() / 2]).unwrap();
    let err = store.reload().unwrap_err();
    assert!(matches!(err, NetError::InvalidKey { .. }), "{err}");
    assert!(err.to_string().contains(&*p.key.to_string_lossy()));
    assert_eq!(leaf_of(&store, None), second.leaf_der);

    // New certificate with the old key: mismatch, old set kept.
    std::fs::write(&p.key, &second.key_pem).unwrap();
    assert!(matches!(store.reload(), Err(NetError::KeyMismatch { .. })));
    assert_eq!(leaf_of(&store, None), second.leaf_der);
}

#[test]
fn inspect_reports_validity_and_hostname_problems() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();

    let ok = paths(
        dir.path(),
        "ok",
        &ca.issue(&["mail.example.test", "*.example.test"], KeyKind::EcdsaP256),
    );
    let report = inspect_certificate(&ok, "MAIL.example.test", now).unwrap();
    assert_eq!(
        report.subject_names,
        ["mail.example.test", "*.example.test"]
    );
    assert!(report.not_after > now && report.not_before < now);
    inspect_certificate(&ok, "imap.example.test", now).unwrap();
    // Without a hostname (an SNI-only certificate) only the pair and the dates count.
    inspect_certificate(&ok, None, now).unwrap();
    let err = inspect_certificate(&ok, Some("mail.other.test"), now).unwrap_err();
    assert!(matches!(err, NetError::HostnameNotCovered { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "certificate {} does not cover hostname mail.other.test \
             (it names: mail.example.test, *.example.test)",
            ok.cert.display()
        )
    );

    let expired = paths(
        dir.path(),
        "expired",
        &ca.issue_with(&["mail.example.test"], KeyKind::EcdsaP256, |p| {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }),
    );
    let err = inspect_certificate(&expired, "mail.example.test", now).unwrap_err();
    assert!(matches!(err, NetError::CertExpired { .. }), "{err}");
    assert!(
        err.to_string().contains("expired on Jan  1 00:00:00 2001"),
        "{err}"
    );
    // The same certificate was fine in 2000.
    let in_2000 = SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800 + 86_400 * 100);
    inspect_certificate(&expired, "mail.example.test", in_2000).unwrap();

    let future = paths(
        dir.path(),
        "future",
        &ca.issue_with(&["mail.example.test"], KeyKind::EcdsaP256, |p| {
            p.not_before = rcgen::date_time_ymd(3000, 1, 1);
        }),
    );
    let err = inspect_certificate(&future, "mail.example.test", now).unwrap_err();
    assert!(matches!(err, NetError::CertNotYetValid { .. }), "{err}");
}

#[test]
fn common_name_is_used_only_without_dns_sans() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let cn_only = paths(
        dir.path(),
        "cn",
        &ca.issue_with(&[], KeyKind::EcdsaP256, |p| {
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "legacy.example.test");
        }),
    );
    let report = inspect_certificate(&cn_only, "legacy.example.test", now).unwrap();
    assert_eq!(report.subject_names, ["legacy.example.test"]);

    let both = paths(
        dir.path(),
        "both",
        &ca.issue_with(&["san.example.test"], KeyKind::EcdsaP256, |p| {
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "cn.example.test");
        }),
    );
    assert!(matches!(
        inspect_certificate(&both, "cn.example.test", now),
        Err(NetError::HostnameNotCovered { .. })
    ));
}

#[test]
fn server_config_is_tls12_tls13_aead_ecdhe_no_early_data() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let store = CertStore::load(
        paths(dir.path(), "a", &ca.issue(&["a.test"], KeyKind::EcdsaP256)),
        vec![],
    )
    .unwrap();
    let config = server_config(Arc::clone(&store), ServiceKind::Imaps).unwrap();
    assert_eq!(config.alpn_protocols, [b"imap".to_vec()]);
    assert_eq!(config.max_early_data_size, 0);
    assert!(!config.send_half_rtt_data);
    let provider: &CryptoProvider = config.crypto_provider();
    assert!(!provider.cipher_suites.is_empty());
    let mut versions = std::collections::BTreeSet::new();
    for suite in &provider.cipher_suites {
        let name = suite.suite().as_str().unwrap();
        match suite {
            // TLS 1.3 suites are all AEAD, and key exchange is always (EC)DHE.
            SupportedCipherSuite::Tls13(_) => {
                versions.insert("1.3");
                assert!(name.contains("_GCM_") || name.contains("CHACHA20_POLY1305"));
            }
            SupportedCipherSuite::Tls12(_) => {
                versions.insert("1.2");
                assert!(name.starts_with("TLS_ECDHE_"), "{name}");
                assert!(
                    name.contains("_GCM_") || name.ends_with("CHACHA20_POLY1305_SHA256"),
                    "{name}"
                );
            }
        }
    }
    assert_eq!(versions.into_iter().collect::<Vec<_>>(), ["1.2", "1.3"]);
    for group in &provider.kx_groups {
        let name = format!("{:?}", group.name());
        assert!(!name.to_ascii_uppercase().contains("FFDHE"), "{name}");
    }
    let pop3 = server_config(store, ServiceKind::Pop3).unwrap();
    assert_eq!(pop3.alpn_protocols, [b"pop3".to_vec()]);
}
