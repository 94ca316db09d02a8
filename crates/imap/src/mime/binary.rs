//! BINARY[section-binary] and BINARY.SIZE (RFC 3516 §4, RFC 9051 §6.4.5), and the
//! Content-Transfer-Encoding decoders (RFC 2045 §6.7, §6.8) SEARCH shares.
//!
//! ```text
//! section-binary = "[" [section-part] "]"          ; RFC 9051 §9
//! ```
//!
//! Decoding is lenient as RFC 2045 asks (§6.8: characters outside the base64 alphabet are
//! ignored; §6.7 note: a malformed `=` sequence is kept as it is), linear and one pass, so
//! 20 MB of invalid base64 or 5 MB of soft line breaks cost one scan (SECURITY-TESTS MD-09).

use std::borrow::Cow;

use super::section::Target;
use super::structure::{MessageStructure, Part, PartKind};

/// Why BINARY cannot be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// RFC 3516 §4.2 / RFC 9051 §7.1: the service answers `NO [UNKNOWN-CTE]`.
    #[error("unknown Content-Transfer-Encoding {0:?}")]
    UnknownCte(String),
}

/// A transfer encoding we can undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cte {
    Identity,
    Base64,
    QuotedPrintable,
}

/// Classifies a part's Content-Transfer-Encoding (RFC 2045 §6.1).
pub(crate) fn cte(part: &Part) -> Result<Cte, BinaryError> {
    match part.content.encoding.as_deref() {
        None | Some("" | "7bit" | "8bit" | "binary") => Ok(Cte::Identity),
        Some("base64") => Ok(Cte::Base64),
        Some("quoted-printable") => Ok(Cte::QuotedPrintable),
        Some(other) => Err(BinaryError::UnknownCte(other.to_string())),
    }
}

/// Where decoded octets go: a buffer, or a counter for BINARY.SIZE.
pub(crate) trait Sink {
    fn put(&mut self, b: u8);
    fn put_slice(&mut self, s: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, b: u8) {
        self.push(b);
    }
    fn put_slice(&mut self, s: &[u8]) {
        self.extend_from_slice(s);
    }
}

struct Counter(u64);

impl Sink for Counter {
    fn put(&mut self, _: u8) {
        self.0 += 1;
    }
    fn put_slice(&mut self, s: &[u8]) {
        self.0 += s.len() as u64;
    }
}

fn base64_value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// RFC 2045 §6.8 base64: characters outside the alphabet are ignored; `=` ends a quantum (a
/// later quantum, as concatenated encoders produce, is decoded too).
pub(crate) fn decode_base64<S: Sink>(input: &[u8], out: &mut S) {
    let mut acc: u32 = 0;
    let mut n = 0u8;
    for &b in input {
        if let Some(v) = base64_value(b) {
            acc = (acc << 6) | v;
            n += 1;
            if n == 4 {
                out.put_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
                acc = 0;
                n = 0;
            }
        } else if b == b'=' {
            flush_base64(acc, n, out);
            acc = 0;
            n = 0;
        }
    }
    flush_base64(acc, n, out);
}

