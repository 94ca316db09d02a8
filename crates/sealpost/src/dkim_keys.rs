//! DKIM signing keys made at `domain add`: one Ed25519 (RFC 8463) and one RSA-2048
//! (RFC 8301 §3.2: signers MUST use at least 1024 bits; 2048 is the common floor today).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{KeyPair, PKCS_ED25519, PKCS_RSA_SHA256, PublicKeyData, RsaKeySize};
use sealpost_store::{DkimAlgorithm, DkimKey};
use sealpost_types::Secret;

/// Selectors carry the month of creation, so a rotated key gets a new name.
fn selector(prefix: &str) -> String {
    let (year, month, _) = today();
    format!("{prefix}{year:04}{month:02}")
}

/// (year, month, day) in UTC, from the system clock.
pub fn today() -> (i64, u32, u32) {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0);
    civil_from_days(seconds.div_euclid(86_400))
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's civil-from-days algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(20_785), (2026, 11, 28));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

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
