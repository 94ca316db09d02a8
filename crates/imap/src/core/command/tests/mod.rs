//! The command parser on the client lines of the RFC examples (RFC 9051 §6 and §8, and
//! the extension RFCs), framed the way the core frames them.

use std::num::NonZeroU32;

use sealpost_sasl::Mechanism;
use sealpost_types::MailboxName;

use super::*;

mod mailbox;
mod message;
use crate::core::framing::{split_announcement, strip_line_ending};
use crate::core::parser::{ParseError, Part};
use crate::core::search::{SearchKey, SearchReturn};
use crate::core::sequence::{SeqNum, SeqRange};

pub(crate) fn context() -> ParseContext {
    ParseContext {
        utf8_names: false,
        max_depth: 32,
        binary: true,
        condstore: true,
        qresync_enabled: true,
        multiappend: true,
        quota: true,
        mechanisms: vec![Mechanism::Plain],
    }
}

/// Frames `wire` (one command, with its literals) into parts like the core's framer.
pub(super) fn frame(wire: &[u8]) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut rest = wire;
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |lf| lf + 1);
        let (line, after) = rest.split_at(end);
        let (text, announcement) = split_announcement(strip_line_ending(line));
        parts.push(Part::Line(text.to_vec()));
        let Some(announcement) = announcement else {
            return parts;
        };
        let size = usize::try_from(announcement.size).unwrap();
        let (data, after) = after.split_at(size.min(after.len()));
        parts.push(Part::Literal {
            data: data.to_vec(),
            binary: announcement.binary,
        });
        rest = after;
    }
}

pub(super) fn parse_with(wire: &str, ctx: &ParseContext) -> Result<Command, ParseError> {
    parse_bytes(wire.as_bytes(), ctx)
}

pub(super) fn parse_bytes(wire: &[u8], ctx: &ParseContext) -> Result<Command, ParseError> {
    let mut input = Input::new(frame(wire));
    let (tag, name) = parse_head(&mut input).map_err(|_| ParseError::Bad("head"))?;
    let body = parse_args(name, &mut input, ctx)?;
    Ok(Command { tag, body })
}

pub(super) fn parse(wire: &str) -> CommandBody {
    match parse_with(wire, &context()) {
        Ok(command) => command.body,
        Err(error) => panic!("{wire:?}: {error:?}"),
    }
}

pub(super) fn refused(wire: &str) -> ParseError {
    match parse_with(wire, &context()) {
        Ok(command) => panic!("{wire:?} parsed as {command:?}"),
        Err(error) => error,
    }
}

pub(super) fn mailbox(name: &str) -> MailboxName {
    MailboxName::parse(name).unwrap()
}

pub(super) fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

pub(super) fn set(text: &str) -> SequenceSet {
    let mut input = Input::new(vec![Part::Line(text.as_bytes().to_vec())]);
    crate::core::sequence::parse_sequence_set(
        &mut input,
        crate::core::sequence::SetRules {
            star: true,
            saved: true,
        },
    )
    .unwrap()
}

