//! Commands on mailboxes: SELECT, CREATE, ..., STATUS, APPEND, LIST and the name rules.

use sealpost_types::MailboxName;

use super::*;

#[test]
fn authenticated_commands() {
    // RFC 5161 §4.
    assert_eq!(
        parse("t2 ENABLE CONDSTORE X-GOOD-IDEA"),
        CommandBody::Enable {
            capabilities: vec!["CONDSTORE".into(), "X-GOOD-IDEA".into()]
        }
    );
    assert!(matches!(refused("t2 ENABLE"), ParseError::Bad(_)));
    // RFC 9051 §6.3.2, §6.3.3.
    assert_eq!(
        parse("A142 SELECT INBOX"),
        CommandBody::Select {
            mailbox: MailboxName::inbox(),
            read_only: false,
            condstore: false,
            qresync: None
        }
    );
    assert!(matches!(
        parse("a002 select inbox"),
        CommandBody::Select {
            read_only: false,
            ..
        }
    ));
    assert!(matches!(
        parse("A932 EXAMINE blurdybloop"),
        CommandBody::Select {
            read_only: true,
            ..
        }
    ));
    // RFC 9051 §6.3.4 to §6.3.8.
    assert_eq!(
        parse("A003 CREATE owatagusiam/"),
        CommandBody::Create {
            mailbox: mailbox("owatagusiam")
        }
    );
    assert_eq!(
        refused("A003 CREATE owatagusiam//"),
        ParseError::Cannot("invalid mailbox name")
    );
    assert_eq!(
        parse("A004 CREATE owatagusiam/blurdybloop"),
        CommandBody::Create {
            mailbox: mailbox("owatagusiam/blurdybloop")
        }
    );
    assert_eq!(
        parse("A683 DELETE blurdybloop"),
        CommandBody::Delete {
            mailbox: mailbox("blurdybloop")
        }
    );
    assert_eq!(
        parse("A684 RENAME foo zowie"),
        CommandBody::Rename {
            from: mailbox("foo"),
            to: mailbox("zowie")
        }
    );
    assert_eq!(
        parse("A002 SUBSCRIBE #news.comp.mail.mime"),
        CommandBody::Subscribe {
            mailbox: mailbox("#news.comp.mail.mime")
        }
    );
    assert!(matches!(
        parse("A002 UNSUBSCRIBE #news.comp.mail.mime"),
        CommandBody::Unsubscribe { .. }
    ));
    // RFC 9051 §6.3.10, §6.3.11.
    assert_eq!(parse("A042 NAMESPACE"), CommandBody::Namespace);
    assert_eq!(
        parse("A042 STATUS blurdybloop (UIDNEXT MESSAGES)"),
        CommandBody::Status {
            mailbox: mailbox("blurdybloop"),
            items: vec![StatusItem::UidNext, StatusItem::Messages]
        }
    );
    assert!(matches!(
        parse("a STATUS INBOX (SIZE HIGHESTMODSEQ APPENDLIMIT DELETED DELETED-STORAGE RECENT UNSEEN UIDVALIDITY)"),
        CommandBody::Status { items, .. } if items.len() == 8
    ));
    assert!(matches!(refused("a STATUS INBOX ()"), ParseError::Bad(_)));
    assert!(matches!(
        refused("a STATUS INBOX (BOGUS)"),
        ParseError::Bad(_)
    ));
    // RFC 2177, RFC 9051 §6.3.13.
    assert_eq!(parse("A001 IDLE"), CommandBody::Idle);
    // RFC 9208 §4.
    assert_eq!(
        parse("G0001 GETQUOTA \"!partition/sda4\""),
        CommandBody::GetQuota {
            root: "!partition/sda4".into()
        }
    );
    assert_eq!(
        parse("G0002 GETQUOTAROOT INBOX"),
        CommandBody::GetQuotaRoot {
            mailbox: MailboxName::inbox()
        }
    );
    assert_eq!(
        parse("S0000 SETQUOTA \"#user/alice\" (STORAGE 510)"),
        CommandBody::SetQuota {
            root: "#user/alice".into(),
            limits: vec![("STORAGE".into(), 510)]
        }
    );
}

