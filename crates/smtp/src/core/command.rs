//! Command-line parsing: one line, CRLF already removed, checked to be UTF-8 without control
//! characters, becomes a [`Command`] or the reply that refuses it.
//!
//! ```text
//! ehlo       = "EHLO" SP ( Domain / address-literal ) CRLF         ; RFC 5321 §4.1.1.1
//! helo       = "HELO" SP Domain CRLF
//! mail       = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF ; RFC 5321 §4.1.1.2
//! rcpt       = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" /
//!              Forward-path ) [SP Rcpt-parameters] CRLF          ; RFC 5321 §4.1.1.3
//! data       = "DATA" CRLF                                       ; RFC 5321 §4.1.1.4
//! rset       = "RSET" CRLF                                       ; RFC 5321 §4.1.1.5
//! vrfy       = "VRFY" SP String CRLF                             ; RFC 5321 §4.1.1.6
//! expn       = "EXPN" SP String CRLF                             ; RFC 5321 §4.1.1.7
//! help       = "HELP" [ SP String ] CRLF                         ; RFC 5321 §4.1.1.8
//! noop       = "NOOP" [ SP String ] CRLF                         ; RFC 5321 §4.1.1.9
//! quit       = "QUIT" CRLF                                       ; RFC 5321 §4.1.1.10
//! starttls   = "STARTTLS" CRLF                                   ; RFC 3207 §4
//! auth       = "AUTH" SP sasl-mech [SP initial-response] CRLF    ; RFC 4954 §4
//! sasl-mech  = 1*20mech-char                                     ; RFC 4422 §3.1
//! mech-char  = UPPER-ALPHA / DIGIT / HYPHEN / UNDERSCORE
//! initial-response = base64 / "="
//! bdat       = "BDAT" SP chunk-size [ SP end-marker ] CRLF       ; RFC 3030 §2
//! chunk-size = 1*DIGIT
//! end-marker = "LAST"
//! ```
//!
//! Verbs and the `FROM:`/`TO:` keywords are case-insensitive (RFC 5321 §2.4). Spaces
//! between `FROM:`/`TO:` and the path are tolerated, as Postfix does; a path without angle
//! brackets is refused. Paths are parsed by [`super::path`], parameters by
//! [`super::params`].

use super::reply::{Reply, canned};

/// Words that start HTTP or proxy requests (and the POP3 `USER`) sent to the SMTP port:
/// answered with 221 and a hang-up (Postfix `smtpd_forbidden_commands`, ALPACA; TLS-07).
const FORBIDDEN_VERBS: [&str; 10] = [
    "GET", "POST", "CONNECT", "HEAD", "PUT", "OPTIONS", "DELETE", "PATCH", "TRACE", "USER",
];

/// One parsed command line. Borrowed text is the validated remainder of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command<'a> {
    Ehlo(&'a str),
    Helo(&'a str),
    /// The text after `FROM:` (leading spaces removed): path and parameters.
    Mail(&'a str),
    /// The text after `TO:` (leading spaces removed): path and parameters.
    Rcpt(&'a str),
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    Auth {
        mechanism: &'a str,
        initial_response: Option<&'a str>,
    },
    /// An HTTP or proxy request line: 221 and close.
    Forbidden,
}

/// Why a line is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CommandError {
    /// Refuse with this reply, keep the session.
    Reply(Reply),
    /// Refuse with this reply and close: the input cannot be resynchronised
    /// (a BDAT whose chunk size cannot be read, RFC 3030 §2).
    Fatal(Reply),
}

/// Parses one command line (no CRLF; UTF-8 without control characters).
pub(crate) fn parse(line: &str) -> Result<Command<'_>, CommandError> {
    let (verb, args) = match line.split_once(' ') {
        Some((verb, args)) => (verb, Some(args)),
        None => (line, None),
    };
    let upper = verb.to_ascii_uppercase();
    if FORBIDDEN_VERBS.contains(&upper.as_str()) {
        return Ok(Command::Forbidden);
    }
    let reply = |usage| Err(CommandError::Reply(canned::syntax(usage)));
    match upper.as_str() {
        "EHLO" => match single_word(args) {
            Some(name) => Ok(Command::Ehlo(name)),
            None => reply("Syntax: EHLO hostname"),
        },
        "HELO" => match single_word(args) {
            Some(name) => Ok(Command::Helo(name)),
            None => reply("Syntax: HELO hostname"),
        },
        "MAIL" => match args.and_then(|a| strip_keyword(a, "FROM:")) {
            Some(rest) => Ok(Command::Mail(rest)),
            None => reply("Syntax: MAIL FROM:<address>"),
        },
        "RCPT" => match args.and_then(|a| strip_keyword(a, "TO:")) {
            Some(rest) => Ok(Command::Rcpt(rest)),
            None => reply("Syntax: RCPT TO:<address>"),
        },
        "DATA" => no_args(args, Command::Data, "Syntax: DATA"),
        "RSET" => no_args(args, Command::Rset, "Syntax: RSET"),
        "QUIT" => no_args(args, Command::Quit, "Syntax: QUIT"),
        // RFC 3207 §4: "501 Syntax error (no parameters allowed)".
        "STARTTLS" => no_args(
            args,
            Command::StartTls,
            "Syntax error (no parameters allowed)",
        ),
        // RFC 5321 §4.1.1.9: NOOP may carry a string, which is ignored.
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" => match args.map(str::trim) {
            Some(arg) if !arg.is_empty() => Ok(Command::Vrfy),
            _ => reply("Syntax: VRFY address"),
        },
        "EXPN" => Ok(Command::Expn),
        "AUTH" => parse_auth(args),
        "BDAT" => parse_bdat(args),
        _ => Err(CommandError::Reply(canned::unrecognized())),
    }
}

