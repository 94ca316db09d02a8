//! Header blocks and fields (RFC 5322 §2.2, §3.5), linear and allocation-free.
//!
//! ```text
//! message      = fields CRLF [body]                    ; RFC 5322 §3.5
//! field        = field-name ":" unstructured CRLF
//! field-name   = 1*ftext                               ; obs: WSP allowed before ":"
//! folding      = CRLF 1*WSP                            ; §2.2.3: a line starting with WSP
//!                                                      ; continues the previous field
//! ```
//!
//! Lines end with LF, with or without CR (the store normalises to CRLF; this code does not rely
//! on it).

use std::ops::Range;

/// Finds the end of the header block starting at `start`: the offset just after the empty line
/// that ends it (RFC 5322 §2.1: the header is separated from the body by an empty line), or `end`
/// when there is none (a message with no body, SECURITY-TESTS MD-11).
pub(crate) fn header_end(raw: &[u8], start: usize, end: usize) -> usize {
    let end = end.min(raw.len());
    let mut pos = start;
    while pos < end {
        let line_end = next_line(raw, pos, end);
        let line = raw.get(pos..line_end).unwrap_or_default();
        if line == b"\r\n" || line == b"\n" {
            return line_end;
        }
        pos = line_end;
    }
    end
}

/// The offset after the LF ending the line that starts at `pos` (or `end`).
pub(crate) fn next_line(raw: &[u8], pos: usize, end: usize) -> usize {
    raw.get(pos..end)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        .map_or(end, |i| pos + i + 1)
}

/// One header field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field<'a> {
    /// The name, trailing WSP removed (RFC 5322 §4.5 obs-optional); empty for a line with no
    /// colon (kept so that HEADER.FIELDS.NOT returns it, never matched by name).
    pub name: &'a [u8],
    /// After the colon up to the end of the last line, line terminators included.
    pub value: &'a [u8],
    /// The whole field, continuation lines and final line terminator included.
    pub full: &'a [u8],
}

/// The fields of the header block `raw[range]`, in order, stopping at the empty line.
pub(crate) fn fields(raw: &[u8], range: Range<usize>) -> Fields<'_> {
    let end = range.end.min(raw.len());
    Fields {
        raw,
        pos: range.start.min(end),
        end,
    }
}

pub(crate) struct Fields<'a> {
    raw: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let start = self.pos;
        if start >= self.end {
            return None;
        }
        let mut line_end = next_line(self.raw, start, self.end);
        let first = self.raw.get(start..line_end)?;
        if first == b"\r\n" || first == b"\n" {
            self.pos = self.end;
            return None;
        }
        let first_line_end = line_end;
        // RFC 5322 §2.2.3: lines starting with WSP continue the field.
        while line_end < self.end && matches!(self.raw.get(line_end), Some(b' ' | b'\t')) {
            line_end = next_line(self.raw, line_end, self.end);
        }
        self.pos = line_end;
        let full = self.raw.get(start..line_end)?;
        let first = self.raw.get(start..first_line_end)?;
        let (name, value) = match first.iter().position(|&b| b == b':') {
            Some(colon) if !first.starts_with(b" ") && !first.starts_with(b"\t") => {
                let name = first.get(..colon).unwrap_or_default();
                (
                    trim_end_wsp(name),
                    full.get(colon + 1..).unwrap_or_default(),
                )
            }
            _ => (&b""[..], full),
        };
        Some(Field { name, value, full })
    }
}

fn trim_end_wsp(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Unfolds a field value (RFC 5322 §2.2.3: remove the CRLF of each folding; also stray CR/LF),
/// trims surrounding WSP and keeps at most `cap` octets (cut back to a UTF-8 boundary).
pub(crate) fn unfold(value: &[u8], cap: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len().min(cap));
    let mut truncated = false;
    for &b in value {
        if b != b'\r' && b != b'\n' {
            if out.len() >= cap {
                truncated = true;
                break;
            }
            out.push(b);
        }
    }
    if truncated {
        drop_incomplete_utf8_tail(&mut out);
    }
    let start = out
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(out.len());
    let end = out
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    out.truncate(end);
    out.drain(..start);
    out
}

/// Removes a UTF-8 sequence cut short at the end of `out`.
fn drop_incomplete_utf8_tail(out: &mut Vec<u8>) {
    let from = out.len().saturating_sub(4);
    let Some(lead) = (from..out.len())
        .rev()
        .find(|&i| out.get(i).is_some_and(|&b| b & 0xC0 != 0x80))
    else {
        return;
    };
    let need = match out.get(lead) {
        Some(&b) if b >= 0xF0 => 4,
        Some(&b) if b >= 0xE0 => 3,
        Some(&b) if b >= 0xC0 => 2,
        _ => 1,
    };
    if out.len() - lead < need {
        out.truncate(lead);
    }
}

/// [`unfold`] as text (invalid UTF-8 replaced).
pub(crate) fn unfold_string(value: &[u8], cap: usize) -> String {
    match String::from_utf8(unfold(value, cap)) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// ASCII case-insensitive name comparison (RFC 5322 §1.2.2: field names are case-insensitive).
pub(crate) fn name_is(name: &[u8], wanted: &str) -> bool {
    name.eq_ignore_ascii_case(wanted.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_iterate() {
        let raw = b"A: 1\r\nB : two\r\n  folded\r\nnocolon\r\n\r\nbody\r\n";
        let end = header_end(raw, 0, raw.len());
        assert_eq!(&raw[end..], b"body\r\n");
        let f: Vec<_> = fields(raw, 0..end).collect();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].name, b"A");
        assert_eq!(f[1].name, b"B");
        assert_eq!(f[1].value, b" two\r\n  folded\r\n");
        assert_eq!(f[1].full, b"B : two\r\n  folded\r\n");
        assert_eq!(f[2].name, b"");
        assert_eq!(unfold(f[1].value, 100), b"two  folded");
    }

    #[test]
    fn no_blank_line_and_leading_blank() {
        assert_eq!(header_end(b"A: 1\r\nB: 2", 0, 10), 10);
        assert_eq!(header_end(b"\r\nbody", 0, 6), 2);
        assert_eq!(header_end(b"\nbody", 0, 5), 1);
    }

    #[test]
    fn unfold_caps_on_char_boundary() {
        assert_eq!(unfold("aé".as_bytes(), 2), b"a");
        assert_eq!(unfold("aéb".as_bytes(), 3), "aé".as_bytes());
        assert_eq!(unfold("  x  ".as_bytes(), 100), b"x");
    }
}
