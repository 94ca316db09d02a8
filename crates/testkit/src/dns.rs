//! An authoritative DNS server for tests (hickory-server on an ephemeral loopback port,
//! UDP and TCP) serving zones built in code, optionally DNSSEC-signed with a fresh key that
//! the resolver under test takes as its trust anchor.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::dnssec::NxProofKind;
use hickory_server::proto::dnssec::crypto::Ed25519SigningKey;
use hickory_server::proto::dnssec::rdata::DNSKEY;
use hickory_server::proto::dnssec::{DnssecSigner, SigningKey, TrustAnchors};
use hickory_server::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_server::proto::rr::rdata::{A, AAAA, MX, NS, SOA, TLSA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

pub use hickory_server::proto::rr::rdata::{CNAME, TXT};

/// The TTL of every test record.
pub const TTL: u32 = 300;

pub fn name(text: &str) -> Name {
    Name::from_str(text).unwrap()
}

/// A record of `owner` (absolute, with the final dot).
pub fn rr(owner: &str, data: RData) -> Record {
    Record::from_rdata(name(owner), TTL, data)
}

pub fn mx(owner: &str, preference: u16, exchange: &str) -> Record {
    rr(owner, RData::MX(MX::new(preference, name(exchange))))
}

pub fn a(owner: &str, address: Ipv4Addr) -> Record {
    rr(owner, RData::A(A(address)))
}

pub fn aaaa(owner: &str, address: Ipv6Addr) -> Record {
    rr(owner, RData::AAAA(AAAA(address)))
}

pub fn tlsa(owner: &str, usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Record {
    rr(
        owner,
        RData::TLSA(TLSA::new(
            CertUsage::from(usage),
            Selector::from(selector),
            Matching::from(matching),
            data,
        )),
    )
}

/// A zone with SOA and NS at its apex plus `records`; `nx_proof` for a zone to be signed.
pub fn zone(
    origin: &str,
    records: Vec<Record>,
    nx_proof: Option<NxProofKind>,
) -> InMemoryZoneHandler {
    let origin = name(origin);
    let mut zone = InMemoryZoneHandler::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
        nx_proof,
    );
    let ns_host = Name::from_str("ns")
        .unwrap()
        .append_domain(&origin)
        .unwrap();
    let soa = SOA::new(
        ns_host.clone(),
        Name::from_str("hostmaster")
            .unwrap()
            .append_domain(&origin)
            .unwrap(),
        1,
        3600,
        600,
        86400,
        TTL,
    );
    assert!(zone.upsert_mut(Record::from_rdata(origin.clone(), TTL, RData::SOA(soa)), 1));
    assert!(zone.upsert_mut(
        Record::from_rdata(origin.clone(), TTL, RData::NS(NS(ns_host.clone()))),
        1
    ));
    assert!(zone.upsert_mut(
        Record::from_rdata(ns_host, TTL, RData::A(A(Ipv4Addr::new(192, 0, 2, 53)))),
        1
    ));
    for record in records {
        let owner = record.name.clone();
        assert!(zone.upsert_mut(record, 1), "{owner}");
    }
    zone
}

/// The zone `origin` with `records`, signed (NSEC) with a fresh Ed25519 key; returns it
/// with that key as the only trust anchor.
pub fn signed_zone(origin: &str, records: Vec<Record>) -> (InMemoryZoneHandler, TrustAnchors) {
    let mut zone = zone(origin, records, Some(NxProofKind::Nsec));
    let key = Ed25519SigningKey::from_pkcs8(&Ed25519SigningKey::generate_pkcs8().unwrap()).unwrap();
    let public_key = key.to_public_key().unwrap();
    let signer = DnssecSigner::new(
        DNSKEY::from_key(&public_key),
        Box::new(key),
        name(origin),
        Duration::from_secs(86400),
    );
    zone.add_zone_signing_key_mut(signer).unwrap();
    zone.secure_zone_mut().unwrap();
    let mut anchors = TrustAnchors::empty();
    assert!(anchors.insert_with_name(&public_key, LowerName::from(name(origin))));
    (zone, anchors)
}

/// A running server; it stops when dropped.
pub struct TestDns {
    pub address: SocketAddr,
    _server: Server<Catalog>,
}

impl TestDns {
    /// Serves `zones`, each `(origin, zone)`.
    pub async fn start(zones: Vec<(&str, InMemoryZoneHandler)>) -> TestDns {
        let mut catalog = Catalog::new();
        for (origin, zone) in zones {
            catalog.upsert(LowerName::from(name(origin)), vec![Arc::new(zone)]);
        }
        let (udp, tcp) = bind_pair().await;
        let address = udp.local_addr().unwrap();
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 16);
        TestDns {
            address,
            _server: server,
        }
    }
}

/// UDP and TCP listeners on the same ephemeral loopback port.
async fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            return (udp, tcp);
        }
    }
    panic!("no free UDP+TCP port pair on 127.0.0.1");
}
