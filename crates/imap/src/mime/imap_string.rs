//! IMAP `string` / `nstring` output (RFC 9051 §4.3, §4.5; RFC 3501 §4.3, §4.5).
//!
//! ```text
//! string        = quoted / literal
//! quoted        = DQUOTE *QUOTED-CHAR DQUOTE
//! QUOTED-CHAR   = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials
//!                 / UTF8-2 / UTF8-3 / UTF8-4          ; RFC 9051, RFC 6855 only
//! TEXT-CHAR     = <any CHAR except CR and LF>         ; CHAR = %x01-7F
//! literal       = "{" number64 ["+"] "}" CRLF *CHAR8  ; CHAR8 = %x01-ff
//! nstring       = string / nil
//! ```

/// Writes values as IMAP strings: quoted when the text allows it, a literal otherwise.
///
/// Shared by ENVELOPE and BODYSTRUCTURE here and usable by the response encoder: a value is
/// quoted when it has no CR, LF or NUL and is ASCII (or any UTF-8 when `utf8` is set, RFC 9051
/// §4.3 / RFC 6855 §3); anything else is a synchronizing literal `{n}\r\n...`. NUL can appear in
/// neither form (`CHAR`/`CHAR8` exclude %x00), so the `str` writers drop NUL characters.
#[derive(Clone, Copy, Debug)]
pub struct ImapString;

impl ImapString {
    /// True if `value` can be sent as a quoted string.
    pub fn is_quotable(value: &[u8], utf8: bool) -> bool {
        // RFC 9051 §4.3: TEXT-CHAR excludes CR and LF; CHAR excludes NUL.
        let plain = value.iter().all(|&b| b != 0 && b != b'\r' && b != b'\n');
        // RFC 9051 §4.3 (UTF8-2/3/4) / RFC 6855: 8-bit only as UTF-8, only when allowed.
        plain && (value.is_ascii() || (utf8 && std::str::from_utf8(value).is_ok()))
    }

    /// Appends `value` as a `string`.
    pub fn write(out: &mut String, value: &str, utf8: bool) {
        let cleaned;
        let value = if value.contains('\0') {
            cleaned = value.replace('\0', "");
            cleaned.as_str()
        } else {
            value
        };
        if Self::is_quotable(value.as_bytes(), utf8) {
            out.reserve(value.len() + 2);
            out.push('"');
            for c in value.chars() {
                // RFC 9051 §4.3: quoted-specials are escaped with "\".
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        } else {
            // RFC 9051 §4.3: a literal carries any octets but NUL.
            out.push('{');
            out.push_str(&value.len().to_string());
            out.push_str("}\r\n");
            out.push_str(value);
        }
    }

    /// Appends `value` as an `nstring`: `NIL` for `None` (RFC 9051 §4.5).
    pub fn write_nstring(out: &mut String, value: Option<&str>, utf8: bool) {
        match value {
            Some(value) => Self::write(out, value, utf8),
            None => out.push_str("NIL"),
        }
    }

    /// Appends raw octets as a `string` (quoted if possible, else a literal). The caller keeps
    /// NUL out (or uses `literal8`, RFC 9051 §4.3 / RFC 3516, which this does not write).
    pub fn write_bytes(out: &mut Vec<u8>, value: &[u8], utf8: bool) {
        if Self::is_quotable(value, utf8) {
            out.reserve(value.len() + 2);
            out.push(b'"');
            for &b in value {
                if b == b'"' || b == b'\\' {
                    out.push(b'\\');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.push(b'{');
            out.extend_from_slice(value.len().to_string().as_bytes());
            out.extend_from_slice(b"}\r\n");
            out.extend_from_slice(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ImapString;

    fn s(value: &str, utf8: bool) -> String {
        let mut out = String::new();
        ImapString::write(&mut out, value, utf8);
        out
    }

    #[test]
    fn quoted_and_escaped() {
        assert_eq!(s("", false), "\"\"");
        assert_eq!(s("plain text", false), "\"plain text\"");
        assert_eq!(s("a \"b\" \\c", false), "\"a \\\"b\\\" \\\\c\"");
    }

    #[test]
    fn literal_for_crlf_and_8bit() {
        assert_eq!(s("a\r\nb", false), "{4}\r\na\r\nb");
        assert_eq!(s("café", false), "{5}\r\ncafé");
        assert_eq!(s("café", true), "\"café\"");
        assert_eq!(s("a\nb", true), "{3}\r\na\nb");
    }

    #[test]
    fn nul_dropped_and_nil() {
        assert_eq!(s("a\0b", false), "\"ab\"");
        let mut out = String::new();
        ImapString::write_nstring(&mut out, None, false);
        ImapString::write_nstring(&mut out, Some("x"), false);
        assert_eq!(out, "NIL\"x\"");
    }

    #[test]
    fn bytes() {
        let mut out = Vec::new();
        ImapString::write_bytes(&mut out, b"a\"b", false);
        ImapString::write_bytes(&mut out, b"\xff", true);
        assert_eq!(out, b"\"a\\\"b\"{1}\r\n\xff");
    }
}
