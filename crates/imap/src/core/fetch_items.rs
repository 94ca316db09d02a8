//! FETCH data items (RFC 9051 §6.4.5), BINARY items (RFC 3516 §4.2) and MODSEQ
//! (RFC 7162 §3.1.4).

use std::fmt;
use std::num::NonZeroU32;

use super::parser::{Input, PResult, ParseError, bad};

/// Deepest body part number accepted (`1.2.3...`): the MIME nesting limit of
/// SECURITY-TESTS §1 (Postfix, Dovecot: 100).
pub const MAX_SECTION_PARTS: usize = 100;
/// Most header field names in one `HEADER.FIELDS` list.
pub const MAX_HEADER_FIELDS: usize = 1000;

/// `section-msgtext / "MIME"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SectionText {
    Header,
    /// `HEADER.FIELDS` (`not: false`) or `HEADER.FIELDS.NOT` with the field names as sent.
    HeaderFields {
        not: bool,
        fields: Vec<String>,
    },
    Text,
    /// Only after a part number.
    Mime,
}

/// `section-spec`: a part path (empty for the whole message) and what of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Section {
    pub part: Vec<NonZeroU32>,
    pub text: Option<SectionText>,
}

/// `partial = "<" number "." nz-number ">"`: `offset` and `length` are 32-bit, so their
/// sum fits a u64; [`Partial::apply`] never slices out of bounds (SECURITY-TESTS IM-07).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partial {
    pub offset: u32,
    pub length: NonZeroU32,
}

impl Partial {
    /// The requested window of `data` (empty when the offset is past the end, RFC 9051
    /// §6.4.5).
    pub fn apply<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        let start = usize::try_from(self.offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(self.length.get()).unwrap_or(usize::MAX));
        let end = end.min(data.len());
        data.get(start..end).unwrap_or_default()
    }
}

/// One FETCH data item. The macros ALL, FAST and FULL arrive expanded (RFC 9051 §6.4.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FetchAttr {
    Envelope,
    Flags,
    InternalDate,
    Rfc822Size,
    /// `RFC822` = `BODY[]` (sets \Seen), answered as `RFC822`.
    Rfc822,
    /// `RFC822.HEADER` = `BODY.PEEK[HEADER]`, answered as `RFC822.HEADER`.
    Rfc822Header,
    /// `RFC822.TEXT` = `BODY[TEXT]`, answered as `RFC822.TEXT`.
    Rfc822Text,
    /// `BODY`: BODYSTRUCTURE without extension data.
    Body,
    BodyStructure,
    Uid,
    /// RFC 7162 §3.1.4.
    ModSeq,
    /// `BODY[section]<partial>` / `BODY.PEEK[...]`.
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<Partial>,
    },
    /// `BINARY[part]<partial>` / `BINARY.PEEK[...]` (RFC 3516 §4.2).
    Binary {
        peek: bool,
        part: Vec<NonZeroU32>,
        partial: Option<Partial>,
    },
    /// `BINARY.SIZE[part]`.
    BinarySize {
        part: Vec<NonZeroU32>,
    },
}

impl FetchAttr {
    /// Whether fetching this sets `\Seen` (RFC 9051 §6.4.5: BODY[...] and BINARY[...]
    /// without .PEEK, RFC822, RFC822.TEXT).
    pub fn sets_seen(&self) -> bool {
        match self {
            FetchAttr::Rfc822 | FetchAttr::Rfc822Text => true,
            FetchAttr::BodySection { peek, .. } | FetchAttr::Binary { peek, .. } => !peek,
            _ => false,
        }
    }
}

fn write_part(f: &mut fmt::Formatter<'_>, part: &[NonZeroU32]) -> fmt::Result {
    for (index, number) in part.iter().enumerate() {
        if index > 0 {
            f.write_str(".")?;
        }
        write!(f, "{number}")?;
    }
    Ok(())
}

/// Writes a part path (`1.2.3`) as used inside `BINARY[...]`.
pub struct PartPath<'a>(pub &'a [NonZeroU32]);

impl fmt::Display for PartPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_part(f, self.0)
    }
}

