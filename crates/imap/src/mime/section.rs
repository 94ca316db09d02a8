//! BODY[section]<partial> (RFC 9051 §6.4.5, RFC 3501 §6.4.5).
//!
//! ```text
//! section         = "[" [section-spec] "]"
//! section-spec    = section-msgtext / (section-part ["." section-text])
//! section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
//! section-part    = nz-number *("." nz-number)
//! section-text    = section-msgtext / "MIME"
//! partial         = "<" number64 "." nz-number64 ">"
//! ```
//!
//! Part numbering (RFC 9051 §6.4.5): a multipart's children are 1..n; a message that is not
//! multipart has only part 1, its body; the parts of a message/rfc822 part are numbered as the
//! parts of the message it encapsulates. Sections that do not exist are empty; HEADER, TEXT and
//! HEADER.FIELDS on a part that is not message/rfc822 are empty too (RFC 9051 §6.4.5 allows
//! them only on message parts; Mark Crispin on imap-protocol, 2011: return "").

use std::borrow::Cow;
use std::collections::HashSet;

use super::header::fields;
use super::structure::{MessageNode, MessageStructure, Part, PartKind};

/// A parsed section: the part path (`1.2.3`, empty for the whole message) and what of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SectionSpec {
    pub path: Vec<u32>,
    pub kind: SectionKind,
}

/// What a section selects of the part (or message) `path` designates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SectionKind {
    /// `[]` / `[1.2]`: the whole message, or the body of a part.
    #[default]
    Full,
    /// `HEADER`: the RFC 5322 header, its terminating empty line included.
    Header,
    /// `HEADER.FIELDS (names)` / `HEADER.FIELDS.NOT (names)` (`not`).
    HeaderFields { names: Vec<String>, not: bool },
    /// `TEXT`: the body of the message.
    Text,
    /// `MIME`: the MIME header of a part (only with a part path).
    Mime,
}

/// What a part path designates.
pub(crate) enum Target<'s> {
    /// The top-level message (empty path).
    Message(&'s MessageNode),
    Part(&'s Part),
}

impl MessageStructure {
    /// Resolves a part path (RFC 9051 §6.4.5 numbering); `None` if there is no such part.
    pub(crate) fn resolve(&self, path: &[u32]) -> Option<Target<'_>> {
        let mut current: Option<&Part> = None;
        for &n in path {
            let index = usize::try_from(n).ok()?.checked_sub(1)?;
            let next = match current {
                None => in_message(&self.message, index),
                Some(part) => match &part.kind {
                    PartKind::Multipart(children) => children.get(index),
                    PartKind::Message(inner) => in_message(inner, index),
                    PartKind::Leaf | PartKind::Opaque => None,
                },
            };
            current = Some(next?);
        }
        Some(match current {
            None => Target::Message(&self.message),
            Some(part) => Target::Part(part),
        })
    }

    /// The octets of `spec` (before any `<partial>`, see [`apply_partial`]).
    pub fn section<'r>(&self, raw: &'r [u8], spec: &SectionSpec) -> Cow<'r, [u8]> {
        let Some(target) = self.resolve(&spec.path) else {
            // RFC 9051 §6.4.5: a section that does not exist is returned empty.
            return Cow::Borrowed(&[]);
        };
        // The message HEADER/TEXT/HEADER.FIELDS apply to: the top level, or the message
        // encapsulated in a message/rfc822 part.
        let message = match target {
            Target::Message(m) => Some(m),
            Target::Part(part) => match &part.kind {
                PartKind::Message(inner) => Some(&**inner),
                _ => None,
            },
        };
        match &spec.kind {
            SectionKind::Full => match target {
                Target::Message(_) => Cow::Borrowed(raw),
                Target::Part(part) => Cow::Borrowed(part.body.slice(raw)),
            },
            SectionKind::Mime => match target {
                // RFC 9051 §6.4.5: "MIME" needs a part number.
                Target::Message(_) => Cow::Borrowed(&[]),
                Target::Part(part) => Cow::Borrowed(part.header.slice(raw)),
            },
            SectionKind::Header => {
                message.map_or(Cow::Borrowed(&[]), |m| Cow::Borrowed(m.header.slice(raw)))
            }
            SectionKind::Text => {
                message.map_or(Cow::Borrowed(&[]), |m| Cow::Borrowed(m.body.slice(raw)))
            }
            SectionKind::HeaderFields { names, not } => match message {
                Some(m) => Cow::Owned(header_fields(
                    raw,
                    m.header.start..m.header.end,
                    names,
                    *not,
                )),
                None => Cow::Borrowed(&[]),
            },
        }
    }
}

/// Part `index` (0-based) of a message: a multipart body's child, or the body itself for 0.
fn in_message(message: &MessageNode, index: usize) -> Option<&Part> {
    match &message.root.kind {
        PartKind::Multipart(children) => children.get(index),
        _ => (index == 0).then_some(&message.root),
    }
}

/// RFC 9051 §6.4.5 HEADER.FIELDS / HEADER.FIELDS.NOT: the matching fields (case-insensitive
/// names), in message order, as they are (folding kept), followed by the empty line.
fn header_fields(
    raw: &[u8],
    header: std::ops::Range<usize>,
    names: &[String],
    not: bool,
) -> Vec<u8> {
    let wanted: HashSet<Vec<u8>> = names
        .iter()
        .map(|n| n.trim().as_bytes().to_ascii_lowercase())
        .collect();
    let longest = wanted.iter().map(Vec::len).max().unwrap_or(0);
    let mut lower = Vec::with_capacity(longest);
    let mut out = Vec::new();
    for field in fields(raw, header) {
        let matched = !field.name.is_empty() && field.name.len() <= longest && {
            lower.clear();
            lower.extend(field.name.iter().map(u8::to_ascii_lowercase));
            wanted.contains(&lower)
        };
        if matched != not {
            out.extend_from_slice(field.full);
            if !field.full.ends_with(b"\n") {
                // The last field of a header with no body has no line end.
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Applies `<origin.count>` (RFC 9051 §6.4.5): at most `count` octets from `origin`; empty if
/// `origin` is beyond the end. HEADER.FIELDS subsets are computed first, as the RFC requires.
pub fn apply_partial(data: Cow<'_, [u8]>, origin: u64, count: u64) -> Cow<'_, [u8]> {
    let len = data.len();
    let start = usize::try_from(origin).unwrap_or(usize::MAX).min(len);
    let end = start
        .saturating_add(usize::try_from(count).unwrap_or(usize::MAX))
        .min(len);
    match data {
        Cow::Borrowed(b) => Cow::Borrowed(b.get(start..end).unwrap_or_default()),
        Cow::Owned(mut v) => {
            v.truncate(end);
            v.drain(..start);
            Cow::Owned(v)
        }
    }
}
