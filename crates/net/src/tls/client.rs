//! The client side: what sealpost uses when it connects to other servers.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore,
    SignatureScheme,
};

/// A client configuration for opportunistic TLS (RFC 7435 §3, RFC 3207): TLS 1.2 and 1.3
/// with the server's provider, any server certificate accepted (most MX certificates do not
/// match or are self-signed, RFC 7672 §1.3), the handshake signatures still checked, no
/// client certificate, no ALPN. Returned by value so that a caller can adjust it (SNI, ALPN)
/// before wrapping it in an `Arc`.
pub fn opportunistic_client_config() -> Result<ClientConfig, rustls::Error> {
    let provider = super::provider();
    Ok(ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth())
}

/// RFC 7435 §3: encrypt without authenticating. Chain and name are not checked; the
/// handshake signatures are (so the peer holds the key of the certificate it sent).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The certificate authorities a PKIX-verified connection trusts (MTA-STS, RFC 8461 §4.2:
/// "a trusted CA"): the system's store (rustls-native-certs: `/etc/ssl/certs`, or
/// `SSL_CERT_FILE`) plus the PEM certificates of `extra` when given. Unreadable system
/// certificates are skipped; an unreadable `extra` file is an error.
pub fn trust_roots(extra: Option<&Path>) -> Result<RootCertStore, RootsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "a system CA certificate could not be read");
    }
    let (_added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|error| RootsError::Read(path.display().to_string(), error.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| RootsError::Read(path.display().to_string(), error.to_string()))?;
        if certs.is_empty() {
            return Err(RootsError::Read(
                path.display().to_string(),
                "no PEM certificate in it".to_string(),
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|error| RootsError::Read(path.display().to_string(), error.to_string()))?;
        }
    }
    Ok(roots)
}

/// Why [`trust_roots`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    #[error("cannot read CA certificates from {0}: {1}")]
    Read(String, String),
}

