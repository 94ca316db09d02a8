//! Encoding primitives for server responses (RFC 9051 §4, §9): strings as atoms, quoted
//! strings or literals, mailbox names per the session's revision, flag lists.
//!
//! Every function appends to an output buffer and chooses the safest form: a quoted
//! string only when every octet is allowed inside quotes for this client, a literal
//! otherwise, so no value can break out of its token (no CRLF injection into the
//! response stream).

use crate::core::flags::Flag;
use crate::core::mutf7;
use crate::core::parser::is_astring_char;

/// Strings longer than this go as literals even when they could be quoted.
const MAX_QUOTED: usize = 1024;

/// How strings may be written to this client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Encoding {
    /// UTF-8 is allowed in quoted strings, text and mailbox names: the client enabled
    /// IMAP4rev2 (RFC 9051 §4.3 QUOTED-CHAR includes UTF8-2/3/4) or UTF8=ACCEPT
    /// (RFC 6855 §3). Otherwise 8-bit data goes as a literal and mailbox names as
    /// modified UTF-7 (RFC 3501 §5.1.3).
    pub utf8: bool,
}

/// Whether `bytes` can be sent as a quoted string: no NUL, CR or LF (TEXT-CHAR), no other
/// C0 control either (kept out of quoted strings for the sake of terminals and logs),
/// and 8-bit only as well-formed UTF-8 to a UTF-8 client.
fn quotable(bytes: &[u8], encoding: Encoding) -> bool {
    if bytes.len() > MAX_QUOTED {
        return false;
    }
    if bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return false;
    }
    bytes.is_ascii() || (encoding.utf8 && std::str::from_utf8(bytes).is_ok())
}