/// Whether the first word of a line (possibly incomplete) is already known to be an HTTP or
/// proxy request: `GET ` etc. followed by a space.
pub(crate) fn starts_with_forbidden_verb(head: &[u8]) -> bool {
    FORBIDDEN_VERBS.iter().any(|verb| {
        head.get(..verb.len())
            .is_some_and(|word| word.eq_ignore_ascii_case(verb.as_bytes()))
            && head.get(verb.len()) == Some(&b' ')
    })
}

fn no_args<'a>(
    args: Option<&str>,
    command: Command<'a>,
    usage: &'static str,
) -> Result<Command<'a>, CommandError> {
    // Trailing spaces are tolerated (robustness), anything else is an argument.
    match args {
        Some(args) if !args.trim_end().is_empty() => {
            Err(CommandError::Reply(canned::syntax(usage)))
        }
        _ => Ok(command),
    }
}

/// Exactly one word, trailing spaces tolerated.
fn single_word(args: Option<&str>) -> Option<&str> {
    let word = args?.trim_end();
    (!word.is_empty() && !word.contains(' ')).then_some(word)
}

/// `FROM:` / `TO:` (case-insensitive) then optional spaces.
fn strip_keyword<'a>(args: &'a str, keyword: &str) -> Option<&'a str> {
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    Some(args.get(keyword.len()..)?.trim_start_matches(' '))
}

fn parse_auth(args: Option<&str>) -> Result<Command<'_>, CommandError> {
    let usage = || CommandError::Reply(canned::syntax("Syntax: AUTH mechanism [initial-response]"));
    let args = args
        .map(str::trim_end)
        .filter(|a| !a.is_empty())
        .ok_or_else(usage)?;
    let (mechanism, initial_response) = match args.split_once(' ') {
        Some((mechanism, response)) => (mechanism, Some(response)),
        None => (args, None),
    };
    // RFC 4954 §4: initial-response = base64 / "=". Decoding (and refusing bad base64 with
    // 501 5.5.2) is the SASL layer's job, so that every failure reaches the service's
    // failure count (SECURITY-TESTS AU-06).
    Ok(Command::Auth {
        mechanism,
        initial_response,
    })
}

