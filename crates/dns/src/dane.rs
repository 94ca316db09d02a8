//! DANE for SMTP (RFC 7672): TLSA records and matching them against a server's certificates.
//!
//! ```text
//! TLSA RDATA = cert-usage selector matching-type cert-association-data   ; RFC 6698 §2.1
//! cert-usage    : 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE              ; RFC 7218 §2.1
//! selector      : 0 Cert (full certificate), 1 SPKI                       ; RFC 7218 §2.2
//! matching-type : 0 Full (exact), 1 SHA2-256, 2 SHA2-512                  ; RFC 7218 §2.3
//! ```

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256, Sha512};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The DNSSEC status of an answer (RFC 4033 §5, RFC 4035 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnssecStatus {
    /// A chain of signatures from a trust anchor covers the answer (or its denial).
    Secure,
    /// The answer is provably outside any signed zone.
    Insecure,
    /// The answer should be signed but its signatures do not validate: possibly an attack.
    Bogus,
    /// The status could not be determined.
    Indeterminate,
}

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsaRecord {
    /// Certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE (RFC 7218 §2.1).
    pub usage: u8,
    /// Selector: 0 full certificate, 1 SubjectPublicKeyInfo (RFC 7218 §2.2).
    pub selector: u8,
    /// Matching type: 0 exact, 1 SHA-256, 2 SHA-512 (RFC 7218 §2.3).
    pub matching: u8,
    /// The certificate association data.
    pub data: Vec<u8>,
}

pub const USAGE_DANE_TA: u8 = 2;
pub const USAGE_DANE_EE: u8 = 3;
pub const SELECTOR_CERT: u8 = 0;
pub const SELECTOR_SPKI: u8 = 1;
pub const MATCHING_EXACT: u8 = 0;
pub const MATCHING_SHA256: u8 = 1;
pub const MATCHING_SHA512: u8 = 2;

impl TlsaRecord {
    /// Whether SMTP may use this record (RFC 7672 §2.2, §3.1): DANE-TA(2) or DANE-EE(3) with a
    /// known selector and matching type. PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP
    /// (RFC 7672 §3.1.3), as are unknown parameters; a digest of the wrong length never matches.
    pub fn is_usable(&self) -> bool {
        matches!(self.usage, USAGE_DANE_TA | USAGE_DANE_EE)
            && matches!(self.selector, SELECTOR_CERT | SELECTOR_SPKI)
            && match self.matching {
                MATCHING_EXACT => !self.data.is_empty(),
                MATCHING_SHA256 => self.data.len() == 32,
                MATCHING_SHA512 => self.data.len() == 64,
                _ => false,
            }
    }

    /// Whether this record's association data matches one certificate (RFC 6698 §2.1.2–2.1.3).
    /// Ignores the usage: the caller decides which certificate of the chain to test.
    fn matches_certificate(&self, cert: &[u8]) -> bool {
        let selected: Vec<u8> = match self.selector {
            // RFC 6698 §2.1.2: selector 0 is the full certificate (its DER).
            SELECTOR_CERT => cert.to_vec(),
            // RFC 6698 §2.1.2: selector 1 is the DER SubjectPublicKeyInfo.
            SELECTOR_SPKI => match X509Certificate::from_der(cert) {
                Ok((_, parsed)) => parsed.tbs_certificate.subject_pki.raw.to_vec(),
                Err(_) => return false,
            },
            _ => return false,
        };
        match self.matching {
            // RFC 6698 §2.1.3: 0 = exact match on the selected content.
            MATCHING_EXACT => selected == self.data,
            // RFC 6698 §2.1.3: 1 = SHA-256 of the selected content.
            MATCHING_SHA256 => Sha256::digest(&selected).as_slice() == self.data.as_slice(),
            // RFC 6698 §2.1.3: 2 = SHA-512 of the selected content.
            MATCHING_SHA512 => Sha512::digest(&selected).as_slice() == self.data.as_slice(),
            _ => false,
        }
    }
}

/// How a server's certificate chain satisfied its TLSA records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaneMatch {
    /// A DANE-EE(3) record matched the server's own certificate (RFC 7672 §3.1.1): the
    /// connection is authenticated; no name or expiry checks apply.
    EndEntity,
    /// A DANE-TA(2) record matched the issuer certificate at `chain_index` (≥ 1) of the
    /// presented chain (RFC 7672 §3.1.2). The caller must still verify that the server's
    /// certificate chains up to `anchor` (signatures, with `anchor` as the only trust anchor)
    /// and that its names match the reference identifiers (RFC 7672 §3.2.2).
    TrustAnchor {
        chain_index: usize,
        anchor: CertificateDer<'static>,
    },
}

