//! RFC 7489 §7.1: where a report may go.

use super::*;
use crate::lookup::MemoryZone;

fn destination(address: &str, max_size: Option<u64>) -> Destination {
    Destination {
        address: address.to_string(),
        max_size,
    }
}

const AUTHORIZATION: &str = "example.com._report._dmarc.reports.example.net";

#[tokio::test]
async fn same_organization_needs_no_query() {
    let zone = MemoryZone::new();
    let kept = destinations(
        &zone,
        "example.com",
        "p=none;rua=mailto:dmarc@reports.example.com,mailto:Postmaster@EXAMPLE.com",
    )
    .await;
    assert_eq!(
        kept,
        vec![
            destination("dmarc@reports.example.com", None),
            destination("Postmaster@example.com", None),
        ]
    );
    // A subdomain's policy reporting to its organizational domain.
    let kept = destinations(&zone, "mail.example.com", "rua=mailto:d@example.com").await;
    assert_eq!(kept, vec![destination("d@example.com", None)]);
    assert!(zone.asked().is_empty(), "{:?}", zone.asked());
}

#[tokio::test]
async fn external_destination_needs_its_authorization() {
    let published = "p=reject;rua=mailto:dmarc@reports.example.net";

    let zone = MemoryZone::new().txt(AUTHORIZATION, "v=DMARC1");
    let kept = destinations(&zone, "example.com", published).await;
    assert_eq!(kept, vec![destination("dmarc@reports.example.net", None)]);
    assert_eq!(zone.asked(), vec![format!("TXT {AUTHORIZATION}")]);

    let zone = MemoryZone::new();
    assert!(
        destinations(&zone, "example.com", published)
            .await
            .is_empty()
    );
    assert_eq!(zone.asked(), vec![format!("TXT {AUTHORIZATION}")]);

    // A record that is not a DMARC record authorizes nothing (RFC 7489 §7.1 step 4).
    let zone = MemoryZone::new().txt(AUTHORIZATION, "v=spf1 -all");
    assert!(
        destinations(&zone, "example.com", published)
            .await
            .is_empty()
    );

    // Authorization for another policy domain does not count.
    let zone = MemoryZone::new().txt("example.org._report._dmarc.reports.example.net", "v=DMARC1");
    assert!(
        destinations(&zone, "example.com", published)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn temporary_failure_drops_the_destination_for_now() {
    let zone = MemoryZone::new().failing(AUTHORIZATION);
    let kept = destinations(
        &zone,
        "example.com",
        "rua=mailto:dmarc@reports.example.net,mailto:dmarc@example.com",
    )
    .await;
    assert_eq!(kept, vec![destination("dmarc@example.com", None)]);
}

#[tokio::test]
async fn authorization_record_may_replace_the_address_on_the_same_host() {
    // RFC 7489 §7.1 step 7: the same destination host only; others are ignored.
    let zone = MemoryZone::new().txt(
        AUTHORIZATION,
        "v=DMARC1; rua=mailto:incoming@reports.example.net!1m, mailto:x@elsewhere.example",
    );
    let kept = destinations(&zone, "example.com", "rua=mailto:dmarc@reports.example.net").await;
    assert_eq!(
        kept,
        vec![destination("incoming@reports.example.net", Some(1 << 20))]
    );

    let zone = MemoryZone::new().txt(AUTHORIZATION, "v=DMARC1; rua=mailto:x@elsewhere.example");
    let kept = destinations(&zone, "example.com", "rua=mailto:dmarc@reports.example.net").await;
    assert_eq!(kept, vec![destination("dmarc@reports.example.net", None)]);
}

#[tokio::test]
async fn only_mailto_uris_with_a_plain_address_count() {
    let zone = MemoryZone::new();
    let kept = destinations(
        &zone,
        "example.com",
        "rua=https://example.com/dmarc,ftp://example.com/x,mailto:,mailto:not-an-address,\
         mailto:a%0D%0ABcc:x@example.com,mailto:a@exa%20mple.com,mailto:a@example.com%,\
         MAILTO:dmarc%2Breports@example.com?subject=hello",
    )
    .await;
    assert_eq!(kept, vec![destination("dmarc+reports@example.com", None)]);
    assert!(zone.asked().is_empty());
}

#[tokio::test]
async fn at_most_two_destinations() {
    let zone = MemoryZone::new();
    let kept = destinations(
        &zone,
        "example.com",
        "rua=mailto:a@example.com,mailto:a@example.com!5k,mailto:b@example.com,\
         mailto:c@example.com,mailto:d@reports.example.net",
    )
    .await;
    // The duplicate of a is skipped; nothing past the second is looked at.
    assert_eq!(
        kept,
        vec![
            destination("a@example.com", None),
            destination("b@example.com", None)
        ]
    );
    assert!(zone.asked().is_empty());
}

#[tokio::test]
async fn size_limits() {
    let zone = MemoryZone::new();
    let size = |uri: &str| {
        let published = format!("rua={uri}");
        let zone = &zone;
        async move {
            destinations(zone, "example.com", &published)
                .await
                .first()
                .map(|kept| kept.max_size)
        }
    };
    assert_eq!(
        size("mailto:d@example.com!10m").await,
        Some(Some(10 * 1024 * 1024))
    );
    assert_eq!(size("mailto:d@example.com!500").await, Some(Some(500)));
    assert_eq!(size("mailto:d@example.com!1k").await, Some(Some(1024)));
    assert_eq!(size("mailto:d@example.com!2G").await, Some(Some(2 << 30)));
    assert_eq!(size("mailto:d@example.com!1t").await, Some(Some(1 << 40)));
    assert_eq!(
        size("mailto:d@example.com!99999999999999999999999t").await,
        Some(Some(u64::MAX))
    );
    assert_eq!(size("mailto:d@example.com").await, Some(None));
    // A malformed limit makes the URI invalid.
    assert_eq!(size("mailto:d@example.com!10x").await, None);
    assert_eq!(size("mailto:d@example.com!").await, None);
    assert_eq!(size("mailto:d@example.com!m").await, None);
}

#[tokio::test]
async fn invalid_policy_domain_has_no_destinations() {
    let zone = MemoryZone::new();
    let kept = destinations(&zone, "exa mple.com", "rua=mailto:d@reports.example.net").await;
    assert!(kept.is_empty());
    assert!(zone.asked().is_empty());
}
