//! DKIM signing of outgoing mail from local domains (RFC 6376, RFC 8463, RFC 8301), over the
//! mail-auth crate.
//!
//! The queue builds one [`DkimSigner`] per local domain (parsing the PEM keys once), asks
//! [`signing_domain`] which domain a message speaks for, and when that domain is local prepends
//! what [`DkimSigner::sign`] returns: one `DKIM-Signature` header field per key of the domain.
//! A domain has an Ed25519 key and an RSA key; RFC 8463 §3 recommends signing with both, so
//! that verifiers without Ed25519 support still find a signature they can check.
//!
//! Every signature uses `c=relaxed/relaxed` (RFC 6376 §3.4), `t=` (the signing time), no `x=`
//! and no `l=` (RFC 6376 §8.2: a body length limit lets anyone append content), and covers
//! [`SIGNED_HEADERS`] and the mailing-list fields [`LIST_HEADERS`] that are present, with
//! [`OVERSIGNED_HEADERS`] listed once more than they occur (RFC 6376 §8.15).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::crypto::{
    Algorithm, DkimKey as MailAuthKey, Ed25519Key, RsaKey, Sha256, SigningKey,
};
use mail_auth::common::headers::{HeaderWriter, Writable};
use mail_auth::dkim::{Canonicalization, DkimSigner as MailAuthSigner};
use mail_parser::{HeaderName, MessageParser};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sealpost_store::{DkimAlgorithm, DkimKey, DomainRecord};
use sealpost_types::Domain;

/// Header fields signed when present. From is always listed, present or not (RFC 6376 §5.4:
/// "The From header field MUST be signed"); To and Subject too, so that adding one later
/// breaks the signature (RFC 6376 §8.15).
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// Mailing-list header fields (RFC 2369 §3, RFC 2919 §3, RFC 8058 §3.1), signed when present.
/// RFC 8058 §4: List-Unsubscribe and List-Unsubscribe-Post MUST be covered by a valid DKIM
/// signature for one-click unsubscription to work.
pub const LIST_HEADERS: &[&str] = &[
    "List-Id",
    "List-Help",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Subscribe",
    "List-Post",
    "List-Owner",
    "List-Archive",
];

/// Header fields named once more in `h=` than they occur in the message (RFC 6376 §8.15), so a
/// verifier sees a signed "null" instance and a copy added later breaks the signature.
pub const OVERSIGNED_HEADERS: &[&str] = &["From", "To", "Subject"];

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("domain {0} has no DKIM keys")]
    NoKeys(Domain),
    #[error("DKIM selector {selector:?} of {domain} is not a valid selector (RFC 6376 §3.1)")]
    InvalidSelector { domain: Domain, selector: String },
    #[error("DKIM key {selector:?} of {domain} is not a usable PKCS#8 {algorithm} key: {reason}")]
    InvalidKey {
        domain: Domain,
        selector: String,
        algorithm: &'static str,
        reason: String,
    },
    #[error(
        "DKIM key {selector:?} of {domain}: the private key does not match the public key \
         published in DNS (p=)"
    )]
    KeyMismatch { domain: Domain, selector: String },
    #[error("the message has no From header field; RFC 6376 §5.4: From MUST be signed")]
    NoFrom,
    #[error("DKIM signing with key {selector:?} of {domain} failed: {reason}")]
    Signing {
        domain: Domain,
        selector: String,
        reason: String,
    },
}

/// The signing keys of one local domain, parsed once.
pub struct DkimSigner {
    domain: Domain,
    keys: Vec<ParsedKey>,
}

struct ParsedKey {
    selector: String,
    key: MailAuthKey,
}

impl fmt::Debug for DkimSigner {
    /// Domain and selectors only: never key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain.as_str())
            .field(
                "selectors",
                &self
                    .keys
                    .iter()
                    .map(|k| k.selector.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl DkimSigner {
    /// Parses every DKIM key of `record`. Fails when the domain has no key, or when a key is
    /// not a PKCS#8 PEM of its algorithm or does not match its published public key.
    pub fn new(record: &DomainRecord) -> Result<Self, DkimError> {
        if record.dkim_keys.is_empty() {
            return Err(DkimError::NoKeys(record.name.clone()));
        }
        let keys = record
            .dkim_keys
            .iter()
            .map(|key| parse_key(&record.name, key))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DkimSigner {
            domain: record.name.clone(),
            keys,
        })
    }

    /// The `d=` of every signature.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// Signs `message` (the complete message as it will be sent, CRLF line ends) with every key
    /// of the domain. Returns the `DKIM-Signature` header fields, each folded and terminated by
    /// CRLF, to prepend to the message unchanged.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, DkimError> {
        let present = header_names(message);
        // RFC 6376 §5.4: "The From header field MUST be signed" — refuse rather than sign
        // something no DMARC verifier can align.
        if !present.iter().any(|name| name.eq_ignore_ascii_case("From")) {
            return Err(DkimError::NoFrom);
        }
        let h = header_list(&present);
        let mut out = Vec::with_capacity(self.keys.len() * 512);
        for key in &self.keys {
            let signature = MailAuthSigner::from_key(KeyRef(&key.key))
                .domain(self.domain.as_str())
                .selector(key.selector.as_str())
                .headers(h.iter().copied())
                // RFC 6376 §3.4: relaxed/relaxed survives the whitespace and folding changes
                // of relays; simple does not.
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed)
                // RFC 6376 §3.5: t= is set by mail-auth at signing; no x=, and no l= (§8.2).
                .sign(message)
                .map_err(|err| DkimError::Signing {
                    domain: self.domain.clone(),
                    selector: key.selector.clone(),
                    reason: err.to_string(),
                })?;
            signature.write_header(&mut out);
        }
        Ok(out)
    }
}

