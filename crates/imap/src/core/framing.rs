//! Framing: lines and literal announcements (RFC 9051 §2.2, §4.3; RFC 7888; RFC 3516).
//!
//! A command is one or more lines; a line that ends with a literal announcement
//! (`{n}`, `{n+}`, `~{n}`, `~{n+}`) is followed by exactly n octets and then the rest of
//! the command on a new line. Only the end of a line can announce a literal, as in every
//! other implementation; a `{` elsewhere is an ordinary (invalid) character for the
//! parser.
//!
//! ```text
//! literal  = "{" number64 ["+"] "}" CRLF *CHAR8      ; RFC 9051 §9, RFC 7888 §8
//! literal8 = "~{" number64 ["+"] "}" CRLF *OCTET     ; RFC 3516 §4.4, RFC 7888 §8
//! ```

/// Where the next line ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineScan {
    /// A line of this many octets, LF included.
    Complete(usize),
    /// No LF yet and still under the limit.
    NeedMore,
    /// No LF within `max_line` octets.
    TooLong,
}

/// Looks for the end of the line at the start of `unread`; `max_line` counts CRLF. The
/// first `scanned` octets are known to hold no LF (they were searched by an earlier
/// call), so a line arriving one octet at a time costs linear, not quadratic, time.
pub(crate) fn scan_line(unread: &[u8], max_line: usize, scanned: usize) -> LineScan {
    let window = unread.get(..max_line).unwrap_or(unread);
    let fresh = window.get(scanned..).unwrap_or_default();
    match fresh.iter().position(|&b| b == b'\n') {
        Some(lf) => LineScan::Complete(scanned + lf + 1),
        None if unread.len() >= max_line => LineScan::TooLong,
        None => LineScan::NeedMore,
    }
}

/// The line without its ending: CRLF, or a bare LF (accepted like Dovecot does: LF ends
/// a line for the client and for us alike, so nothing can be smuggled by it).
pub(crate) fn strip_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A literal announced at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Announcement {
    /// The announced size; sizes beyond u64 saturate to `u64::MAX` (refused by every
    /// limit, never wrapped: SECURITY-TESTS IM-02 `{4294967296}` must not become 0).
    pub(crate) size: u64,
    /// `{n}` (the client waits for `+`) rather than `{n+}` (RFC 7888).
    pub(crate) sync: bool,
    /// `~{n}`: literal8.
    pub(crate) binary: bool,
}

/// Splits a line (without its ending) into its text and a trailing announcement. A
/// malformed one (`{-1}`, `{ 5}`, `{}`) is no announcement: the line then goes to the
/// parser whole and gets BAD, and no `+` is sent (SECURITY-TESTS IM-02).
pub(crate) fn split_announcement(line: &[u8]) -> (&[u8], Option<Announcement>) {
    let Some(inner_end) = line
        .len()
        .checked_sub(1)
        .filter(|&end| line.get(end) == Some(&b'}'))
    else {
        return (line, None);
    };
    let Some(open) = line.iter().rposition(|&b| b == b'{') else {
        return (line, None);
    };
    let inner = line.get(open + 1..inner_end).unwrap_or_default();
    let (digits, sync) = match inner.strip_suffix(b"+") {
        Some(digits) => (digits, false),
        None => (inner, true),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return (line, None);
    }
    let size = digits.iter().fold(0u64, |size, digit| {
        size.checked_mul(10)
            .and_then(|size| size.checked_add(u64::from(digit - b'0')))
            .unwrap_or(u64::MAX)
    });
    let binary = open > 0 && line.get(open - 1) == Some(&b'~');
    let text_end = if binary { open - 1 } else { open };
    let announcement = Announcement { size, sync, binary };
    (line.get(..text_end).unwrap_or_default(), Some(announcement))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> (String, Option<Announcement>) {
        let (text, announcement) = split_announcement(line.as_bytes());
        (String::from_utf8_lossy(text).into_owned(), announcement)
    }

    #[test]
    fn announcements() {
        let announce = |size, sync, binary| Some(Announcement { size, sync, binary });
        assert_eq!(
            split("a LOGIN {5}"),
            ("a LOGIN ".into(), announce(5, true, false))
        );
        assert_eq!(
            split("a APPEND x {5+}"),
            ("a APPEND x ".into(), announce(5, false, false))
        );
        assert_eq!(
            split("a APPEND x ~{5}"),
            ("a APPEND x ".into(), announce(5, true, true))
        );
        assert_eq!(split("{0}"), ("".into(), announce(0, true, false)));
        for huge in ["{18446744073709551615}", "{99999999999999999999999}"] {
            assert_eq!(split(huge).1, announce(u64::MAX, true, false), "{huge}");
        }
        assert_eq!(
            split("{4294967296}").1,
            announce(4_294_967_296, true, false)
        );
        for malformed in [
            "a {-1}", "a { 5}", "a {}", "a {+}", "a {5", "a 5}", "a {5}x", "a {5++}",
        ] {
            assert_eq!(split(malformed).1, None, "{malformed}");
        }
    }

    #[test]
    fn lines() {
        assert_eq!(scan_line(b"a NOOP\r\nb", 100, 0), LineScan::Complete(8));
        assert_eq!(scan_line(b"a NOOP\r\nb", 100, 6), LineScan::Complete(8));
        assert_eq!(scan_line(b"a NOOP", 100, 0), LineScan::NeedMore);
        assert_eq!(scan_line(b"a NOOP", 6, 0), LineScan::TooLong);
        assert_eq!(scan_line(b"a NOOP\r\n", 8, 0), LineScan::Complete(8));
        assert_eq!(scan_line(b"a NOOP\r\n", 7, 3), LineScan::TooLong);
        assert_eq!(strip_line_ending(b"x\r\n"), b"x");
        assert_eq!(strip_line_ending(b"x\n"), b"x");
        assert_eq!(strip_line_ending(b"x\r\r\n"), b"x\r");
    }
}
