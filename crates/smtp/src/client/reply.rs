//! Reading the server's replies (RFC 5321 §4.2), one line at a time, with bounds.
//!
//! ```text
//! Reply-line     = *( Reply-code "-" [ textstring ] CRLF )
//!                  Reply-code [ SP textstring ] CRLF            ; RFC 5321 §4.2
//! Reply-code     = %x32-35 %x30-35 %x30-39
//! textstring     = 1*(%d09 / %d32-126)                          ; HT, SP, Printable US-ASCII
//!
//! ; RFC 2034 §3 / RFC 3463 §2: with enhanced status codes, each line's text starts with
//! status-code    = class "." subject "." detail [ SP text ]
//! class          = "2" / "4" / "5"                              ; equal to the reply class
//! subject        = 1*3DIGIT
//! detail         = 1*3DIGIT
//! ```
//!
//! Leniency, as deployed clients have it: a line may end with a bare LF; the second and
//! third digits may be any digit; a line may be up to [`MAX_REPLY_LINE`] octets where
//! RFC 5321 §4.5.3.1.5 promises 512; text outside `textstring` (UTF-8 from SMTPUTF8 servers)
//! is kept, with control characters replaced by `?` so that a reply copied into a log or a
//! DSN cannot carry a line break. Strict where it matters: every line of a reply has the
//! same code (RFC 5321 §4.2.1), a reply has at most [`MAX_REPLY_LINES`] lines, and anything
//! else is a [`ProtocolError`] that ends the session (never a panic).

use crate::core::Reply;

/// Longest reply line, CRLF included. RFC 5321 §4.5.3.1.5 says 512; real servers send
/// longer EHLO and error lines, so the client is lenient.
pub const MAX_REPLY_LINE: usize = 4096;
/// Most lines in one reply (an EHLO reply has about a dozen).
pub const MAX_REPLY_LINES: usize = 100;

/// Why the server's bytes could not be read as SMTP; the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("reply line longer than {MAX_REPLY_LINE} octets")]
    LineTooLong,
    #[error("reply with more than {MAX_REPLY_LINES} lines")]
    TooManyLines,
    #[error("malformed reply line")]
    Malformed,
    #[error("multi-line reply changed its code")]
    CodeMismatch,
    /// A reply while none was awaited, or a code of a class the command cannot have (e.g.
    /// 354 to MAIL, 250 to DATA), or a reply before the end of the message data.
    #[error("unexpected reply")]
    UnexpectedReply,
    /// The driver fed more than `MAX_BUFFERED_INPUT` octets without draining events.
    #[error("too much unprocessed input")]
    TooMuchInput,
}

/// What one parsing step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    Reply(Reply),
    NeedInput,
    Error(ProtocolError),
}

/// Assembles replies line by line; the lines of an unfinished reply are kept here, so input
/// is consumed as it arrives and never re-scanned.
#[derive(Debug, Default)]
pub(crate) struct ReplyParser {
    partial: Option<Reply>,
}

impl ReplyParser {
    /// Reads complete lines from `input` until a reply is complete. Returns how many octets
    /// were consumed and what was found; after an error the parser must not be used again.
    pub(crate) fn parse(&mut self, input: &[u8]) -> (usize, Parsed) {
        let mut used = 0;
        loop {
            let rest = input.get(used..).unwrap_or_default();
            let window = rest.get(..MAX_REPLY_LINE).unwrap_or(rest);
            let Some(lf) = window.iter().position(|&b| b == b'\n') else {
                // Bounded: a line without LF is refused once it reaches the limit, before
                // any more of it is buffered.
                if rest.len() >= MAX_REPLY_LINE {
                    return (used, Parsed::Error(ProtocolError::LineTooLong));
                }
                return (used, Parsed::NeedInput);
            };
            let line = window.get(..lf).unwrap_or_default();
            // RFC 5321 §2.3.8: lines end with CRLF; a bare LF is tolerated from servers.
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            used += lf + 1;
            match self.line(line) {
                Ok(Some(reply)) => return (used, Parsed::Reply(reply)),
                Ok(None) => {}
                Err(error) => return (used, Parsed::Error(error)),
            }
        }
    }

