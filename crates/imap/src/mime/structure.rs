//! The part tree of a message, computed once in one bounded pass.
//!
//! ```text
//! multipart-body := [preamble CRLF] dash-boundary transport-padding CRLF body-part
//!                   *encapsulation close-delimiter transport-padding [CRLF epilogue]
//! encapsulation  := delimiter transport-padding CRLF body-part
//! delimiter      := CRLF dash-boundary        ; RFC 2046 §5.1.1: the CRLF before "--"
//! dash-boundary  := "--" boundary             ;   belongs to the delimiter, not the part
//! close-delimiter:= delimiter "--"
//! ```
//!
//! Each multipart scans only its own body for its own boundary, and each child is parsed inside
//! the range its delimiters give it, so the tree is acyclic by construction, offsets only nest,
//! an inner part reusing the outer boundary cannot escape its range (SECURITY-TESTS MD-03), and
//! total work is at most [`MAX_DEPTH`] passes over the message.

use super::MAX_DEPTH;
use super::MAX_PARTS;
use super::content::{ContentFields, DefaultType};
use super::envelope::Envelope;
use super::header::{header_end, next_line};

/// Longest boundary accepted; RFC 2046 §5.1.1 says 70, Postfix `mime_boundary_length_limit`
/// accepts 2048 (SECURITY-TESTS MD-07). A longer one makes the Content-Type invalid.
const MAX_BOUNDARY: usize = 2048;

/// A byte range `start..end` of the raw message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of this range, or nothing if `raw` is not the message this was computed from.
    pub fn slice<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        raw.get(self.start..self.end).unwrap_or_default()
    }
}

/// The cached summary of one message: everything FETCH needs except the bytes themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageStructure {
    /// The top-level message.
    pub message: MessageNode,
}

/// A message: the top level or one encapsulated in a message/rfc822 (or message/global) part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageNode {
    /// RFC 5322 header, the empty line that ends it included (RFC 9051 §6.4.5 HEADER).
    pub header: Span,
    /// Everything after the header (RFC 9051 §6.4.5 TEXT).
    pub body: Span,
    /// Header values ENVELOPE reports.
    pub envelope: Envelope,
    /// The body as a MIME part; its `header` is the message header.
    pub root: Part,
}

/// One MIME part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Part {
    /// The MIME header (RFC 9051 §6.4.5 MIME), the empty line included.
    pub header: Span,
    /// The body, in its transfer encoding (RFC 9051 `body-fld-octets` is its length).
    pub body: Span,
    /// LF count of the body, for text/* and encapsulated messages (`body-fld-lines`), else 0.
    pub lines: u64,
    pub content: ContentFields,
    pub kind: PartKind,
}

/// What a part contains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PartKind {
    /// A single part.
    #[default]
    Leaf,
    /// multipart/*: the children, at least one.
    Multipart(Vec<Part>),
    /// message/rfc822 or message/global: the encapsulated message.
    Message(Box<MessageNode>),
    /// Content not descended into because of [`MAX_DEPTH`] / [`MAX_PARTS`], or a message
    /// part with a non-identity transfer encoding; BODYSTRUCTURE shows APPLICATION/OCTET-STREAM.
    Opaque,
}

impl MessageStructure {
    /// Parses `raw`, bounded: never panics, linear in `raw.len()` times at most [`MAX_DEPTH`].
    pub fn parse(raw: &[u8]) -> MessageStructure {
        let mut parser = Parser { raw, parts: 0 };
        MessageStructure {
            message: parser.message(0, raw.len(), 0),
        }
    }

    /// Size of the message this was computed from (RFC822.SIZE).
    pub fn size(&self) -> usize {
        self.message.body.end
    }
}

struct Parser<'a> {
    raw: &'a [u8],
    /// Parts created so far (budget [`MAX_PARTS`]).
    parts: usize,
}

impl Parser<'_> {
    /// A message occupying `start..end`, its root part at `depth`.
    fn message(&mut self, start: usize, end: usize, depth: usize) -> MessageNode {
        let body_start = header_end(self.raw, start, end);
        let header = Span {
            start,
            end: body_start,
        };
        let body = Span {
            start: body_start,
            end,
        };
        MessageNode {
            header,
            body,
            envelope: Envelope::parse(self.raw, header),
            root: self.part(header, body, depth, DefaultType::Text),
        }
    }

    /// A part with the given header and body ranges.
    fn part(&mut self, header: Span, body: Span, depth: usize, default: DefaultType) -> Part {
        self.parts += 1;
        let mut content = ContentFields::parse(self.raw, header, default);
        let mut kind = PartKind::Leaf;
        if content.is_multipart() {
            match valid_boundary(&content) {
                // SECURITY-TESTS MD-01/MD-02: past the limits the multipart stays opaque.
                Some(_) if depth + 1 >= MAX_DEPTH || self.parts >= MAX_PARTS => {
                    kind = PartKind::Opaque;
                }
                Some(boundary) => {
                    let boundary = boundary.as_bytes().to_vec();
                    // RFC 2046 §5.1.5: in multipart/digest the default type is message/rfc822.
                    let child_default = if content.subtype.eq_ignore_ascii_case("digest") {
                        DefaultType::Message
                    } else {
                        DefaultType::Text
                    };
                    let budget = MAX_PARTS.saturating_sub(self.parts);
                    let spans = split_multipart(self.raw, body, &boundary, budget);
                    let mut children = Vec::with_capacity(spans.len());
                    for span in spans {
                        if self.parts >= MAX_PARTS {
                            break;
                        }
                        let header_stop = header_end(self.raw, span.start, span.end);
                        let child_header = Span {
                            start: span.start,
                            end: header_stop,
                        };
                        let child_body = Span {
                            start: header_stop,
                            end: span.end,
                        };
                        children.push(self.part(
                            child_header,
                            child_body,
                            depth + 1,
                            child_default,
                        ));
                    }
                    kind = if children.is_empty() {
                        // No delimiter line at all: RFC 2045 §5.2 (invalid Content-Type).
                        content = ContentFields::default_text();
                        PartKind::Leaf
                    } else {
                        PartKind::Multipart(children)
                    };
                }
                None => {
                    // RFC 2046 §5.1.1: a multipart needs a boundary; without one the
                    // Content-Type is invalid and RFC 2045 §5.2's default applies.
                    content = ContentFields::default_text();
                }
            }
        } else if content.is_message() {
            kind = if !content.has_identity_encoding() {
                // RFC 2046 §5.2.1: message/rfc822 allows only 7bit/8bit/binary; an encoded one
                // is not parsed as a message (its section numbers would not be byte ranges).
                PartKind::Opaque
            } else if depth + 1 >= MAX_DEPTH || self.parts >= MAX_PARTS {
                PartKind::Opaque
            } else {
                PartKind::Message(Box::new(self.message(body.start, body.end, depth + 1)))
            };
        }
        let lines = if content.is_text() || matches!(kind, PartKind::Message(_)) {
            count_lines(body.slice(self.raw))
        } else {
            0
        };
        Part {
            header,
            body,
            lines,
            content,
            kind,
        }
    }
}

