//! SIGHUP reloads the certificates. A test binary of its own: the signal goes to the whole
//! process, which must have the handler installed before it is sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::certs::{KeyKind, TestCa, write_pair};
use sealpost_net::{CertPaths, CertStore, spawn_reload_on_sighup};

fn hangup_self() {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn sighup_reloads_and_a_bad_reload_keeps_the_old_certificate() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let first = ca.issue(&["mail.example.test"], KeyKind::EcdsaP256);
    let (cert, key) = write_pair(dir.path(), "mail", &first);
    let store = CertStore::load(
        CertPaths {
            cert,
            key: key.clone(),
        },
        vec![],
    )
    .unwrap();
    let task = spawn_reload_on_sighup(std::sync::Arc::clone(&store)).unwrap();
    let served = || store.select(None, &[]).cert[0].clone();

    let renewed = ca.issue(&["mail.example.test"], KeyKind::Rsa);
    write_pair(dir.path(), "mail", &renewed);
    hangup_self();
    let deadline = Instant::now() + Duration::from_secs(10);
    while served() != renewed.leaf_der {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Truncated key: the reload fails (logged), the renewed certificate stays, the task lives.
    let broken = ca.issue(&["mail.example.test"], KeyKind::EcdsaP256);
    write_pair(dir.path(), "mail", &broken);
    std::fs::write(&key, &broken.key_pem[..broken.key_pem.len() / 3]).unwrap();
    hangup_self();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(served(), renewed.leaf_der);
    assert!(!task.is_finished());

    // And it still reacts afterwards.
    write_pair(dir.path(), "mail", &broken);
    hangup_self();
    let deadline = Instant::now() + Duration::from_secs(10);
    while served() != broken.leaf_der {
        assert!(Instant::now() < deadline, "second SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
}
