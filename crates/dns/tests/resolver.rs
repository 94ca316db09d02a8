//! The resolver against an in-process authoritative DNS server (hickory-server) on an
//! ephemeral loopback port, serving test zones built in code: an unsigned `example.test.` and
//! a DNSSEC-signed `signed.test.` whose key is the resolver's trust anchor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_server::proto::dnssec::TrustAnchors;
use hickory_server::proto::rr::{Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use sealpost_dns::{
    DnsError, DnssecStatus, MxAnswer, MxHost, Resolver, ResolverOptions, SecuredRecord, Target,
    TlsaRecord,
};
use sealpost_testkit::dns::{
    CNAME, TXT, TestDns as Server, mx, rr, signed_zone as sign, tlsa, zone,
};
use sealpost_types::Domain;
use tokio::net::UdpSocket;

fn name(text: &str) -> Name {
    sealpost_testkit::dns::name(text)
}

fn domain(text: &str) -> Domain {
    Domain::parse(text).unwrap()
}

fn digest(byte: u8) -> Vec<u8> {
    vec![byte; 32]
}

fn a(owner: &str, last: u8) -> Record {
    sealpost_testkit::dns::a(owner, Ipv4Addr::new(192, 0, 2, last))
}

fn aaaa(owner: &str, last: u16) -> Record {
    sealpost_testkit::dns::aaaa(owner, Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
}

fn unsigned_zone() -> InMemoryZoneHandler {
    let records = vec![
        // Three MX hosts, two at the same preference.
        mx("multi.example.test.", 10, "a.mx.example.test."),
        mx("multi.example.test.", 10, "b.mx.example.test."),
        mx("multi.example.test.", 20, "c.mx.example.test."),
        a("a.mx.example.test.", 1),
        a("b.mx.example.test.", 2),
        a("c.mx.example.test.", 3),
        // RFC 7505 null MX.
        mx("null.example.test.", 0, "."),
        // No MX: the domain's own addresses are the implicit MX.
        a("nomx.example.test.", 10),
        aaaa("nomx.example.test.", 0x10),
        // The MX host is an alias.
        mx("cname.example.test.", 10, "alias.example.test."),
        rr(
            "alias.example.test.",
            RData::CNAME(CNAME(name("real.example.test."))),
        ),
        a("real.example.test.", 20),
        // The preferred MX host has no address at all; the second has both families.
        mx("skip.example.test.", 10, "dead.example.test."),
        mx("skip.example.test.", 20, "live.example.test."),
        a("live.example.test.", 30),
        aaaa("live.example.test.", 0x30),
        // No MX host resolves.
        mx("unroutable.example.test.", 10, "dead.example.test."),
        mx("unroutable.example.test.", 20, "gone.example.test."),
        // TXT split into several strings, and a second record.
        rr(
            "_mta-sts.example.test.",
            RData::TXT(TXT::new(vec![
                "v=STSv1; ".to_string(),
                "id=20240101T000000".to_string(),
            ])),
        ),
        rr(
            "_mta-sts.example.test.",
            RData::TXT(TXT::new(vec!["unrelated".to_string()])),
        ),
        // TLSA in an unsigned zone.
        tlsa("_25._tcp.a.mx.example.test.", 3, 1, 1, digest(0xaa)),
        tlsa("_25._tcp.a.mx.example.test.", 2, 0, 2, vec![0xbb; 64]),
    ];
    zone("example.test.", records, None)
}

/// `signed.test.` signed with a fresh Ed25519 key; returns the zone and that key as the only
/// trust anchor.
fn signed_zone() -> (InMemoryZoneHandler, TrustAnchors) {
    let records = vec![
        mx("signed.test.", 10, "mx.signed.test."),
        a("mx.signed.test.", 40),
        tlsa("_25._tcp.mx.signed.test.", 3, 1, 1, digest(0xcc)),
    ];
    sign("signed.test.", records)
}

struct TestDns {
    address: SocketAddr,
    anchors: Arc<TrustAnchors>,
    _server: Server,
}

async fn start() -> TestDns {
    let (signed, anchors) = signed_zone();
    let server = Server::start(vec![
        ("example.test.", unsigned_zone()),
        ("signed.test.", signed),
    ])
    .await;
    TestDns {
        address: server.address,
        anchors: Arc::new(anchors),
        _server: server,
    }
}

fn options(dns: &TestDns) -> ResolverOptions {
    ResolverOptions {
        timeout: Duration::from_secs(2),
        attempts: 2,
        trust_anchors: Some(dns.anchors.clone()),
    }
}

fn resolver(dns: &TestDns) -> Resolver {
    Resolver::new(&[dns.address], options(dns)).unwrap()
}

fn host(preference: u16, host: &str) -> MxHost {
    MxHost {
        preference,
        host: host.to_string(),
    }
}

#[tokio::test]
async fn mx_hosts_come_by_preference_and_shuffle_among_equals() {
    let dns = start().await;
    let resolver = resolver(&dns);
    let mut firsts = HashSet::new();
    for _ in 0..64 {
        let MxAnswer::Hosts(hosts) = resolver.mx(&domain("multi.example.test")).await.unwrap()
        else {
            panic!("expected MX hosts");
        };
        assert_eq!(hosts.len(), 3);
        // Never a higher preference before a lower one.
        assert!(hosts.windows(2).all(|w| w[0].preference <= w[1].preference));
        assert_eq!(hosts[2], host(20, "c.mx.example.test"));
        firsts.insert(hosts[0].host.clone());
    }
    // RFC 5321 §5.1: both hosts of preference 10 come first sometimes (2^-63 to fail).
    assert_eq!(
        firsts,
        HashSet::from([
            "a.mx.example.test".to_string(),
            "b.mx.example.test".to_string()
        ])
    );

    let targets = resolver
        .delivery_targets(&domain("multi.example.test"))
        .await
        .unwrap();
    assert_eq!(targets.len(), 3);
    assert_eq!(
        targets[2],
        Target {
            host: "c.mx.example.test".to_string(),
            preference: 20,
            addresses: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3))],
            implicit: false,
        }
    );
}