/// The boundary parameter if RFC 2046 §5.1.1 allows it (1..=[`MAX_BOUNDARY`] octets).
fn valid_boundary(content: &ContentFields) -> Option<&str> {
    content
        .param("boundary")
        .filter(|b| !b.is_empty() && b.len() <= MAX_BOUNDARY)
}

/// LF count (`body-fld-lines`, RFC 9051 §7.5.2: "size of the body in text lines").
pub(crate) fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Delimiter {
    Open,
    Close,
}

/// RFC 2046 §5.1.1: `"--" boundary` at the start of a line, then transport padding (LWSP) for a
/// delimiter or `"--"` for the close-delimiter. Text after padding is tolerated; a longer
/// boundary (`--bb` for `b`) is not a match.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<Delimiter> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    match rest {
        [b'-', b'-', ..] => Some(Delimiter::Close),
        [] | [b' ' | b'\t' | b'\r' | b'\n', ..] => Some(Delimiter::Open),
        _ => None,
    }
}

/// The ranges of the body parts of a multipart body (RFC 2046 §5.1.1), at most `max` of them.
/// Preamble and epilogue are skipped; without a close-delimiter the last part runs to the end.
fn split_multipart(raw: &[u8], body: Span, boundary: &[u8], max: usize) -> Vec<Span> {
    let end = body.end.min(raw.len());
    let mut spans = Vec::new();
    let mut current: Option<usize> = None;
    let mut pos = body.start;
    while pos < end && spans.len() < max {
        let line_end = next_line(raw, pos, end);
        let line = raw.get(pos..line_end).unwrap_or_default();
        if let Some(kind) = delimiter(line, boundary) {
            if let Some(part_start) = current {
                // RFC 2046 §5.1.1: the CRLF preceding the delimiter belongs to it.
                let mut part_end = pos;
                if part_end > part_start && raw.get(part_end - 1) == Some(&b'\n') {
                    part_end -= 1;
                    if part_end > part_start && raw.get(part_end - 1) == Some(&b'\r') {
                        part_end -= 1;
                    }
                }
                spans.push(Span {
                    start: part_start,
                    end: part_end,
                });
            }
            if kind == Delimiter::Close {
                return spans;
            }
            current = Some(line_end);
        }
        pos = line_end;
    }
    if let Some(part_start) = current
        && spans.len() < max
    {
        // Truncated message: the last part ends where the message does.
        spans.push(Span {
            start: part_start,
            end,
        });
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters() {
        assert!(delimiter(b"--b\r\n", b"b") == Some(Delimiter::Open));
        assert!(delimiter(b"--b  \r\n", b"b") == Some(Delimiter::Open));
        assert!(delimiter(b"--b--\r\n", b"b") == Some(Delimiter::Close));
        assert!(delimiter(b"--b", b"b") == Some(Delimiter::Open));
        assert!(delimiter(b"--bb\r\n", b"b").is_none());
        assert!(delimiter(b"x--b\r\n", b"b").is_none());
    }

    #[test]
    fn split() {
        let raw = b"pre\r\n--b\r\n\r\none\r\n--b\r\nX: y\r\n\r\ntwo\r\n--b--\r\nepi\r\n";
        let spans = split_multipart(
            raw,
            Span {
                start: 0,
                end: raw.len(),
            },
            b"b",
            100,
        );
        let got: Vec<&[u8]> = spans.iter().map(|s| s.slice(raw)).collect();
        assert_eq!(got, vec![&b"\r\none"[..], &b"X: y\r\n\r\ntwo"[..]]);
        let spans = split_multipart(
            raw,
            Span {
                start: 0,
                end: raw.len(),
            },
            b"b",
            1,
        );
        assert_eq!(spans.len(), 1);
    }

    #[test]
    fn empty_parts_and_truncation() {
        let raw = b"--b\r\n--b\r\nx";
        let spans = split_multipart(
            raw,
            Span {
                start: 0,
                end: raw.len(),
            },
            b"b",
            100,
        );
        let got: Vec<&[u8]> = spans.iter().map(|s| s.slice(raw)).collect();
        assert_eq!(got, vec![&b""[..], &b"x"[..]]);
    }
}
