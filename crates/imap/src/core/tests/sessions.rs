//! Whole sessions: the RFC 9051 §8 sample, login forms, STARTTLS, ENABLE and the two
//! revisions, IDLE, literals. Every transcript is replayed at every chunk size.

use super::harness::{
    Action, PLAIN_ALICE, Step, client, imap_starttls, imaps, service, transcript,
};
use crate::core::{
    CommandBody, Completion, CoreConfig, Event, SessionInfo, SessionState, Transition,
};

fn login() -> Step {
    client("L LOGIN alice correct-horse\r\n")
}

#[test]
fn rfc9051_sample_session() {
    // RFC 9051 §8 (client lines as in the RFC; the service accepts any login).
    let any_login = |event: &Event, session: &SessionInfo| match event {
        Event::Command(command) if matches!(command.body, CommandBody::Login { .. }) => {
            vec![Action::Finish(
                Completion::ok("LOGIN completed")
                    .with_transition(Transition::Authenticated { user: "mrc".into() }),
            )]
        }
        other => service(other, session),
    };
    let steps = [client(
        "a001 login mrc secret\r\na002 select inbox\r\na003 fetch 12 full\r\na004 fetch 12 body[header]\r\na005 store 12 +flags \\deleted\r\na006 logout\r\n",
    )];
    let t = transcript(&imaps(), &steps, &any_login);
    let lines = t.lines();
    assert!(
        lines[0].starts_with(
            "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN SASL-IR ID ENABLE IDLE LITERAL+]"
        ),
        "{}",
        lines[0]
    );
    assert!(t.has_line("a001 OK LOGIN completed"));
    assert!(t.has_line("a002 OK [READ-WRITE] SELECT completed"));
    assert!(t.has_line("a003 OK FETCH completed"));
    assert!(t.has_line("a004 OK FETCH completed"));
    assert!(t.has_line("a005 OK completed"));
    assert!(t.has_line("* BYE Logging out"));
    assert!(t.has_line("a006 OK LOGOUT completed"));
    assert_eq!(t.commands().len(), 5);
    assert!(t.closed);
    assert_eq!(t.session.state, SessionState::Logout);
}

#[test]
fn capability_depends_on_state() {
    let steps = [
        client("a CAPABILITY\r\n"),
        login(),
        client("b CAPABILITY\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    let caps = t.starting("* CAPABILITY");
    assert_eq!(
        caps[0],
        "* CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN SASL-IR ID ENABLE IDLE LITERAL+"
    );
    assert!(
        caps[1].contains("UIDPLUS MOVE") && caps[1].contains("CONDSTORE QRESYNC"),
        "{}",
        caps[1]
    );
    assert!(caps[1].contains("APPENDLIMIT=52428800") && caps[1].contains("UTF8=ACCEPT"));
    assert!(!caps[1].contains("AUTH=") && !caps[1].contains("STARTTLS"));
    // RFC 9051 §6.2.3: capabilities in the login's OK.
    assert!(
        t.lines()
            .iter()
            .any(|l| l.starts_with("L OK [CAPABILITY IMAP4rev1 IMAP4rev2 ENABLE"))
    );
    assert_eq!(t.session.user.as_deref(), Some("alice"));
    // Only LOGIN reached the service.
    assert_eq!(t.commands().len(), 1);
}

#[test]
fn authenticate_with_and_without_initial_response() {
    let steps = [client(format!("a AUTHENTICATE PLAIN {PLAIN_ALICE}\r\n"))];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.lines().iter().any(|l| l.starts_with("a OK [CAPABILITY")));
    assert!(t.session.is_authenticated());
    // RFC 9051 §6.2.2: empty challenge "+ ", then the response line.
    let steps = [
        client("a AUTHENTICATE PLAIN\r\n"),
        client(format!("{PLAIN_ALICE}\r\n")),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("+ "));
    assert!(t.session.is_authenticated());
    assert!(matches!(t.events[1], Event::AuthResponse(_)));
    // "*" cancels: tagged BAD (RFC 9051 §6.2.2).
    let steps = [client("a AUTHENTICATE PLAIN\r\n*\r\nb NOOP\r\n")];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("a BAD Authentication cancelled"));
    assert!(t.has_line("b OK NOOP completed"));
    assert!(!t.session.is_authenticated());
    // Not offered, unknown, wrong: NO.
    let steps = [client(
        "a AUTHENTICATE LOGIN\r\nb AUTHENTICATE X-BOGUS\r\nc AUTHENTICATE PLAIN AGFsaWNlAHdyb25n\r\n",
    )];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("a NO [CANNOT] unsupported authentication mechanism"));
    assert!(t.has_line("b NO [CANNOT] unsupported authentication mechanism"));
    assert!(t.has_line("c NO [AUTHENTICATIONFAILED] Authentication failed"));
    assert!(!t.closed);
}

