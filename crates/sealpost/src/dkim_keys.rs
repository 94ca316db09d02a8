//! DKIM signing keys made at `domain add`: one Ed25519 (RFC 8463) and one RSA-2048
//! (RFC 8301 §3.2: signers MUST use at least 1024 bits; 2048 is the common floor today).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{KeyPair, PKCS_ED25519, PKCS_RSA_SHA256, PublicKeyData, RsaKeySize};
use sealpost_store::{DkimAlgorithm, DkimKey};
use sealpost_types::Secret;
use sealpost_types::date::UtcDateTime;

/// Selectors carry the month of creation, so a rotated key gets a new name.
fn selector(prefix: &str) -> String {
    let (year, month, _) = today();
    format!("{prefix}{year:04}{month:02}")
}

/// (year, month, day) in UTC, from the system clock.
pub fn today() -> (i64, u32, u32) {
    let now = UtcDateTime::now();
    (now.year, now.month, now.day)
}

pub fn generate() -> Result<Vec<DkimKey>, rcgen::Error> {
    let ed25519 = KeyPair::generate_for(&PKCS_ED25519)?;
    let rsa = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)?;
    Ok(vec![
        DkimKey {
            selector: selector("ed"),
            algorithm: DkimAlgorithm::Ed25519,
            private_key_pem: Secret::new(ed25519.serialize_pem()),
            // RFC 8463 §4: p= is the base64 of the raw 32-byte public key.
            public_key_base64: BASE64.encode(ed25519.public_key_raw()),
        },
        DkimKey {
            selector: selector("rsa"),
            algorithm: DkimAlgorithm::Rsa,
            private_key_pem: Secret::new(rsa.serialize_pem()),
            // RFC 6376 §3.6.1: p= is the base64 of the DER SubjectPublicKeyInfo.
            public_key_base64: BASE64.encode(rsa.subject_public_key_info()),
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_expected_shapes() {
        let keys = generate().unwrap();
        assert_eq!(keys.len(), 2);
        let ed = &keys[0];
        assert_eq!(BASE64.decode(&ed.public_key_base64).unwrap().len(), 32);
        assert!(
            ed.private_key_pem
                .expose()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        let rsa = &keys[1];
        // A 2048-bit SubjectPublicKeyInfo is 294 octets.
        assert_eq!(BASE64.decode(&rsa.public_key_base64).unwrap().len(), 294);
        assert!(rsa.selector.starts_with("rsa"));
    }
}