fn flush_base64<S: Sink>(acc: u32, n: u8, out: &mut S) {
    match n {
        2 => out.put((acc >> 4) as u8),
        3 => out.put_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// RFC 2045 §6.7 quoted-printable: `=XX` octets, `=` at line end is a soft line break, trailing
/// whitespace on a line is transport padding and removed (rule 3); line ends are kept as they
/// are; a malformed `=` is kept literally (§6.7 note 2).
pub(crate) fn decode_quoted_printable<S: Sink>(input: &[u8], out: &mut S) {
    let mut pos = 0;
    while pos < input.len() {
        let nl = input
            .get(pos..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            .map(|i| pos + i);
        let (line_end, next) = match nl {
            Some(i) if i > pos && input.get(i - 1) == Some(&b'\r') => (i - 1, i + 1),
            Some(i) => (i, i + 1),
            None => (input.len(), input.len()),
        };
        let terminator = input.get(line_end..next).unwrap_or_default();
        let mut line = input.get(pos..line_end).unwrap_or_default();
        while let [rest @ .., b' ' | b'\t'] = line {
            line = rest;
        }
        let soft = line.last() == Some(&b'=');
        if soft {
            line = line.get(..line.len() - 1).unwrap_or_default();
        }
        let mut i = 0;
        while let Some(&b) = line.get(i) {
            if b == b'='
                && let (Some(h), Some(l)) = (
                    line.get(i + 1).copied().and_then(hex),
                    line.get(i + 2).copied().and_then(hex),
                )
            {
                out.put((h << 4) | l);
                i += 3;
                continue;
            }
            out.put(b);
            i += 1;
        }
        if !soft {
            out.put_slice(terminator);
        }
        pos = next;
    }
}

/// Decodes `body` per `cte` into `out`.
pub(crate) fn decode_into<S: Sink>(body: &[u8], cte: Cte, out: &mut S) {
    match cte {
        Cte::Identity => out.put_slice(body),
        Cte::Base64 => decode_base64(body, out),
        Cte::QuotedPrintable => decode_quoted_printable(body, out),
    }
}

/// The decoded body of a leaf part (borrowed when the encoding is the identity).
pub(crate) fn decoded<'r>(raw: &'r [u8], part: &Part) -> Result<Cow<'r, [u8]>, BinaryError> {
    let body = part.body.slice(raw);
    match cte(part)? {
        Cte::Identity => Ok(Cow::Borrowed(body)),
        other => {
            let mut out = Vec::with_capacity(body.len());
            decode_into(body, other, &mut out);
            Ok(Cow::Owned(out))
        }
    }
}

/// Whether BINARY decodes this part: single parts only; a multipart or an encapsulated message
/// is already 7bit/8bit/binary (RFC 2045 §6.4) and is returned as it is.
fn is_leaf(part: &Part) -> bool {
    matches!(part.kind, PartKind::Leaf | PartKind::Opaque)
}

impl MessageStructure {
    /// BINARY[path] (RFC 3516 §4.2): the section with its transfer encoding removed. An empty
    /// path is the whole message as stored; a part that does not exist is empty. The service
    /// applies `<partial>` to this decoded data ([`super::apply_partial`]).
    pub fn binary<'r>(&self, raw: &'r [u8], path: &[u32]) -> Result<Cow<'r, [u8]>, BinaryError> {
        match self.resolve(path) {
            None => Ok(Cow::Borrowed(&[])),
            Some(Target::Message(_)) => Ok(Cow::Borrowed(raw)),
            Some(Target::Part(part)) if is_leaf(part) => decoded(raw, part),
            Some(Target::Part(part)) => Ok(Cow::Borrowed(part.body.slice(raw))),
        }
    }

    /// BINARY.SIZE[path] (RFC 3516 §4.2): the decoded size, counted without buffering.
    pub fn binary_size(&self, raw: &[u8], path: &[u32]) -> Result<u64, BinaryError> {
        match self.resolve(path) {
            None => Ok(0),
            Some(Target::Message(_)) => Ok(raw.len() as u64),
            Some(Target::Part(part)) if is_leaf(part) => {
                let mut counter = Counter(0);
                decode_into(part.body.slice(raw), cte(part)?, &mut counter);
                Ok(counter.0)
            }
            Some(Target::Part(part)) => Ok(part.body.len() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decode_base64(s, &mut out);
        out
    }

    fn qp(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decode_quoted_printable(s, &mut out);
        out
    }

    #[test]
    fn base64_lenient() {
        assert_eq!(b64(b"aGVsbG8="), b"hello");
        assert_eq!(b64(b"aGVs\r\nbG8h"), b"hello!");
        assert_eq!(b64(b"aG!!Vs bG8"), b"hello");
        assert_eq!(b64(b"aQ==aQ=="), b"ii");
        assert_eq!(b64(&b"!!!!".repeat(1000)), b"");
    }

    #[test]
    fn quoted_printable() {
        assert_eq!(qp(b"caf=C3=A9 \r\nx=\r\ny"), "café\r\nxy".as_bytes());
        assert_eq!(qp(b"a=\r\n=\r\n=\r\nb"), b"ab");
        assert_eq!(qp(b"bad =Z1 =\tx\n"), b"bad =Z1 =\tx\n");
        assert_eq!(qp(b"soft=  \r\nend"), b"softend");
    }
}