impl fmt::Display for Section {
    /// The section spec as echoed in a FETCH response, without brackets. Header field
    /// names are written as atoms when they are atoms and quoted otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_part(f, &self.part)?;
        let Some(text) = &self.text else {
            return Ok(());
        };
        if !self.part.is_empty() {
            f.write_str(".")?;
        }
        match text {
            SectionText::Header => f.write_str("HEADER"),
            SectionText::Text => f.write_str("TEXT"),
            SectionText::Mime => f.write_str("MIME"),
            SectionText::HeaderFields { not, fields } => {
                f.write_str(if *not {
                    "HEADER.FIELDS.NOT ("
                } else {
                    "HEADER.FIELDS ("
                })?;
                for (index, field) in fields.iter().enumerate() {
                    if index > 0 {
                        f.write_str(" ")?;
                    }
                    if !field.is_empty() && field.bytes().all(super::parser::is_astring_char) {
                        f.write_str(field)?;
                    } else {
                        write!(
                            f,
                            "\"{}\"",
                            field.replace('\\', "\\\\").replace('"', "\\\"")
                        )?;
                    }
                }
                f.write_str(")")
            }
        }
    }
}

/// `section-part = nz-number *("." nz-number)`, at most [`MAX_SECTION_PARTS`] numbers.
/// Stops before a `.` that is not followed by a digit (`1.HEADER`).
fn section_part(input: &mut Input) -> PResult<Vec<NonZeroU32>> {
    let mut part = vec![input.nz_number()?];
    while input.peek() == Some(b'.') && input.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
        input.eat(b'.');
        if part.len() >= MAX_SECTION_PARTS {
            return bad("section part nested too deeply");
        }
        part.push(input.nz_number()?);
    }
    Ok(part)
}

/// ```text
/// section         = "[" [section-spec] "]"
/// section-spec    = section-msgtext / (section-part ["." section-text])
/// section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
/// section-text    = section-msgtext / "MIME"
/// header-list     = "(" header-fld-name *(SP header-fld-name) ")"
/// ```
///
/// Called after the `[`; consumes the `]`.
fn section(input: &mut Input) -> PResult<Section> {
    let mut section = Section::default();
    if input.eat(b']') {
        return Ok(section);
    }
    if input.peek().is_some_and(|b| b.is_ascii_digit()) {
        section.part = section_part(input)?;
        if input.eat(b']') {
            return Ok(section);
        }
        input.expect(b'.', "invalid section")?;
    }
    let text = if input.eat_prefix("HEADER.FIELDS") {
        let not = input.eat_prefix(".NOT");
        input.sp()?;
        let fields = input
            .paren_list(false, MAX_HEADER_FIELDS, Input::astring_utf8)
            .map_err(|error| match error {
                ParseError::Limit(message) => ParseError::Bad(message),
                other => other,
            })?;
        SectionText::HeaderFields { not, fields }
    } else if input.eat_prefix("HEADER") {
        SectionText::Header
    } else if input.eat_prefix("TEXT") {
        SectionText::Text
    } else if !section.part.is_empty() && input.eat_prefix("MIME") {
        SectionText::Mime
    } else {
        return bad("invalid section");
    };
    section.text = Some(text);
    input.expect(b']', "invalid section")?;
    Ok(section)
}

/// `section-binary = "[" [section-part] "]"`, called after the `[`.
fn section_binary(input: &mut Input) -> PResult<Vec<NonZeroU32>> {
    if input.eat(b']') {
        return Ok(Vec::new());
    }
    let part = section_part(input)?;
    input.expect(b']', "invalid binary section")?;
    Ok(part)
}

/// `partial = "<" number "." nz-number ">"` (optional; both 32-bit).
fn partial(input: &mut Input) -> PResult<Option<Partial>> {
    if !input.eat(b'<') {
        return Ok(None);
    }
    let offset = input.number()?;
    input.expect(b'.', "invalid partial")?;
    let length = input.nz_number()?;
    input.expect(b'>', "invalid partial")?;
    Ok(Some(Partial { offset, length }))
}