#[tokio::test]
async fn null_mx_is_reported_as_such() {
    let dns = start().await;
    let resolver = resolver(&dns);
    assert_eq!(
        resolver.mx(&domain("null.example.test")).await.unwrap(),
        MxAnswer::NullMx
    );
    let err = resolver
        .delivery_targets(&domain("null.example.test"))
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::NullMx { .. }), "{err:?}");
    assert!(!err.is_temporary());
    assert_eq!(err.enhanced_status(), "5.1.10");
}

#[tokio::test]
async fn no_mx_falls_back_to_the_domain_addresses() {
    let dns = start().await;
    let resolver = resolver(&dns);
    assert_eq!(
        resolver.mx(&domain("nomx.example.test")).await.unwrap(),
        MxAnswer::NoMx
    );
    let targets = resolver
        .delivery_targets(&domain("nomx.example.test"))
        .await
        .unwrap();
    assert_eq!(
        targets,
        vec![Target {
            host: "nomx.example.test".to_string(),
            preference: 0,
            // IPv6 first.
            addresses: vec![
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10)),
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            ],
            implicit: true,
        }]
    );
}

#[tokio::test]
async fn nxdomain_is_permanent() {
    let dns = start().await;
    let resolver = resolver(&dns);
    assert_eq!(
        resolver.mx(&domain("nope.example.test")).await.unwrap(),
        MxAnswer::NxDomain
    );
    let err = resolver
        .delivery_targets(&domain("nope.example.test"))
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::NxDomain { .. }), "{err:?}");
    assert!(!err.is_temporary());
    assert_eq!(err.enhanced_status(), "5.1.2");
}

#[tokio::test]
async fn cname_mx_host_is_followed() {
    let dns = start().await;
    let resolver = resolver(&dns);
    let targets = resolver
        .delivery_targets(&domain("cname.example.test"))
        .await
        .unwrap();
    assert_eq!(
        targets,
        vec![Target {
            host: "alias.example.test".to_string(),
            preference: 10,
            addresses: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20))],
            implicit: false,
        }]
    );
}

#[tokio::test]
async fn mx_host_without_address_is_skipped() {
    let dns = start().await;
    let resolver = resolver(&dns);
    let targets = resolver
        .delivery_targets(&domain("skip.example.test"))
        .await
        .unwrap();
    assert_eq!(
        targets,
        vec![Target {
            host: "live.example.test".to_string(),
            preference: 20,
            addresses: vec![
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x30)),
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 30)),
            ],
            implicit: false,
        }]
    );

    let err = resolver
        .delivery_targets(&domain("unroutable.example.test"))
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::NoAddresses { .. }), "{err:?}");
    assert!(!err.is_temporary());
}