/// A client configuration that authenticates the server the web's way (RFC 6125 name check,
/// a chain to one of `roots`, validity dates): what MTA-STS demands of MX hosts (RFC 8461
/// §4.2) and of the policy host (§3.3). `alpn` is offered as given (`http/1.1` for the
/// policy fetch; nothing for SMTP).
pub fn pkix_client_config(
    roots: Arc<RootCertStore>,
    alpn: &[&[u8]],
) -> Result<ClientConfig, TlsError> {
    let provider = super::provider();
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
        .build()
        .map_err(|error| TlsError::General(error.to_string()))?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_webpki_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// What DANE (RFC 7672 §3.1) makes of the chain a server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaneVerdict {
    /// A DANE-EE(3) record matches the server's certificate or key: authenticated, with no
    /// name or date checks (RFC 7672 §3.1.1).
    EndEntity,
    /// A DANE-TA(2) record matches this certificate of the chain: the server certificate must
    /// chain to it and carry the server's name (RFC 7672 §3.1.2, §3.2.2).
    TrustAnchor(CertificateDer<'static>),
    /// No usable record matches.
    NoMatch,
}

/// Matches a presented chain against the TLSA records of one host (the dns crate's
/// `tlsa_match`; kept behind a trait so this crate knows TLS and not DNS).
pub trait DaneMatcher: Send + Sync + fmt::Debug {
    /// `chain[0]` is the server's certificate, the rest as it sent them.
    fn verdict(&self, chain: &[CertificateDer<'_>]) -> DaneVerdict;
}

/// A client configuration that accepts only a server whose certificate chain satisfies the
/// host's authenticated TLSA records (RFC 7672 §3). Without a match the handshake fails:
/// no fallback to unauthenticated TLS or plaintext (RFC 7672 §2.2).
pub fn dane_client_config(matcher: Arc<dyn DaneMatcher>) -> Result<ClientConfig, TlsError> {
    let provider = super::provider();
    Ok(ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(DaneVerifier { matcher, provider }))
        .with_no_client_auth())
}

#[derive(Debug)]
struct DaneVerifier {
    matcher: Arc<dyn DaneMatcher>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let mut chain = Vec::with_capacity(intermediates.len() + 1);
        chain.push(end_entity.clone());
        chain.extend(intermediates.iter().cloned());
        match self.matcher.verdict(&chain) {
            DaneVerdict::EndEntity => Ok(ServerCertVerified::assertion()),
            DaneVerdict::TrustAnchor(anchor) => {
                // RFC 7672 §3.1.2: the trust anchor is the one root; the chain below it and
                // the name are checked as in PKIX (RFC 7672 §3.2.2: the MX host name is
                // the reference identifier, sent as SNI).
                let mut roots = RootCertStore::empty();
                roots
                    .add(anchor.clone())
                    .map_err(|error| TlsError::General(format!("DANE-TA anchor: {error}")))?;
                let below: Vec<CertificateDer<'_>> = intermediates
                    .iter()
                    .filter(|cert| cert.as_ref() != anchor.as_ref())
                    .cloned()
                    .collect();
                let verifier = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&self.provider),
                )
                .build()
                .map_err(|error| TlsError::General(error.to_string()))?;
                verifier.verify_server_cert(end_entity, &below, server_name, ocsp_response, now)
            }
            DaneVerdict::NoMatch => Err(TlsError::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    }

    fn leaf(name: &str, issuer: &CertifiedIssuer<'static, KeyPair>) -> CertificateDer<'static> {
        CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&KeyPair::generate().unwrap(), issuer)
            .unwrap()
            .der()
            .clone()
    }

    #[derive(Debug)]
    struct Fixed(DaneVerdict);

    impl DaneMatcher for Fixed {
        fn verdict(&self, _chain: &[CertificateDer<'_>]) -> DaneVerdict {
            self.0.clone()
        }
    }

    fn verify(
        verdict: DaneVerdict,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &str,
    ) -> Result<ServerCertVerified, TlsError> {
        let verifier = DaneVerifier {
            matcher: Arc::new(Fixed(verdict)),
            provider: super::super::provider(),
        };
        verifier.verify_server_cert(
            leaf,
            intermediates,
            &ServerName::try_from(name.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
    }

    #[test]
    fn dane_ee_authenticates_the_key_without_name_checks() {
        // RFC 7672 §3.1.1: a DANE-EE match is all it takes, whatever the name.
        let root = ca("Root");
        let cert = leaf("mx.example.test", &root);
        assert!(verify(DaneVerdict::EndEntity, &cert, &[], "other.example.test").is_ok());
        assert!(verify(DaneVerdict::NoMatch, &cert, &[], "mx.example.test").is_err());
    }

    #[test]
    fn dane_ta_needs_a_chain_to_the_anchor_and_the_name() {
        // RFC 7672 §3.1.2 and §3.2.2.
        let root = ca("Root");
        let anchor = root.der().clone();
        let cert = leaf("mx.example.test", &root);
        let chain = [anchor.clone()];
        assert!(
            verify(
                DaneVerdict::TrustAnchor(anchor.clone()),
                &cert,
                &chain,
                "mx.example.test"
            )
            .is_ok()
        );
        assert!(
            verify(
                DaneVerdict::TrustAnchor(anchor.clone()),
                &cert,
                &chain,
                "other.example.test"
            )
            .is_err(),
            "the name must match"
        );
        let stranger = ca("Another root");
        assert!(
            verify(
                DaneVerdict::TrustAnchor(stranger.der().clone()),
                &cert,
                &chain,
                "mx.example.test"
            )
            .is_err(),
            "the chain must lead to the anchor that matched"
        );
    }

    #[test]
    fn pkix_roots_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca("Test CA").pem()).unwrap();
        let system = trust_roots(None).unwrap().len();
        assert_eq!(trust_roots(Some(&path)).unwrap().len(), system + 1);
        let missing = dir.path().join("missing.pem");
        assert!(trust_roots(Some(&missing)).is_err());
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(trust_roots(Some(&empty)).is_err());
        let roots = Arc::new(trust_roots(Some(&path)).unwrap());
        let config = pkix_client_config(roots, &[b"http/1.1"]).unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }
}
