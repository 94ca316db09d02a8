//! The DMARC policy record published at `_dmarc.<domain>` (RFC 7489 §6.3, ABNF §6.4).
//!
//! ```text
//! dmarc-record    = dmarc-version dmarc-sep
//!                   [dmarc-request]
//!                   [dmarc-sep dmarc-srequest]
//!                   [dmarc-sep dmarc-auri]
//!                   [dmarc-sep dmarc-furi]
//!                   [dmarc-sep dmarc-adkim]
//!                   [dmarc-sep dmarc-aspf]
//!                   [dmarc-sep dmarc-ainterval]
//!                   [dmarc-sep dmarc-fo]
//!                   [dmarc-sep dmarc-rfmt]
//!                   [dmarc-sep dmarc-percent]
//!                   [dmarc-sep]
//!                   ; components other than dmarc-version and
//!                   ; dmarc-request may appear in any order
//! dmarc-version   = "v" *WSP "=" *WSP %x44 %x4d %x41 %x52 %x43 %x31
//! dmarc-sep       = *WSP %x3b *WSP
//! dmarc-request   = "p" *WSP "=" *WSP ( "none" / "quarantine" / "reject" )
//! dmarc-srequest  = "sp" *WSP "=" *WSP ( "none" / "quarantine" / "reject" )
//! dmarc-auri      = "rua" *WSP "=" *WSP dmarc-uri *(*WSP "," *WSP dmarc-uri)
//! dmarc-furi      = "ruf" *WSP "=" *WSP dmarc-uri *(*WSP "," *WSP dmarc-uri)
//! dmarc-adkim     = "adkim" *WSP "=" *WSP ( "r" / "s" )
//! dmarc-aspf      = "aspf" *WSP "=" *WSP ( "r" / "s" )
//! dmarc-ainterval = "ri" *WSP "=" *WSP 1*DIGIT
//! dmarc-fo        = "fo" *WSP "=" *WSP ( "0" / "1" / "d" / "s" )
//!                   *(*WSP ":" *WSP ( "0" / "1" / "d" / "s" ))
//! dmarc-rfmt      = "rf" *WSP "=" *WSP Keyword *(*WSP ":" Keyword)
//! dmarc-percent   = "pct" *WSP "=" *WSP 1*3DIGIT
//! dmarc-uri       = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]
//! ```
//!
//! Choices where the RFC leaves room:
//! - Quoted ABNF strings are case-insensitive (RFC 5234 §2.3), so tag names and the keyword
//!   values (`P=Reject`, `adkim=S`) are accepted in any case; `DMARC1` is given as `%x` codes
//!   and must match exactly.
//! - Whitespace (not only WSP: also CR and LF, which appear when multi-string records are
//!   pasted) is tolerated around tags, `=`, `,` and `:`; empty tags (`;;`) and parts without
//!   `=` are skipped.
//! - An invalid value of an optional tag falls back to the tag's default (`pct` 100, `adkim`
//!   and `aspf` relaxed, `fo` "0", `ri` 86400); an invalid report URI is dropped and the
//!   valid ones kept. Only `v`, `p` and `sp` decide whether the record is usable (§6.6.3).
//! - A repeated tag: a second `p` or `sp` makes that tag invalid (the owner's intent is
//!   ambiguous); for the other tags the first occurrence wins.

/// RFC 7489 §6.3 `p` / `sp` values: what the Domain Owner asks for mail that fails DMARC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }

    /// RFC 7489 §6.6.4: the next less strict policy, for messages that pct sampling leaves out.
    pub(crate) fn weaker(self) -> Policy {
        match self {
            Policy::Reject => Policy::Quarantine,
            Policy::Quarantine | Policy::None => Policy::None,
        }
    }

    fn parse(value: &str) -> Option<Policy> {
        // RFC 5234 §2.3: the quoted keywords of RFC 7489 §6.4 are case-insensitive.
        if value.eq_ignore_ascii_case("none") {
            Some(Policy::None)
        } else if value.eq_ignore_ascii_case("quarantine") {
            Some(Policy::Quarantine)
        } else if value.eq_ignore_ascii_case("reject") {
            Some(Policy::Reject)
        } else {
            None
        }
    }
}