#[test]
fn append_forms() {
    // RFC 9051 §6.3.12.
    let message = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nSubject: afternoon meeting\r\n\r\nHello Joe\r\n";
    let wire = format!(
        "A003 APPEND saved-messages (\\Seen) {{{}}}\r\n{message}",
        message.len()
    );
    let CommandBody::Append {
        mailbox: name,
        messages,
    } = parse(&wire)
    else {
        panic!()
    };
    assert_eq!(name, mailbox("saved-messages"));
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].flags, vec![crate::core::flags::Flag::Seen]);
    assert_eq!(messages[0].data, message.as_bytes());
    assert!(!format!("{:?}", messages[0]).contains("Hello"));
    // Date-time, LITERAL+, literal8 (RFC 3516 §4.4).
    let CommandBody::Append { messages, .. } =
        parse("a APPEND INBOX \"17-Jul-1996 02:44:25 -0700\" {2+}\r\nhi")
    else {
        panic!()
    };
    assert_eq!(
        messages[0].date.unwrap().to_string(),
        "17-Jul-1996 02:44:25 -0700"
    );
    let CommandBody::Append { messages, .. } = parse("a APPEND INBOX ~{3}\r\na\0b") else {
        panic!()
    };
    assert!(messages[0].binary);
    assert_eq!(messages[0].data, b"a\0b");
    // MULTIAPPEND (RFC 3502 §6).
    let wire = "A003 APPEND saved-messages (\\Seen) {2}\r\nhi (\\Seen) \" 1-Jul-2002 22:04:04 -0700\" {2}\r\nho";
    let CommandBody::Append { messages, .. } = parse(wire) else {
        panic!()
    };
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].data, b"ho");
    let single = ParseContext {
        multiappend: false,
        ..context()
    };
    assert!(parse_with(wire, &single).is_err());
    for bad_append in [
        "a APPEND INBOX",
        "a APPEND INBOX \"hi\"",
        "a APPEND INBOX (\\Recent) {2}\r\nhi",
        "a APPEND INBOX \"31-Dec-9999 23:59:59 +9999\" {2}\r\nhi",
        "a APPEND INBOX {2}\r\nhi x",
    ] {
        assert!(
            parse_with(bad_append, &context()).is_err(),
            "{bad_append:?}"
        );
    }
}

#[test]
fn list_forms() {
    // RFC 9051 §6.3.9.
    let CommandBody::List(list) = parse("A101 LIST \"\" \"\"") else {
        panic!()
    };
    assert_eq!(
        (
            list.reference.as_str(),
            list.patterns.as_slice(),
            list.extended
        ),
        ("", &["".to_string()][..], false)
    );
    let CommandBody::List(list) = parse("A202 LIST ~/Mail/ %") else {
        panic!()
    };
    assert_eq!(
        (list.reference.as_str(), list.patterns[0].as_str()),
        ("~/Mail/", "%")
    );
    assert!(matches!(
        parse("A102 LIST #news.comp.mail.misc \"\""),
        CommandBody::List(_)
    ));
    // RFC 5258 §5.
    let CommandBody::List(list) = parse("A04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"") else {
        panic!()
    };
    assert!(list.selection.subscribed && list.selection.recursive_match && list.extended);
    let CommandBody::List(list) = parse("A05 LIST (REMOTE SUBSCRIBED) \"\" \"*\"") else {
        panic!()
    };
    assert!(list.selection.remote);
    let CommandBody::List(list) = parse("A01 LIST \"\" (\"foo\" \"foo/*\")") else {
        panic!()
    };
    assert_eq!(list.patterns, vec!["foo".to_string(), "foo/*".to_string()]);
    let CommandBody::List(list) = parse("A03 LIST () \"\" \"%\" RETURN (CHILDREN)") else {
        panic!()
    };
    assert!(list.returns.children && list.extended);
    assert!(matches!(
        refused("A06 LIST (RECURSIVEMATCH) \"\" \"%\""),
        ParseError::Bad(_)
    ));
    assert!(matches!(
        refused("A07 LIST (BOGUS) \"\" \"%\""),
        ParseError::Bad(_)
    ));
    assert!(matches!(
        refused("A08 LIST \"\" % RETURN (BOGUS)"),
        ParseError::Bad(_)
    ));
    // RFC 5819 §4, RFC 6154 §5.
    let CommandBody::List(list) = parse("A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))") else {
        panic!()
    };
    assert_eq!(
        list.returns.status,
        Some(vec![StatusItem::Messages, StatusItem::Unseen])
    );
    let CommandBody::List(list) = parse("t1 LIST \"\" \"%\" RETURN (SPECIAL-USE)") else {
        panic!()
    };
    assert!(list.returns.special_use);
    let CommandBody::List(list) = parse("t1 LIST (SPECIAL-USE) \"\" \"*\" RETURN (SUBSCRIBED)")
    else {
        panic!()
    };
    assert!(list.selection.special_use && list.returns.subscribed);
    // Patterns are decoded from modified UTF-7 for IMAP4rev1 clients.
    let CommandBody::List(list) = parse("a LIST \"\" &U,BTFw-/%") else {
        panic!()
    };
    assert_eq!(list.patterns, vec!["台北/%".to_string()]);
    assert_eq!(
        refused("a LIST \"\" &Jjo"),
        ParseError::Cannot("invalid mailbox name")
    );
    assert_eq!(
        parse("A002 LSUB \"#news.\" \"comp.mail.*\""),
        CommandBody::Lsub {
            reference: "#news.".into(),
            pattern: "comp.mail.*".into()
        }
    );
}

