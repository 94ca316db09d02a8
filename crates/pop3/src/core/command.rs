//! Command-line parsing: one line, line end removed, becomes a [`Command`] or the reason it
//! is refused.
//!
//! ```text
//! command   = keyword *(SP param) CRLF              ; RFC 2449 §3
//! keyword   = 3*4VCHAR                              ; case-insensitive (RFC 1939 §3)
//! param     = 1*VCHAR                               ; one SP between words, none trailing
//! user      = "USER" SP name                        ; RFC 1939 §7
//! pass      = "PASS" SP string                      ; RFC 1939 §7: the rest of the line,
//!                                                   ;   spaces included
//! quit      = "QUIT"                                ; RFC 1939 §4, §6
//! stat      = "STAT"                                ; RFC 1939 §5
//! list      = "LIST" [SP msg]
//! retr      = "RETR" SP msg
//! dele      = "DELE" SP msg
//! noop      = "NOOP"
//! rset      = "RSET"
//! top       = "TOP" SP msg SP lines                 ; RFC 1939 §7
//! uidl      = "UIDL" [SP msg]                       ; RFC 1939 §7
//! apop      = "APOP" SP name SP digest              ; RFC 1939 §7 (recognised, not offered)
//! capa      = "CAPA"                                ; RFC 2449 §5
//! stls      = "STLS"                                ; RFC 2595 §4
//! auth      = "AUTH" [SP mechanism [SP initial-response]]  ; RFC 5034 §4
//! mechanism = 1*20mech-char                         ; RFC 4422 §3.1
//! initial-response = base64 / "="
//! msg       = digit-nz *DIGIT                       ; a message number (RFC 1939 §5)
//! lines     = 1*DIGIT                               ; a count of body lines, >= 0
//! ```
//!
//! A message number with a leading zero, a sign or any other character is a syntax error;
//! one too large for 64 bits is kept as [`u64::MAX`], which is never a message (so it is
//! "no such message", SECURITY-TESTS PO-04). A line count too large for 64 bits is the
//! largest count: TOP then sends the whole message.

/// One parsed command. Borrowed text is part of the validated line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command<'a> {
    User(&'a str),
    Pass(&'a str),
    Apop,
    Auth {
        mechanism: Option<&'a str>,
        initial_response: Option<&'a str>,
    },
    Capa,
    Stls,
    Quit,
    Stat,
    List(Option<u64>),
    Retr(u64),
    Dele(u64),
    Noop,
    Rset,
    Top(u64, u64),
    Uidl(Option<u64>),
}

/// Why a line is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommandError {
    /// Not a POP3 command we know.
    Unknown,
    /// A known command with wrong arguments.
    Syntax,
}

/// Words that start HTTP and proxy requests: a client sending one is not speaking POP3
/// (ALPACA; SECURITY-TESTS TLS-07), so the session ends at once.
const FORBIDDEN_VERBS: [&str; 9] = [
    "GET", "POST", "CONNECT", "HEAD", "PUT", "OPTIONS", "DELETE", "PATCH", "TRACE",
];

/// Whether `line` starts with an HTTP or proxy verb followed by a space.
pub(crate) fn is_forbidden(line: &[u8]) -> bool {
    FORBIDDEN_VERBS.iter().any(|verb| {
        line.len() > verb.len()
            && line
                .get(..verb.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(verb.as_bytes()))
            && line.get(verb.len()) == Some(&b' ')
    })
}

/// Parses one line (without its line end). Text must be UTF-8 without control characters.
pub(crate) fn parse(line: &[u8]) -> Result<Command<'_>, CommandError> {
    let text = std::str::from_utf8(line).map_err(|_| CommandError::Syntax)?;
    if text.chars().any(char::is_control) {
        return Err(CommandError::Syntax);
    }
    let (keyword, rest) = match text.split_once(' ') {
        Some((keyword, rest)) => (keyword, Some(rest)),
        None => (text, None),
    };
    let keyword = keyword.to_ascii_uppercase();
    match keyword.as_str() {
        // RFC 1939 §7: the password is the rest of the line and may contain spaces.
        "PASS" => match rest {
            Some(password) if !password.is_empty() => Ok(Command::Pass(password)),
            _ => Err(CommandError::Syntax),
        },
        _ => parse_words(&keyword, rest),
    }
}

