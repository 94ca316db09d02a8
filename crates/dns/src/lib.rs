//! The DNS for sealpost: one resolver built from the `[dns]` configuration, shared by the
//! queue (MX routing, DANE) and sender-auth (SPF, DKIM, DMARC through mail-auth).
//!
//! - [`Resolver::delivery_targets`]: the hosts and addresses a delivery walks (RFC 5321 §5.1,
//!   RFC 7505 null MX), with [`Resolver::mx`] underneath.
//! - [`Resolver::txt`]: TXT records (MTA-STS `_mta-sts.`, TLS-RPT `_smtp._tls.`).
//! - [`Resolver::tlsa`] and [`Resolver::dnssec_status`]: DNSSEC-validated answers for DANE
//!   (RFC 7672 §2), and [`tlsa_matches`] to check a server's certificates (RFC 7672 §3.1).
//!
//! # DNSSEC
//!
//! Validation is hickory's own (feature `dnssec-aws-lc-rs`): RRSIG, DNSKEY and DS are checked
//! from the IANA root trust anchors compiled into hickory (or [`ResolverOptions::trust_anchors`])
//! down to the answer, and denials through NSEC/NSEC3. The AD bit of the upstream server is
//! not trusted (RFC 6698 §4.1 would allow it only over a secure channel to a trusted resolver).
//! Validation needs an upstream that passes DNSSEC records through (DO bit); one that strips
//! them makes every validated answer `Bogus`, never `Secure`, so DANE then never applies and
//! routing is unaffected: MX, A/AAAA and TXT go through a second, non-validating resolver.
//!
//! For DANE the queue asks, in this order (RFC 7672 §2.2): is the MX RRset `Secure`
//! ([`Resolver::dnssec_status`])? are the MX host's addresses `Secure`? only then the TLSA
//! RRset ([`Resolver::tlsa`]): `Secure` with usable records → DANE required; `Secure` and
//! empty, or `Insecure` → no DANE; `Bogus` → a temporary failure for that host.
//!
//! Failures are [`DnsError`]s that say whether to retry ([`DnsError::is_temporary`]) and
//! which enhanced status code a bounce carries ([`DnsError::enhanced_status`]).
#![forbid(unsafe_code)]

mod dane;
mod error;
mod resolver;

pub use dane::{
    DaneMatch, DnssecStatus, MATCHING_EXACT, MATCHING_SHA256, MATCHING_SHA512, SELECTOR_CERT,
    SELECTOR_SPKI, TlsaRecord, USAGE_DANE_EE, USAGE_DANE_TA, tlsa_match, tlsa_matches,
};
pub use error::DnsError;
pub use hickory_resolver::proto::dnssec::TrustAnchors;
pub use resolver::{
    MAX_MX_HOSTS, MxAnswer, MxHost, Resolver, ResolverOptions, SecuredRecord, Target, TlsaAnswer,
};
