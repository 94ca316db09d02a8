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
/// A line that is no field (no colon, an empty or invalid name) is skipped, not taken as the
/// end of the header section: readers of the stored message (IMAP, mail clients) go on to
/// the empty line too, and every field they show must be one the checks saw. Such a message
/// is refused anyway ([`is_well_formed`]).
pub fn header_fields(message: &[u8]) -> Vec<Field<'_>> {
    let mut fields = Vec::new();
    let mut position = 0;
    while let Some(rest) = message.get(position..).filter(|rest| !rest.is_empty()) {
        if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            break;
        }
        let end = field_end(message, position);
        let field = message.get(position..end).unwrap_or_default();
        if let Some((name, value)) = split_field(field) {
            fields.push(Field {
                name,
                value,
                range: position..end,
            });
        }
        position = end;
    }
    fields
}

/// Where the field starting at `start` ends: after its last line, continuation lines (those
/// beginning with white space, RFC 5322 §2.2.3) included.
fn field_end(message: &[u8], start: usize) -> usize {
    let mut end = start;
    loop {
        end = match message
            .get(end..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        {
            Some(offset) => end + offset + 1,
            None => return message.len(),
        };
        if !matches!(message.get(end), Some(b' ' | b'\t')) {
            return end;
        }
    }
}

/// RFC 5322 §3.6.8: `field-name ":" unstructured`, field-name = 1*ftext (printable US-ASCII
/// but the colon). `None` for anything else.
fn split_field(field: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = field.iter().position(|&byte| byte == b':')?;
    let name = trim_end(field.get(..colon)?);
    let valid = !name.is_empty() && name.iter().all(|&byte| (33..=126).contains(&byte));
    valid.then(|| (name, field.get(colon + 1..).unwrap_or_default()))
}

/// Whether every line of the header section is a field or the continuation of one (RFC 5322
/// §2.2): a stray line makes parsers disagree about which fields there are (one stops at it,
/// another reads on), which an attacker uses to show a From that DMARC never saw.
pub fn is_well_formed(message: &[u8]) -> bool {
    let mut position = 0;
    while let Some(rest) = message.get(position..).filter(|rest| !rest.is_empty()) {
        if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            return true;
        }
        if position == 0 && matches!(rest.first(), Some(b' ' | b'\t')) {
            return false;
        }
        let end = field_end(message, position);
        if split_field(message.get(position..end).unwrap_or_default()).is_none() {
            return false;
        }
        position = end;
    }
    true
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
        assert!(header_fields(b"").is_empty());
        assert!(header_fields(b":x\r\n").is_empty());
    }

    #[test]
    fn stray_lines_are_skipped_not_taken_as_the_end_and_make_the_header_malformed() {
        // A reader that stops at the stray line would miss the From after it; IMAP does not.
        for message in [
            &b"garbage line\r\nFrom: ceo@paypal.example\r\n\r\nbody"[..],
            b":\r\nFrom: ceo@paypal.example\r\n\r\nbody",
            b"Subject: x\r\nbad name: y\r\nFrom: ceo@paypal.example\r\n\r\nbody",
            b" leading continuation\r\nFrom: ceo@paypal.example\r\n\r\nbody",
        ] {
            let fields = header_fields(message);
            assert!(fields.iter().any(|field| field.is("From")), "{message:?}");
            assert!(!is_well_formed(message), "{message:?}");
        }
        assert!(is_well_formed(
            b"From: a@b.example\r\nSubject: x\r\n y\r\n\r\nno: header\r\nstray\r\n"
        ));
        assert!(is_well_formed(b"From: a@b.example"));
        assert!(is_well_formed(b""));
    }
}
