//! Reverse-path and forward-path parsing (RFC 5321 §4.1.2, extended by RFC 6531 §3.3).
//!
//! ```text
//! Reverse-path   = Path / "<>"
//! Forward-path   = Path
//! Path           = "<" [ A-d-l ":" ] Mailbox ">"
//! A-d-l          = At-domain *( "," At-domain )      ; source route: parsed, then dropped
//! At-domain      = "@" Domain
//! Mailbox        = Local-part "@" ( Domain / address-literal )
//! Local-part     = Dot-string / Quoted-string
//! Dot-string     = Atom *("."  Atom)
//! Atom           = 1*atext                          ; RFC 5322 §3.2.3
//! Quoted-string  = DQUOTE *QcontentSMTP DQUOTE
//! QcontentSMTP   = qtextSMTP / quoted-pairSMTP
//! quoted-pairSMTP = %d92 %d32-126
//! qtextSMTP      = %d32-33 / %d35-91 / %d93-126
//! Domain         = sub-domain *("." sub-domain)
//! sub-domain     = Let-dig [Ldh-str]
//! Let-dig        = ALPHA / DIGIT
//! Ldh-str        = *( ALPHA / DIGIT / "-" ) Let-dig
//! address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
//!                         General-address-literal ) "]"
//! IPv6-address-literal    = "IPv6:" IPv6-addr
//! General-address-literal = Standardized-tag ":" 1*dcontent
//! Standardized-tag = Ldh-str
//! dcontent       = %d33-90 / %d94-126
//!
//! ; RFC 6531 §3.3 (only with SMTPUTF8):
//! sub-domain     =/ U-label
//! atext          =/ UTF8-non-ascii
//! qtextSMTP      =/ UTF8-non-ascii
//! ```
//!
//! Limits (RFC 5321 §4.5.3.1): local part 64 octets, domain 255 octets, path 256 octets
//! including the angle brackets and any source route.

use std::net::{Ipv4Addr, Ipv6Addr};

/// RFC 5321 §4.5.3.1.1.
pub(crate) const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.2.
pub(crate) const MAX_DOMAIN: usize = 255;
/// RFC 5321 §4.5.3.1.3: "including the punctuation and element separators".
pub(crate) const MAX_PATH: usize = 256;
/// RFC 1035 §2.3.4.
const MAX_LABEL: usize = 63;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathError {
    /// No `<` ... `>` around the path (RFC 5321 §4.1.2; Postfix refuses it too by default).
    MissingBrackets,
    Syntax,
    TooLong,
}

/// A parsed path. `mailbox` is `None` for the null path `<>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path {
    pub(crate) mailbox: Option<String>,
    /// The mailbox holds UTF-8 (legal only with SMTPUTF8, RFC 6531 §3.4).
    pub(crate) non_ascii: bool,
}

/// Which path the command carries: `<>` is legal only in MAIL, `<Postmaster>` only in RCPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathKind {
    Reverse,
    Forward,
}

/// Parses a path at the start of `input`, returning it and the text after the `>`.
pub(crate) fn parse_path(input: &str, kind: PathKind) -> Result<(Path, &str), PathError> {
    let Some(inner) = input.strip_prefix('<') else {
        return Err(PathError::MissingBrackets);
    };
    let mut cursor = Cursor::new(inner);
    let path = parse_inner(&mut cursor, kind)?;
    if !cursor.eat(b'>') {
        return Err(PathError::Syntax);
    }
    let consumed = 1 + cursor.pos;
    // RFC 5321 §4.5.3.1.3: a path is at most 256 octets.
    if consumed > MAX_PATH {
        return Err(PathError::TooLong);
    }
    let rest = input.get(consumed..).ok_or(PathError::Syntax)?;
    Ok((path, rest))
}