#[test]
fn mailbox_names_per_revision() {
    // IMAP4rev1: modified UTF-7, strictly (SECURITY-TESTS IM-09).
    assert_eq!(
        parse("a CREATE \"&U,BTFw-/&ZeVnLIqe-\""),
        CommandBody::Create {
            mailbox: mailbox("台北/日本語")
        }
    );
    assert_eq!(
        parse("i CREATE \"&-&-\""),
        CommandBody::Create {
            mailbox: mailbox("&&")
        }
    );
    assert_eq!(parse("a SELECT inbox"), parse("a SELECT INBOX"));
    // SECURITY-TESTS IM-10: any case of INBOX is the inbox, also as a hierarchy root.
    assert_eq!(
        parse("d CREATE \"inbox\""),
        CommandBody::Create {
            mailbox: MailboxName::inbox()
        }
    );
    assert_eq!(
        parse("e CREATE \"InBoX/x\""),
        CommandBody::Create {
            mailbox: mailbox("INBOX/x")
        }
    );
    for bad_name in [
        "a CREATE \"&AC4ALgAv-\"",
        "b CREATE \"&Jjo\"",
        "c CREATE \"&Jjo-&Jjo-\"",
        "d CREATE \"&AGE-\"",
        "e CREATE \"&YQ-\"",
        "f CREATE \"&2AA-\"",
        "g CREATE \"&3ADYAA-\"",
        "a CREATE \"Caf\u{e9}\"",
    ] {
        assert_eq!(
            refused(bad_name),
            ParseError::Cannot("invalid mailbox name"),
            "{bad_name}"
        );
    }
    // h: non-base64 in the shift, sent as a literal because it is 8-bit.
    assert_eq!(
        refused("h CREATE {5}\r\n&\u{263a}-"),
        ParseError::Cannot("invalid mailbox name")
    );
    // Traversal and other refused names (SECURITY-TESTS IM-08), before any storage sees them.
    for bad_name in [
        "a CREATE \"../bob/INBOX\"",
        "b CREATE \"foo/../../../../etc\"",
        "c SELECT \"../bob/INBOX\"",
        "d RENAME INBOX \"../stolen\"",
        "e CREATE \"/etc/x\"",
        "g CREATE \"foo//bar\"",
        "h CREATE \".\"",
        "i CREATE \"..\"",
        "j CREATE \"foo/./bar\"",
        "m STATUS \"../bob/INBOX\" (MESSAGES)",
        "n CREATE {3}\r\na\u{1}b",
    ] {
        assert_eq!(
            refused(bad_name),
            ParseError::Cannot("invalid mailbox name"),
            "{bad_name}"
        );
    }
    let long = format!("a CREATE {}", "x".repeat(256));
    assert_eq!(refused(&long), ParseError::Cannot("invalid mailbox name"));
    // UTF-8 sessions: names as sent; `&` is an ordinary character.
    let utf8 = ParseContext {
        utf8_names: true,
        ..context()
    };
    let create = |wire: &str| parse_with(wire, &utf8).map(|command| command.body);
    assert_eq!(
        create("b CREATE \"Café\""),
        Ok(CommandBody::Create {
            mailbox: mailbox("Café")
        })
    );
    assert_eq!(
        create("a CREATE \"Caf&AOk-\""),
        Ok(CommandBody::Create {
            mailbox: mailbox("Caf&AOk-")
        })
    );
    assert_eq!(
        parse_bytes(b"a CREATE {2}\r\n\xffx", &utf8),
        Err(ParseError::Cannot("invalid mailbox name"))
    );
}

