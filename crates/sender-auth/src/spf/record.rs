//! The SPF record of a domain: choosing it among the domain's TXT records (RFC 7208 §4.5) and
//! parsing it into terms (RFC 7208 §4.6.1).
//!
//! ```text
//! record           = version terms *SP
//! version          = "v=spf1"
//! terms            = *( 1*SP ( directive / modifier ) )
//! directive        = [ qualifier ] mechanism
//! qualifier        = "+" / "-" / "?" / "~"
//! mechanism        = ( all / include / a / mx / ptr / ip4 / ip6 / exists )
//! all              = "all"
//! include          = "include"  ":" domain-spec
//! a                = "a"      [ ":" domain-spec ] [ dual-cidr-length ]
//! mx               = "mx"     [ ":" domain-spec ] [ dual-cidr-length ]
//! ptr              = "ptr"    [ ":" domain-spec ]
//! ip4              = "ip4"      ":" ip4-network   [ ip4-cidr-length ]
//! ip6              = "ip6"      ":" ip6-network   [ ip6-cidr-length ]
//! exists           = "exists"   ":" domain-spec
//! modifier         = redirect / explanation / unknown-modifier
//! redirect         = "redirect" "=" domain-spec
//! explanation      = "exp" "=" domain-spec
//! unknown-modifier = name "=" macro-string
//! name             = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
//! ip4-cidr-length  = "/" ("0" / %x31-39 0*1DIGIT) ; value range 0-32
//! ip6-cidr-length  = "/" ("0" / %x31-39 0*2DIGIT) ; value range 0-128
//! dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ]
//! ```
//!
//! mail-auth's `Spf::parse` is not used because it accepts records that RFC 7208 makes a
//! `permerror`, some of them dangerously: `ip4:1.2.3.4/` becomes `/0` (matches every client),
//! `ip4:999.1.1.1` becomes `255.1.1.1`, `/33` is clamped to `/32`, an unknown mechanism is
//! ignored, and an unknown term without a value swallows the term after it. Parsing here is
//! strict; each macro-string is checked by [`super::macros`] and then parsed with mail-auth's
//! `Macro` parser, so that mail-auth's macro engine expands it.

use std::net::{Ipv4Addr, Ipv6Addr};

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::spf::{Macro, Mechanism, Qualifier};

use super::macros::{MacroContext, check_domain_spec, check_macro_string};

/// The record is not valid SPF: `permerror` (RFC 7208 §4.6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SyntaxError(pub(crate) String);

impl SyntaxError {
    fn new(term: &str, why: &str) -> Self {
        SyntaxError(format!("{why} in '{term}'"))
    }
}

/// One directive, with its text as published (for the reason of a verdict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Term {
    pub(crate) qualifier: Qualifier,
    pub(crate) mechanism: Mechanism,
    pub(crate) text: String,
}

/// A domain-spec: its text and the macro-string mail-auth expands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DomainSpec {
    pub(crate) text: String,
    pub(crate) macro_string: Macro,
}

/// A parsed `v=spf1` record; unknown modifiers are dropped (RFC 7208 §6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SpfRecord {
    pub(crate) terms: Vec<Term>,
    pub(crate) redirect: Option<DomainSpec>,
    pub(crate) explanation: Option<DomainSpec>,
}

/// What the TXT records of a domain hold, SPF-wise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordChoice<'r> {
    NoRecord,
    One(&'r str),
    Several(usize),
}

const VERSION: &str = "v=spf1";

/// RFC 7208 §4.5: a record is SPF version 1 when it starts with "v=spf1" (in any case)
/// followed by a space or the end; other TXT records are none of our business.
fn is_spf_v1(record: &str) -> bool {
    record
        .get(..VERSION.len())
        .is_some_and(|version| version.eq_ignore_ascii_case(VERSION))
        && matches!(record.as_bytes().get(VERSION.len()), None | Some(b' '))
}

/// Picks the SPF record among the TXT records of a domain (RFC 7208 §4.5).
pub(crate) fn choose_record(records: &[String]) -> RecordChoice<'_> {
    let mut spf_records = records.iter().filter(|record| is_spf_v1(record));
    match (spf_records.next(), spf_records.count()) {
        (None, _) => RecordChoice::NoRecord,
        (Some(record), 0) => RecordChoice::One(record),
        // RFC 7208 §4.5: more than one "v=spf1" record is a permerror.
        (Some(_), others) => RecordChoice::Several(others + 1),
    }
}

