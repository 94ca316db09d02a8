//! SECURITY-TESTS §4.6 (IM-*) and §4.2 (ST-03, ST-04, ST-06, ST-08) as far as they concern
//! the core, each replayed at every chunk size.

use super::harness::{PLAIN_ALICE, Step, client, imap_starttls, imaps, service, transcript};

use crate::core::{CommandBody, CoreConfig, Event, Extensions, Limits};

fn login() -> Step {
    client("L LOGIN alice correct-horse\r\n")
}

fn select() -> Step {
    client("S SELECT INBOX\r\n")
}

/// Generous BAD limits, for tests that send many bad commands on purpose.
fn patient() -> CoreConfig {
    CoreConfig {
        limits: Limits {
            max_bad_preauth: 1000,
            max_bad: 1000,
            ..Limits::default()
        },
        ..imaps()
    }
}

#[test]
fn im01_nul_and_controls_in_quoted_strings() {
    let steps = [
        client("a LOGIN \"ali\0ce\" \"x\"\r\n"),
        client("c LOGIN \"alice\" \"pw\r\"\r\n"),
        login(),
        client("b SELECT \"IN\0BOX\"\r\n"),
        select(),
        client("d SEARCH SUBJECT \"a\0b\"\r\n"),
    ];
    let t = transcript(&patient(), &steps, &service);
    assert!(t.has_line("a BAD invalid character in quoted string"));
    assert!(
        t.has_line("c BAD invalid character in quoted string"),
        "{}",
        t.text()
    );
    assert!(t.has_line("b BAD invalid character in quoted string"));
    assert!(t.has_line("d BAD invalid character in quoted string"));
    // Only the good LOGIN and SELECT reached the service.
    assert_eq!(t.commands().len(), 2);
}

#[test]
fn im02_huge_synchronising_literals_get_no_continuation() {
    let steps = [
        client("a LOGIN {18446744073709551615}\r\n"),
        client("b LOGIN {4294967296}\r\n"),
        client("c LOGIN {99999999999999999999999}\r\n"),
        client("d LOGIN {-1}\r\n"),
        client("e LOGIN { 5}\r\n"),
        client("g LOGIN {8193}\r\n"),
        login(),
        client("f APPEND INBOX {1099511627776}\r\n"),
        client("h APPEND INBOX (\\Seen) {52428801}\r\n"),
        client("i NOOP\r\n"),
    ];
    let t = transcript(&patient(), &steps, &service);
    assert_eq!(t.continuations(), 0, "{}", t.text());
    for tag in ["a", "b", "c", "g"] {
        assert!(
            t.has_line(&format!("{tag} BAD [TOOBIG] Command too big")),
            "{tag}: {}",
            t.text()
        );
    }
    assert!(t.has_line("d BAD expected a string"));
    assert!(t.has_line("e BAD expected a string"));
    // RFC 7889 §4: APPEND over APPENDLIMIT is NO [TOOBIG], before any octet is read.
    assert!(t.has_line("f NO [TOOBIG] Message too big"));
    assert!(t.has_line("h NO [TOOBIG] Message too big"));
    assert!(t.has_line("i OK completed"));
    assert!(!t.closed);
}

