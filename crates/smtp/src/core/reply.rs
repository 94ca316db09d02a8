//! SMTP replies: a code (RFC 5321 §4.2), an enhanced status code (RFC 3463, sent on every
//! reply because ENHANCEDSTATUSCODES is always offered, RFC 2034 §3) and text lines.
//!
//! ```text
//! Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//!              Reply-code [ SP textstring ] CRLF          ; RFC 5321 §4.2
//! Reply-code = %x32-35 %x30-35 %x30-39
//! textstring = 1*(%d09 / %d32-126)                        ; HT, SP, Printable US-ASCII
//! ```
//!
//! With enhanced status codes each line's text starts with the code (RFC 2034 §3):
//! `250-2.1.0 first line` ... `250 2.1.0 last line`.
//!
//! The core's own replies are fixed strings (or values it validated itself, such as a
//! number it parsed): attacker bytes are never reflected (ALPACA, SECURITY-TESTS TLS-08).

use std::borrow::Cow;

/// One reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// `"2.1.0"`; empty when the reply has none (from this core: only the greeting and the
    /// EHLO reply, which RFC 2034 §3 exempts; the client core reads it from the server).
    pub enhanced: String,
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply: `Reply::new(250, "2.1.0", "Sender OK")`.
    pub fn new(code: u16, enhanced: impl Into<String>, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: enhanced.into(),
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply; every line carries the same code and enhanced code
    /// (RFC 5321 §4.2.1, RFC 2034 §3).
    pub fn multiline<I, S>(code: u16, enhanced: impl Into<String>, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Reply {
            code,
            enhanced: enhanced.into(),
            lines: lines.into_iter().map(Into::into).collect(),
        }
    }

    /// 2xx (RFC 5321 §4.2.1: positive completion).
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx or 5xx (RFC 5321 §4.2.1: transient or permanent negative completion).
    pub fn is_error(&self) -> bool {
        (400..600).contains(&self.code)
    }

    /// The wire form: `CODE-ENH text\r\n` for every line but the last, `CODE ENH text\r\n`
    /// for the last (RFC 5321 §4.2.1).
    ///
    /// Whatever the texts hold, the output is one well-formed reply: bytes outside
    /// `textstring` (controls, CR, LF, non-ASCII) become `?`, and a code outside 200..=599
    /// is sent as 451 — a reply can never smuggle a line break or a second reply.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Appends [`Reply::to_bytes`] to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        // RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39.
        let code = if (200..600).contains(&self.code) {
            self.code
        } else {
            451
        };
        let code = code.to_string();
        let enhanced = sanitize(&self.enhanced);
        let empty = [String::new()];
        let lines: &[String] = if self.lines.is_empty() {
            &empty
        } else {
            &self.lines
        };
        let last = lines.len().saturating_sub(1);
        for (index, line) in lines.iter().enumerate() {
            out.extend_from_slice(code.as_bytes());
            // RFC 5321 §4.2.1: "-" after the code on every line but the last.
            out.push(if index == last { b' ' } else { b'-' });
            if !enhanced.is_empty() {
                out.extend_from_slice(enhanced.as_bytes());
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            out.extend_from_slice(sanitize(line).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// RFC 5321 §4.2: textstring = 1*(%d09 / %d32-126); anything else becomes `?`.
fn sanitize(text: &str) -> Cow<'_, str> {
    let clean = |c: char| c == '\t' || (' '..='~').contains(&c);
    if text.chars().all(clean) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(
            text.chars()
                .map(|c| if clean(c) { c } else { '?' })
                .collect(),
        )
    }
}

/// The replies the core gives on its own. Texts are fixed; nothing from the client.
pub(crate) mod canned {
    use super::Reply;

    pub(crate) fn greeting(hostname: &str) -> Reply {
        // RFC 5321 §4.2 / RFC 2034 §3: the greeting carries no enhanced code.
        Reply::new(220, "", format!("{hostname} ESMTP sealpost"))
    }
    pub(crate) fn ok() -> Reply {
        Reply::new(250, "2.0.0", "OK")
    }
    pub(crate) fn reset() -> Reply {
        Reply::new(250, "2.0.0", "Reset state")
    }
    pub(crate) fn bye() -> Reply {
        Reply::new(221, "2.0.0", "Bye")
    }
    pub(crate) fn help() -> Reply {
        Reply::new(
            214,
            "2.0.0",
            "See RFC 5321 (https://www.rfc-editor.org/rfc/rfc5321)",
        )
    }
    pub(crate) fn vrfy() -> Reply {
        // RFC 5321 §3.5.3 / §7.3: 252, no user enumeration.
        Reply::new(
            252,
            "2.5.0",
            "Cannot VRFY user, but will accept message and attempt delivery",
        )
    }
    pub(crate) fn start_data() -> Reply {
        // RFC 3463 has no class 3: intermediate replies carry no enhanced code.
        Reply::new(354, "", "End data with <CR><LF>.<CR><LF>")
    }
    pub(crate) fn ready_tls() -> Reply {
        Reply::new(220, "2.0.0", "Ready to start TLS")
    }
    pub(crate) fn auth_success() -> Reply {
        Reply::new(235, "2.7.0", "Authentication successful")
    }
    pub(crate) fn chunk_received(octets: u64) -> Reply {
        Reply::new(250, "2.0.0", format!("{octets} octets received"))
    }
    pub(crate) fn forbidden_command() -> Reply {
        Reply::new(221, "2.7.0", "This is an SMTP server, closing")
    }
    pub(crate) fn too_many_errors() -> Reply {
        Reply::new(421, "4.7.0", "Too many errors")
    }
    pub(crate) fn too_much_input() -> Reply {
        Reply::new(421, "4.7.0", "Too much pipelined input")
    }
    pub(crate) fn line_never_ends() -> Reply {
        Reply::new(421, "4.7.0", "Line too long, closing")
    }
    pub(crate) fn internal_error() -> Reply {
        Reply::new(451, "4.3.0", "Internal server error")
    }
    pub(crate) fn auth_internal_error() -> Reply {
        Reply::new(454, "4.7.0", "Temporary authentication failure")
    }
    pub(crate) fn too_many_recipients() -> Reply {
        Reply::new(452, "4.5.3", "Too many recipients")
    }
    pub(crate) fn unrecognized() -> Reply {
        Reply::new(500, "5.5.1", "Command unrecognized")
    }
    pub(crate) fn line_too_long() -> Reply {
        Reply::new(500, "5.5.2", "Line too long")
    }
    pub(crate) fn bad_characters() -> Reply {
        Reply::new(500, "5.5.2", "Syntax error: invalid characters in command")
    }
    pub(crate) fn bare_newline() -> Reply {
        Reply::new(500, "5.5.2", "Syntax error: bare <LF> received")
    }
    pub(crate) fn empty_line() -> Reply {
        Reply::new(500, "5.5.2", "Syntax error: empty command")
    }
    pub(crate) fn auth_line_too_long() -> Reply {
        Reply::new(500, "5.5.6", "Authentication Exchange line is too long")
    }
    pub(crate) fn syntax(usage: &'static str) -> Reply {
        Reply::new(501, "5.5.4", usage)
    }
    pub(crate) fn not_implemented() -> Reply {
        Reply::new(502, "5.5.1", "Command not implemented")
    }
    pub(crate) fn helo_first() -> Reply {
        Reply::new(503, "5.5.1", "EHLO/HELO first")
    }
    pub(crate) fn mail_first() -> Reply {
        Reply::new(503, "5.5.1", "MAIL first")
    }
    pub(crate) fn rcpt_first() -> Reply {
        Reply::new(503, "5.5.1", "RCPT first")
    }
    pub(crate) fn nested_mail() -> Reply {
        Reply::new(503, "5.5.1", "Nested MAIL command")
    }
    pub(crate) fn bad_sequence(text: &'static str) -> Reply {
        Reply::new(503, "5.5.1", text)
    }
    pub(crate) fn no_valid_recipients() -> Reply {
        Reply::new(554, "5.5.1", "No valid recipients")
    }
    pub(crate) fn unknown_mechanism() -> Reply {
        Reply::new(504, "5.5.4", "Unrecognized authentication mechanism")
    }
    pub(crate) fn auth_required() -> Reply {
        Reply::new(530, "5.7.0", "Authentication required")
    }
    pub(crate) fn starttls_first() -> Reply {
        Reply::new(530, "5.7.0", "Must issue a STARTTLS command first")
    }
    pub(crate) fn bare_cr_lf_in_message() -> Reply {
        Reply::new(550, "5.5.2", "Message contains bare CR or LF")
    }
    pub(crate) fn size_exceeds_limit() -> Reply {
        Reply::new(
            552,
            "5.3.4",
            "Message size exceeds fixed maximum message size",
        )
    }
    pub(crate) fn message_too_big() -> Reply {
        Reply::new(552, "5.3.4", "Message too big")
    }
    pub(crate) fn bad_sender_syntax() -> Reply {
        // RFC 3463: X.1.7 Bad sender's mailbox address syntax.
        Reply::new(501, "5.1.7", "Bad sender address syntax")
    }
    pub(crate) fn bad_recipient_syntax() -> Reply {
        // RFC 3463: X.1.3 Bad destination mailbox address syntax.
        Reply::new(501, "5.1.3", "Bad recipient address syntax")
    }
    pub(crate) fn path_too_long(sender: bool) -> Reply {
        // RFC 5321 §4.5.3.1.10: "501 Path too long".
        Reply::new(501, if sender { "5.1.7" } else { "5.1.3" }, "Path too long")
    }
    pub(crate) fn non_ascii_address() -> Reply {
        // RFC 6531 §3.5 / RFC 3463 X.6.7: non-ASCII address without SMTPUTF8.
        Reply::new(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
    }
    pub(crate) fn unsupported_parameter() -> Reply {
        // RFC 5321 §4.1.1.11 / §4.2.2: 555 MAIL FROM/RCPT TO parameters not recognized.
        Reply::new(555, "5.5.4", "Unsupported or duplicate parameter")
    }
    pub(crate) fn invalid_parameter_value() -> Reply {
        Reply::new(501, "5.5.4", "Invalid parameter value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line() {
        let reply = Reply::new(250, "2.1.0", "Sender OK");
        assert_eq!(reply.to_bytes(), b"250 2.1.0 Sender OK\r\n");
    }

    #[test]
    fn multi_line_repeats_the_enhanced_code() {
        let reply = Reply::multiline(550, "5.7.1", ["first", "second", "third"]);
        assert_eq!(
            reply.to_bytes(),
            b"550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n"
        );
    }

    #[test]
    fn without_enhanced_code() {
        assert_eq!(
            canned::greeting("mx.example").to_bytes(),
            b"220 mx.example ESMTP sealpost\r\n"
        );
        assert_eq!(Reply::new(334, "", "").to_bytes(), b"334 \r\n");
        let ehlo = Reply::multiline(250, "", ["mx.example", "PIPELINING"]);
        assert_eq!(ehlo.to_bytes(), b"250-mx.example\r\n250 PIPELINING\r\n");
    }

    #[test]
    fn no_lines_gives_one_line() {
        let reply = Reply::multiline(250, "2.0.0", Vec::<String>::new());
        assert_eq!(reply.to_bytes(), b"250 2.0.0\r\n");
    }

    #[test]
    fn texts_cannot_break_the_framing() {
        let reply = Reply::new(550, "5.1.1\r\n250 x", "bad\r\n250 2.0.0 injected\0é");
        assert_eq!(
            reply.to_bytes(),
            b"550 5.1.1??250 x bad??250 2.0.0 injected??\r\n"
        );
        assert_eq!(Reply::new(99, "", "x").to_bytes(), b"451 x\r\n");
        assert_eq!(Reply::new(1234, "", "x").to_bytes(), b"451 x\r\n");
    }

    #[test]
    fn classes() {
        assert!(canned::ok().is_positive());
        assert!(!canned::ok().is_error());
        assert!(canned::too_many_recipients().is_error());
        assert!(canned::unrecognized().is_error());
        assert!(!canned::start_data().is_error());
    }
}
