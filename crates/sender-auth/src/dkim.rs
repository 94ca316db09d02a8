//! DKIM verification (RFC 6376, RFC 8463 Ed25519) over mail-auth, with the limits and the
//! policy a receiver needs on top of it:
//! - at most [`MAX_SIGNATURES`] signatures are checked; the others are reported without a
//!   DNS query (RFC 6376 §6.1 lets a verifier limit the work; SECURITY-TESTS DA-09);
//! - `rsa-sha1` is refused (RFC 8301 §3.1), and RSA keys outside 1024–8192 bits fail
//!   (RFC 8301 §3.2; the aws-lc verifier refuses them);
//! - a signature whose `l=` leaves part of the body unsigned is `policy`, never `pass`,
//!   so that DMARC does not vouch for content added after signing (RFC 6376 §8.2).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_auth::common::crypto::Algorithm;
use mail_auth::common::headers::{Writable, Writer};
use mail_auth::dkim::{DkimError, Signature};
use mail_auth::{
    AuthenticatedMessage, DkimOutput, Error, MessageAuthenticator, Parameters, ResolverCache, Txt,
};

use crate::cache::KeyCache;
use crate::fields::{self, Field};

/// RFC 6376 §6.1: "verifiers MAY limit the number of signatures they attempt to verify".
pub const MAX_SIGNATURES: usize = 8;

/// RFC 8601 §2.7.1 results of one signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimResult {
    Pass,
    Fail,
    Neutral,
    Policy,
    TempError,
    PermError,
}

impl DkimResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DkimResult::Pass => "pass",
            DkimResult::Fail => "fail",
            DkimResult::Neutral => "neutral",
            DkimResult::Policy => "policy",
            DkimResult::TempError => "temperror",
            DkimResult::PermError => "permerror",
        }
    }
}

/// The outcome of one DKIM-Signature field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimVerdict {
    pub result: DkimResult,
    /// The signing domain (d=), lower case; empty when the field could not be parsed.
    pub domain: String,
    /// The selector (s=).
    pub selector: String,
    /// The algorithm as written in a=, e.g. "rsa-sha256".
    pub algorithm: &'static str,
    /// RFC 6008 §2: the first characters of b=, telling apart signatures of one domain.
    pub signature_prefix: String,
    /// Why, for the comment of Authentication-Results and the log.
    pub reason: String,
}

impl DkimVerdict {
    fn of(signature: &Signature, result: DkimResult, reason: impl Into<String>) -> Self {
        let encoded = STANDARD.encode(&signature.b);
        DkimVerdict {
            result,
            domain: signature.d.to_ascii_lowercase(),
            selector: signature.s.clone(),
            algorithm: algorithm_name(signature.a),
            // RFC 6008 §4: at least 8 characters; 12 keeps collisions unlikely.
            signature_prefix: encoded.chars().take(12).collect(),
            reason: reason.into(),
        }
    }

    fn unparsed(result: DkimResult, reason: impl Into<String>) -> Self {
        DkimVerdict {
            result,
            domain: String::new(),
            selector: String::new(),
            algorithm: "",
            signature_prefix: String::new(),
            reason: reason.into(),
        }
    }
}

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::RsaSha1 => "rsa-sha1",
        Algorithm::RsaSha256 => "rsa-sha256",
        Algorithm::Ed25519Sha256 => "ed25519-sha256",
    }
}

/// The message as the verifiers see it: when it carries more than [`MAX_SIGNATURES`]
/// DKIM-Signature fields, a copy without the extra ones (so that neither their body hashes
/// nor their keys are computed or fetched), and the verdicts for those left out.
pub(crate) fn limit_signatures(message: &[u8]) -> (Option<Vec<u8>>, Vec<DkimVerdict>) {
    let fields = fields::header_fields(message);
    let signatures: Vec<&Field<'_>> = fields
        .iter()
        .filter(|field| field.is("DKIM-Signature"))
        .collect();
    if signatures.len() <= MAX_SIGNATURES {
        return (None, Vec::new());
    }
    let extra = &signatures[MAX_SIGNATURES..];
    let reason = format!("not checked: more than {MAX_SIGNATURES} signatures");
    let verdicts = extra
        .iter()
        .map(|field| match Signature::parse(field.value) {
            Ok(signature) => DkimVerdict::of(&signature, DkimResult::PermError, reason.clone()),
            Err(_) => DkimVerdict::unparsed(DkimResult::PermError, reason.clone()),
        })
        .collect();
    let dropped: Vec<_> = extra.iter().map(|field| field.range.clone()).collect();
    (Some(fields::without(message, &dropped)), verdicts)
}