/// The domain a message is signed for: that of the RFC 5322.From address, the identity DMARC
/// aligns with (RFC 7489 §3.1). `None` when there is no From field, more than one (RFC 5322
/// §3.6 allows exactly one; RFC 7489 §6.6.1), an address without a usable domain, or
/// addresses in different domains (a signature has one `d=`, so no single choice aligns them
/// all).
pub fn signing_domain(message: &[u8]) -> Option<Domain> {
    let parsed = MessageParser::new().parse_headers(message)?;
    let mut from_fields = parsed
        .root_part()
        .headers()
        .iter()
        .filter(|header| header.name == HeaderName::From);
    let from = from_fields.next()?;
    if from_fields.next().is_some() {
        return None;
    }
    let mut domain: Option<Domain> = None;
    for address in from.value.as_address()?.iter() {
        let (_, host) = address.address.as_deref()?.rsplit_once('@')?;
        let host = Domain::parse(host).ok()?;
        match &domain {
            Some(seen) if *seen != host => return None,
            Some(_) => {}
            None => domain = Some(host),
        }
    }
    domain
}

/// The header field names of `message`, in order, as written.
fn header_names(message: &[u8]) -> Vec<String> {
    MessageParser::new()
        .parse_headers(message)
        .map(|parsed| {
            parsed
                .root_part()
                .headers()
                .iter()
                .map(|header| header.name.as_str().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The `h=` template handed to mail-auth. mail-auth signs every instance of each listed name
/// (bottom-up, RFC 6376 §5.4.2) and appends each listed name it found no instance for; a name
/// listed twice therefore comes out as all its instances plus one null instance, which is
/// exactly oversigning (RFC 6376 §8.15).
fn header_list(present: &[String]) -> Vec<&'static str> {
    let is_present = |name: &str| present.iter().any(|p| p.eq_ignore_ascii_case(name));
    let mut h: Vec<&'static str> = SIGNED_HEADERS
        .iter()
        .chain(LIST_HEADERS)
        .copied()
        .filter(|name| OVERSIGNED_HEADERS.contains(name) || is_present(name))
        .collect();
    // RFC 6376 §8.15: one more than occur — a present field gets its extra (null) entry here; an
    // absent one is already listed once above, which signs its absence.
    h.extend(
        OVERSIGNED_HEADERS
            .iter()
            .copied()
            .filter(|name| is_present(name)),
    );
    h
}

fn parse_key(domain: &Domain, key: &DkimKey) -> Result<ParsedKey, DkimError> {
    // RFC 6376 §3.1: selector = sub-domain *( "." sub-domain ).
    let selector = match Domain::parse(&key.selector) {
        Ok(selector) if !key.selector.ends_with('.') => selector.as_str().to_string(),
        _ => {
            return Err(DkimError::InvalidSelector {
                domain: domain.clone(),
                selector: key.selector.clone(),
            });
        }
    };
    let invalid = |algorithm: &'static str, reason: String| DkimError::InvalidKey {
        domain: domain.clone(),
        selector: selector.clone(),
        algorithm,
        reason,
    };
    let algorithm = match key.algorithm {
        DkimAlgorithm::Ed25519 => "Ed25519",
        DkimAlgorithm::Rsa => "RSA",
    };
    let der = PrivatePkcs8KeyDer::from_pem_slice(key.private_key_pem.expose().as_bytes())
        .map_err(|err| invalid(algorithm, err.to_string()))?;
    let published = BASE64
        .decode(key.public_key_base64.as_bytes())
        .map_err(|err| invalid(algorithm, format!("public key: {err}")))?;
    let (parsed, matches) = match key.algorithm {
        DkimAlgorithm::Ed25519 => {
            // RFC 8463 §3: Ed25519 keys; PKCS#8 v2 (with the public key) or v1.
            let ed = Ed25519Key::from_pkcs8_der(der.secret_pkcs8_der())
                .or_else(|_| Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_pkcs8_der()))
                .map_err(|err| invalid(algorithm, err.to_string()))?;
            // RFC 8463 §4: p= is the raw 32-octet public key.
            let matches = ed.public_key() == published;
            (MailAuthKey::Ed25519(ed), matches)
        }
        DkimAlgorithm::Rsa => {
            let rsa = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(der))
                .map_err(|err| invalid(algorithm, err.to_string()))?;
            // RFC 6376 §3.6.1: p= is a SubjectPublicKeyInfo, whose BIT STRING ends with the
            // RSAPublicKey (PKCS#1) that the key pair reports.
            let pkcs1 = rsa.public_key();
            let matches = !pkcs1.is_empty() && published.ends_with(&pkcs1);
            (MailAuthKey::Rsa(rsa), matches)
        }
    };
    if !matches {
        return Err(DkimError::KeyMismatch {
            domain: domain.clone(),
            selector,
        });
    }
    Ok(ParsedKey {
        selector,
        key: parsed,
    })
}

/// Lends a parsed key to one mail-auth signer, so keys are parsed once per domain rather than
/// once per message.
struct KeyRef<'a>(&'a MailAuthKey);

impl SigningKey for KeyRef<'_> {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        self.0.sign(input)
    }

    fn algorithm(&self) -> Algorithm {
        // RFC 8463 §3 (ed25519-sha256) or RFC 8301 §3.1 (rsa-sha256; never rsa-sha1).
        self.0.algorithm()
    }
}

#[cfg(test)]
mod tests;