fn parse_inner(cursor: &mut Cursor<'_>, kind: PathKind) -> Result<Path, PathError> {
    if cursor.peek() == Some(b'>') {
        // RFC 5321 §4.1.1.2: the null reverse-path, for MAIL only.
        return match kind {
            PathKind::Reverse => Ok(Path {
                mailbox: None,
                non_ascii: false,
            }),
            PathKind::Forward => Err(PathError::Syntax),
        };
    }
    if kind == PathKind::Forward {
        // RFC 5321 §4.1.1.3 / §4.5.1: "<Postmaster>" without a domain, case-insensitive.
        let postmaster = "postmaster>";
        if cursor
            .rest()
            .get(..postmaster.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(postmaster))
        {
            cursor.pos += postmaster.len() - 1;
            return Ok(Path {
                mailbox: Some("postmaster".to_string()),
                non_ascii: false,
            });
        }
    }
    if cursor.peek() == Some(b'@') {
        // RFC 5321 §4.1.1.3 / Appendix C: accept a source route, then ignore it.
        loop {
            if !cursor.eat(b'@') {
                return Err(PathError::Syntax);
            }
            parse_domain(cursor, true)?;
            if cursor.eat(b':') {
                break;
            }
            if !cursor.eat(b',') {
                return Err(PathError::Syntax);
            }
        }
    }
    let mailbox_start = cursor.pos;
    let local_non_ascii = parse_local_part(cursor)?;
    let local_len = cursor.pos - mailbox_start;
    // RFC 5321 §4.5.3.1.1: local part at most 64 octets.
    if local_len > MAX_LOCAL_PART {
        return Err(PathError::TooLong);
    }
    if !cursor.eat(b'@') {
        return Err(PathError::Syntax);
    }
    let domain_start = cursor.pos;
    let domain_non_ascii = if cursor.peek() == Some(b'[') {
        parse_address_literal(cursor)?;
        false
    } else {
        parse_domain(cursor, true)?
    };
    // RFC 5321 §4.5.3.1.2: domain at most 255 octets.
    if cursor.pos - domain_start > MAX_DOMAIN {
        return Err(PathError::TooLong);
    }
    let mailbox = cursor
        .text
        .get(mailbox_start..cursor.pos)
        .ok_or(PathError::Syntax)?;
    Ok(Path {
        mailbox: Some(mailbox.to_string()),
        non_ascii: local_non_ascii || domain_non_ascii,
    })
}

/// Local-part = Dot-string / Quoted-string. Returns whether it holds non-ASCII.
fn parse_local_part(cursor: &mut Cursor<'_>) -> Result<bool, PathError> {
    let mut non_ascii = false;
    if cursor.eat(b'"') {
        loop {
            match cursor.next_char() {
                None => return Err(PathError::Syntax),
                Some('"') => return Ok(non_ascii),
                // RFC 5321 §4.1.2: quoted-pairSMTP = %d92 %d32-126.
                Some('\\') => match cursor.next_char() {
                    Some(c) if (' '..='~').contains(&c) => {}
                    _ => return Err(PathError::Syntax),
                },
                // RFC 5321 §4.1.2: qtextSMTP = %d32-33 / %d35-91 / %d93-126.
                Some(c) if (' '..='~').contains(&c) => {}
                // RFC 6531 §3.3: qtextSMTP =/ UTF8-non-ascii.
                Some(c) if !c.is_ascii() && !c.is_control() => non_ascii = true,
                Some(_) => return Err(PathError::Syntax),
            }
        }
    }
    // Dot-string = Atom *("." Atom)
    loop {
        let atom_start = cursor.pos;
        while let Some(c) = cursor.peek_char() {
            if is_atext(c) {
                non_ascii |= !c.is_ascii();
                cursor.pos += c.len_utf8();
            } else {
                break;
            }
        }
        if cursor.pos == atom_start {
            return Err(PathError::Syntax);
        }
        if !cursor.eat(b'.') {
            return Ok(non_ascii);
        }
    }
}

/// RFC 5322 §3.2.3 atext, plus UTF8-non-ascii (RFC 6531 §3.3).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_control())
}

/// Domain = sub-domain *("." sub-domain). Returns whether it holds U-labels.
fn parse_domain(cursor: &mut Cursor<'_>, allow_utf8: bool) -> Result<bool, PathError> {
    let start = cursor.pos;
    let mut non_ascii = false;
    loop {
        let label_start = cursor.pos;
        let mut last = None;
        while let Some(c) = cursor.peek_char() {
            let ok = c.is_ascii_alphanumeric()
                || c == '-'
                // RFC 6531 §3.3: sub-domain =/ U-label.
                || (allow_utf8 && !c.is_ascii() && !c.is_control() && !c.is_whitespace());
            if !ok {
                break;
            }
            non_ascii |= !c.is_ascii();
            last = Some(c);
            cursor.pos += c.len_utf8();
        }
        let label = cursor.text.get(label_start..cursor.pos).unwrap_or("");
        // RFC 5321 §4.1.2: Let-dig [Ldh-str]: no leading or trailing hyphen.
        if label.is_empty()
            || label.starts_with('-')
            || last == Some('-')
            || label.len() > MAX_LABEL
        {
            return Err(PathError::Syntax);
        }
        if !cursor.eat(b'.') {
            break;
        }
    }
    if cursor.pos - start > MAX_DOMAIN {
        return Err(PathError::TooLong);
    }
    Ok(non_ascii)
}