#[test]
fn any_state_commands() {
    // RFC 9051 §6.1.
    assert_eq!(parse("abcd CAPABILITY"), CommandBody::Capability);
    assert_eq!(parse("a002 NOOP"), CommandBody::Noop);
    assert_eq!(parse("A023 LOGOUT"), CommandBody::Logout);
    assert_eq!(parse("a001 STARTTLS"), CommandBody::StartTls);
    assert_eq!(
        refused("a001 STARTTLS now"),
        ParseError::Bad("unexpected characters after the command")
    );
    // RFC 2971 §4.
    let CommandBody::Id {
        params: Some(params),
    } = parse(r#"a023 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")"#)
    else {
        panic!()
    };
    assert_eq!(params.len(), 3);
    assert_eq!(params[1], ("version".into(), Some("19.34".into())));
    assert_eq!(parse("a ID NIL"), CommandBody::Id { params: None });
    assert_eq!(
        parse("a ID ()"),
        CommandBody::Id {
            params: Some(vec![])
        }
    );
}

#[test]
fn not_authenticated_commands() {
    // RFC 9051 §6.2.3 and the §8 sample session.
    let CommandBody::Login { username, password } = parse("a001 LOGIN SMITH SESAME") else {
        panic!()
    };
    assert_eq!(
        (username.as_str(), password.expose().as_str()),
        ("SMITH", "SESAME")
    );
    assert!(matches!(
        parse("a001 login mrc secret"),
        CommandBody::Login { .. }
    ));
    let CommandBody::Login { password, .. } = parse("a LOGIN {5}\r\nalice {13}\r\ncorrect horse")
    else {
        panic!()
    };
    assert_eq!(password.expose(), "correct horse");
    assert!(!format!("{:?}", parse("a LOGIN u secret-pw")).contains("secret-pw"));
    // RFC 9051 §6.2.2 with SASL-IR (RFC 4959 §7).
    let CommandBody::Authenticate {
        mechanism,
        initial_response,
    } = parse("A01 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=")
    else {
        panic!()
    };
    assert_eq!(mechanism, Mechanism::Plain);
    assert_eq!(initial_response.unwrap().expose(), b"dGVzdAB0ZXN0AHRlc3Q=");
    let CommandBody::Authenticate {
        initial_response, ..
    } = parse("a authenticate plain =")
    else {
        panic!()
    };
    assert_eq!(initial_response.unwrap().expose(), b"=");
    assert!(matches!(
        parse("a AUTHENTICATE PLAIN"),
        CommandBody::Authenticate {
            initial_response: None,
            ..
        }
    ));
    assert_eq!(
        refused("A001 AUTHENTICATE GSSAPI"),
        ParseError::Cannot("unsupported authentication mechanism")
    );
    assert!(matches!(
        refused("a AUTHENTICATE PLAIN abc"),
        ParseError::Bad(_)
    ));
    assert!(matches!(
        refused("a AUTHENTICATE PLAIN a===="),
        ParseError::Bad(_)
    ));
}

#[test]
fn heads() {
    let head = |line: &str| parse_head(&mut Input::new(vec![Part::Line(line.as_bytes().to_vec())]));
    assert_eq!(
        head("a NOOP"),
        Ok((Tag::new("a").unwrap(), CommandName::Noop))
    );
    assert_eq!(
        head("a uid fetch 1 FLAGS"),
        Ok((Tag::new("a").unwrap(), CommandName::UidFetch))
    );
    assert_eq!(head("+ NOOP"), Err(HeadError::NoTag));
    assert_eq!(head("* NOOP"), Err(HeadError::NoTag));
    assert_eq!(head(""), Err(HeadError::NoTag));
    assert_eq!(head("a(b NOOP"), Err(HeadError::NoTag));
    assert_eq!(head("a\u{1} NOOP"), Err(HeadError::NoTag));
    assert_eq!(head("a+ NOOP"), Err(HeadError::NoTag));
    assert_eq!(
        head("a] NOOP"),
        Ok((Tag::new("a]").unwrap(), CommandName::Noop))
    );
    assert_eq!(
        head("a BOGUS"),
        Err(HeadError::Unknown(Tag::new("a").unwrap()))
    );
    assert_eq!(
        head("a UID NOOP"),
        Err(HeadError::Unknown(Tag::new("a").unwrap()))
    );
    assert_eq!(head("a"), Err(HeadError::Unknown(Tag::new("a").unwrap())));
    assert!(Tag::new("a+b").is_none());
    assert!(Tag::new("").is_none());
}

#[test]
fn states() {
    use crate::core::state::SessionState as S;
    let selected = S::Selected { read_only: false };
    assert!(CommandName::Login.allowed_in(S::NotAuthenticated));
    assert!(!CommandName::Login.allowed_in(S::Authenticated));
    assert!(!CommandName::Select.allowed_in(S::NotAuthenticated));
    assert!(CommandName::Select.allowed_in(selected));
    assert!(!CommandName::Fetch.allowed_in(S::Authenticated));
    assert!(CommandName::UidExpunge.allowed_in(selected));
    assert!(CommandName::Enable.allowed_in(S::Authenticated));
    assert!(!CommandName::Enable.allowed_in(selected));
    assert!(CommandName::Id.allowed_in(S::NotAuthenticated));
    assert!(!CommandName::Noop.allowed_in(S::Logout));
}

proptest::proptest! {
    /// Arbitrary bytes after any command name never panic the parser.
    #[test]
    fn arbitrary_arguments_never_panic(
        name in proptest::sample::select(vec![
            "LOGIN", "AUTHENTICATE", "ENABLE", "SELECT", "EXAMINE", "CREATE", "RENAME", "LIST", "LSUB",
            "STATUS", "APPEND", "SEARCH", "UID SEARCH", "FETCH", "UID FETCH", "STORE", "COPY", "MOVE",
            "UID EXPUNGE", "ID", "GETQUOTA", "GETQUOTAROOT", "SETQUOTA",
        ]),
        args in proptest::collection::vec(proptest::prop_oneof![
            proptest::num::u8::ANY,
            proptest::sample::select(b"()[]<>{}\" \\*%$:,.0123456789+-~".to_vec()),
        ], 0..60),
        utf8 in proptest::bool::ANY,
    ) {
        let mut wire = format!("a {name} ").into_bytes();
        wire.extend_from_slice(&args);
        let ctx = ParseContext { utf8_names: utf8, ..context() };
        let mut input = Input::new(frame(&wire));
        if let Ok((_, name)) = parse_head(&mut input) {
            let _ = parse_args(name, &mut input, &ctx);
        }
    }
}