#[test]
fn im03_oversize_nonsynchronising_literal_closes() {
    let mut payload = b"a LOGIN {5000+}\r\n".to_vec();
    payload.extend(std::iter::repeat_n(b'A', 5000));
    payload.extend_from_slice(b" x\r\nz NOOP\r\n");
    let t = transcript(&imaps(), &[client(&payload)], &service);
    assert_eq!(
        t.lines(),
        vec![
            t.lines()[0].clone(),
            "a BAD [TOOBIG] Command too big".to_string(),
            "* BYE [TOOBIG] Literal refused; closing the connection".to_string()
        ]
    );
    assert!(t.closed && t.events.is_empty());
    // Outside APPEND the LITERAL- bound (4096) holds under LITERAL+ too.
    let steps = [
        login(),
        select(),
        client(format!(
            "c SEARCH TEXT {{5000+}}\r\n{}\r\n",
            "A".repeat(5000)
        )),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("c BAD [TOOBIG] Command too big") && t.closed);
    // APPEND under LITERAL+: up to APPENDLIMIT.
    let big = format!("b APPEND INBOX {{200000+}}\r\n{}\r\n", "A".repeat(200_000));
    let t = transcript(&imaps(), &[login(), client(&big)], &service);
    assert!(t.has_line("b OK APPEND of 1 message(s) completed") && !t.closed);
    // Under LITERAL- (RFC 7888 §5) and over APPENDLIMIT: NO [TOOBIG], BYE, and the octets
    // are never read as commands.
    let literal_minus = CoreConfig {
        extensions: Extensions {
            literal_plus: false,
            ..Extensions::default()
        },
        ..imaps()
    };
    let t = transcript(&literal_minus, &[login(), client(&big)], &service);
    assert!(t.has_line("b NO [TOOBIG] Message too big") && t.closed);
    assert!(t.starting("L OK")[0].contains("LITERAL-"));
    let small_limit = CoreConfig {
        limits: Limits {
            max_append: 100_000,
            ..Limits::default()
        },
        ..imaps()
    };
    let t = transcript(&small_limit, &[login(), client(&big)], &service);
    assert!(t.has_line("b NO [TOOBIG] Message too big") && t.closed);
    assert_eq!(t.commands().len(), 1);
}

#[test]
fn im04_literal_count_and_command_size() {
    // 1 001 non-synchronising literals: refused at the 1 001st, and the session ends.
    let mut search = b"a SEARCH".to_vec();
    for _ in 0..1001 {
        search.extend_from_slice(b" TEXT {1+}\r\nx");
    }
    search.extend_from_slice(b"\r\n");
    let t = transcript(&imaps(), &[login(), select(), client(&search)], &service);
    assert!(
        t.has_line("a BAD [LIMIT] Too many literals"),
        "{}",
        t.text()
    );
    assert!(t.closed);
    // 11 synchronising literals of 100 KiB: the 11th would pass 1 MiB; no `+` for it.
    let mut steps = vec![login(), select(), client("a SEARCH TEXT {102400}\r\n")];
    for _ in 0..10 {
        steps.push(client(format!(
            "{} TEXT {{102400}}\r\n",
            "x".repeat(102_400)
        )));
    }
    let t = transcript(&imaps(), &steps, &service);
    assert_eq!(t.continuations(), 10);
    assert!(t.has_line("a BAD [TOOBIG] Command too big"));
    assert!(!t.closed);
    // A literal over the per-literal bound outside APPEND.
    let t = transcript(
        &imaps(),
        &[login(), select(), client("b SEARCH TEXT {102401}\r\n")],
        &service,
    );
    assert!(t.has_line("b BAD [TOOBIG] Command too big"));
    assert_eq!(t.continuations(), 0);
}