/// Whether the chain presented by an SMTP server satisfies any usable TLSA record
/// (RFC 7672 §3.1). `chain[0]` is the server's certificate, the rest its issuers as sent.
///
/// DANE-EE(3) records are matched against `chain[0]`; DANE-TA(2) records against the issuer
/// certificates `chain[1..]` (RFC 7672 §3.1.2: the server includes its trust anchor in the
/// chain). A DANE-TA match alone is not authentication: see [`DaneMatch::TrustAnchor`] and
/// [`tlsa_match`], which says which certificate matched.
pub fn tlsa_matches(records: &[TlsaRecord], chain: &[CertificateDer<'_>]) -> bool {
    tlsa_match(records, chain).is_some()
}

/// Like [`tlsa_matches`], telling which record kind matched. A DANE-EE match is preferred over
/// a DANE-TA one, since it needs no further checks.
pub fn tlsa_match(records: &[TlsaRecord], chain: &[CertificateDer<'_>]) -> Option<DaneMatch> {
    let usable = || records.iter().filter(|record| record.is_usable());
    let (leaf, issuers) = chain.split_first()?;
    // RFC 7672 §3.1.1: DANE-EE(3) authenticates the server certificate (or key) directly.
    if usable()
        .filter(|record| record.usage == USAGE_DANE_EE)
        .any(|record| record.matches_certificate(leaf.as_ref()))
    {
        return Some(DaneMatch::EndEntity);
    }
    // RFC 7672 §3.1.2: DANE-TA(2) designates a trust anchor that must appear in the chain the
    // server presents; the server certificate itself is not a trust anchor here.
    for (offset, issuer) in issuers.iter().enumerate() {
        if usable()
            .filter(|record| record.usage == USAGE_DANE_TA)
            .any(|record| record.matches_certificate(issuer.as_ref()))
        {
            return Some(DaneMatch::TrustAnchor {
                chain_index: offset + 1,
                anchor: issuer.clone().into_owned(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, PublicKeyData,
    };

    struct Chain {
        leaf: CertificateDer<'static>,
        leaf_spki: Vec<u8>,
        intermediate: CertificateDer<'static>,
        intermediate_spki: Vec<u8>,
        root: CertificateDer<'static>,
        root_spki: Vec<u8>,
    }

    fn ca_params(name: &str) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
    }

    /// root -> intermediate -> leaf for mx.example.test.
    fn chain() -> Chain {
        let root_key = KeyPair::generate().unwrap();
        let root_spki = root_key.subject_public_key_info();
        let root = CertifiedIssuer::self_signed(ca_params("Test Root"), root_key).unwrap();
        let intermediate_key = KeyPair::generate().unwrap();
        let intermediate_spki = intermediate_key.subject_public_key_info();
        let intermediate =
            CertifiedIssuer::signed_by(ca_params("Test Intermediate"), intermediate_key, &root)
                .unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_spki = leaf_key.subject_public_key_info();
        let leaf = CertificateParams::new(vec!["mx.example.test".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &intermediate)
            .unwrap();
        Chain {
            leaf: leaf.der().clone(),
            leaf_spki,
            intermediate: intermediate.der().clone(),
            intermediate_spki,
            root: root.der().clone(),
            root_spki,
        }
    }

    fn record(usage: u8, selector: u8, matching: u8, selected: &[u8]) -> TlsaRecord {
        let data = match matching {
            MATCHING_SHA256 => Sha256::digest(selected).to_vec(),
            MATCHING_SHA512 => Sha512::digest(selected).to_vec(),
            _ => selected.to_vec(),
        };
        TlsaRecord {
            usage,
            selector,
            matching,
            data,
        }
    }

    #[test]
    fn spki_extraction_matches_the_key() {
        let chain = chain();
        let (_, parsed) = X509Certificate::from_der(chain.leaf.as_ref()).unwrap();
        assert_eq!(
            parsed.tbs_certificate.subject_pki.raw,
            chain.leaf_spki.as_slice()
        );
    }

    #[test]
    fn dane_ee_matches_every_selector_and_matching_type() {
        let chain = chain();
        let presented = [chain.leaf.clone(), chain.intermediate.clone()];
        for matching in [MATCHING_EXACT, MATCHING_SHA256, MATCHING_SHA512] {
            let by_cert = record(USAGE_DANE_EE, SELECTOR_CERT, matching, chain.leaf.as_ref());
            let by_key = record(USAGE_DANE_EE, SELECTOR_SPKI, matching, &chain.leaf_spki);
            for rec in [by_cert, by_key] {
                assert!(rec.is_usable());
                assert_eq!(
                    tlsa_match(std::slice::from_ref(&rec), &presented),
                    Some(DaneMatch::EndEntity),
                    "{rec:?}"
                );
                // The leaf alone, without issuers, is enough for DANE-EE.
                assert!(tlsa_matches(
                    std::slice::from_ref(&rec),
                    std::slice::from_ref(&chain.leaf)
                ));
            }
        }
    }

    #[test]
    fn dane_ee_rejects_another_certificate() {
        let chain = chain();
        let other = chain_leaf_only();
        let rec = record(
            USAGE_DANE_EE,
            SELECTOR_SPKI,
            MATCHING_SHA256,
            &chain.leaf_spki,
        );
        assert!(!tlsa_matches(std::slice::from_ref(&rec), &[other]));
        // An EE record naming an issuer's key does not match: EE looks at chain[0] only.
        let issuer_rec = record(
            USAGE_DANE_EE,
            SELECTOR_SPKI,
            MATCHING_SHA256,
            &chain.intermediate_spki,
        );
        assert!(!tlsa_matches(
            &[issuer_rec],
            &[chain.leaf.clone(), chain.intermediate.clone()]
        ));
    }

    fn chain_leaf_only() -> CertificateDer<'static> {
        rcgen::generate_simple_self_signed(vec!["mx.example.test".to_string()])
            .unwrap()
            .cert
            .der()
            .clone()
    }

    #[test]
    fn dane_ta_matches_an_issuer_in_the_chain() {
        let chain = chain();
        let presented = [
            chain.leaf.clone(),
            chain.intermediate.clone(),
            chain.root.clone(),
        ];
        // The root as trust anchor, by key digest (2 1 1) and by full certificate (2 0 2).
        let by_key = record(
            USAGE_DANE_TA,
            SELECTOR_SPKI,
            MATCHING_SHA256,
            &chain.root_spki,
        );
        assert_eq!(
            tlsa_match(&[by_key], &presented),
            Some(DaneMatch::TrustAnchor {
                chain_index: 2,
                anchor: chain.root.clone()
            })
        );
        let by_cert = record(
            USAGE_DANE_TA,
            SELECTOR_CERT,
            MATCHING_SHA512,
            chain.root.as_ref(),
        );
        assert!(tlsa_matches(&[by_cert], &presented));
        // The intermediate as trust anchor, exact SPKI (2 1 0).
        let exact = record(
            USAGE_DANE_TA,
            SELECTOR_SPKI,
            MATCHING_EXACT,
            &chain.intermediate_spki,
        );
        assert_eq!(
            tlsa_match(&[exact], &presented),
            Some(DaneMatch::TrustAnchor {
                chain_index: 1,
                anchor: chain.intermediate.clone()
            })
        );
    }

    #[test]
    fn dane_ta_never_matches_the_server_certificate_itself() {
        let chain = chain();
        let rec = record(
            USAGE_DANE_TA,
            SELECTOR_SPKI,
            MATCHING_SHA256,
            &chain.leaf_spki,
        );
        assert!(!tlsa_matches(
            &[rec],
            &[chain.leaf.clone(), chain.intermediate.clone()]
        ));
    }

    #[test]
    fn dane_ta_needs_the_anchor_in_the_presented_chain() {
        let chain = chain();
        let rec = record(
            USAGE_DANE_TA,
            SELECTOR_SPKI,
            MATCHING_SHA256,
            &chain.root_spki,
        );
        // The server sent only leaf + intermediate: the root is not there to match.
        assert!(!tlsa_matches(
            &[rec],
            &[chain.leaf.clone(), chain.intermediate.clone()]
        ));
    }

    #[test]
    fn pkix_usages_are_not_used_for_smtp() {
        let chain = chain();
        let presented = [chain.leaf.clone(), chain.intermediate.clone()];
        // RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1) are unusable, even when they would match.
        let pkix_ee = record(1, SELECTOR_SPKI, MATCHING_SHA256, &chain.leaf_spki);
        let pkix_ta = record(0, SELECTOR_SPKI, MATCHING_SHA256, &chain.intermediate_spki);
        assert!(!pkix_ee.is_usable());
        assert!(!pkix_ta.is_usable());
        assert!(!tlsa_matches(&[pkix_ee, pkix_ta], &presented));
    }

    #[test]
    fn unknown_parameters_and_bad_lengths_are_unusable() {
        let chain = chain();
        let presented = [chain.leaf.clone()];
        let digest = Sha256::digest(&chain.leaf_spki).to_vec();
        let unknown_selector = TlsaRecord {
            usage: USAGE_DANE_EE,
            selector: 2,
            matching: MATCHING_SHA256,
            data: digest.clone(),
        };
        let unknown_matching = TlsaRecord {
            usage: USAGE_DANE_EE,
            selector: SELECTOR_SPKI,
            matching: 3,
            data: digest.clone(),
        };
        let truncated = TlsaRecord {
            usage: USAGE_DANE_EE,
            selector: SELECTOR_SPKI,
            matching: MATCHING_SHA256,
            data: digest[..16].to_vec(),
        };
        let empty_exact = TlsaRecord {
            usage: USAGE_DANE_EE,
            selector: SELECTOR_SPKI,
            matching: MATCHING_EXACT,
            data: Vec::new(),
        };
        for rec in [unknown_selector, unknown_matching, truncated, empty_exact] {
            assert!(!rec.is_usable(), "{rec:?}");
            assert!(!tlsa_matches(std::slice::from_ref(&rec), &presented));
        }
    }

    #[test]
    fn one_matching_record_among_several_is_enough() {
        let chain = chain();
        let stale = record(USAGE_DANE_EE, SELECTOR_SPKI, MATCHING_SHA256, b"old key");
        let current = record(
            USAGE_DANE_EE,
            SELECTOR_SPKI,
            MATCHING_SHA256,
            &chain.leaf_spki,
        );
        assert!(tlsa_matches(
            &[stale.clone(), current],
            std::slice::from_ref(&chain.leaf)
        ));
        assert!(!tlsa_matches(&[stale], std::slice::from_ref(&chain.leaf)));
    }

    #[test]
    fn empty_inputs_and_garbage_never_match() {
        let chain = chain();
        let rec = record(
            USAGE_DANE_EE,
            SELECTOR_SPKI,
            MATCHING_SHA256,
            &chain.leaf_spki,
        );
        assert!(!tlsa_matches(&[], std::slice::from_ref(&chain.leaf)));
        assert!(!tlsa_matches(std::slice::from_ref(&rec), &[]));
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01]);
        assert!(!tlsa_matches(&[rec], std::slice::from_ref(&garbage)));
        // Selector 0 with exact matching works on any bytes: it compares the DER as sent.
        let raw = record(
            USAGE_DANE_EE,
            SELECTOR_CERT,
            MATCHING_EXACT,
            garbage.as_ref(),
        );
        assert!(tlsa_matches(&[raw], &[garbage]));
    }
}
