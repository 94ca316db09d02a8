//! Message flags (RFC 9051 §2.3.2).

use std::fmt;

use super::parser::{Input, PResult, ParseError, bad, is_atom_char};

/// Most flags one STORE or APPEND may name; more get `NO [LIMIT]` (RFC 5530;
/// SECURITY-TESTS IM-18).
pub const MAX_FLAGS_PER_COMMAND: usize = 100;

/// A message flag. System flags compare case-insensitively on input (RFC 9051 §2.3.2)
/// and are always written in their canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    /// `\Recent`: only in responses to IMAP4rev1 clients; never settable (RFC 3501
    /// §2.3.2, removed in RFC 9051).
    Recent,
    /// A keyword (`$Forwarded`, `$Junk`, `NonJunk`, ...) as sent.
    Keyword(String),
}

impl Flag {
    /// Parses a system flag name or keyword; `None` for other `\` names (flag-extension
    /// with no meaning here) and for anything that is not an atom.
    pub fn parse(text: &str) -> Option<Flag> {
        if let Some(system) = text.strip_prefix('\\') {
            return [
                ("Seen", Flag::Seen),
                ("Answered", Flag::Answered),
                ("Flagged", Flag::Flagged),
                ("Deleted", Flag::Deleted),
                ("Draft", Flag::Draft),
                ("Recent", Flag::Recent),
            ]
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(system))
            .map(|(_, flag)| flag);
        }
        (!text.is_empty() && text.bytes().all(is_atom_char))
            .then(|| Flag::Keyword(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
            Flag::Recent => "\\Recent",
            Flag::Keyword(keyword) => keyword,
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ```text
/// flag           = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" /
///                  flag-keyword / flag-extension
/// flag-keyword   = "$MDNSent" / "$Forwarded" / "$Junk" / "$NotJunk" / "$Phishing" / atom
/// flag-extension = "\" atom
/// ```
///
/// A flag a client may set: `\Recent` and unknown `\` flags are refused (RFC 9051
/// §6.4.6, SECURITY-TESTS IM-18).
pub(crate) fn parse_flag(input: &mut Input) -> PResult<Flag> {
    let backslash = input.eat(b'\\');
    let atom = input.atom()?;
    if !backslash {
        return Ok(Flag::Keyword(atom));
    }
    match Flag::parse(&format!("\\{atom}")) {
        Some(Flag::Recent) => bad("\\Recent cannot be set"),
        Some(flag) => Ok(flag),
        None => bad("unknown system flag"),
    }
}

/// `flag-list = "(" [flag *(SP flag)] ")"`, at most [`MAX_FLAGS_PER_COMMAND`] flags.
pub(crate) fn parse_flag_list(input: &mut Input) -> PResult<Vec<Flag>> {
    input
        .paren_list(true, MAX_FLAGS_PER_COMMAND, parse_flag)
        .map_err(|error| match error {
            ParseError::Limit(_) => ParseError::Limit("too many flags"),
            other => other,
        })
}

/// STORE's flags: a flag list, or flags without parentheses (RFC 9051 §9
/// `store-att-flags = ... SP (flag-list / (flag *(SP flag)))`).
pub(crate) fn parse_store_flags(input: &mut Input) -> PResult<Vec<Flag>> {
    if input.peek() == Some(b'(') {
        return parse_flag_list(input);
    }
    let mut flags = vec![parse_flag(input)?];
    while input.eat(b' ') {
        if flags.len() >= MAX_FLAGS_PER_COMMAND {
            return Err(ParseError::Limit("too many flags"));
        }
        flags.push(parse_flag(input)?);
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::parser::line;

    #[test]
    fn system_flags_and_keywords() {
        let flags = parse_flag_list(&mut line(br"(\seen \ANSWERED $Forwarded NonJunk)")).unwrap();
        assert_eq!(
            flags,
            vec![
                Flag::Seen,
                Flag::Answered,
                Flag::Keyword("$Forwarded".into()),
                Flag::Keyword("NonJunk".into())
            ]
        );
        assert_eq!(parse_flag_list(&mut line(b"()")).unwrap(), vec![]);
        assert!(parse_flag_list(&mut line(br"(\Recent)")).is_err());
        assert!(parse_flag_list(&mut line(br"(\Bogus)")).is_err());
        assert!(parse_flag_list(&mut line(br"(\Seen ")).is_err());
        assert!(parse_flag_list(&mut line(br"(a(b))")).is_err());
    }

    #[test]
    fn flag_count_is_limited() {
        let many = format!("({})", vec!["\\Flagged"; 2000].join(" "));
        assert_eq!(
            parse_flag_list(&mut line(many.as_bytes())),
            Err(ParseError::Limit("too many flags"))
        );
        let many = vec!["k"; 101].join(" ");
        assert!(matches!(
            parse_store_flags(&mut line(many.as_bytes())),
            Err(ParseError::Limit(_))
        ));
    }
}
