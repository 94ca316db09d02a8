//! Macro-strings and names (RFC 7208 §4.3, §7). mail-auth parses and expands macro-strings
//! (`Macro::eval` over `Variables`); this module adds the syntax checks its parser leaves
//! out, fills the variables, and turns an expansion into a name DNS can be asked about.
//!
//! ```text
//! domain-spec      = macro-string domain-end
//! domain-end       = ( "." toplabel [ "." ] ) / macro-expand
//! toplabel         = ( *alphanum ALPHA *alphanum ) /
//!                    ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
//! explain-string   = *( macro-string / SP )
//! macro-string     = *( macro-expand / macro-literal )
//! macro-expand     = ( "%{" macro-letter transformers *delimiter "}" )
//!                    / "%%" / "%_" / "%-"
//! macro-literal    = %x21-24 / %x26-7E
//! macro-letter     = "s" / "l" / "o" / "d" / "i" / "p" / "h" / "c" / "r" / "t" / "v"
//! transformers     = *DIGIT [ "r" ]
//! delimiter        = "." / "-" / "+" / "," / "/" / "_" / "="
//! ```

use std::net::IpAddr;

use mail_auth::spf::{Macro, Variables};

/// RFC 7208 §7.3: the longest name (without the final dot) a macro expansion may give.
const MAX_NAME_LENGTH: usize = 253;
/// RFC 1035 §2.3.4: the longest label.
const MAX_LABEL_LENGTH: usize = 63;
/// The longest explanation kept: it goes into an SMTP reply and a header comment.
pub(crate) const MAX_EXPLANATION_LENGTH: usize = 256;

/// Where a macro-string appears, which decides the letters (and spaces) it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MacroContext {
    /// The target of a mechanism, redirect= or exp=.
    DomainSpec,
    /// The value of an unknown modifier, which is ignored once checked.
    ModifierValue,
    /// The TXT record an exp= points to.
    Explanation,
}

impl MacroContext {
    fn allows_letter(self, letter: u8) -> bool {
        match letter.to_ascii_lowercase() {
            b's' | b'l' | b'o' | b'd' | b'i' | b'p' | b'v' | b'h' => true,
            // RFC 7208 §7.2: c, r and t are allowed only in explanation text.
            b'c' | b'r' | b't' => self != MacroContext::DomainSpec,
            _ => false,
        }
    }

    fn allows_space(self) -> bool {
        // RFC 7208 §6.2: explain-string = *( macro-string / SP ).
        self == MacroContext::Explanation
    }
}

/// How a valid macro-string ends: with literal characters, or with a macro-expand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MacroEnd<'t> {
    /// The literal characters after the last macro-expand.
    Literal(&'t str),
    Expand,
}

/// Checks the macro syntax of RFC 7208 §7.1 that mail-auth's parser does not: an
/// unterminated `%{`, transformers out of order, a zero DIGIT transformer, letters not
/// allowed in this context, and characters outside the macro-literal range.
pub(crate) fn check_macro_string(
    text: &str,
    context: MacroContext,
) -> Result<MacroEnd<'_>, String> {
    let bytes = text.as_bytes();
    let mut position = 0;
    let mut literal_start = 0;
    let mut ends_with_expand = false;
    while let Some(&byte) = bytes.get(position) {
        match byte {
            b'%' => {
                position = macro_expand_end(bytes, position, context)?;
                literal_start = position;
                ends_with_expand = true;
            }
            // RFC 7208 §7.1: macro-literal = %x21-24 / %x26-7E ("%" was taken above).
            b'!'..=b'~' => {
                position += 1;
                ends_with_expand = false;
            }
            b' ' if context.allows_space() => {
                position += 1;
                ends_with_expand = false;
            }
            _ => {
                return Err(format!(
                    "byte 0x{byte:02x} is not allowed in a macro-string"
                ));
            }
        }
    }
    Ok(if ends_with_expand {
        MacroEnd::Expand
    } else {
        MacroEnd::Literal(text.get(literal_start..).unwrap_or_default())
    })
}

/// Checks the macro-expand starting with the "%" at `start`; returns the index after it.
fn macro_expand_end(bytes: &[u8], start: usize, context: MacroContext) -> Result<usize, String> {
    match bytes.get(start + 1) {
        Some(b'%' | b'_' | b'-') => return Ok(start + 2),
        Some(b'{') => (),
        // RFC 7208 §7.1: a "%" not followed by "{", "%", "-" or "_" is a syntax error.
        _ => return Err("'%' not followed by '{', '%', '_' or '-'".to_string()),
    }
    let letter = bytes.get(start + 2).copied().unwrap_or(b'}');
    if !context.allows_letter(letter) {
        return Err(format!(
            "macro letter '{}' is not allowed here",
            char::from(letter).escape_default()
        ));
    }
    let digits_start = start + 3;
    let mut position = digits_start;
    while bytes.get(position).is_some_and(u8::is_ascii_digit) {
        position += 1;
    }
    let digits = bytes.get(digits_start..position).unwrap_or_default();
    // RFC 7208 §7.3: if a DIGIT transformer is specified, its value MUST be nonzero.
    if !digits.is_empty() && digits.iter().all(|digit| *digit == b'0') {
        return Err("a macro asks for zero parts".to_string());
    }
    // RFC 7208 §7.1: transformers = *DIGIT [ "r" ], then *delimiter, then "}".
    if matches!(bytes.get(position), Some(b'r' | b'R')) {
        position += 1;
    }
    while matches!(
        bytes.get(position),
        Some(b'.' | b'-' | b'+' | b',' | b'/' | b'_' | b'=')
    ) {
        position += 1;
    }
    match bytes.get(position) {
        Some(b'}') => Ok(position + 1),
        _ => Err("malformed or unterminated macro".to_string()),
    }
}