/// address-literal = "[" ( IPv4 / "IPv6:" IPv6 / Standardized-tag ":" 1*dcontent ) "]"
fn parse_address_literal(cursor: &mut Cursor<'_>) -> Result<(), PathError> {
    if !cursor.eat(b'[') {
        return Err(PathError::Syntax);
    }
    let rest = cursor.rest();
    let Some(end) = rest.find(']') else {
        return Err(PathError::Syntax);
    };
    let content = rest.get(..end).ok_or(PathError::Syntax)?;
    if !is_address_literal_content(content) {
        return Err(PathError::Syntax);
    }
    cursor.pos += end + 1;
    Ok(())
}

/// The text between `[` and `]` of an address literal (RFC 5321 §4.1.3).
pub(crate) fn is_address_literal_content(content: &str) -> bool {
    if content.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let Some((tag, value)) = content.split_once(':') else {
        return false;
    };
    if tag.eq_ignore_ascii_case("IPv6") {
        return value.parse::<Ipv6Addr>().is_ok();
    }
    // General-address-literal = Standardized-tag ":" 1*dcontent
    let tag_ok = !tag.is_empty()
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !tag.ends_with('-');
    let value_ok = !value.is_empty() && value.bytes().all(|b| matches!(b, 33..=90 | 94..=126));
    tag_ok && value_ok
}

