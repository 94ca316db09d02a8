//! The header section of a message as a list of fields with their byte ranges, so that
//! fields can be counted, dropped or replaced without parsing the message twice.

use std::ops::Range;

/// One header field: its name and the bytes of the whole field, folded lines and the final
/// CRLF included (RFC 5322 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    /// The value after the colon, unfolded lines still folded.
    pub value: &'a [u8],
    pub range: Range<usize>,
}

impl Field<'_> {
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// The fields of the header section of `message`, up to the empty line (RFC 5322 §2.1).
/// A line without a colon that is not a continuation ends the header section, as it would
/// for any parser that does not guess.
pub fn header_fields(message: &[u8]) -> Vec<Field<'_>> {
    let mut fields = Vec::new();
    let mut position = 0;
    while position < message.len() {
        let rest = &message[position..];
        if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            break;
        }
        // RFC 5322 §2.2.3: a field goes on over lines that begin with white space.
        let mut end = position;
        loop {
            let line_end = match message[end..].iter().position(|&byte| byte == b'\n') {
                Some(offset) => end + offset + 1,
                None => message.len(),
            };
            end = line_end;
            match message.get(end) {
                Some(b' ' | b'\t') => continue,
                _ => break,
            }
        }
        let field = &message[position..end];
        let Some(colon) = field.iter().position(|&byte| byte == b':') else {
            break;
        };
        let name = trim_end(&field[..colon]);
        if name.is_empty() {
            break;
        }
        fields.push(Field {
            name,
            value: &field[colon + 1..],
            range: position..end,
        });
        position = end;
    }
    fields
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|byte| !byte.is_ascii_whitespace())
        .map_or(0, |last| last + 1);
    &bytes[..end]
}

/// `message` without the fields at `dropped` (ranges from [`header_fields`]).
pub fn without(message: &[u8], dropped: &[Range<usize>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut position = 0;
    for range in dropped {
        if range.start >= position && range.end <= message.len() {
            out.extend_from_slice(&message[position..range.start]);
            position = range.end;
        }
    }
    out.extend_from_slice(&message[position..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_span_their_folded_lines() {
        let message =
            b"From: a@example.com\r\nSubject: one\r\n two\r\nX: y\r\n\r\nbody\r\nZ: no\r\n";
        let fields = header_fields(message);
        let names: Vec<&[u8]> = fields.iter().map(|field| field.name).collect();
        assert_eq!(names, [&b"From"[..], b"Subject", b"X"]);
        assert_eq!(
            &message[fields[1].range.clone()],
            b"Subject: one\r\n two\r\n"
        );
        assert_eq!(fields[1].value, b" one\r\n two\r\n");
        assert!(fields[0].is("from"));
    }

    #[test]
    fn dropping_fields_keeps_the_rest_byte_for_byte() {
        let message = b"A: 1\r\nB: 2\r\n\tmore\r\nC: 3\r\n\r\nbody";
        let fields = header_fields(message);
        let out = without(message, &[fields[1].range.clone()]);
        assert_eq!(out, b"A: 1\r\nC: 3\r\n\r\nbody");
    }

    #[test]
    fn a_message_without_body_or_colon_ends_cleanly() {
        assert_eq!(header_fields(b"A: 1").len(), 1);
        assert_eq!(header_fields(b"garbage line\r\nA: 1\r\n").len(), 0);
        assert!(header_fields(b"").is_empty());
        assert!(header_fields(b":x\r\n").is_empty());
    }
}