/// Parses a record that [`choose_record`] picked. Any syntax error anywhere is a `permerror`
/// before anything is evaluated (RFC 7208 §4.6).
pub(crate) fn parse_record(record: &str) -> Result<SpfRecord, SyntaxError> {
    // RFC 7208 §3.1, §4.6.1: records are 7-bit ASCII and terms are separated by spaces only,
    // so a control character or a non-ASCII byte is a syntax error.
    if let Some(bad) = record.bytes().find(|byte| !(b' '..=b'~').contains(byte)) {
        return Err(SyntaxError(format!(
            "byte 0x{bad:02x} is not allowed in an SPF record"
        )));
    }
    if !is_spf_v1(record) {
        return Err(SyntaxError(
            "the record does not start with v=spf1".to_string(),
        ));
    }
    let terms = record.get(VERSION.len()..).unwrap_or_default();

    let mut parsed = SpfRecord::default();
    // RFC 7208 §4.6.1: terms = *( 1*SP ( directive / modifier ) ), trailing spaces allowed.
    for term in terms.split(' ').filter(|term| !term.is_empty()) {
        match modifier_name(term) {
            Some((name, value)) => parse_modifier(&mut parsed, term, name, value)?,
            None => parsed.terms.push(parse_directive(term)?),
        }
    }
    Ok(parsed)
}

/// RFC 7208 §4.6.1: a term is a modifier when a valid name is followed by "=" (before any
/// ":" or "/").
fn modifier_name(term: &str) -> Option<(&str, &str)> {
    let name_length = term
        .bytes()
        .take_while(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
        .count();
    let (name, rest) = term.split_at_checked(name_length)?;
    let value = rest.strip_prefix('=')?;
    // RFC 7208 §12: name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
    name.bytes()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        .then_some((name, value))
}

fn parse_modifier(
    record: &mut SpfRecord,
    term: &str,
    name: &str,
    value: &str,
) -> Result<(), SyntaxError> {
    let slot = if name.eq_ignore_ascii_case("redirect") {
        &mut record.redirect
    } else if name.eq_ignore_ascii_case("exp") {
        &mut record.explanation
    } else {
        // RFC 7208 §6: unknown modifiers are ignored, but must still be valid macro-strings
        // (RFC 7208 §12, unknown-modifier = name "=" macro-string).
        check_macro_string(value, MacroContext::ModifierValue)
            .map_err(|why| SyntaxError::new(term, &why))?;
        return Ok(());
    };
    // RFC 7208 §6: "redirect" and "exp" MUST NOT appear more than once each.
    if slot.is_some() {
        return Err(SyntaxError::new(term, "second occurrence of this modifier"));
    }
    *slot = Some(parse_domain_spec(term, value)?);
    Ok(())
}

fn parse_directive(term: &str) -> Result<Term, SyntaxError> {
    let (qualifier, mechanism_text) = match term.as_bytes().first() {
        Some(b'+') => (Qualifier::Pass, term.get(1..)),
        Some(b'-') => (Qualifier::Fail, term.get(1..)),
        Some(b'~') => (Qualifier::SoftFail, term.get(1..)),
        Some(b'?') => (Qualifier::Neutral, term.get(1..)),
        _ => (Qualifier::Pass, Some(term)),
    };
    let mechanism_text = mechanism_text.unwrap_or_default();
    let name_length = mechanism_text
        .bytes()
        .take_while(u8::is_ascii_alphanumeric)
        .count();
    let (name, arguments) = mechanism_text
        .split_at_checked(name_length)
        .ok_or_else(|| SyntaxError::new(term, "no mechanism"))?;
    let name = name.to_ascii_lowercase();
    let mechanism = match name.as_str() {
        "all" if arguments.is_empty() => Mechanism::All,
        // RFC 7208 §5.1: all = "all", nothing after it.
        "all" => return Err(SyntaxError::new(term, "argument to all")),
        "include" => Mechanism::Include {
            macro_string: required_domain_spec(term, arguments)?,
        },
        "exists" => Mechanism::Exists {
            macro_string: required_domain_spec(term, arguments)?,
        },
        "a" | "mx" => parse_a_or_mx(term, &name, arguments)?,
        "ptr" => Mechanism::Ptr {
            macro_string: optional_domain_spec(term, arguments)?,
        },
        "ip4" => parse_ip4(term, arguments)?,
        "ip6" => parse_ip6(term, arguments)?,
        // RFC 7208 §5: an unknown mechanism (or "all" with an argument) is a syntax error.
        _ => return Err(SyntaxError::new(term, "unknown mechanism")),
    };
    Ok(Term {
        qualifier,
        mechanism,
        text: term.to_string(),
    })
}

/// `":" domain-spec`, as in include and exists.
fn required_domain_spec(term: &str, arguments: &str) -> Result<Macro, SyntaxError> {
    let spec = arguments
        .strip_prefix(':')
        .ok_or_else(|| SyntaxError::new(term, "missing ':' domain-spec"))?;
    Ok(parse_domain_spec(term, spec)?.macro_string)
}

/// `[ ":" domain-spec ]`, as in ptr; without one, the current domain is meant.
fn optional_domain_spec(term: &str, arguments: &str) -> Result<Macro, SyntaxError> {
    if arguments.is_empty() {
        Ok(Macro::None)
    } else {
        required_domain_spec(term, arguments)
    }
}

/// `[ ":" domain-spec ] [ dual-cidr-length ]` (RFC 7208 §5.3, §5.4).
fn parse_a_or_mx(term: &str, name: &str, arguments: &str) -> Result<Mechanism, SyntaxError> {
    // A domain-spec may itself contain "/" (RFC 7208 §7.1: any visible character but "%"),
    // so the CIDR lengths are taken from the end.
    let (rest, ip6_length) = match split_cidr_suffix(arguments, "//") {
        Some((rest, digits)) => (rest, Some(cidr_length(term, digits, 128)?)),
        None => (arguments, None),
    };
    let (rest, ip4_length) = match split_cidr_suffix(rest, "/") {
        Some((rest, digits)) => (rest, Some(cidr_length(term, digits, 32)?)),
        None => (rest, None),
    };
    let macro_string = optional_domain_spec(term, rest)?;
    let ip4_mask = ip4_mask(ip4_length.unwrap_or(32));
    let ip6_mask = ip6_mask(ip6_length.unwrap_or(128));
    Ok(if name == "a" {
        Mechanism::A {
            macro_string,
            ip4_mask,
            ip6_mask,
        }
    } else {
        Mechanism::Mx {
            macro_string,
            ip4_mask,
            ip6_mask,
        }
    })
}

/// Splits `text` into what precedes a final `separator` + digits, and those digits.
fn split_cidr_suffix<'t>(text: &'t str, separator: &str) -> Option<(&'t str, &'t str)> {
    let (rest, digits) = text.rsplit_once(separator)?;
    let is_number = !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit());
    is_number.then_some((rest, digits))
}