    /// Forgets an unfinished reply (STARTTLS: nothing from before the handshake counts).
    pub(crate) fn reset(&mut self) {
        self.partial = None;
    }

    fn line(&mut self, line: &[u8]) -> Result<Option<Reply>, ProtocolError> {
        let (code, last, text) = split_line(line)?;
        let text = sanitize(text);
        match &mut self.partial {
            None => {
                let (enhanced, text) = split_enhanced(code, &text);
                self.partial = Some(Reply {
                    code,
                    enhanced,
                    lines: vec![text],
                });
            }
            Some(partial) => {
                // RFC 5321 §4.2.1: every line of a multi-line reply carries the same code.
                if partial.code != code {
                    return Err(ProtocolError::CodeMismatch);
                }
                if partial.lines.len() >= MAX_REPLY_LINES {
                    return Err(ProtocolError::TooManyLines);
                }
                // RFC 2034 §3: each line repeats the enhanced code; keep the text only.
                let text = match strip_enhanced(&partial.enhanced, &text) {
                    Some(stripped) => stripped.to_string(),
                    None => text,
                };
                partial.lines.push(text);
            }
        }
        Ok(if last { self.partial.take() } else { None })
    }
}

/// `Reply-code ( "-" / SP / end ) text`: (code, is the last line, text).
fn split_line(line: &[u8]) -> Result<(u16, bool, &[u8]), ProtocolError> {
    let digits = line.get(..3).ok_or(ProtocolError::Malformed)?;
    // RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39 (second digit: any, leniently).
    let valid = digits.iter().all(u8::is_ascii_digit)
        && digits.first().is_some_and(|d| (b'2'..=b'5').contains(d));
    if !valid {
        return Err(ProtocolError::Malformed);
    }
    let code = digits
        .iter()
        .fold(0u16, |code, digit| code * 10 + u16::from(digit - b'0'));
    let text = line.get(4..).unwrap_or_default();
    match line.get(3) {
        // RFC 5321 §4.2.1: "Reply-code [ SP textstring ] CRLF" ends the reply.
        None | Some(b' ') => Ok((code, true, text)),
        // RFC 5321 §4.2.1: "Reply-code "-" [ textstring ] CRLF" continues it.
        Some(b'-') => Ok((code, false, text)),
        Some(_) => Err(ProtocolError::Malformed),
    }
}

/// UTF-8 (lossy), with control characters other than HT replaced by `?`.
fn sanitize(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

/// Splits an enhanced status code off the first line when it is there and its class is the
/// reply's class (RFC 3463 §2, RFC 2034 §3); otherwise the code is empty.
fn split_enhanced(code: u16, text: &str) -> (String, String) {
    let (token, rest) = text.split_once(' ').unwrap_or((text, ""));
    if is_status_code(token, code / 100) {
        (token.to_string(), rest.to_string())
    } else {
        (String::new(), text.to_string())
    }
}

/// The text after `enhanced` and one SP, when `text` starts with that code.
fn strip_enhanced<'t>(enhanced: &str, text: &'t str) -> Option<&'t str> {
    if enhanced.is_empty() {
        return None;
    }
    let rest = text.strip_prefix(enhanced)?;
    if rest.is_empty() {
        return Some(rest);
    }
    rest.strip_prefix(' ')
}