#[test]
fn decomposed_new_names_are_refused() {
    // SECURITY-TESTS IM-10: `Cafe` + U+0301 would be a second mailbox looking like `Café`.
    let utf8 = ParseContext {
        utf8_names: true,
        ..context()
    };
    let nfc_only = Err(ParseError::Cannot("mailbox name is not in Unicode NFC"));
    for wire in [
        "c CREATE \"Cafe\u{301}\"",
        "c CREATE \"Cafe\u{301}/\"",
        "r RENAME x \"Cafe\u{301}\"",
        // Hangul: U+1100 U+1161 composes to U+AC00; U+AC00 U+11A8 to U+AC01.
        "h CREATE \"\u{1100}\u{1161}\"",
        "h CREATE \"\u{ac00}\u{11a8}\"",
        // Kana: U+304B U+3099 composes to U+304C.
        "k CREATE \"\u{304b}\u{3099}\"",
    ] {
        assert_eq!(parse_with(wire, &utf8).map(|c| c.body), nfc_only, "{wire}");
    }
    // The same names in modified UTF-7 (IMAP4rev1): the check runs after decoding.
    assert_eq!(
        parse_with("c CREATE \"Cafe&AwE-\"", &context()).map(|c| c.body),
        nfc_only
    );
    // NFC names, and existing mailboxes with any name, are fine.
    for wire in [
        "c CREATE \"Caf\u{e9}\"",
        "c CREATE \"\u{ac01}\u{1100}\"",
        "c CREATE \"\u{915}\u{93c}\"", // Devanagari nukta: NFC keeps it (composition exclusion)
        "s SELECT \"Cafe\u{301}\"",
        "r RENAME \"Cafe\u{301}\" Cafe",
    ] {
        assert!(parse_with(wire, &utf8).is_ok(), "{wire}");
    }
}

#[test]
fn append_prefix_checked_before_the_literal() {
    // SECURITY-TESTS IM-18: what precedes the message literal is checked before `+`.
    let check = |lines: &[&str], ctx: &ParseContext| {
        let lines: Vec<&[u8]> = lines.iter().map(|line| line.as_bytes()).collect();
        check_append_prefix(&lines, ctx)
    };
    let ctx = context();
    for ok in [
        &["a APPEND INBOX "][..],
        &["a APPEND INBOX (\\Seen) "],
        &["a APPEND INBOX (\\Seen) \"05-Nov-2024 10:00:00 +0100\" "],
        &["a APPEND \"Sent Items\" \"05-Nov-2024 10:00:00 +0100\" "],
        // The literal is the mailbox name: nothing to check yet; then the message.
        &["a APPEND "],
        &["a APPEND ", " (\\Seen) "],
        // MULTIAPPEND: the second message's flags and date.
        &["a APPEND INBOX ", " (\\Draft) "],
    ] {
        assert_eq!(check(ok, &ctx), Ok(()), "{ok:?}");
    }
    let flags = format!("c APPEND INBOX ({}) ", "\\Flag ".repeat(2000).trim_end());
    let keywords = format!("c APPEND INBOX ({}) ", "kw ".repeat(101).trim_end());
    for (lines, error) in [
        (
            vec!["b APPEND INBOX (\\Seen \\Recent) "],
            ParseError::Bad("\\Recent cannot be set"),
        ),
        (vec![flags.as_str()], ParseError::Bad("unknown system flag")),
        (vec![keywords.as_str()], ParseError::Limit("too many flags")),
        (
            vec!["d APPEND INBOX \"31-Dec-9999 23:59:59 +9999\" "],
            ParseError::Bad("invalid date-time"),
        ),
        (
            vec!["e APPEND \"../x\" "],
            ParseError::Cannot("invalid mailbox name"),
        ),
        (
            vec!["f APPEND INBOX (\\Seen)"],
            ParseError::Bad("expected a space"),
        ),
        (
            vec!["g APPEND INBOX junk "],
            ParseError::Bad("APPEND needs the message as a literal"),
        ),
        (
            vec!["h APPEND ", " (\\Recent) "],
            ParseError::Bad("\\Recent cannot be set"),
        ),
        (
            vec!["i APPEND INBOX ", " \"bad date\" "],
            ParseError::Bad("invalid date"),
        ),
    ] {
        assert_eq!(check(&lines, &ctx), Err(error), "{lines:?}");
    }
    // Without MULTIAPPEND a second message is refused before its literal too.
    let single = ParseContext {
        multiappend: false,
        ..context()
    };
    assert_eq!(
        check(&["a APPEND INBOX ", " "], &single),
        Err(ParseError::Bad("one message per APPEND"))
    );
    assert_eq!(check(&["a APPEND ", " "], &single), Ok(()));
}