#[test]
fn starttls_then_login() {
    let steps = [
        client("a CAPABILITY\r\n"),
        client("b STARTTLS\r\n"),
        Step::TlsStarted,
        client("c CAPABILITY\r\n"),
        login(),
    ];
    let t = transcript(&imap_starttls(), &steps, &service);
    let caps = t.starting("* CAPABILITY");
    assert!(
        caps[0].contains("STARTTLS LOGINDISABLED") && !caps[0].contains("AUTH="),
        "{}",
        caps[0]
    );
    assert!(
        caps[1].contains("AUTH=PLAIN")
            && !caps[1].contains("STARTTLS")
            && !caps[1].contains("LOGINDISABLED")
    );
    assert!(t.has_line("b OK Begin TLS negotiation now"));
    assert!(t.events.contains(&Event::StartTls));
    assert!(t.session.tls && t.session.is_authenticated());
}

#[test]
fn enable_and_revisions() {
    let steps = [
        login(),
        client("e1 ENABLE CONDSTORE X-GOOD-IDEA\r\n"),
        client("e2 ENABLE QRESYNC CONDSTORE\r\n"),
        client("e3 ENABLE IMAP4rev2 UTF8=ACCEPT\r\n"),
        client("c CREATE \"Café\"\r\n"),
        client("l LSUB \"\" *\r\n"),
        client("s SELECT INBOX\r\n"),
        client("e4 ENABLE CONDSTORE\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("* ENABLED CONDSTORE"));
    assert!(t.has_line("* ENABLED QRESYNC"));
    assert!(t.has_line("* ENABLED IMAP4rev2 UTF8=ACCEPT"));
    assert!(t.has_line("e3 OK ENABLE completed"));
    // RFC 6855 / RFC 9051: UTF-8 names once enabled.
    assert!(
        t.commands()
            .iter()
            .any(|c| matches!(c, CommandBody::Create { mailbox } if mailbox.as_str() == "Café"))
    );
    // RFC 9051 Appendix E: no LSUB in IMAP4rev2; RFC 5161: ENABLE not in selected state.
    assert!(t.has_line("l BAD LSUB is not part of IMAP4rev2"));
    assert!(t.has_line("e4 BAD Command not allowed in this state"));
    let enabled = t.session.enabled;
    assert!(enabled.condstore && enabled.qresync && enabled.imap4rev2 && enabled.utf8_accept);
}

#[test]
fn enable_nothing_offered() {
    let config = CoreConfig {
        extensions: crate::core::Extensions {
            condstore: false,
            qresync: false,
            utf8_accept: false,
            ..Default::default()
        },
        ..imaps()
    };
    let steps = [
        login(),
        client("e ENABLE CONDSTORE QRESYNC UTF8=ACCEPT\r\n"),
    ];
    let t = transcript(&config, &steps, &service);
    // RFC 5161 §3.1: the ENABLED response is sent even when empty.
    assert!(t.has_line("* ENABLED"));
    assert_eq!(t.session.enabled, crate::core::Enabled::default());
}

#[test]
fn condstore_enabling_commands() {
    // RFC 7162 §3.1: SELECT (CONDSTORE) enables CONDSTORE.
    let steps = [login(), client("s SELECT INBOX (CONDSTORE)\r\n")];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.session.enabled.condstore);
    let steps = [
        login(),
        client("s SELECT INBOX\r\nf FETCH 1 (FLAGS) (CHANGEDSINCE 5)\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.session.enabled.condstore);
    let steps = [login(), client("s SELECT INBOX\r\nf FETCH 1 FLAGS\r\n")];
    let t = transcript(&imaps(), &steps, &service);
    assert!(!t.session.enabled.condstore);
    let steps = [
        login(),
        client("s SELECT INBOX\r\nf SEARCH OR ALL (NOT MODSEQ 5)\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.session.enabled.condstore);
}

#[test]
fn mailbox_names_in_rev1_and_rev2() {
    let steps = [
        login(),
        client("a CREATE &U,BTFw-/&ZeVnLIqe-\r\nb CREATE \"&Jjo\"\r\nc SELECT inbox\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.commands().iter().any(
        |c| matches!(c, CommandBody::Create { mailbox } if mailbox.as_str() == "台北/日本語")
    ));
    assert!(t.has_line("b NO [CANNOT] invalid mailbox name"));
    assert!(
        t.commands()
            .iter()
            .any(|c| matches!(c, CommandBody::Select { mailbox, .. } if mailbox.is_inbox()))
    );
}

#[test]
fn select_close_and_states() {
    let steps = [
        login(),
        client("f1 FETCH 1 FLAGS\r\n"),
        client("s EXAMINE INBOX\r\n"),
        client("f2 FETCH 1:* FLAGS\r\n"),
        client("c CLOSE\r\n"),
        client("f3 FETCH 1 FLAGS\r\n"),
        client("l LOGIN alice correct-horse\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("f1 BAD Command not allowed in this state"));
    assert!(t.has_line("s OK [READ-ONLY] SELECT completed"));
    assert_eq!(t.starting("* 3 FETCH").len(), 1);
    assert!(t.has_line("f2 OK FETCH completed"));
    assert!(t.has_line("f3 BAD Command not allowed in this state"));
    assert!(t.has_line("l BAD Command not allowed in this state"));
    assert_eq!(t.session.state, SessionState::Authenticated);
}

#[test]
fn idle() {
    let steps = [
        login(),
        client("s SELECT INBOX\r\n"),
        client("i IDLE\r\n"),
        Step::Keepalive,
        client("DONE\r\n"),
        client("j IDLE\r\nNOTDONE\r\nn NOOP\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("+ idling"));
    assert!(t.has_line("* OK Still here"));
    assert!(t.has_line("i OK IDLE terminated"));
    // RFC 2177 §3 / SECURITY-TESTS IM-17: anything but DONE ends IDLE with BAD.
    assert!(t.has_line("j BAD Expected DONE"));
    assert!(t.has_line("n OK completed"));
    assert!(t.events.contains(&Event::IdleDone { done: true }));
    assert!(t.events.contains(&Event::IdleDone { done: false }));
}

#[test]
fn literals_sync_and_nonsync() {
    let steps = [
        client("a LOGIN {5}\r\n"),
        client("alice {13}\r\n"),
        client("correct-horse\r\n"),
        client("b SELECT {5+}\r\nINBOX\r\n"),
        client(
            "c APPEND INBOX (\\Seen) {11}\r\nhello\r\nbody \"07-Jul-1996 02:44:25 +0000\" {2+}\r\nhi\r\n",
        ),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert_eq!(t.continuations(), 3, "{}", t.text());
    assert!(t.session.is_authenticated());
    assert!(t.has_line("b OK [READ-WRITE] SELECT completed"));
    // The second message needs MULTIAPPEND, which is on by default.
    assert!(
        t.has_line("c OK APPEND of 2 message(s) completed"),
        "{}",
        t.text()
    );
    let CommandBody::Append { messages, .. } = &t.commands()[2] else {
        panic!()
    };
    assert_eq!(messages[0].data, b"hello\r\nbody");
    assert_eq!(messages[1].data, b"hi");
}

#[test]
fn pipelined_commands_run_in_order() {
    let steps = [client(
        "a NOOP\r\nb CAPABILITY\r\nL LOGIN alice correct-horse\r\nc NOOP\r\nd LOGOUT\r\ne NOOP\r\n",
    )];
    let t = transcript(&imaps(), &steps, &service);
    let tagged: Vec<String> = t
        .lines()
        .into_iter()
        .filter(|l| !l.starts_with('*'))
        .collect();
    assert_eq!(tagged.len(), 5, "{tagged:?}");
    assert!(tagged[0].starts_with("a OK") && tagged[4].starts_with("d OK"));
    assert!(!t.text().contains("e OK"));
    assert!(t.closed);
}

#[test]
fn autologout_and_eof() {
    let t = transcript(&imaps(), &[client("a NOOP\r\n"), Step::Timeout], &service);
    assert!(t.has_line("* BYE Autologout; idle for too long"));
    assert!(t.closed);
    let t = transcript(&imaps(), &[client("a NOOP\r\nb NO"), Step::Eof], &service);
    assert!(t.closed);
    assert!(!t.text().contains("b "));
}

#[test]
fn timeouts_follow_the_state() {
    use crate::core::{AUTOLOGOUT_TIMEOUT, IDLE_TIMEOUT, ImapCore, PREAUTH_TIMEOUT};
    let mut core = ImapCore::new(imaps());
    assert_eq!(core.read_timeout(), Some(PREAUTH_TIMEOUT));
    core.feed(b"L LOGIN alice correct-horse\r\n");
    let Some(Event::Command(_)) = core.next_event() else {
        panic!()
    };
    assert_eq!(core.read_timeout(), None);
    assert!(core.finish(
        Completion::ok("ok").with_transition(Transition::Authenticated {
            user: "alice".into()
        })
    ));
    assert_eq!(core.read_timeout(), Some(AUTOLOGOUT_TIMEOUT));
    core.feed(b"i IDLE\r\n");
    let Some(Event::Command(_)) = core.next_event() else {
        panic!()
    };
    // The service may refuse IDLE instead of accepting it.
    assert!(core.finish(Completion::no("not now")));
    core.feed(b"j IDLE\r\n");
    let Some(Event::Command(_)) = core.next_event() else {
        panic!()
    };
    assert!(core.idle_accept());
    assert_eq!(core.read_timeout(), Some(IDLE_TIMEOUT));
    assert!(!core.idle_accept(), "IDLE is already running");
    assert!(!core.auth_continue(b""), "no AUTHENTICATE is pending");
    assert!(
        !core.finish(Completion::ok("x")),
        "IDLE waits for DONE, not for the service"
    );
}