#[tokio::test]
async fn txt_strings_of_a_record_are_joined() {
    let dns = start().await;
    let resolver = resolver(&dns);
    let mut records = resolver.txt("_mta-sts.example.test").await.unwrap();
    records.sort();
    assert_eq!(
        records,
        vec![
            "unrelated".to_string(),
            "v=STSv1; id=20240101T000000".to_string()
        ]
    );
    assert!(
        resolver
            .txt("_mta-sts.nomx.example.test")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(resolver.txt("nomx.example.test.").await.unwrap().is_empty());
}

#[tokio::test]
async fn tlsa_from_an_unsigned_zone_is_not_authenticated() {
    let dns = start().await;
    let resolver = resolver(&dns);
    let answer = resolver.tlsa("a.mx.example.test", 25).await.unwrap();
    let mut records = answer.records.clone();
    records.sort_by_key(|record| record.usage);
    assert_eq!(
        records,
        vec![
            TlsaRecord {
                usage: 2,
                selector: 0,
                matching: 2,
                data: vec![0xbb; 64],
            },
            TlsaRecord {
                usage: 3,
                selector: 1,
                matching: 1,
                data: digest(0xaa),
            },
        ]
    );
    // In production an unsigned zone is provably `Insecure` (an NSEC/DS chain from the root);
    // this test server has no signed parent for example.test, so the validator says `Bogus`.
    // Either way: not authenticated.
    assert!(!answer.authenticated(), "{:?}", answer.dnssec);
    // The MX RRset of an unsigned zone is not secure either (RFC 7672 §2.2.1).
    let status = resolver
        .dnssec_status("multi.example.test", SecuredRecord::Mx)
        .await
        .unwrap();
    assert_ne!(status, DnssecStatus::Secure);
    // No TLSA at all.
    let none = resolver.tlsa("b.mx.example.test", 25).await.unwrap();
    assert!(none.records.is_empty());
    assert!(!none.authenticated());
}

#[tokio::test]
async fn tlsa_from_a_signed_zone_is_authenticated() {
    let dns = start().await;
    let resolver = resolver(&dns);
    let answer = resolver.tlsa("mx.signed.test.", 25).await.unwrap();
    assert_eq!(
        answer.records,
        vec![TlsaRecord {
            usage: 3,
            selector: 1,
            matching: 1,
            data: digest(0xcc),
        }]
    );
    assert_eq!(answer.dnssec, DnssecStatus::Secure);
    assert!(answer.authenticated());
    assert_eq!(
        resolver
            .dnssec_status("signed.test", SecuredRecord::Mx)
            .await
            .unwrap(),
        DnssecStatus::Secure
    );
    assert_eq!(
        resolver
            .dnssec_status("mx.signed.test", SecuredRecord::A)
            .await
            .unwrap(),
        DnssecStatus::Secure
    );
    // An MX host of the signed zone without TLSA: authenticated denial of existence (NSEC),
    // so DANE does not apply (RFC 7672 §2.2).
    let denied = resolver.tlsa("ns.signed.test", 25).await.unwrap();
    assert!(denied.records.is_empty());
    assert_eq!(denied.dnssec, DnssecStatus::Secure);
    // The same records without the trust anchor: the chain from the IANA root cannot be built
    // against this server, so nothing is authenticated.
    let untrusting = Resolver::new(
        &[dns.address],
        ResolverOptions {
            trust_anchors: None,
            ..options(&dns)
        },
    )
    .unwrap();
    let answer = untrusting.tlsa("mx.signed.test", 25).await.unwrap();
    assert!(!answer.authenticated(), "{:?}", answer.dnssec);
}

/// A UDP "server" that answers every query with SERVFAIL (RFC 1035 §4.1.1 RCODE 2).
async fn servfail_server() -> SocketAddr {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = [0u8; 1500];
        while let Ok((len, peer)) = socket.recv_from(&mut buffer).await {
            let query = &buffer[..len];
            if query.len() < 12 {
                continue;
            }
            // Header, then the question: the name's labels up to the root, type and class.
            let mut end = 12;
            while end < query.len() && query[end] != 0 {
                end += usize::from(query[end]) + 1;
            }
            let end = (end + 5).min(query.len());
            let mut reply = query[..end].to_vec();
            reply[2] = 0x80 | (query[2] & 0x01); // QR, opcode QUERY, RD copied
            reply[3] = 0x80 | 0x02; // RA, RCODE SERVFAIL
            reply[6..12].fill(0); // no answer, authority or additional records
            let _ = socket.send_to(&reply, peer).await;
        }
    });
    address
}

fn fast_options() -> ResolverOptions {
    ResolverOptions {
        timeout: Duration::from_millis(300),
        attempts: 2,
        trust_anchors: None,
    }
}

#[tokio::test]
async fn servfail_is_temporary() {
    let address = servfail_server().await;
    let resolver = Resolver::new(&[address], fast_options()).unwrap();
    let started = Instant::now();
    let err = resolver
        .delivery_targets(&domain("example.test"))
        .await
        .unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    assert_eq!(err.enhanced_status(), "4.4.3");
    assert!(started.elapsed() < Duration::from_secs(3));
    let err = resolver.txt("_mta-sts.example.test").await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
}

#[tokio::test]
async fn silent_server_times_out_as_temporary() {
    // Bound but never read: queries vanish.
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let resolver = Resolver::new(&[silent.local_addr().unwrap()], fast_options()).unwrap();
    let started = Instant::now();
    let err = resolver.mx(&domain("example.test")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, DnsError::Temporary { .. }), "{err:?}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    let err = resolver.tlsa("mx.example.test", 25).await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    drop(silent);
}

#[test]
fn system_resolver_builds_from_resolv_conf() {
    if !std::path::Path::new("/etc/resolv.conf").exists() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        Resolver::new(&[], ResolverOptions::default()).unwrap();
    });
}