/// An EHLO/HELO argument: Domain or address-literal (RFC 5321 §4.1.1.1). Lenient where
/// deployed clients are: `_` is accepted in labels (Windows host names) and a trailing dot
/// is tolerated. ASCII only. The value goes into Received headers (RFC 5321 §4.4), so a
/// General-address-literal may hold only letters, digits, `.`, `:` and `-` (SM-11).
pub(crate) fn is_helo_name(name: &str) -> bool {
    if let Some(inner) = name.strip_prefix('[') {
        return inner.strip_suffix(']').is_some_and(|content| {
            is_address_literal_content(content)
                && content
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-'))
        });
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    !trimmed.is_empty()
        && trimmed.len() <= MAX_DOMAIN
        && trimmed.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A byte cursor over a `&str` that only ever stops on character boundaries.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, pos: 0 }
    }
    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }
    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }
    fn next_char(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.pos += c.len_utf8();
        Some(c)
    }
    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(input: &str, kind: PathKind) -> Result<(Option<String>, bool, String), PathError> {
        parse_path(input, kind).map(|(path, rest)| (path.mailbox, path.non_ascii, rest.to_string()))
    }

    fn ok(input: &str, kind: PathKind) -> String {
        mailbox(input, kind).unwrap().0.unwrap()
    }

    #[test]
    fn plain_and_null_paths() {
        assert_eq!(ok("<a@b.example>", PathKind::Reverse), "a@b.example");
        assert_eq!(
            mailbox("<> SIZE=1", PathKind::Reverse).unwrap(),
            (None, false, " SIZE=1".to_string())
        );
        assert_eq!(mailbox("<>", PathKind::Forward), Err(PathError::Syntax));
    }

    #[test]
    fn postmaster_only_for_rcpt() {
        assert_eq!(ok("<Postmaster>", PathKind::Forward), "postmaster");
        assert_eq!(ok("<POSTMASTER>", PathKind::Forward), "postmaster");
        assert_eq!(
            ok("<postmaster@x.example>", PathKind::Forward),
            "postmaster@x.example"
        );
        assert_eq!(
            mailbox("<Postmaster>", PathKind::Reverse),
            Err(PathError::Syntax)
        );
    }

    #[test]
    fn quoted_local_parts_are_kept_as_sent() {
        assert_eq!(
            ok(r#"<"john doe"@x.example>"#, PathKind::Forward),
            r#""john doe"@x.example"#
        );
        assert_eq!(
            ok(r#"<"a\"b>c"@x.example>"#, PathKind::Forward),
            r#""a\"b>c"@x.example"#
        );
        assert_eq!(
            mailbox(r#"<"unterminated@x>"#, PathKind::Forward),
            Err(PathError::Syntax)
        );
    }

    #[test]
    fn address_literals() {
        assert_eq!(ok("<u@[192.0.2.1]>", PathKind::Forward), "u@[192.0.2.1]");
        assert_eq!(
            ok("<u@[IPv6:2001:db8::1]>", PathKind::Forward),
            "u@[IPv6:2001:db8::1]"
        );
        assert_eq!(ok("<u@[x-tag:abc]>", PathKind::Forward), "u@[x-tag:abc]");
        assert_eq!(
            mailbox("<u@[300.0.0.1]>", PathKind::Forward),
            Err(PathError::Syntax)
        );
        assert_eq!(
            mailbox("<u@[IPv6:zz]>", PathKind::Forward),
            Err(PathError::Syntax)
        );
        assert_eq!(
            mailbox("<u@[1.2.3.4>", PathKind::Forward),
            Err(PathError::Syntax)
        );
    }

    #[test]
    fn source_routes_are_dropped() {
        assert_eq!(
            ok("<@a.example,@b.example:u@d.example>", PathKind::Forward),
            "u@d.example"
        );
        assert_eq!(
            ok("<@a.example:u@d.example>", PathKind::Reverse),
            "u@d.example"
        );
        assert_eq!(
            mailbox("<@a.example u@d.example>", PathKind::Forward),
            Err(PathError::Syntax)
        );
        assert_eq!(
            mailbox("<@:u@d.example>", PathKind::Forward),
            Err(PathError::Syntax)
        );
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "<a@>",
            "<@b>",
            "<a>",
            "<a@b",
            "<a..b@c>",
            "<.a@c>",
            "<a.@c>",
            "<a@-b.c>",
            "<a@b-.c>",
            "<a@b..c>",
            "<a@b.>",
            "<a b@c>",
            "<a@b c>",
            "<a@b_c.d>",
            "<a@@b>",
            "<<a@b>>",
        ] {
            assert_eq!(
                mailbox(bad, PathKind::Forward),
                Err(PathError::Syntax),
                "{bad}"
            );
        }
        assert_eq!(
            mailbox("a@b", PathKind::Forward),
            Err(PathError::MissingBrackets)
        );
        assert_eq!(
            mailbox("", PathKind::Forward),
            Err(PathError::MissingBrackets)
        );
    }

    #[test]
    fn lengths() {
        let local64 = "l".repeat(64);
        assert_eq!(
            ok(&format!("<{local64}@x.example>"), PathKind::Forward).len(),
            74
        );
        let local65 = "l".repeat(65);
        assert_eq!(
            mailbox(&format!("<{local65}@x.example>"), PathKind::Forward),
            Err(PathError::TooLong)
        );
        let label = "d".repeat(63);
        let domain = format!("{label}.{label}.{label}.{}", "d".repeat(58)); // 250 octets
        // 1 + 1 + 1 + 250 + 1 = 254 octets of path.
        assert_eq!(ok(&format!("<a@{domain}>"), PathKind::Forward).len(), 252);
        let domain = format!("{label}.{label}.{label}.{}", "d".repeat(61)); // 253 octets
        // 1 + 1 + 1 + 253 + 1 = 257 > 256.
        assert_eq!(
            mailbox(&format!("<a@{domain}>"), PathKind::Forward),
            Err(PathError::TooLong)
        );
        assert_eq!(
            mailbox(&format!("<{local64}@{domain}>"), PathKind::Forward),
            Err(PathError::TooLong)
        );
        let long_label = "d".repeat(64);
        assert_eq!(
            mailbox(&format!("<a@{long_label}.example>"), PathKind::Forward),
            Err(PathError::Syntax)
        );
    }

    #[test]
    fn utf8_is_flagged() {
        let (mailbox, non_ascii, _) = mailbox("<jöran@bücher.example>", PathKind::Forward).unwrap();
        assert_eq!(mailbox.as_deref(), Some("jöran@bücher.example"));
        assert!(non_ascii);
        let (_, non_ascii, _) = super::tests::mailbox("<a@b.example>", PathKind::Forward).unwrap();
        assert!(!non_ascii);
        let (_, non_ascii, _) =
            super::tests::mailbox("<\"ö\"@b.example>", PathKind::Forward).unwrap();
        assert!(non_ascii);
    }

    #[test]
    fn helo_names() {
        for good in [
            "mx.example",
            "localhost",
            "my_host",
            "mx.example.",
            "[192.0.2.1]",
            "[IPv6:::1]",
        ] {
            assert!(is_helo_name(good), "{good}");
        }
        for bad in [
            "", ".", "a..b", "-a", "a-", "[1.2.3]", "a b", "a<b", "[IPv6:x]", "a@b",
        ] {
            assert!(!is_helo_name(bad), "{bad}");
        }
    }
}