/// Verifies the DKIM signatures of `message` (already bounded by [`limit_signatures`]), side
/// by side, each within `budget`: a signature whose key cannot be had in time is temperror,
/// the others keep their verdicts.
pub(crate) async fn verify(
    authenticator: &MessageAuthenticator,
    keys: &KeyCache,
    message: &AuthenticatedMessage<'_>,
    budget: Duration,
) -> Vec<DkimVerdict> {
    let mut verdicts = Vec::new();
    let mut checks = Vec::new();
    for header in &message.dkim_headers {
        let signature = &header.header;
        // RFC 8301 §3.1: "Verifiers MUST NOT consider signatures using RSA-SHA1 at any time
        // as valid": judged here, without fetching the key.
        if signature.a == Algorithm::RsaSha1 {
            verdicts.push(DkimVerdict::of(
                signature,
                DkimResult::Fail,
                "rsa-sha1 is not accepted (RFC 8301)",
            ));
            continue;
        }
        // The message as mail-auth sees it with this one signature (body hashes are shared).
        let mut single = message.clone();
        single.dkim_headers = vec![header.clone()];
        single.errors.clear();
        checks.push(async move {
            let check = async {
                let outputs = authenticator
                    .verify_dkim(Parameters::new(&single).with_txt_cache(keys))
                    .await;
                outputs
                    .iter()
                    .map(|output| judge(output, single.raw_body(), keys))
                    .collect::<Vec<_>>()
            };
            match tokio::time::timeout(budget, check).await {
                Ok(judged) => judged,
                Err(_) => vec![DkimVerdict::of(
                    signature,
                    DkimResult::TempError,
                    "DNS too slow",
                )],
            }
        });
    }
    // Fields mail-auth could not parse: RFC 6376 §6.1.1 PERMFAIL, no key to fetch.
    verdicts.extend(
        message
            .errors
            .iter()
            .filter(|error| error.name.eq_ignore_ascii_case(b"DKIM-Signature"))
            .map(|error| DkimVerdict::unparsed(DkimResult::PermError, error.header.to_string())),
    );
    for judged in futures_util::future::join_all(checks).await {
        verdicts.extend(judged);
    }
    verdicts
}

/// One mail-auth outcome in RFC 8601 terms, with the `l=` rule applied.
fn judge(output: &DkimOutput<'_>, body: &[u8], keys: &KeyCache) -> DkimVerdict {
    use mail_auth::DkimResult as Outcome;
    let Some(signature) = output.signature() else {
        // A field mail-auth could not parse: RFC 6376 §6.1.1 PERMFAIL.
        let reason = match output.result() {
            Outcome::Neutral(error) | Outcome::PermError(error) | Outcome::Fail(error) => {
                error.to_string()
            }
            _ => "malformed signature".to_string(),
        };
        return DkimVerdict::unparsed(DkimResult::PermError, reason);
    };
    match output.result() {
        Outcome::Pass => {
            let unsigned = unsigned_body_bytes(signature, body);
            if unsigned > 0 {
                // RFC 6376 §8.2: content past l= is not covered by the signature.
                DkimVerdict::of(
                    signature,
                    DkimResult::Policy,
                    format!("l= leaves {unsigned} body bytes unsigned"),
                )
            } else {
                DkimVerdict::of(signature, DkimResult::Pass, "")
            }
        }
        Outcome::Neutral(error) => {
            let result = match error {
                // RFC 6376 §6.1.3: a body hash mismatch is a failed verification.
                Error::Dkim(DkimError::FailedBodyHashMatch | DkimError::SignatureExpired) => {
                    DkimResult::Fail
                }
                _ => DkimResult::PermError,
            };
            DkimVerdict::of(signature, result, error.to_string())
        }
        Outcome::Fail(error) => {
            if let Some((result, reason)) = key_problem(keys, signature) {
                return DkimVerdict::of(signature, result, reason);
            }
            let reason = match error {
                Error::Crypto(_) => "signature did not verify".to_string(),
                other => other.to_string(),
            };
            DkimVerdict::of(signature, DkimResult::Fail, reason)
        }
        Outcome::PermError(error) => {
            DkimVerdict::of(signature, DkimResult::PermError, error.to_string())
        }
        Outcome::TempError(error) => {
            DkimVerdict::of(signature, DkimResult::TempError, error.to_string())
        }
        Outcome::None => DkimVerdict::of(signature, DkimResult::Neutral, "no result"),
    }
}

/// Why an RSA signature failed when the key, not the signature, is at fault: its record
/// holds no usable key (RFC 6376 §6.1.2: permerror), or one outside 1024–8192 bits, which the
/// verifier refuses (RFC 8301 §3.2). mail-auth left the key in the cache when it fetched it.
fn key_problem(keys: &KeyCache, signature: &Signature) -> Option<(DkimResult, String)> {
    if signature.a == Algorithm::Ed25519Sha256 {
        return None;
    }
    let name = format!("{}._domainkey.{}.", signature.s, signature.d).to_ascii_lowercase();
    let Some(Txt::DomainKey(key)) = keys.get::<str>(name.as_str()) else {
        return None;
    };
    match key.p.public_key_bits() {
        0 => Some((
            DkimResult::PermError,
            "the key record holds no usable RSA key".to_string(),
        )),
        bits @ 1..1024 => Some((
            DkimResult::Fail,
            format!("RSA key of {bits} bits, below 1024 (RFC 8301)"),
        )),
        bits @ 8193.. if bits != usize::MAX => Some((
            DkimResult::Fail,
            format!("RSA key of {bits} bits, above 8192"),
        )),
        _ => None,
    }
}

/// How many octets of the canonicalized body lie beyond the signature's `l=` (0 without l=).
fn unsigned_body_bytes(signature: &Signature, body: &[u8]) -> u64 {
    if signature.l == 0 {
        return 0;
    }
    let mut counter = ByteCounter(0);
    signature.cb.canonical_body(body, 0).write(&mut counter);
    counter.0.saturating_sub(signature.l)
}

struct ByteCounter(u64);

impl Writer for ByteCounter {
    fn write(&mut self, buf: &[u8]) {
        self.0 = self.0.saturating_add(buf.len() as u64);
    }
}
