//! POP3 responses: a status indicator, an optional response code, and text.
//!
//! ```text
//! single-line  = status [SP text] CRLF                       ; RFC 2449 §3
//! multi-line   = single-line *dot-stuffed "." CRLF           ; RFC 1939 §3
//! status       = "+OK" / "-ERR"
//! text         = *schar / resp-code *CHAR                    ; RFC 2449 §3, §8
//! resp-code    = "[" resp-level *("/" resp-level) "]"
//! resp-level   = 1*rchar
//! rchar        = %x21-2E / %x30-5C / %x5E-7F                 ; printable, not "/" or "]"
//! ```
//!
//! The texts here are fixed strings or numbers the core produced itself: bytes a client sent
//! are never reflected (ALPACA, SECURITY-TESTS TLS-08).

/// The response codes sealpost sends (RFC 2449 §8, RFC 3206).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespCode {
    /// RFC 3206 §5: the credentials are wrong (not a temporary condition).
    Auth,
    /// RFC 2449 §8.1.1: the maildrop is in use by another session.
    InUse,
    /// RFC 3206 §4: a temporary system problem; trying later may succeed.
    SysTemp,
    /// RFC 3206 §4: a permanent system problem.
    SysPerm,
}

impl RespCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RespCode::Auth => "AUTH",
            RespCode::InUse => "IN-USE",
            RespCode::SysTemp => "SYS/TEMP",
            RespCode::SysPerm => "SYS/PERM",
        }
    }
}

/// Appends `+OK text` (or `+OK` for an empty text) and CRLF.
pub(crate) fn ok(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"+OK");
    if !text.is_empty() {
        out.push(b' ');
        push_text(out, text);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `-ERR [code] text` and CRLF.
pub(crate) fn err(out: &mut Vec<u8>, code: Option<RespCode>, text: &str) {
    out.extend_from_slice(b"-ERR");
    if let Some(code) = code {
        out.extend_from_slice(b" [");
        out.extend_from_slice(code.as_str().as_bytes());
        out.push(b']');
    }
    if !text.is_empty() {
        out.push(b' ');
        push_text(out, text);
    }
    out.extend_from_slice(b"\r\n");
}

/// One line of a multi-line response (CAPA, LIST, UIDL): the caller's text is ours, never
/// starts with "." and holds no line break, but is checked all the same.
pub(crate) fn line(out: &mut Vec<u8>, text: &str) {
    // RFC 1939 §3: a line starting with the termination octet is byte-stuffed.
    if text.starts_with('.') {
        out.push(b'.');
    }
    push_text(out, text);
    out.extend_from_slice(b"\r\n");
}

/// Ends a multi-line response (RFC 1939 §3: "." CRLF).
pub(crate) fn end(out: &mut Vec<u8>) {
    out.extend_from_slice(b".\r\n");
}

/// Printable ASCII and space only: whatever a text holds, a response stays one line.
fn push_text(out: &mut Vec<u8>, text: &str) {
    out.extend(text.bytes().map(|b| match b {
        0x20..=0x7e => b,
        _ => b'?',
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        let mut out = Vec::new();
        ok(&mut out, "");
        ok(&mut out, "2 320");
        err(&mut out, Some(RespCode::Auth), "Authentication failed");
        err(&mut out, None, "no\r\nsuch");
        line(&mut out, ".hidden");
        end(&mut out);
        assert_eq!(
            out,
            b"+OK\r\n+OK 2 320\r\n-ERR [AUTH] Authentication failed\r\n-ERR no??such\r\n\
              ..hidden\r\n.\r\n"
        );
    }
}