/// RFC 7489 §6.3 `adkim` / `aspf`: relaxed (same organizational domain) or strict (same
/// domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alignment {
    Relaxed,
    Strict,
}

impl Alignment {
    pub fn as_str(self) -> &'static str {
        match self {
            Alignment::Relaxed => "r",
            Alignment::Strict => "s",
        }
    }

    fn parse(value: &str) -> Option<Alignment> {
        if value.eq_ignore_ascii_case("r") {
            Some(Alignment::Relaxed)
        } else if value.eq_ignore_ascii_case("s") {
            Some(Alignment::Strict)
        } else {
            None
        }
    }
}

/// A reporting URI of `rua` / `ruf` (RFC 7489 §6.2), e.g. `mailto:dmarc@example.com!10m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportUri {
    /// The URI as published, without the size suffix (e.g. `mailto:dmarc@example.com`).
    pub uri: String,
    /// The largest report the owner accepts at this URI, in bytes (`!10m` = 10 × 2^20).
    pub max_size: Option<u64>,
}

/// A parsed DMARC record (RFC 7489 §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcRecord {
    /// `p`: the policy for the domain itself (for a record without a valid `p` but with a
    /// valid `rua`, `None`, RFC 7489 §6.6.3 step 6).
    pub policy: Policy,
    /// `sp`: the policy for subdomains; `None` when absent (then `p` applies).
    pub subdomain_policy: Option<Policy>,
    /// `pct`: the percentage of failing messages the policy applies to, 0..=100 (default 100).
    pub percent: u8,
    /// `adkim` (default relaxed).
    pub dkim_alignment: Alignment,
    /// `aspf` (default relaxed).
    pub spf_alignment: Alignment,
    /// `rua`: where aggregate reports go (syntactically valid URIs only).
    pub aggregate_uris: Vec<ReportUri>,
    /// `ruf`: where failure reports go (syntactically valid URIs only).
    pub failure_uris: Vec<ReportUri>,
    /// `fo`: failure reporting options, normalised as `1:d` (default "0").
    pub failure_options: String,
    /// `ri`: the requested aggregate report interval in seconds (default 86400).
    pub report_interval: u32,
}

/// Why a TXT record is not a usable DMARC record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// RFC 7489 §6.3: `v` must be the first tag and have exactly the value `DMARC1`.
    #[error("the record does not begin with v=DMARC1")]
    NotDmarc,
    /// RFC 7489 §6.6.3 step 6: no valid `p` and no valid `rua` URI.
    #[error("the record has no valid p tag and no valid rua URI")]
    NoPolicy,
    /// RFC 7489 §6.6.3 step 6: an invalid `sp` and no valid `rua` URI.
    #[error("the record has an invalid sp tag and no valid rua URI")]
    InvalidSubdomainPolicy,
}

const DEFAULT_PERCENT: u8 = 100;
const DEFAULT_FAILURE_OPTIONS: &str = "0";
const DEFAULT_REPORT_INTERVAL: u32 = 86_400;

/// The state of the `p` or `sp` tag while reading the record.
#[derive(Clone, Copy)]
enum PolicyTag {
    Absent,
    Valid(Policy),
    Invalid,
}

impl PolicyTag {
    fn read(self, value: &str) -> PolicyTag {
        match self {
            PolicyTag::Absent => Policy::parse(value).map_or(PolicyTag::Invalid, PolicyTag::Valid),
            // A repeated p/sp: the owner's intent is ambiguous, so the tag is not valid.
            PolicyTag::Valid(_) | PolicyTag::Invalid => PolicyTag::Invalid,
        }
    }
}

fn trim(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii_whitespace())
}

/// The first tag of `text` if it is `v=DMARC1`, or an error.
fn check_version(first_tag: &str) -> Result<(), RecordError> {
    let (name, value) = first_tag.split_once('=').ok_or(RecordError::NotDmarc)?;
    // RFC 7489 §6.3: "v" MUST be the first tag and its value MUST match "DMARC1" precisely
    // (§6.4 gives it as %x codes: case-sensitive); "v" itself is a case-insensitive literal.
    if trim(name).eq_ignore_ascii_case("v") && trim(value) == "DMARC1" {
        Ok(())
    } else {
        Err(RecordError::NotDmarc)
    }
}