#[test]
fn im05_deep_nesting_is_bad_not_a_crash() {
    let steps = [
        login(),
        select(),
        client(format!(
            "a SEARCH {}ALL{}\r\n",
            "(".repeat(5000),
            ")".repeat(5000)
        )),
        client(format!("b SEARCH {}ALL\r\n", "NOT ".repeat(10_000))),
        client(format!("c SEARCH {}ALL\r\n", "OR ALL ".repeat(5000))),
        client(format!(
            "d FETCH 1 (BODY[HEADER.FIELDS ({})])\r\n",
            "X ".repeat(20_000)
        )),
        client("e NOOP\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("a BAD search keys nested too deeply"));
    assert!(t.has_line("b BAD search keys nested too deeply"));
    assert!(t.has_line("c BAD search keys nested too deeply"));
    assert!(t.lines().iter().any(|l| l.starts_with("d BAD")));
    assert!(t.has_line("e OK completed"));
    // 100 000 levels: over the line limit.
    let steps = [
        login(),
        select(),
        client(format!(
            "a SEARCH {}ALL{}\r\n",
            "(".repeat(100_000),
            ")".repeat(100_000)
        )),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("* BYE [TOOBIG] Command line too long") && t.closed);
}

#[test]
fn im06_sequence_set_abuse() {
    let steps = [
        login(),
        select(),
        client("a FETCH 0 FLAGS\r\nb FETCH 4294967296 FLAGS\r\nc FETCH 1:4294967295 FLAGS\r\n"),
        client("f STORE 1:*:2 +FLAGS (\\Seen)\r\ng SEARCH UID 4294967295:1\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("a BAD number must not be zero"));
    assert!(t.has_line("b BAD number too large"));
    assert!(t.has_line("c OK FETCH completed"));
    assert_eq!(t.starting("* 3 FETCH").len(), 1);
    assert!(t.lines().iter().any(|l| l.starts_with("f BAD")));
    assert!(t.has_line("g OK completed"));
    // A 1.3 MB comma list is over the line limit.
    let list: Vec<String> = (1..=200_000).map(|n| n.to_string()).collect();
    let steps = [
        login(),
        select(),
        client(format!("e FETCH {} FLAGS\r\n", list.join(","))),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("* BYE [TOOBIG] Command line too long") && t.closed);
}

#[test]
fn im07_sections_and_partials() {
    let deep: Vec<String> = (1..=30).map(|n| n.to_string()).collect();
    let steps = [
        login(),
        select(),
        client(format!("a FETCH 1 BODY[{}]\r\n", deep.join("."))),
        client(
            "b FETCH 1 BODY[0]\r\nc FETCH 1 BODY[]<0.4294967296>\r\nd FETCH 1 BODY[]<4294967295.1>\r\n",
        ),
        client("f FETCH 1 BODY[HEADER.FIELDS ()]\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("a OK FETCH completed"));
    assert!(t.has_line("b BAD number must not be zero"));
    assert!(t.has_line("c BAD number too large"));
    assert!(t.has_line("d OK FETCH completed"));
    assert!(t.has_line("f BAD empty list"));
}

#[test]
fn im08_im09_mailbox_names_refused_with_no() {
    let steps = [
        login(),
        client(
            "a CREATE \"../bob/INBOX\"\r\nb CREATE \"foo/../../../../etc\"\r\nc SELECT \"../bob/INBOX\"\r\n",
        ),
        client("d RENAME INBOX \"../stolen\"\r\ne CREATE \"/etc/x\"\r\ng CREATE \"foo//bar\"\r\n"),
        client(
            "h CREATE \".\"\r\ni CREATE \"..\"\r\nj CREATE \"foo/./bar\"\r\nm STATUS \"../bob/INBOX\" (MESSAGES)\r\n",
        ),
        client(
            "n CREATE \"&AC4ALgAv-\"\r\no CREATE \"&Jjo\"\r\np CREATE \"&Jjo-&Jjo-\"\r\nq CREATE \"&AGE-\"\r\n",
        ),
        client("r CREATE \"&YQ-\"\r\ns CREATE \"&2AA-\"\r\nt CREATE \"&3ADYAA-\"\r\n"),
        client("u CREATE \"&-&-\"\r\nv CREATE \"&U,BTFw-/&ZeVnLIqe-\"\r\nw CREATE \"~root/x\"\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    for tag in [
        "a", "b", "c", "d", "e", "g", "h", "i", "j", "m", "n", "o", "p", "q", "r", "s", "t",
    ] {
        assert!(
            t.has_line(&format!("{tag} NO [CANNOT] invalid mailbox name")),
            "{tag}"
        );
    }
    let created: Vec<String> = t
        .commands()
        .iter()
        .filter_map(|c| match c {
            CommandBody::Create { mailbox } => Some(mailbox.to_string()),
            _ => None,
        })
        .collect();
    // The name rules belong to MailboxName; "~root/x" is an ordinary name that never
    // becomes a path (the store maps names to ids).
    assert_eq!(
        created,
        vec![
            "&&".to_string(),
            "台北/日本語".to_string(),
            "~root/x".to_string()
        ]
    );
    assert!(!t.closed);
}

#[test]
fn im14_id_limits() {
    let pairs: Vec<String> = (0..31).map(|n| format!("\"k{n:02}\" \"v\"")).collect();
    let steps = [
        client(format!("a ID ({})\r\n", pairs.join(" "))),
        client(format!("c ID (\"name\" \"{}\")\r\n", "v".repeat(1025))),
        client("e ID (\"name\" \"x\")\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("a BAD too many ID fields"));
    assert!(t.has_line("c BAD ID field or value too long"));
    assert!(t.has_line("e OK completed"));
}

#[test]
fn im15_tags_and_states() {
    let t = transcript(
        &imaps(),
        &[client(format!("{} NOOP\r\n", "A".repeat(100_000)))],
        &service,
    );
    assert!(t.has_line("* BYE [TOOBIG] Command line too long") && t.closed);
    let t = transcript(
        &patient(),
        &[client(
            "+ NOOP\r\n* NOOP\r\n\r\na SELECT INBOX\r\nb BOGUS<x>\r\n",
        )],
        &service,
    );
    assert_eq!(t.starting("* BAD Invalid tag").len(), 3);
    assert!(t.has_line("a BAD Command not allowed in this state"));
    // Never an echo of the client's bytes.
    assert!(t.has_line("b BAD Unknown command"));
    assert!(!t.text().contains("<x>"));
    let steps = [login(), client("b FETCH 1 FLAGS\r\nc UID EXPUNGE 1\r\n")];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("b BAD Command not allowed in this state"));
    assert!(t.has_line("c BAD Command not allowed in this state"));
    // Dovecot: the 3rd bad command before login ends the session.
    let t = transcript(
        &imaps(),
        &[client("a XYZ\r\nb XYZ\r\nc XYZ\r\nd NOOP\r\n")],
        &service,
    );
    assert!(t.has_line("c BAD Unknown command"));
    assert!(t.has_line("* BYE Too many invalid commands") && t.closed);
    assert!(!t.text().contains("d OK"));
    // An OK in between resets the count.
    let t = transcript(
        &imaps(),
        &[client("a XYZ\r\nb XYZ\r\nn NOOP\r\nc XYZ\r\nd NOOP\r\n")],
        &service,
    );
    assert!(t.has_line("d OK NOOP completed") && !t.closed);
}

#[test]
fn im17_idle_done_flood_is_bounded() {
    let flood = format!("c IDLE\r\n{}", "DONE\r\n".repeat(10_000));
    let t = transcript(&imaps(), &[login(), client(&flood)], &service);
    assert!(t.has_line("c OK IDLE terminated"));
    assert_eq!(t.starting("DONE BAD").len(), 20);
    assert!(t.has_line("* BYE Too many invalid commands") && t.closed);
    assert!(t.output.len() < 4096);
}

#[test]
fn im18_append_content_checks() {
    let keywords = "Flag ".repeat(2000);
    let steps = [
        login(),
        client("a APPEND INBOX {10}\r\nFrom: x\nhi\r\n"),
        client("b APPEND INBOX (\\Seen \\Recent) {2}\r\nhi\r\n"),
        client(format!(
            "c APPEND INBOX ({}) {{2}}\r\nhi\r\n",
            keywords.trim_end()
        )),
        client("e APPEND INBOX (\\Flag) {2}\r\nhi\r\n"),
        client("d APPEND INBOX \"31-Dec-9999 23:59:59 +9999\" {2}\r\nhi\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    // The bare LF is passed through as sent; the service normalises or refuses it.
    let CommandBody::Append { messages, .. } = &t.commands()[1] else {
        panic!()
    };
    assert_eq!(messages[0].data, b"From: x\nhi");
    assert!(t.has_line("b BAD \\Recent cannot be set"));
    assert!(t.has_line("c NO [LIMIT] too many flags"));
    assert!(t.has_line("d BAD invalid date-time"));
    assert!(t.has_line("e BAD unknown system flag"));
    // MULTIAPPEND is bounded by the literal count.
    let mut multi = b"m APPEND INBOX".to_vec();
    for _ in 0..1001 {
        multi.extend_from_slice(b" {1+}\r\nx");
    }
    multi.extend_from_slice(b"\r\n");
    let t = transcript(&imaps(), &[login(), client(&multi)], &service);
    assert!(t.has_line("m BAD [LIMIT] Too many literals") && t.closed);
}

#[test]
fn literals_where_none_belong() {
    let steps = [
        client("a NOOP {5}\r\n"),
        client("+ LOGIN {5}\r\n"),
        client("b BOGUS {5}\r\n"),
        client("c SELECT {5}\r\n"),
        client("d LOGIN ~{5}\r\n"),
        client("e NOOP\r\n"),
    ];
    let t = transcript(&patient(), &steps, &service);
    assert_eq!(t.continuations(), 0);
    assert!(t.has_line("a BAD Unexpected literal"));
    assert!(t.has_line("* BAD Invalid tag"));
    assert!(t.has_line("b BAD Unknown command"));
    assert!(t.has_line("c BAD Command not allowed in this state"));
    assert!(t.has_line("d BAD literal8 is only allowed in APPEND"));
    assert!(t.has_line("e OK NOOP completed"));
}

#[test]
fn st03_starttls_tag_echo_injection() {
    let steps = [
        client("A STARTTLS\r\nQWERT NOOP\r\n"),
        Step::TlsStarted,
        client("C NOOP\r\n"),
    ];
    let t = transcript(&imap_starttls(), &steps, &service);
    assert!(t.has_line("A OK Begin TLS negotiation now"));
    assert!(t.has_line("C OK NOOP completed"));
    assert!(!t.text().contains("QWERT"));
    // Bytes arriving between the OK and the handshake are dropped too.
    let steps = [
        client("A STARTTLS\r\n"),
        client("QWERT NOOP\r\n"),
        Step::TlsStarted,
        client("C NOOP\r\n"),
    ];
    let t = transcript(&imap_starttls(), &steps, &service);
    assert!(!t.text().contains("QWERT"));
}

#[test]
fn st04_starttls_append_injection() {
    let steps = [
        client("A STARTTLS\r\nB APPEND INBOX {200}\r\n"),
        Step::TlsStarted,
        client("c LOGIN alice correct-horse\r\n"),
    ];
    let t = transcript(&imap_starttls(), &steps, &service);
    assert_eq!(t.continuations(), 0);
    assert!(t.lines().iter().any(|l| l.starts_with("c OK")));
    assert!(matches!(
        t.commands().as_slice(),
        [CommandBody::Login { .. }]
    ));
}

#[test]
fn st06_credentials_refused_before_tls() {
    let steps = [
        client("a CAPABILITY\r\n"),
        client("b LOGIN alice correct-horse\r\n"),
        client(format!("c AUTHENTICATE PLAIN {PLAIN_ALICE}\r\n")),
        client("d LOGIN {5}\r\n"),
    ];
    let t = transcript(&imap_starttls(), &steps, &service);
    assert!(t.starting("* CAPABILITY")[0].contains("LOGINDISABLED"));
    assert!(t.has_line("b NO [PRIVACYREQUIRED] Use STARTTLS first"));
    assert!(t.has_line("c NO [PRIVACYREQUIRED] Use STARTTLS first"));
    assert!(t.has_line("d NO [PRIVACYREQUIRED] Use STARTTLS first"));
    assert_eq!(t.continuations(), 0);
    // The service (and so the password check) never saw a credential.
    assert!(t.events.is_empty());
}

#[test]
fn st08_starttls_twice_after_auth_or_with_arguments() {
    let steps = [
        client("a STARTTLS\r\n"),
        Step::TlsStarted,
        client("x STARTTLS\r\n"),
    ];
    let t = transcript(&imap_starttls(), &steps, &service);
    assert!(t.has_line("x BAD STARTTLS is not available"));
    assert_eq!(t.events, vec![Event::StartTls]);
    let t = transcript(&imaps(), &[client("x STARTTLS\r\n")], &service);
    assert!(t.has_line("x BAD STARTTLS is not available"));
    let t = transcript(&imap_starttls(), &[client("a STARTTLS now\r\n")], &service);
    assert!(t.has_line("a BAD unexpected characters after the command"));
    let plaintext = CoreConfig {
        login_requires_tls: false,
        ..imap_starttls()
    };
    let t = transcript(&plaintext, &[login(), client("s STARTTLS\r\n")], &service);
    assert!(t.has_line("s BAD Command not allowed in this state"));
    assert!(!t.events.contains(&Event::StartTls));
}

#[test]
fn au02_three_authentication_failures_close_the_session() {
    let steps = [
        client("a1 LOGIN alice wrong\r\n"),
        client(format!("a2 AUTHENTICATE PLAIN {}\r\n", "AGFsaWNlAHdyb25n")),
        client("a3 LOGIN alice wrong\r\na4 LOGIN alice correct-horse\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    for tag in ["a1", "a3"] {
        assert!(
            t.has_line(&format!("{tag} NO [AUTHENTICATIONFAILED] Login failed")),
            "{}",
            t.text()
        );
    }
    assert!(t.has_line("a2 NO [AUTHENTICATIONFAILED] Authentication failed"));
    assert!(t.has_line("* BYE Too many authentication failures") && t.closed);
    // The 4th attempt, pipelined behind the 3rd, never reaches the authenticator.
    assert_eq!(t.events.len(), 3, "{:?}", t.events);
    assert!(!t.text().contains("a4"));
    // Two failures, then the right password: the session goes on.
    let steps = [
        client("a1 LOGIN alice wrong\r\na2 LOGIN alice wrong\r\n"),
        login(),
        select(),
        client("n NOOP\r\n"),
    ];
    let t = transcript(&imaps(), &steps, &service);
    assert!(t.has_line("n OK completed") && !t.closed, "{}", t.text());
}

#[test]
fn im18_append_arguments_refused_before_the_continuation() {
    let flags = format!(
        "c APPEND INBOX ({}) {{2}}\r\n",
        "\\Flag ".repeat(2000).trim_end()
    );
    let steps = [
        login(),
        client("b APPEND INBOX (\\Seen \\Recent) {2}\r\n"),
        client(flags),
        client("d APPEND INBOX \"31-Dec-9999 23:59:59 +9999\" {2}\r\n"),
        client("e APPEND \"../x\" {2}\r\n"),
        client("f APPEND INBOX (\\Seen) {2}\r\n"),
        client("hi\r\n"),
    ];
    let t = transcript(&patient(), &steps, &service);
    assert!(t.has_line("b BAD \\Recent cannot be set"), "{}", t.text());
    assert!(t.has_line("c BAD unknown system flag"));
    assert!(t.has_line("d BAD invalid date-time"));
    assert!(t.has_line("e NO [CANNOT] invalid mailbox name"));
    // Only the valid APPEND was invited to send its message, and reached the service.
    assert_eq!(t.continuations(), 1, "{}", t.text());
    assert!(t.has_line("f OK APPEND of 1 message(s) completed"));
    assert_eq!(t.commands().len(), 2);
    // Non-synchronising: the octets are read, then the command is refused as a whole.
    let t = transcript(
        &patient(),
        &[
            login(),
            client("g APPEND INBOX (\\Recent) {2+}\r\nhi\r\nn NOOP\r\n"),
        ],
        &service,
    );
    assert!(t.has_line("g BAD \\Recent cannot be set") && t.has_line("n OK completed"));
    assert!(!t.closed);
    // A literal mailbox name gets its `+`; the message after it is checked in turn.
    let t = transcript(
        &patient(),
        &[
            login(),
            client("h APPEND {5}\r\n"),
            client("INBOX (\\Recent) {2}\r\n"),
        ],
        &service,
    );
    assert_eq!(t.continuations(), 1, "{}", t.text());
    assert!(t.has_line("h BAD \\Recent cannot be set"));
}

#[test]
fn im02_append_over_the_quota_gets_no_continuation() {
    let x = |n: usize| "x".repeat(n);
    let steps = [
        login(),
        Step::Allowance(Some(100)),
        client("a APPEND INBOX {101}\r\n"),
        client("b APPEND INBOX {100}\r\n"),
        client(x(100) + "\r\n"),
        // RFC 3502: the messages of one APPEND count together.
        client("c APPEND INBOX {60}\r\n"),
        client(x(60) + " {41}\r\n"),
        // A non-synchronising literal is on its way: read, and left to the service.
        client(format!("d APPEND INBOX {{101+}}\r\n{}\r\n", x(101))),
        Step::Allowance(None),
        client("e APPEND INBOX {101}\r\n"),
        client(x(101) + "\r\n"),
    ];
    let t = transcript(&patient(), &steps, &service);
    assert!(
        t.has_line("a NO [OVERQUOTA] Quota exceeded"),
        "{}",
        t.text()
    );
    assert!(
        t.has_line("b OK APPEND of 1 message(s) completed"),
        "{}",
        t.text()
    );
    assert!(
        t.has_line("c NO [OVERQUOTA] Quota exceeded"),
        "{}",
        t.text()
    );
    assert!(
        t.has_line("d OK APPEND of 1 message(s) completed"),
        "{}",
        t.text()
    );
    assert!(
        t.has_line("e OK APPEND of 1 message(s) completed"),
        "{}",
        t.text()
    );
    // b, c's first message and e were invited; a and c's second were not.
    assert_eq!(t.continuations(), 3, "{}", t.text());
    assert!(!t.closed);
}