fn parse_words<'a>(keyword: &str, rest: Option<&'a str>) -> Result<Command<'a>, CommandError> {
    let args: Vec<&str> = match rest {
        None => Vec::new(),
        Some(rest) => rest.split(' ').collect(),
    };
    // RFC 2449 §3: one SP between words; an empty word means two spaces or a trailing one.
    let well_formed = args.iter().all(|arg| !arg.is_empty());
    let command = match (keyword, args.as_slice()) {
        ("USER", [name]) => Command::User(name),
        ("APOP", [_, _]) => Command::Apop,
        ("AUTH", []) => Command::Auth {
            mechanism: None,
            initial_response: None,
        },
        ("AUTH", [mechanism]) => Command::Auth {
            mechanism: Some(mechanism),
            initial_response: None,
        },
        ("AUTH", [mechanism, response]) => Command::Auth {
            mechanism: Some(mechanism),
            initial_response: Some(response),
        },
        ("CAPA", []) => Command::Capa,
        ("STLS", []) => Command::Stls,
        ("QUIT", []) => Command::Quit,
        ("STAT", []) => Command::Stat,
        ("LIST", []) => Command::List(None),
        ("LIST", [msg]) => Command::List(Some(message_number(msg)?)),
        ("RETR", [msg]) => Command::Retr(message_number(msg)?),
        ("DELE", [msg]) => Command::Dele(message_number(msg)?),
        ("NOOP", []) => Command::Noop,
        ("RSET", []) => Command::Rset,
        ("TOP", [msg, lines]) => Command::Top(message_number(msg)?, line_count(lines)?),
        ("UIDL", []) => Command::Uidl(None),
        ("UIDL", [msg]) => Command::Uidl(Some(message_number(msg)?)),
        (
            "USER" | "APOP" | "AUTH" | "CAPA" | "STLS" | "QUIT" | "STAT" | "LIST" | "RETR" | "DELE"
            | "NOOP" | "RSET" | "TOP" | "UIDL",
            _,
        ) => return Err(CommandError::Syntax),
        _ => return Err(CommandError::Unknown),
    };
    if well_formed {
        Ok(command)
    } else {
        Err(CommandError::Syntax)
    }
}

/// `msg = digit-nz *DIGIT`; too large for u64 gives `u64::MAX` (never a message).
fn message_number(text: &str) -> Result<u64, CommandError> {
    if text.starts_with('0') {
        return Err(CommandError::Syntax);
    }
    digits(text)
}

/// `lines = 1*DIGIT`; too large for u64 gives `u64::MAX` (the whole message).
fn line_count(text: &str) -> Result<u64, CommandError> {
    digits(text)
}

fn digits(text: &str) -> Result<u64, CommandError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::Syntax);
    }
    Ok(text.parse::<u64>().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_arguments() {
        assert_eq!(parse(b"user alice@x"), Ok(Command::User("alice@x")));
        assert_eq!(parse(b"PASS a b  c "), Ok(Command::Pass("a b  c ")));
        assert_eq!(parse(b"LiSt"), Ok(Command::List(None)));
        assert_eq!(parse(b"LIST 12"), Ok(Command::List(Some(12))));
        assert_eq!(parse(b"TOP 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(
            parse(b"TOP 1 99999999999999999999"),
            Ok(Command::Top(1, u64::MAX))
        );
        assert_eq!(
            parse(b"RETR 18446744073709551616"),
            Ok(Command::Retr(u64::MAX))
        );
        assert_eq!(
            parse(b"AUTH PLAIN ="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN"),
                initial_response: Some("=")
            })
        );
        assert_eq!(parse(b"APOP alice 0123"), Ok(Command::Apop));
    }

    #[test]
    fn refusals() {
        for line in [
            &b"RETR 0"[..],
            b"RETR -1",
            b"RETR 1x",
            b"RETR +1",
            b"RETR",
            b"DELE 1 2",
            b"UIDL 00000000000000000001",
            b"TOP 1 -5",
            b"TOP 1",
            b"NOOP ",
            b"LIST  1",
            b"STAT x",
            b"PASS",
            b"PASS ",
            b"USER",
            b"USER a\x00b",
            b"USER \xff",
            b"CAPA\t",
        ] {
            assert_eq!(
                parse(line),
                Err(CommandError::Syntax),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        for line in [
            &b""[..],
            b"HELO x",
            b"<script>alert(1)</script>",
            b"XTND XMIT",
        ] {
            assert_eq!(parse(line), Err(CommandError::Unknown));
        }
    }

    #[test]
    fn http_verbs() {
        assert!(is_forbidden(b"GET / HTTP/1.1"));
        assert!(is_forbidden(b"post /x HTTP/1.1"));
        assert!(!is_forbidden(b"GET"));
        assert!(!is_forbidden(b"DELE 1"));
    }
}