/// RFC 7489 §6.6.3 step 2: does this TXT record start with `v=DMARC1`? Records that do not
/// are discarded before counting the records at a name. Also what a report receiver's
/// authorization record (§7.1, e.g. `v=DMARC1` alone) must satisfy.
pub fn is_dmarc_record(text: &str) -> bool {
    let first = text.split(';').next().unwrap_or_default();
    check_version(first).is_ok()
}

impl DmarcRecord {
    /// Parses a DMARC TXT record (its strings already joined) per RFC 7489 §6.4, applying the
    /// §6.6.3 step 6 fallback to `p=none` when `p`/`sp` is missing or invalid but `rua` holds a
    /// valid URI. Never panics.
    pub fn parse(text: &str) -> Result<DmarcRecord, RecordError> {
        let mut tags = text.split(';');
        check_version(tags.next().unwrap_or_default())?;

        let mut policy = PolicyTag::Absent;
        let mut subdomain_policy = PolicyTag::Absent;
        let mut percent: Option<u8> = None;
        let mut dkim_alignment: Option<Alignment> = None;
        let mut spf_alignment: Option<Alignment> = None;
        let mut aggregate_uris: Option<Vec<ReportUri>> = None;
        let mut failure_uris: Option<Vec<ReportUri>> = None;
        let mut failure_options: Option<String> = None;
        let mut report_interval: Option<u32> = None;

        for tag in tags {
            let tag = trim(tag);
            if tag.is_empty() {
                continue;
            }
            let Some((name, value)) = tag.split_once('=') else {
                tracing::debug!(tag, "DMARC record: part without '=' ignored");
                continue;
            };
            let name = trim(name).to_ascii_lowercase();
            let value = trim(value);
            match name.as_str() {
                "p" => policy = policy.read(value),
                "sp" => subdomain_policy = subdomain_policy.read(value),
                // RFC 7489 §6.3 pct: 0..100, default 100; an invalid value keeps the default.
                "pct" => {
                    percent.get_or_insert_with(|| parse_percent(value).unwrap_or(DEFAULT_PERCENT));
                }
                // RFC 7489 §6.3 adkim/aspf: "r" or "s", default "r".
                "adkim" => {
                    dkim_alignment.get_or_insert_with(|| {
                        Alignment::parse(value).unwrap_or(Alignment::Relaxed)
                    });
                }
                "aspf" => {
                    spf_alignment.get_or_insert_with(|| {
                        Alignment::parse(value).unwrap_or(Alignment::Relaxed)
                    });
                }
                "rua" => {
                    aggregate_uris.get_or_insert_with(|| parse_uri_list(value));
                }
                "ruf" => {
                    failure_uris.get_or_insert_with(|| parse_uri_list(value));
                }
                // RFC 7489 §6.3 fo: colon-separated 0/1/d/s, default "0".
                "fo" => {
                    failure_options.get_or_insert_with(|| {
                        parse_failure_options(value)
                            .unwrap_or_else(|| DEFAULT_FAILURE_OPTIONS.to_string())
                    });
                }
                // RFC 7489 §6.3 ri: seconds, default 86400.
                "ri" => {
                    report_interval.get_or_insert_with(|| {
                        parse_interval(value).unwrap_or(DEFAULT_REPORT_INTERVAL)
                    });
                }
                // RFC 7489 §6.3: "v" after the first tag, "rf" (only "afrf" is defined and
                // it is the sole format we would send) and unknown tags are ignored.
                _ => {}
            }
        }

        let aggregate_uris = aggregate_uris.unwrap_or_default();
        let (policy, subdomain_policy) = match (policy, subdomain_policy) {
            (PolicyTag::Valid(p), PolicyTag::Absent) => (p, None),
            (PolicyTag::Valid(p), PolicyTag::Valid(sp)) => (p, Some(sp)),
            // RFC 7489 §6.6.3 step 6: no valid "p", or an invalid "sp", but a "rua" with at
            // least one syntactically valid URI: act as if "v=DMARC1; p=none" was retrieved.
            _ if !aggregate_uris.is_empty() => (Policy::None, None),
            // RFC 7489 §6.6.3 step 6: otherwise no DMARC processing applies.
            (PolicyTag::Valid(_), _) => return Err(RecordError::InvalidSubdomainPolicy),
            _ => return Err(RecordError::NoPolicy),
        };

        Ok(DmarcRecord {
            policy,
            subdomain_policy,
            percent: percent.unwrap_or(DEFAULT_PERCENT),
            dkim_alignment: dkim_alignment.unwrap_or(Alignment::Relaxed),
            spf_alignment: spf_alignment.unwrap_or(Alignment::Relaxed),
            aggregate_uris,
            failure_uris: failure_uris.unwrap_or_default(),
            failure_options: failure_options.unwrap_or_else(|| DEFAULT_FAILURE_OPTIONS.to_string()),
            report_interval: report_interval.unwrap_or(DEFAULT_REPORT_INTERVAL),
        })
    }
}