/// RFC 3463 §2: class "." subject "." detail; class 2/4/5, subject and detail 1*3DIGIT.
fn is_status_code(token: &str, class: u16) -> bool {
    let mut parts = token.split('.');
    let (Some(first), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let number =
        |part: &str| (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    matches!(first, "2" | "4" | "5")
        && first.parse::<u16>().ok() == Some(class)
        && number(subject)
        && number(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> (usize, Parsed) {
        ReplyParser::default().parse(input)
    }

    fn reply(input: &[u8]) -> Reply {
        match parse_all(input).1 {
            Parsed::Reply(reply) => reply,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_line_with_and_without_enhanced_code() {
        assert_eq!(
            reply(b"250 2.1.0 Sender OK\r\n"),
            Reply::new(250, "2.1.0", "Sender OK")
        );
        assert_eq!(reply(b"220 mx ESMTP\r\n"), Reply::new(220, "", "mx ESMTP"));
        assert_eq!(reply(b"250\r\n"), Reply::new(250, "", ""));
        assert_eq!(reply(b"250 2.0.0\r\n"), Reply::new(250, "2.0.0", ""));
        // RFC 2034: the class must be the reply's class; otherwise it is just text.
        assert_eq!(reply(b"550 2.0.0 x\r\n"), Reply::new(550, "", "2.0.0 x"));
        assert_eq!(
            reply(b"550 5.1.1234 x\r\n"),
            Reply::new(550, "", "5.1.1234 x")
        );
        assert_eq!(reply(b"550 5.1 x\r\n"), Reply::new(550, "", "5.1 x"));
        // Bare LF tolerated.
        assert_eq!(reply(b"354 go\n"), Reply::new(354, "", "go"));
    }

    #[test]
    fn multi_line() {
        let input = b"250-2.0.0 first\r\n250-2.0.0 second\r\n250-third\r\n250 2.0.0\r\nrest";
        let (used, parsed) = parse_all(input);
        assert_eq!(used, input.len() - 4);
        assert_eq!(
            parsed,
            Parsed::Reply(Reply::multiline(
                250,
                "2.0.0",
                ["first", "second", "third", ""]
            ))
        );
    }

    #[test]
    fn incomplete_input_is_kept_across_calls() {
        let mut parser = ReplyParser::default();
        assert_eq!(parser.parse(b"250-a\r\n250 b"), (7, Parsed::NeedInput));
        assert_eq!(
            parser.parse(b"250 b\r\n"),
            (7, Parsed::Reply(Reply::multiline(250, "", ["a", "b"])))
        );
    }

    #[test]
    fn malformed() {
        for bad in [
            &b"25\r\n"[..],
            b"abc def\r\n",
            b"150 ok\r\n",
            b"650 ok\r\n",
            b"250x ok\r\n",
            b"\r\n",
            b"2500 ok\r\n",
        ] {
            assert_eq!(
                parse_all(bad).1,
                Parsed::Error(ProtocolError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_all(b"250-a\r\n251 b\r\n").1,
            Parsed::Error(ProtocolError::CodeMismatch)
        );
    }

    #[test]
    fn bounds() {
        let mut long = b"250 ".to_vec();
        long.resize(MAX_REPLY_LINE - 2, b'x');
        long.extend_from_slice(b"\r\n");
        assert!(matches!(parse_all(&long).1, Parsed::Reply(_)));
        let mut too_long = b"250 ".to_vec();
        too_long.resize(MAX_REPLY_LINE - 1, b'x');
        too_long.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_all(&too_long).1,
            Parsed::Error(ProtocolError::LineTooLong)
        );
        // Without any LF: refused as soon as the limit is reached.
        assert_eq!(
            parse_all(&vec![b'2'; MAX_REPLY_LINE]).1,
            Parsed::Error(ProtocolError::LineTooLong)
        );
        assert_eq!(
            parse_all(&vec![b'2'; MAX_REPLY_LINE - 1]).1,
            Parsed::NeedInput
        );
        let many = b"250-x\r\n".repeat(MAX_REPLY_LINES - 1);
        let mut ok = many.clone();
        ok.extend_from_slice(b"250 x\r\n");
        assert!(matches!(parse_all(&ok).1, Parsed::Reply(r) if r.lines.len() == MAX_REPLY_LINES));
        let mut too_many = many;
        too_many.extend_from_slice(b"250-x\r\n250 x\r\n");
        assert_eq!(
            parse_all(&too_many).1,
            Parsed::Error(ProtocolError::TooManyLines)
        );
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(
            reply(b"550 5.7.1 bad\rthing\0\ttab \xff\r\n"),
            Reply::new(550, "5.7.1", "bad?thing?\ttab \u{fffd}")
        );
        assert_eq!(
            reply("250 2.0.0 café\r\n".as_bytes()),
            Reply::new(250, "2.0.0", "café")
        );
    }
}
