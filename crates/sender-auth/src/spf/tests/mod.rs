//! Tests of the SPF evaluation over a [`MemoryZone`], which also logs the questions asked.
//! The DA-xx names refer to SECURITY-TESTS.md §4.9.

mod limits;
mod macros;
mod mechanisms;
mod records;
mod robustness;
mod syntax;

use std::net::IpAddr;

use super::{SpfLimits, SpfResult, SpfVerdict, verify};
use crate::lookup::MemoryZone;

/// The connecting client of most tests.
const CLIENT: &str = "127.0.0.3";
const HELO: &str = "client.ext.test";
const RECEIVER: &str = "mx.local.test";

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a test address")
}

/// verify() of MAIL FROM `address`, sent by `client`, with the default limits.
async fn check_mail_from(zone: &MemoryZone, client: &str, address: &str) -> SpfVerdict {
    verify(
        zone,
        &SpfLimits::default(),
        ip(client),
        HELO,
        Some(address),
        RECEIVER,
    )
    .await
}

/// The result for `u@t.ext.test` from [`CLIENT`] when t.ext.test publishes `record`.
async fn result_of_record(zone: MemoryZone, record: &str) -> SpfResult {
    let zone = zone.txt("t.ext.test", record);
    check_mail_from(&zone, CLIENT, "u@t.ext.test").await.result
}

/// `["TXT a", "A b"]` from `&["TXT a", "A b"]`, to compare with `MemoryZone::asked()`.
fn questions(expected: &[&str]) -> Vec<String> {
    expected.iter().map(ToString::to_string).collect()
}
