//! Organizational domains (RFC 7489 §3.2) from the compiled-in public suffix list, and
//! identifier alignment (RFC 7489 §3.1).

use super::record::Alignment;

/// Lower case without the final dot (or surrounding whitespace): how domains are compared.
pub(crate) fn normalize(domain: &str) -> String {
    domain
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// RFC 7489 §3.2: the organizational domain of `domain`, i.e. its public suffix plus one
/// label, found with the public suffix list (the `psl` crate: ICANN and private sections,
/// and the list's implicit `*` rule for a TLD it does not know, so `a.b.example.test` gives
/// `example.test`). A domain that is itself a public suffix (`com`, `co.uk`), or that the
/// list cannot place, is its own organizational domain. The answer is lower case without
/// the final dot.
pub fn organizational_domain(domain: &str) -> String {
    let domain = normalize(domain);
    // RFC 7489 §3.2 steps 1-4: the suffix matching the most labels, plus one label.
    match psl::domain(domain.as_bytes())
        .and_then(|found| std::str::from_utf8(found.as_bytes()).ok())
    {
        Some(organizational) => organizational.to_string(),
        None => domain,
    }
}

/// RFC 7489 §3.1.1 (DKIM) / §3.1.2 (SPF): is the authenticated `identifier_domain` aligned
/// with the RFC5322.From domain? Strict: the same domain. Relaxed: the same organizational
/// domain. Case and a final dot are ignored; an empty domain never aligns.
pub fn aligned(identifier_domain: &str, from_domain: &str, mode: Alignment) -> bool {
    let identifier = normalize(identifier_domain);
    let from = normalize(from_domain);
    if identifier.is_empty() || from.is_empty() {
        return false;
    }
    match mode {
        // RFC 7489 §3.1.1/§3.1.2: in strict mode only an exact DNS domain match is aligned.
        Alignment::Strict => identifier == from,
        // RFC 7489 §3.1.1/§3.1.2: in relaxed mode the Organizational Domains must be equal.
        Alignment::Relaxed => {
            identifier == from || organizational_domain(&identifier) == organizational_domain(&from)
        }
    }
}
