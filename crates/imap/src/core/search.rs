//! SEARCH programs (RFC 9051 §6.4.4) with ESEARCH return options (RFC 4731), SEARCHRES
//! (RFC 5182) and MODSEQ (RFC 7162 §3.1.5).

use super::datetime::{Date, parse_date};
use super::parser::{Input, PResult, ParseError, bad};
use super::sequence::{SequenceSet, SetRules, parse_sequence_set};

/// One search key. `And` is a parenthesised group; a program's top-level keys are
/// implicitly ANDed too. Nesting (`NOT`, `OR`, groups) is bounded by the core's depth
/// limit, so the service may walk this tree recursively without risk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Bcc(String),
    Before(Date),
    Body(String),
    Cc(String),
    Deleted,
    Draft,
    Flagged,
    From(String),
    /// `HEADER field-name value` (an empty value matches every message with the field).
    Header(String, String),
    Keyword(String),
    Larger(u64),
    /// IMAP4rev1 only (RFC 3501): `\Recent` and not `\Seen`.
    New,
    Not(Box<SearchKey>),
    /// IMAP4rev1 only: not `\Recent`.
    Old,
    On(Date),
    Or(Box<SearchKey>, Box<SearchKey>),
    /// IMAP4rev1 only.
    Recent,
    Seen,
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Since(Date),
    Smaller(u64),
    Subject(String),
    Text(String),
    To(String),
    Uid(SequenceSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(String),
    Unseen,
    /// Message sequence numbers.
    SequenceSet(SequenceSet),
    And(Vec<SearchKey>),
    /// `MODSEQ ["/flags/<flag>" priv|shared|all] value` (RFC 7162 §3.1.5): messages whose
    /// mod-sequence is at least `modseq`. The entry is kept as sent (servers may ignore
    /// it, RFC 7162 §3.1.5).
    ModSeq {
        entry: Option<(String, String)>,
        modseq: u64,
    },
}

/// ESEARCH result options (RFC 4731 §3.1, RFC 5182 `SAVE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
}

/// A parsed SEARCH command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchProgram {
    /// `None`: no RETURN, answer with `* SEARCH` (IMAP4rev1) or `* ESEARCH` (IMAP4rev2
    /// clients always get ESEARCH, RFC 9051 §7.3.4). `Some(options)`: answer with
    /// `* ESEARCH`; `RETURN ()` arrives as `[All]` (RFC 4731 §3.1).
    pub returns: Option<Vec<SearchReturn>>,
    /// Upper-cased charset when given; only `US-ASCII` and `UTF-8` get this far.
    pub charset: Option<String>,
    /// ANDed keys, at least one.
    pub keys: Vec<SearchKey>,
}

/// Parser settings that come from the session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchRules {
    pub(crate) max_depth: usize,
    pub(crate) searchres: bool,
}

/// ```text
/// search             = "SEARCH" [search-return-opts] SP search-program
/// search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"
/// search-return-opt  = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE"
/// search-program     = ["CHARSET" SP charset SP] search-key *(SP search-key)
/// charset            = atom / quoted
/// ```
///
/// Called after `SEARCH`; the input is at the space before the first argument.
pub(crate) fn parse_search(input: &mut Input, rules: SearchRules) -> PResult<SearchProgram> {
    input.sp()?;
    let mut returns = None;
    if input.eat_word("RETURN") {
        input.sp()?;
        let mut options = input.paren_list(true, 8, |input| {
            let word = input.atom()?.to_ascii_uppercase();
            match word.as_str() {
                "MIN" => Ok(SearchReturn::Min),
                "MAX" => Ok(SearchReturn::Max),
                "ALL" => Ok(SearchReturn::All),
                "COUNT" => Ok(SearchReturn::Count),
                "SAVE" if rules.searchres => Ok(SearchReturn::Save),
                _ => bad("unknown search return option"),
            }
        })?;
        if options.is_empty() {
            // RFC 4731 §3.1: "RETURN ()" is "RETURN (ALL)".
            options.push(SearchReturn::All);
        }
        returns = Some(options);
        input.sp()?;
    }
    let mut charset = None;
    if input.eat_word("CHARSET") {
        input.sp()?;
        let name = if input.peek() == Some(b'"') {
            String::from_utf8(input.quoted()?).unwrap_or_default()
        } else {
            input.atom()?
        }
        .to_ascii_uppercase();
        // RFC 9051 §6.4.4: US-ASCII and UTF-8 are required; others get BADCHARSET.
        if name != "US-ASCII" && name != "UTF-8" {
            return Err(ParseError::BadCharset);
        }
        charset = Some(name);
        input.sp()?;
    }
    let mut keys = vec![search_key(input, rules, 1)?];
    while input.eat(b' ') {
        keys.push(search_key(input, rules, 1)?);
    }
    Ok(SearchProgram {
        returns,
        charset,
        keys,
    })
}