/// ```text
/// fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822" [".HEADER" / ".SIZE" /
///             ".TEXT"] / "BODY" ["STRUCTURE"] / "UID" / "MODSEQ" /
///             "BODY" section [partial] / "BODY.PEEK" section [partial] /
///             "BINARY" [".PEEK"] section-binary [partial] / "BINARY.SIZE" section-binary
/// ```
pub(crate) fn parse_fetch_att(input: &mut Input, binary: bool) -> PResult<FetchAttr> {
    for (prefix, peek) in [("BODY.PEEK[", true), ("BODY[", false)] {
        if input.eat_prefix(prefix) {
            let section = section(input)?;
            let partial = partial(input)?;
            return Ok(FetchAttr::BodySection {
                peek,
                section,
                partial,
            });
        }
    }
    for (prefix, peek) in [("BINARY.PEEK[", true), ("BINARY[", false)] {
        if input.eat_prefix(prefix) {
            if !binary {
                return bad("BINARY is not available");
            }
            let part = section_binary(input)?;
            let partial = partial(input)?;
            return Ok(FetchAttr::Binary {
                peek,
                part,
                partial,
            });
        }
    }
    if input.eat_prefix("BINARY.SIZE[") {
        if !binary {
            return bad("BINARY is not available");
        }
        return Ok(FetchAttr::BinarySize {
            part: section_binary(input)?,
        });
    }
    let word = input.atom()?.to_ascii_uppercase();
    Ok(match word.as_str() {
        "ENVELOPE" => FetchAttr::Envelope,
        "FLAGS" => FetchAttr::Flags,
        "INTERNALDATE" => FetchAttr::InternalDate,
        "RFC822.SIZE" => FetchAttr::Rfc822Size,
        "RFC822" => FetchAttr::Rfc822,
        "RFC822.HEADER" => FetchAttr::Rfc822Header,
        "RFC822.TEXT" => FetchAttr::Rfc822Text,
        "BODY" => FetchAttr::Body,
        "BODYSTRUCTURE" => FetchAttr::BodyStructure,
        "UID" => FetchAttr::Uid,
        "MODSEQ" => FetchAttr::ModSeq,
        _ => return bad("unknown fetch item"),
    })
}