/// `quoted`, escaping `"` and `\`. The caller has checked [`quotable`].
fn write_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &byte in bytes {
        if byte == b'"' || byte == b'\\' {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out.push(b'"');
}

/// `literal = "{" number64 "}" CRLF *CHAR8`.
pub fn write_literal(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
}

/// `literal8 = "~{" number64 "}" CRLF *OCTET` (RFC 3516 §4.2): only in BINARY data.
pub fn write_literal8(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("~{{{}}}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
}

/// `string = quoted / literal`.
pub fn write_string(out: &mut Vec<u8>, bytes: &[u8], encoding: Encoding) {
    if quotable(bytes, encoding) {
        write_quoted(out, bytes);
    } else {
        write_literal(out, bytes);
    }
}

/// `nstring = string / nil`.
pub fn write_nstring(out: &mut Vec<u8>, bytes: Option<&[u8]>, encoding: Encoding) {
    match bytes {
        Some(bytes) => write_string(out, bytes, encoding),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// `astring`: an atom when it is one (and not `NIL`, which a reader of an nstring
/// would take for nil), otherwise a string.
pub fn write_astring(out: &mut Vec<u8>, bytes: &[u8], encoding: Encoding) {
    if !bytes.is_empty()
        && bytes.iter().all(|&b| is_astring_char(b))
        && !bytes.eq_ignore_ascii_case(b"NIL")
    {
        out.extend_from_slice(bytes);
    } else {
        write_string(out, bytes, encoding);
    }
}

/// A mailbox name (`mailbox = "INBOX" / astring`) in the client's form: UTF-8, or
/// modified UTF-7 for IMAP4rev1 clients without UTF8=ACCEPT (RFC 3501 §5.1.3).
pub fn write_mailbox(out: &mut Vec<u8>, name: &str, encoding: Encoding) {
    if encoding.utf8 {
        write_astring(out, name.as_bytes(), encoding);
    } else {
        write_astring(out, mutf7::encode(name).as_bytes(), encoding);
    }
}

/// `"(" [flag *(SP flag)] ")"`.
pub fn write_flags(out: &mut Vec<u8>, flags: &[Flag]) {
    out.push(b'(');
    for (index, flag) in flags.iter().enumerate() {
        if index > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(flag.as_str().as_bytes());
    }
    out.push(b')');
}

/// Human-readable text of a response (`text = 1*TEXT-CHAR`): controls (CR, LF, NUL, ...)
/// become spaces and, for clients without UTF-8, non-ASCII characters become `?`, so
/// text from the service can never end the line early. Empty text becomes `completed`
/// (IMAP4rev1 requires text).
pub fn clean_text(text: &str, encoding: Encoding) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            c if !c.is_ascii() && !encoding.utf8 => '?',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        "completed".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Whether `text` may be written raw as a flag, keyword or list attribute (`\Atom` or
/// `atom`).
pub fn is_flag_like(text: &str) -> bool {
    let body = text.strip_prefix('\\').unwrap_or(text);
    !body.is_empty() && body.bytes().all(crate::core::parser::is_atom_char)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::parser::{Input, Part};

    const ASCII: Encoding = Encoding { utf8: false };
    const UTF8: Encoding = Encoding { utf8: true };

    fn string(bytes: &[u8], encoding: Encoding) -> Vec<u8> {
        let mut out = Vec::new();
        write_string(&mut out, bytes, encoding);
        out
    }

    #[test]
    fn quoting_and_literals() {
        assert_eq!(string(b"a \"b\" \\", ASCII), b"\"a \\\"b\\\" \\\\\"");
        assert_eq!(string(b"two\r\nlines", ASCII), b"{10}\r\ntwo\r\nlines");
        assert_eq!(string("café".as_bytes(), ASCII), "{5}\r\ncafé".as_bytes());
        assert_eq!(string("café".as_bytes(), UTF8), "\"café\"".as_bytes());
        assert_eq!(string(b"\xff", UTF8), b"{1}\r\n\xff");
        assert_eq!(string(b"a\x00b", UTF8), b"{3}\r\na\x00b");
        let mut out = Vec::new();
        write_astring(&mut out, b"NIL", ASCII);
        assert_eq!(out, b"\"NIL\"");
        let mut out = Vec::new();
        write_astring(&mut out, b"", ASCII);
        assert_eq!(out, b"\"\"");
    }

    #[test]
    fn mailbox_names_per_revision() {
        let mut out = Vec::new();
        write_mailbox(&mut out, "台北/日本語", ASCII);
        assert_eq!(out, b"&U,BTFw-/&ZeVnLIqe-");
        let mut out = Vec::new();
        write_mailbox(&mut out, "台北/日本語", UTF8);
        assert_eq!(out, "\"台北/日本語\"".as_bytes());
        let mut out = Vec::new();
        write_mailbox(&mut out, "Sent Items", ASCII);
        assert_eq!(out, b"\"Sent Items\"");
    }

    #[test]
    fn text_is_cleaned() {
        assert_eq!(clean_text("a\r\n* BYE x", ASCII), "a  * BYE x");
        assert_eq!(clean_text("résumé", ASCII), "r?sum?");
        assert_eq!(clean_text("résumé", UTF8), "résumé");
        assert_eq!(clean_text("\r\n", ASCII), "completed");
    }

    proptest::proptest! {
        /// Whatever is written as a string reads back as the same bytes.
        #[test]
        fn strings_round_trip(bytes in proptest::collection::vec(1u8.., 0..300), utf8 in proptest::bool::ANY) {
            let encoding = Encoding { utf8 };
            let mut out = Vec::new();
            write_astring(&mut out, &bytes, encoding);
            let parts = match out.iter().position(|&b| b == b'\n') {
                Some(lf) if out.first() == Some(&b'{') => {
                    vec![Part::Line(Vec::new()), Part::Literal { data: out[lf + 1..].to_vec(), binary: false }, Part::Line(Vec::new())]
                }
                _ => vec![Part::Line(out.clone())],
            };
            let mut input = Input::new(parts);
            proptest::prop_assert_eq!(input.astring().unwrap(), bytes);
            proptest::prop_assert!(input.at_end());
        }
    }
}