fn text(input: &mut Input) -> PResult<String> {
    input.sp()?;
    input.astring_utf8()
}

fn date(input: &mut Input) -> PResult<Date> {
    input.sp()?;
    parse_date(input)
}

fn size(input: &mut Input) -> PResult<u64> {
    input.sp()?;
    input.number64()
}

fn keyword(input: &mut Input) -> PResult<String> {
    input.sp()?;
    input.atom()
}

/// `search-key` (RFC 9051 §9, plus `NEW` / `OLD` / `RECENT` of RFC 3501 and
/// `search-modsequence` of RFC 7162 §7). `depth` counts the enclosing `NOT`, `OR` and
/// groups; past `max_depth` the command is refused (SECURITY-TESTS IM-05: Rust aborts
/// the whole process on stack overflow).
fn search_key(input: &mut Input, rules: SearchRules, depth: usize) -> PResult<SearchKey> {
    if depth > rules.max_depth {
        return bad("search keys nested too deeply");
    }
    let sets = SetRules {
        star: true,
        saved: rules.searchres,
    };
    match input.peek() {
        Some(b'(') => {
            input.eat(b'(');
            let mut keys = vec![search_key(input, rules, depth + 1)?];
            while input.eat(b' ') {
                keys.push(search_key(input, rules, depth + 1)?);
            }
            input.expect(b')', "expected \")\"")?;
            return Ok(SearchKey::And(keys));
        }
        Some(b'0'..=b'9' | b'*' | b'$') => {
            return parse_sequence_set(input, sets).map(SearchKey::SequenceSet);
        }
        _ => {}
    }
    let word = input.atom()?.to_ascii_uppercase();
    Ok(match word.as_str() {
        "ALL" => SearchKey::All,
        "ANSWERED" => SearchKey::Answered,
        "BCC" => SearchKey::Bcc(text(input)?),
        "BEFORE" => SearchKey::Before(date(input)?),
        "BODY" => SearchKey::Body(text(input)?),
        "CC" => SearchKey::Cc(text(input)?),
        "DELETED" => SearchKey::Deleted,
        "DRAFT" => SearchKey::Draft,
        "FLAGGED" => SearchKey::Flagged,
        "FROM" => SearchKey::From(text(input)?),
        "HEADER" => {
            let field = text(input)?;
            SearchKey::Header(field, text(input)?)
        }
        "KEYWORD" => SearchKey::Keyword(keyword(input)?),
        "LARGER" => SearchKey::Larger(size(input)?),
        "NEW" => SearchKey::New,
        "NOT" => {
            input.sp()?;
            SearchKey::Not(Box::new(search_key(input, rules, depth + 1)?))
        }
        "OLD" => SearchKey::Old,
        "ON" => SearchKey::On(date(input)?),
        "OR" => {
            input.sp()?;
            let left = search_key(input, rules, depth + 1)?;
            input.sp()?;
            let right = search_key(input, rules, depth + 1)?;
            SearchKey::Or(Box::new(left), Box::new(right))
        }
        "RECENT" => SearchKey::Recent,
        "SEEN" => SearchKey::Seen,
        "SENTBEFORE" => SearchKey::SentBefore(date(input)?),
        "SENTON" => SearchKey::SentOn(date(input)?),
        "SENTSINCE" => SearchKey::SentSince(date(input)?),
        "SINCE" => SearchKey::Since(date(input)?),
        "SMALLER" => SearchKey::Smaller(size(input)?),
        "SUBJECT" => SearchKey::Subject(text(input)?),
        "TEXT" => SearchKey::Text(text(input)?),
        "TO" => SearchKey::To(text(input)?),
        "UID" => {
            input.sp()?;
            SearchKey::Uid(parse_sequence_set(input, sets)?)
        }
        "UNANSWERED" => SearchKey::Unanswered,
        "UNDELETED" => SearchKey::Undeleted,
        "UNDRAFT" => SearchKey::Undraft,
        "UNFLAGGED" => SearchKey::Unflagged,
        "UNKEYWORD" => SearchKey::Unkeyword(keyword(input)?),
        "UNSEEN" => SearchKey::Unseen,
        "MODSEQ" => modseq(input)?,
        _ => return bad("unknown search key"),
    })
}