fn parse_bdat(args: Option<&str>) -> Result<Command<'_>, CommandError> {
    // RFC 3030 §2: without a readable chunk size the server cannot know where the next
    // command starts, so it answers 501 and closes the connection.
    let fatal = || CommandError::Fatal(canned::syntax("Syntax: BDAT chunk-size [LAST]"));
    let mut words = args.ok_or_else(fatal)?.trim_end().split(' ');
    let size = words.next().ok_or_else(fatal)?;
    if size.is_empty() || size.len() > 20 || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fatal());
    }
    let size = size.parse::<u64>().map_err(|_| fatal())?;
    let last = match words.next() {
        None => false,
        Some(marker) if marker.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(fatal()),
    };
    if words.next().is_some() {
        return Err(fatal());
    }
    Ok(Command::Bdat { size, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &str) -> u16 {
        match parse(line) {
            Err(CommandError::Reply(reply) | CommandError::Fatal(reply)) => reply.code,
            Ok(_) => 0,
        }
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(parse("ehlo x.example"), Ok(Command::Ehlo("x.example")));
        assert_eq!(parse("HeLo x"), Ok(Command::Helo("x")));
        assert_eq!(parse("mail from:<a@b>"), Ok(Command::Mail("<a@b>")));
        assert_eq!(
            parse("MAIL FROM: <a@b> SIZE=1"),
            Ok(Command::Mail("<a@b> SIZE=1"))
        );
        assert_eq!(parse("rcpt To:<a@b>"), Ok(Command::Rcpt("<a@b>")));
        assert_eq!(parse("data"), Ok(Command::Data));
        assert_eq!(parse("NOOP anything"), Ok(Command::Noop));
        assert_eq!(parse("starttls"), Ok(Command::StartTls));
        assert_eq!(parse("QUIT "), Ok(Command::Quit));
    }

    #[test]
    fn argument_errors() {
        assert_eq!(code("EHLO"), 501);
        assert_eq!(code("EHLO "), 501);
        assert_eq!(code("EHLO a b"), 501);
        assert_eq!(code("MAIL"), 501);
        assert_eq!(code("MAIL TO:<a@b>"), 501);
        assert_eq!(code("MAIL FROM"), 501);
        assert_eq!(code("RCPT FROM:<a@b>"), 501);
        assert_eq!(code("DATA x"), 501);
        assert_eq!(code("RSET x"), 501);
        assert_eq!(code("QUIT now"), 501);
        assert_eq!(code("STARTTLS now"), 501);
        assert_eq!(code("VRFY"), 501);
        assert_eq!(code("AUTH"), 501);
        assert_eq!(code("FOO"), 500);
        assert_eq!(code(""), 500);
    }

    #[test]
    fn auth() {
        assert_eq!(
            parse("AUTH plain AGFsaWNl"),
            Ok(Command::Auth {
                mechanism: "plain",
                initial_response: Some("AGFsaWNl")
            })
        );
        assert_eq!(
            parse("AUTH PLAIN ="),
            Ok(Command::Auth {
                mechanism: "PLAIN",
                initial_response: Some("=")
            })
        );
        assert_eq!(
            parse("AUTH LOGIN"),
            Ok(Command::Auth {
                mechanism: "LOGIN",
                initial_response: None
            })
        );
    }

    #[test]
    fn bdat() {
        assert_eq!(
            parse("BDAT 0 LAST"),
            Ok(Command::Bdat {
                size: 0,
                last: true
            })
        );
        assert_eq!(
            parse("bdat 10 last"),
            Ok(Command::Bdat {
                size: 10,
                last: true
            })
        );
        assert_eq!(
            parse("BDAT 10"),
            Ok(Command::Bdat {
                size: 10,
                last: false
            })
        );
        assert_eq!(
            parse("BDAT 18446744073709551615 LAST"),
            Ok(Command::Bdat {
                size: u64::MAX,
                last: true
            })
        );
        for bad in [
            "BDAT",
            "BDAT -1",
            "BDAT x",
            "BDAT 18446744073709551616",
            "BDAT 1 FIRST",
            "BDAT 1 LAST x",
            "BDAT  1",
        ] {
            assert!(matches!(parse(bad), Err(CommandError::Fatal(_))), "{bad}");
        }
    }

    #[test]
    fn forbidden() {
        assert_eq!(parse("GET / HTTP/1.1"), Ok(Command::Forbidden));
        assert_eq!(parse("post /x HTTP/1.1"), Ok(Command::Forbidden));
        assert_eq!(parse("CONNECT"), Ok(Command::Forbidden));
        assert!(starts_with_forbidden_verb(b"GET /"));
        assert!(starts_with_forbidden_verb(b"connect "));
        assert!(!starts_with_forbidden_verb(b"GET"));
        assert!(!starts_with_forbidden_verb(b"GETX "));
        assert!(!starts_with_forbidden_verb(b"EHLO "));
    }
}