fn is_digits(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 7489 §6.4 dmarc-percent = 1*3DIGIT, and §6.3: an integer from 0 to 100.
fn parse_percent(value: &str) -> Option<u8> {
    if !is_digits(value) || value.len() > 3 {
        return None;
    }
    value.parse::<u8>().ok().filter(|percent| *percent <= 100)
}

/// RFC 7489 §6.4 dmarc-ainterval = 1*DIGIT; a value beyond u32 saturates.
fn parse_interval(value: &str) -> Option<u32> {
    if !is_digits(value) {
        return None;
    }
    Some(value.parse::<u32>().unwrap_or(u32::MAX))
}

/// RFC 7489 §6.4 dmarc-fo: `0`, `1`, `d`, `s` separated by `:` (whitespace allowed around
/// the colons). Returned normalised: lower case, no whitespace, e.g. `1:d`.
fn parse_failure_options(value: &str) -> Option<String> {
    let mut options = Vec::new();
    for option in value.split(':') {
        let option = trim(option).to_ascii_lowercase();
        if !matches!(option.as_str(), "0" | "1" | "d" | "s") {
            return None;
        }
        options.push(option);
    }
    Some(options.join(":"))
}

/// RFC 7489 §6.4 dmarc-auri / dmarc-furi: URIs separated by commas; the invalid ones are
/// dropped (§6.6.3 step 6 asks whether "at least one" is syntactically valid).
fn parse_uri_list(value: &str) -> Vec<ReportUri> {
    value
        .split(',')
        .filter_map(|uri| {
            let parsed = parse_report_uri(trim(uri));
            if parsed.is_none() {
                tracing::debug!(uri, "DMARC record: invalid report URI ignored");
            }
            parsed
        })
        .collect()
}

/// RFC 7489 §6.4 dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]. A literal "!" or
/// "," inside the URI must be percent-encoded (§6.2), so the first "!" starts the size.
fn parse_report_uri(text: &str) -> Option<ReportUri> {
    let (uri, size) = match text.split_once('!') {
        Some((uri, size)) => (uri, Some(parse_size(size)?)),
        None => (text, None),
    };
    is_uri(uri).then(|| ReportUri {
        uri: uri.to_string(),
        max_size: size,
    })
}

/// RFC 7489 §6.2: a size in bytes, or with a unit k, m, g, t (powers of two: 2^10 .. 2^40).
/// A size too big for u64 saturates (no practical limit).
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.char_indices().last() {
        Some((at, unit)) if unit.is_ascii_alphabetic() => {
            let shift = match unit.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => return None,
            };
            (text.get(..at)?, shift)
        }
        _ => (text, 0),
    };
    if !is_digits(digits) {
        return None;
    }
    let number = digits.parse::<u64>().unwrap_or(u64::MAX);
    Some(number.saturating_mul(1u64 << shift))
}

/// RFC 3986 §3: `scheme ":" hier-part`, scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ),
/// with a non-empty rest made of visible ASCII characters (no spaces, no controls).
fn is_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut scheme_chars = scheme.bytes();
    let scheme_ok = scheme_chars.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    scheme_ok && !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_graphic())
}