/// ```text
/// search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer
/// search-modseq-ext  = SP entry-name SP entry-type-req
/// entry-name         = DQUOTE "/flags/" attr-flag DQUOTE
/// entry-type-req     = "priv" / "shared" / "all"
/// ```
fn modseq(input: &mut Input) -> PResult<SearchKey> {
    input.sp()?;
    let mut entry = None;
    if input.peek() == Some(b'"') {
        let name = String::from_utf8(input.quoted()?).or_else(|_| bad("invalid entry name"))?;
        if !name.to_ascii_lowercase().starts_with("/flags/") {
            return bad("invalid entry name");
        }
        input.sp()?;
        let kind = input.atom()?.to_ascii_lowercase();
        if !matches!(kind.as_str(), "priv" | "shared" | "all") {
            return bad("invalid entry type");
        }
        entry = Some((name, kind));
        input.sp()?;
    }
    // mod-sequence-valzer = "0" / mod-sequence-value
    let modseq = input.number64()?;
    Ok(SearchKey::ModSeq { entry, modseq })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::parser::line;

    const RULES: SearchRules = SearchRules {
        max_depth: 32,
        searchres: true,
    };

    fn parse(text: &str) -> PResult<SearchProgram> {
        let mut input = line(format!(" {text}").as_bytes());
        let program = parse_search(&mut input, RULES)?;
        input.end()?;
        Ok(program)
    }

    #[test]
    fn rfc_examples() {
        // RFC 9051 §6.4.4.
        let program = parse("FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"").unwrap();
        assert_eq!(
            program.keys,
            vec![
                SearchKey::Flagged,
                SearchKey::Since(Date::new(1994, 2, 1).unwrap()),
                SearchKey::Not(Box::new(SearchKey::From("Smith".into())))
            ]
        );
        let program = parse("TEXT \"string not in mailbox\"").unwrap();
        assert_eq!(
            program.keys,
            vec![SearchKey::Text("string not in mailbox".into())]
        );
        let program = parse("RETURN (MIN COUNT) CHARSET utf-8 OR (FROM x) (TO y) 1:3,$").unwrap();
        assert_eq!(
            program.returns,
            Some(vec![SearchReturn::Min, SearchReturn::Count])
        );
        assert_eq!(program.charset.as_deref(), Some("UTF-8"));
        assert!(
            matches!(program.keys.as_slice(), [SearchKey::Or(_, _), SearchKey::SequenceSet(set)] if set.saved)
        );
        assert_eq!(
            parse("RETURN () ALL").unwrap().returns,
            Some(vec![SearchReturn::All])
        );
        // RFC 7162 §3.1.5.
        let program = parse("MODSEQ \"/flags/\\\\draft\" all 620162338").unwrap();
        assert_eq!(
            program.keys,
            vec![SearchKey::ModSeq {
                entry: Some(("/flags/\\draft".into(), "all".into())),
                modseq: 620_162_338
            }]
        );
        let program = parse("HEADER Message-ID \"<id>\" UID 1:* LARGER 10 KEYWORD $Junk").unwrap();
        assert_eq!(program.keys.len(), 4);
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("CHARSET KOI8-R ALL"), Err(ParseError::BadCharset));
        for bad_program in [
            "",
            "BOGUS",
            "FROM",
            "SUBJECT \"a\x00b\"",
            "RETURN (BOGUS) ALL",
            "(ALL",
            "ALL)",
            "OR ALL",
            "LARGER -1",
            "SINCE 1-Foo-2000",
            "UID 0",
        ] {
            assert!(parse(bad_program).is_err(), "{bad_program:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        // SECURITY-TESTS IM-05: each of these would blow the stack without the limit.
        let parens = format!("{}ALL{}", "(".repeat(5000), ")".repeat(5000));
        let nots = format!("{}ALL", "NOT ".repeat(10_000));
        let ors = format!("{}ALL", "OR ALL ".repeat(5000));
        for program in [parens, nots, ors] {
            assert_eq!(
                parse(&program),
                Err(ParseError::Bad("search keys nested too deeply"))
            );
        }
        let ok = format!("{}ALL{}", "(".repeat(31), ")".repeat(31));
        assert!(parse(&ok).is_ok());
        let flat = vec!["ALL"; 10_000].join(" ");
        assert_eq!(parse(&flat).unwrap().keys.len(), 10_000);
    }
}