/// RFC 7208 §5.6: a CIDR length has no leading zero and is at most 32 (ip4) or 128 (ip6).
fn cidr_length(term: &str, digits: &str, maximum: u8) -> Result<u8, SyntaxError> {
    let length = digits
        .parse::<u8>()
        .ok()
        .filter(|length| *length <= maximum && (digits == "0" || !digits.starts_with('0')))
        .ok_or_else(|| SyntaxError::new(term, "invalid CIDR length"))?;
    Ok(length)
}

fn ip4_mask(length: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0)
}

fn ip6_mask(length: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(length)).unwrap_or(0)
}

/// `"ip4" ":" ip4-network [ ip4-cidr-length ]` (RFC 7208 §5.6).
fn parse_ip4(term: &str, arguments: &str) -> Result<Mechanism, SyntaxError> {
    let network = arguments
        .strip_prefix(':')
        .ok_or_else(|| SyntaxError::new(term, "missing ':' address"))?;
    let (address, length) = match network.split_once('/') {
        Some((address, digits)) => (address, cidr_length(term, digits, 32)?),
        None => (network, 32),
    };
    // RFC 7208 §5.6: ip4-network = qnum "." qnum "." qnum "." qnum, each 0-255 without
    // leading zeros; the standard parser is exactly that strict ("1.2.3", "999.1.1.1",
    // "01.2.3.4" and "1.2.3.4:25" are all errors).
    let addr: Ipv4Addr = address
        .parse()
        .map_err(|_| SyntaxError::new(term, "invalid IPv4 address"))?;
    Ok(Mechanism::Ip4 {
        addr,
        mask: ip4_mask(length),
    })
}

/// `"ip6" ":" ip6-network [ ip6-cidr-length ]` (RFC 7208 §5.6).
fn parse_ip6(term: &str, arguments: &str) -> Result<Mechanism, SyntaxError> {
    let network = arguments
        .strip_prefix(':')
        .ok_or_else(|| SyntaxError::new(term, "missing ':' address"))?;
    let (address, length) = match network.split_once('/') {
        Some((address, digits)) => (address, cidr_length(term, digits, 128)?),
        None => (network, 128),
    };
    // RFC 7208 §5.6: ip6-network as in RFC 4291 §2.2, which the standard parser implements.
    let addr: Ipv6Addr = address
        .parse()
        .map_err(|_| SyntaxError::new(term, "invalid IPv6 address"))?;
    Ok(Mechanism::Ip6 {
        addr,
        mask: ip6_mask(length),
    })
}

/// Checks a domain-spec (RFC 7208 §7.1) and parses it with mail-auth's macro parser.
fn parse_domain_spec(term: &str, spec: &str) -> Result<DomainSpec, SyntaxError> {
    check_domain_spec(spec).map_err(|why| SyntaxError::new(term, &why))?;
    // mail-auth's explanation-mode parser is the one that keeps "/" inside a macro-string;
    // the letters only allowed in explanations (c, r, t) were refused just above.
    let macro_string = Macro::parse(spec.as_bytes())
        .map_err(|_| SyntaxError::new(term, "invalid macro-string"))?;
    Ok(DomainSpec {
        text: spec.to_string(),
        macro_string,
    })
}