/// `"ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")"`.
pub(crate) fn parse_fetch_atts(input: &mut Input, binary: bool) -> PResult<Vec<FetchAttr>> {
    use FetchAttr::{Body, Envelope, Flags, InternalDate, Rfc822Size};
    if input.peek() == Some(b'(') {
        return input
            .paren_list(false, 256, |input| parse_fetch_att(input, binary))
            .map_err(|error| match error {
                ParseError::Limit(message) => ParseError::Bad(message),
                other => other,
            });
    }
    // RFC 9051 §6.4.5: the macros.
    if input.eat_word("ALL") {
        return Ok(vec![Flags, InternalDate, Rfc822Size, Envelope]);
    }
    if input.eat_word("FAST") {
        return Ok(vec![Flags, InternalDate, Rfc822Size]);
    }
    if input.eat_word("FULL") {
        return Ok(vec![Flags, InternalDate, Rfc822Size, Envelope, Body]);
    }
    Ok(vec![parse_fetch_att(input, binary)?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::parser::line;

    fn parse(text: &str) -> PResult<Vec<FetchAttr>> {
        let mut input = line(text.as_bytes());
        let atts = parse_fetch_atts(&mut input, true)?;
        input.end()?;
        Ok(atts)
    }

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn rfc_examples() {
        // RFC 9051 §6.4.5.
        let atts = parse("(FLAGS BODY[HEADER.FIELDS (DATE FROM)])").unwrap();
        assert_eq!(
            atts,
            vec![
                FetchAttr::Flags,
                FetchAttr::BodySection {
                    peek: false,
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields {
                            not: false,
                            fields: vec!["DATE".into(), "FROM".into()]
                        })
                    },
                    partial: None
                }
            ]
        );
        assert_eq!(parse("FAST").unwrap().len(), 3);
        assert_eq!(parse("full").unwrap().len(), 5);
        let atts =
            parse("(BODY.PEEK[1.2.MIME]<0.2048> BINARY[1]<5.10> BINARY.SIZE[] MODSEQ)").unwrap();
        let FetchAttr::BodySection {
            section,
            partial,
            peek,
        } = &atts[0]
        else {
            panic!()
        };
        assert!(*peek);
        assert_eq!(section.to_string(), "1.2.MIME");
        assert_eq!(partial.unwrap().offset, 0);
        assert_eq!(
            atts[1],
            FetchAttr::Binary {
                peek: false,
                part: vec![nz(1)],
                partial: Some(Partial {
                    offset: 5,
                    length: nz(10)
                })
            }
        );
        assert_eq!(atts[2], FetchAttr::BinarySize { part: vec![] });
        let section = Section {
            part: vec![nz(4), nz(1)],
            text: Some(SectionText::HeaderFields {
                not: true,
                fields: vec!["X-A".into(), "a b".into()],
            }),
        };
        assert_eq!(section.to_string(), "4.1.HEADER.FIELDS.NOT (X-A \"a b\")");
    }

    #[test]
    fn edge_cases() {
        // SECURITY-TESTS IM-07.
        let deep: Vec<String> = (1..=30).map(|n| n.to_string()).collect();
        assert!(parse(&format!("BODY[{}]", deep.join("."))).is_ok());
        let too_deep: Vec<String> = (1..=101).map(|n| n.to_string()).collect();
        assert!(parse(&format!("BODY[{}]", too_deep.join("."))).is_err());
        for bad_item in [
            "BODY[0]",
            "BODY[]<0.4294967296>",
            "BODY[]<0.0>",
            "BODY[HEADER.FIELDS ()]",
            "BODY[MIME]",
            "BODY[1.]",
            "BODY[HEADER",
            "BINARY[HEADER]",
            "BINARY[1.TEXT]",
            "()",
            "(FLAGS",
            "BOGUS",
        ] {
            assert!(parse(bad_item).is_err(), "{bad_item}");
        }
        let atts = parse("BODY[]<4294967295.1>").unwrap();
        let FetchAttr::BodySection {
            partial: Some(partial),
            ..
        } = atts[0]
        else {
            panic!()
        };
        assert_eq!(partial.apply(b"short"), b"");
        let partial = Partial {
            offset: 2,
            length: nz(u32::MAX),
        };
        assert_eq!(partial.apply(b"short"), b"ort");
        let mut input = line(b"BINARY[1]");
        assert!(parse_fetch_atts(&mut input, false).is_err());
        let many = format!("BODY[HEADER.FIELDS ({})]", vec!["X"; 20_000].join(" "));
        assert!(parse(&many).is_err());
    }

    #[test]
    fn seen_rules() {
        assert!(parse("BODY[]").unwrap()[0].sets_seen());
        assert!(!parse("BODY.PEEK[]").unwrap()[0].sets_seen());
        assert!(parse("RFC822").unwrap()[0].sets_seen());
        assert!(!parse("RFC822.HEADER").unwrap()[0].sets_seen());
    }

    fn section_strategy() -> impl proptest::strategy::Strategy<Value = Section> {
        use proptest::prelude::*;
        let part = proptest::collection::vec(1u32..1000, 0..5)
            .prop_map(|part| part.into_iter().map(nz).collect::<Vec<_>>());
        let text = prop_oneof![
            Just(None),
            Just(Some(SectionText::Header)),
            Just(Some(SectionText::Text)),
            Just(Some(SectionText::Mime)),
            (
                any::<bool>(),
                proptest::collection::vec("[A-Za-z0-9 -]{1,10}", 1..4)
            )
                .prop_map(|(not, fields)| Some(SectionText::HeaderFields { not, fields })),
        ];
        (part, text).prop_map(|(part, text)| {
            // MIME needs a part number.
            let text = if part.is_empty() && text == Some(SectionText::Mime) {
                None
            } else {
                text
            };
            Section { part, text }
        })
    }

    proptest::proptest! {
        #[test]
        fn sections_round_trip(section in section_strategy(), offset in proptest::option::of(0u32..u32::MAX)) {
            let partial = offset.map(|offset| Partial { offset, length: nz(7) });
            let origin = partial.map(|p| format!("<{}.{}>", p.offset, p.length)).unwrap_or_default();
            let text = format!("BODY.PEEK[{section}]{origin}");
            let parsed = parse(&text).unwrap();
            proptest::prop_assert_eq!(parsed, vec![FetchAttr::BodySection { peek: true, section, partial }]);
        }
    }
}
