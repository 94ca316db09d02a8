//! Golden and property tests of the `mime` module.

mod bodystructure;
mod envelope;
mod limits;
mod roundtrip;
mod search;
mod section;

use super::{Dialect, MessageStructure};

pub(super) const REV1: Dialect = Dialect {
    rev2: false,
    utf8: false,
};
pub(super) const REV2: Dialect = Dialect {
    rev2: true,
    utf8: true,
};

/// Test messages are written with LF; stored messages have CRLF (SECURITY-TESTS IM-18).
pub(super) fn crlf(s: &str) -> Vec<u8> {
    s.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

pub(super) fn parse(s: &str) -> (Vec<u8>, MessageStructure) {
    let raw = crlf(s);
    let ms = MessageStructure::parse(&raw);
    (raw, ms)
}

/// Checks that `s` is one well-formed IMAP parenthesized list of nil / number / quoted string /
/// literal / nested lists (the shapes ENVELOPE and BODYSTRUCTURE use).
pub(super) fn well_formed(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let mut first = true;
    while i < b.len() {
        match b[i] {
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return i == b.len();
                }
            }
            b' ' => i += 1,
            b'"' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None | Some(b'\r' | b'\n') => return false,
                        Some(b'\\') => i += 2,
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'{' => {
                let Some(close) = b[i..].iter().position(|&c| c == b'}') else {
                    return false;
                };
                let Ok(n) = s[i + 1..i + close].parse::<usize>() else {
                    return false;
                };
                if b.get(i + close + 1..i + close + 3) != Some(b"\r\n") {
                    return false;
                }
                i += close + 3 + n;
            }
            b'N' if b[i..].starts_with(b"NIL") => i += 3,
            c if c.is_ascii_digit() => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            _ => return false,
        }
        if first && depth == 0 {
            return false;
        }
        first = false;
    }
    false
}
