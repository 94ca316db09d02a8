//! Where a report may go (RFC 7489 §7.1): the `mailto:` URIs of the policy's `rua` tag,
//! each either inside the policy domain's organization or authorized by its receiver.

use super::PublishedPolicy;
use super::syntax::{is_address, is_domain};
use crate::dmarc::{is_dmarc_record, organizational_domain, parse_size};
use crate::lookup::{DnsLookup, TemporaryDnsError};

/// RFC 7489 §6.2 lets a Mail Receiver limit how many URIs it sends a report to; beyond two,
/// a published record would make us a mail amplifier.
const MAX_DESTINATIONS: usize = 2;

/// One `rua` destination that may receive the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The mailbox of the `mailto:` URI, percent-decoded: `local-part@domain` (domain in
    /// lower case).
    pub address: String,
    /// RFC 7489 §6.2: the largest report the owner accepts there, in bytes (`!10m` is
    /// 10 × 2^20); `None` when the URI sets no limit.
    pub max_size: Option<u64>,
}

impl Destination {
    fn domain(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map_or("", |(_, domain)| domain)
    }
}

/// RFC 7489 §7.1: the destinations among the `rua` URIs of `policy_published` (the text of a
/// [`super::DmarcReportRow`]) that may receive the report about `policy_domain`, at most
/// [`MAX_DESTINATIONS`], in the order published.
///
/// Only `mailto:` URIs with a plain address count (their `?` header fields are ignored). A
/// destination outside the policy domain's organization must be authorized by a TXT record
/// starting with `v=DMARC1` at `<policy_domain>._report._dmarc.<destination domain>`;
/// when that lookup fails temporarily the destination is dropped for this report (and a
/// warning logged) rather than sent to without authorization.
pub async fn destinations(
    dns: &dyn DnsLookup,
    policy_domain: &str,
    policy_published: &str,
) -> Vec<Destination> {
    checked_destinations(dns, policy_domain, policy_published)
        .await
        .unwrap_or_default()
}

/// As [`destinations`], but `Err` when none could be kept because an authorization lookup
/// failed temporarily (RFC 7489 §7.1): the caller keeps the report data and tries later.
pub async fn checked_destinations(
    dns: &dyn DnsLookup,
    policy_domain: &str,
    policy_published: &str,
) -> Result<Vec<Destination>, TemporaryDnsError> {
    let policy_domain = policy_domain.trim_end_matches('.').to_ascii_lowercase();
    if !is_domain(&policy_domain) {
        tracing::warn!(%policy_domain, "no DMARC report destinations: invalid policy domain");
        return Ok(Vec::new());
    }
    let mut temporary = None;
    let policy_organization = organizational_domain(&policy_domain);
    let mut kept: Vec<Destination> = Vec::new();
    for uri in PublishedPolicy::parse(policy_published).rua {
        if kept.len() >= MAX_DESTINATIONS {
            break;
        }
        let Some(destination) = parse_mailto(&uri) else {
            continue;
        };
        if already_kept(&kept, &destination) {
            continue;
        }
        // RFC 7489 §7.1 step 1: within the same organizational domain, no check is needed.
        if organizational_domain(destination.domain()) == policy_organization {
            kept.push(destination);
            continue;
        }
        match authorize(dns, &policy_domain, destination).await {
            Ok(authorized) => {
                for authorized in authorized {
                    if kept.len() < MAX_DESTINATIONS && !already_kept(&kept, &authorized) {
                        kept.push(authorized);
                    }
                }
            }
            Err(error) => temporary = Some(error),
        }
    }
    match temporary {
        Some(error) if kept.is_empty() => Err(error),
        _ => Ok(kept),
    }
}

/// One report per address, whatever size limits its URIs name.
fn already_kept(kept: &[Destination], destination: &Destination) -> bool {
    kept.iter().any(|kept| kept.address == destination.address)
}

/// RFC 7489 §7.1 steps 2-7 for a destination outside the policy domain's organization: the
/// destination itself, its replacements, or nothing.
async fn authorize(
    dns: &dyn DnsLookup,
    policy_domain: &str,
    destination: Destination,
) -> Result<Vec<Destination>, TemporaryDnsError> {
    // RFC 7489 §7.1 steps 2-3: <policy domain>._report._dmarc.<destination host>.
    let name = format!("{policy_domain}._report._dmarc.{}", destination.domain());
    let records = match dns.txt(&name).await {
        Ok(records) => records,
        Err(error) => {
            tracing::warn!(
                address = %destination.address,
                %error,
                "DMARC report destination left out for now: its authorization could not be \
                 looked up"
            );
            return Err(error);
        }
    };
    // RFC 7489 §7.1 steps 4-6: records not starting with v=DMARC1 are discarded; one that
    // remains authorizes the destination.
    let Some(record) = records.iter().find(|record| is_dmarc_record(record)) else {
        tracing::debug!(
            address = %destination.address,
            "DMARC report destination not authorized by {name}"
        );
        return Ok(Vec::new());
    };
    // RFC 7489 §7.1 step 7: a rua in the authorizing record replaces the destination, but
    // only with URIs at the same destination host (no loops, no redirection elsewhere).
    let replacements: Vec<Destination> = PublishedPolicy::parse(record)
        .rua
        .iter()
        .map(String::as_str)
        .filter_map(parse_mailto)
        .filter(|replacement| replacement.domain() == destination.domain())
        .collect();
    if replacements.is_empty() {
        Ok(vec![destination])
    } else {
        Ok(replacements)
    }
}

/// A `rua` URI (RFC 7489 §6.4 `dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]`)
/// as a destination, if it is a `mailto:` URI (RFC 6068) of one plain address.
///
/// ```text
/// mailtoURI = "mailto:" [ to ] [ hfields ]
/// to        = addr-spec *("," addr-spec )   ; one only here: "," ends a dmarc-uri
/// hfields   = "?" hfield *( "&" hfield )     ; ignored
/// ```
fn parse_mailto(uri: &str) -> Option<Destination> {
    let uri = uri.trim();
    // RFC 7489 §6.2: a literal "!" in the URI must be percent-encoded, so the last one, if
    // any, starts the size limit.
    let (uri, max_size) = match uri.rsplit_once('!') {
        Some((uri, size)) => (uri, Some(parse_size(size)?)),
        None => (uri, None),
    };
    // RFC 3986 §3.1: the scheme is case-insensitive.
    let scheme = uri.get(..7)?;
    if !scheme.eq_ignore_ascii_case("mailto:") {
        return None;
    }
    let to = uri.get(7..)?;
    let to = to.split_once('?').map_or(to, |(to, _hfields)| to);
    let address = percent_decode(to)?;
    let (local, domain) = address.rsplit_once('@')?;
    let address = format!("{local}@{}", domain.to_ascii_lowercase());
    is_address(&address).then_some(Destination { address, max_size })
}

/// RFC 3986 §2.1: `%XX` sequences to bytes; the result must be UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        if byte == b'%' {
            let high = hex_value(*after.first()?)?;
            let low = hex_value(*after.get(1)?)?;
            bytes.push(high << 4 | low);
            rest = after.get(2..)?;
        } else {
            bytes.push(byte);
            rest = after;
        }
    }
    String::from_utf8(bytes).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}