/// Checks a domain-spec: a macro-string whose end is a macro or "." and a valid top label.
pub(crate) fn check_domain_spec(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty domain-spec".to_string());
    }
    match check_macro_string(spec, MacroContext::DomainSpec)? {
        MacroEnd::Expand => Ok(()),
        MacroEnd::Literal(tail) => {
            // RFC 7208 §7.1: domain-end = ( "." toplabel [ "." ] ) / macro-expand.
            let tail = tail.strip_suffix('.').unwrap_or(tail);
            match tail.rsplit_once('.') {
                Some((_, toplabel)) if is_toplabel(toplabel) => Ok(()),
                _ => Err("domain-spec does not end in a valid top label or a macro".to_string()),
            }
        }
    }
}

/// RFC 7208 §7.1: toplabel = ( *alphanum ALPHA *alphanum ) /
/// ( 1*alphanum "-" *( alphanum / "-" ) alphanum ): never all digits (an IP address is not a
/// domain), never starting or ending with "-".
fn is_toplabel(label: &str) -> bool {
    let bytes = label.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-')
        && bytes
            .iter()
            .any(|byte| byte.is_ascii_alphabetic() || *byte == b'-')
}

/// RFC 7208 §4.3: whether `domain` can be checked at all. A malformed name (empty label,
/// label over 63 characters), a single-label name or an address literal gives `none`.
pub(crate) fn is_checkable_domain(domain: &str) -> bool {
    let name = domain.strip_suffix('.').unwrap_or(domain);
    let mut labels = 0;
    for label in name.split('.') {
        labels += 1;
        let valid = (1..=MAX_LABEL_LENGTH).contains(&label.len())
            && label
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_'));
        if !valid {
            return false;
        }
    }
    let top_is_numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|top| top.bytes().all(|byte| byte.is_ascii_digit()));
    labels >= 2 && name.len() <= MAX_NAME_LENGTH && !top_is_numeric
}

/// Turns a macro expansion (or a name from DNS) into the name to query, or `None` when no
/// query can be made for it, which the callers treat as a name without records.
pub(crate) fn query_name(expanded: &str) -> Option<String> {
    let mut name = expanded.strip_suffix('.').unwrap_or(expanded);
    // RFC 7208 §7.3: an expanded name longer than 253 characters is truncated from the left,
    // removing whole labels until it fits.
    while name.len() > MAX_NAME_LENGTH {
        name = name.split_once('.')?.1;
    }
    // RFC 7208 §4.8 (and §4.3 by analogy): an empty label or one longer than 63 characters
    // cannot be asked about; the mechanism then matches nothing.
    let askable = !name.is_empty()
        && name
            .split('.')
            .all(|label| (1..=MAX_LABEL_LENGTH).contains(&label.len()));
    askable.then(|| name.to_string())
}

/// The macro variables that stay the same during one check_host() (RFC 7208 §7.2): the
/// sender (s, l, o), the client address (i, v, c), the HELO name (h) and our name (r).
pub(crate) fn base_variables(
    ip: IpAddr,
    sender: &str,
    helo: &str,
    receiver_host: &str,
) -> Variables<'static> {
    let mut variables = Variables::new();
    variables.set_ip(&ip);
    variables.set_sender(sender.as_bytes().to_vec());
    variables.set_helo_domain(helo.as_bytes().to_vec());
    variables.set_host_domain(receiver_host.as_bytes().to_vec());
    variables
}

/// Expands `macro_string` for the record of `domain` (the d macro, and the default target of
/// a, mx and ptr); `validated_name` is the p macro, when the macro-string uses it.
pub(crate) fn expand(
    macro_string: &Macro,
    variables: &Variables<'static>,
    domain: &str,
    validated_name: Option<&str>,
) -> String {
    let mut variables = variables.clone();
    variables.set_domain(domain.as_bytes().to_vec());
    if let Some(name) = validated_name {
        variables.set_validated_domain(name.as_bytes().to_vec());
    }
    macro_string.eval(&variables, domain, false).into_owned()
}

/// An explanation as it may be shown: printable ASCII only, at most
/// [`MAX_EXPLANATION_LENGTH`] characters (the exp text and the macros in it come from others).
pub(crate) fn bounded_explanation(text: &str) -> String {
    text.chars()
        .take(MAX_EXPLANATION_LENGTH)
        .map(|ch| if (' '..='~').contains(&ch) { ch } else { '?' })
        .collect()
}
