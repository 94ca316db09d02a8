//! Commands on messages: SEARCH, FETCH, STORE, COPY, MOVE, CONDSTORE/QRESYNC, syntax errors.

use super::*;

#[test]
fn selected_commands() {
    // RFC 9051 §6.4.
    assert_eq!(parse("FXXZ CHECK"), CommandBody::Check);
    assert_eq!(parse("A341 CLOSE"), CommandBody::Close);
    assert_eq!(parse("A342 UNSELECT"), CommandBody::Unselect);
    assert_eq!(parse("A202 EXPUNGE"), CommandBody::Expunge { uids: None });
    // RFC 4315 §2.1.
    assert_eq!(
        parse("A003 UID EXPUNGE 3000:3002"),
        CommandBody::Expunge {
            uids: Some(set("3000:3002"))
        }
    );
    let CommandBody::Search { uid, program } =
        parse("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"")
    else {
        panic!()
    };
    assert!(!uid);
    assert_eq!(
        program.returns,
        Some(vec![SearchReturn::Min, SearchReturn::Count])
    );
    assert_eq!(program.keys.len(), 3);
    let CommandBody::Search { program, .. } =
        parse("A285 SEARCH CHARSET UTF-8 TEXT {12}\r\nМакс Пe")
    else {
        panic!()
    };
    assert_eq!(program.keys, vec![SearchKey::Text("Макс Пe".into())]);
    assert!(matches!(
        parse("a UID SEARCH 1:* UNDELETED"),
        CommandBody::Search { uid: true, .. }
    ));
    assert_eq!(
        parse("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])"),
        CommandBody::Fetch {
            uid: false,
            set: set("2:4"),
            attrs: vec![
                FetchAttr::Flags,
                FetchAttr::BodySection {
                    peek: false,
                    section: crate::core::fetch_items::Section {
                        part: vec![],
                        text: Some(crate::core::fetch_items::SectionText::HeaderFields {
                            not: false,
                            fields: vec!["DATE".into(), "FROM".into()]
                        })
                    },
                    partial: None
                }
            ],
            changed_since: None,
            vanished: false
        }
    );
    // The §8 sample session.
    assert!(
        matches!(parse("a003 fetch 12 full"), CommandBody::Fetch { attrs, .. } if attrs.len() == 5)
    );
    assert!(matches!(
        parse("a004 fetch 12 body[header]"),
        CommandBody::Fetch { .. }
    ));
    assert_eq!(
        parse("a005 store 12 +flags \\deleted"),
        CommandBody::Store {
            uid: false,
            set: set("12"),
            unchanged_since: None,
            mode: StoreMode::Add,
            silent: false,
            flags: vec![Flag::Deleted]
        }
    );
    assert!(matches!(
        parse("A003 STORE 2:4 -FLAGS.SILENT (\\Deleted $Junk)"),
        CommandBody::Store {
            mode: StoreMode::Remove,
            silent: true,
            ..
        }
    ));
    assert!(matches!(
        parse("A003 STORE 2:4 FLAGS ()"),
        CommandBody::Store {
            mode: StoreMode::Replace,
            ..
        }
    ));
    assert_eq!(
        parse("A003 COPY 2:4 MEETING"),
        CommandBody::Copy {
            uid: false,
            set: set("2:4"),
            mailbox: mailbox("MEETING")
        }
    );
    // RFC 6851 §4.
    assert_eq!(
        parse("a UID MOVE 42:69 foo"),
        CommandBody::Move {
            uid: true,
            set: set("42:69"),
            mailbox: mailbox("foo")
        }
    );
    assert!(matches!(
        parse("A999 UID FETCH 4827313:4828442 FLAGS"),
        CommandBody::Fetch { uid: true, .. }
    ));
    // RFC 3516 §4.
    assert!(matches!(
        parse("t FETCH 1 (BINARY.PEEK[1]<0.100> BINARY.SIZE[2])"),
        CommandBody::Fetch { .. }
    ));
    // SEARCHRES (RFC 5182 §3).
    let CommandBody::Fetch { set: saved, .. } =
        parse("A283 FETCH $ (UID INTERNALDATE FLAGS RFC822.HEADER)")
    else {
        panic!()
    };
    assert!(saved.saved && saved.ranges.is_empty());
}

#[test]
fn condstore_and_qresync() {
    // RFC 7162 §3.1.8, §3.2.5.1.
    assert!(matches!(
        parse("a SELECT INBOX (CONDSTORE)"),
        CommandBody::Select {
            condstore: true,
            ..
        }
    ));
    let CommandBody::Select {
        qresync: Some(qresync),
        ..
    } = parse("A03 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))")
    else {
        panic!()
    };
    assert_eq!(qresync.uid_validity, nz(67_890_007));
    assert_eq!(qresync.modseq, 20_050_715_194_045_000);
    assert_eq!(qresync.known_uids, Some(set("41,43:211,214:541")));
    let wire = "B01 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))";
    let CommandBody::Select {
        qresync: Some(qresync),
        ..
    } = parse(wire)
    else {
        panic!()
    };
    let (sequence, uids) = qresync.seq_match.unwrap();
    assert_eq!(sequence.ranges.len(), 4);
    assert_eq!(uids.ranges.len(), 13);
    let CommandBody::Select {
        qresync: Some(qresync),
        ..
    } = parse("a EXAMINE INBOX (QRESYNC (1 2))")
    else {
        panic!()
    };
    assert_eq!((qresync.known_uids, qresync.seq_match), (None, None));
    let CommandBody::Select {
        qresync: Some(qresync),
        ..
    } = parse("a SELECT INBOX (QRESYNC (1 2 (1:2 3:4)))")
    else {
        panic!()
    };
    assert!(qresync.known_uids.is_none() && qresync.seq_match.is_some());
    let not_enabled = ParseContext {
        qresync_enabled: false,
        ..context()
    };
    assert!(parse_with("a SELECT INBOX (QRESYNC (1 2))", &not_enabled).is_err());
    for bad_select in [
        "a SELECT INBOX (QRESYNC (0 2))",
        "a SELECT INBOX (QRESYNC (1 0))",
        "a SELECT INBOX (QRESYNC (1 2 1:*))",
        "a SELECT INBOX ()",
        "a SELECT INBOX (BOGUS)",
    ] {
        assert!(parse_with(bad_select, &context()).is_err(), "{bad_select}");
    }
    // RFC 7162 §3.1.4.2, §3.2.6.
    assert!(matches!(
        parse("A04 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)"),
        CommandBody::Fetch {
            changed_since: Some(12_345),
            vanished: true,
            ..
        }
    ));
    assert!(matches!(
        parse("s100 FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)"),
        CommandBody::Fetch {
            changed_since: Some(_),
            vanished: false,
            ..
        }
    ));
    for bad_fetch in [
        "a FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
        "a UID FETCH 1:* FLAGS (VANISHED)",
        "a FETCH 1 FLAGS (CHANGEDSINCE 0)",
        "a FETCH 1 FLAGS ()",
    ] {
        assert!(parse_with(bad_fetch, &context()).is_err(), "{bad_fetch}");
    }
    assert!(
        parse_with(
            "A04 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
            &not_enabled
        )
        .is_err()
    );
    // RFC 7162 §3.1.3.
    assert_eq!(
        parse("a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)"),
        CommandBody::Store {
            uid: true,
            set: set("6,4,8"),
            unchanged_since: Some(12_121_230_045),
            mode: StoreMode::Add,
            silent: true,
            flags: vec![Flag::Deleted]
        }
    );
    let no_condstore = ParseContext {
        condstore: false,
        ..context()
    };
    assert!(parse_with("a STORE 1 (UNCHANGEDSINCE 5) FLAGS ()", &no_condstore).is_err());
    assert!(parse_with("a STATUS INBOX (HIGHESTMODSEQ)", &no_condstore).is_err());
}

#[test]
fn syntax_errors_are_bad() {
    for bad_command in [
        "a LOGIN \"ali\0ce\" \"x\"",
        "c LOGIN \"alice\" \"pw\r\"",
        "b SELECT",
        "b SELECT INBOX extra",
        "a FETCH 0 FLAGS",
        "b FETCH 4294967296 FLAGS",
        "f STORE 1:*:2 +FLAGS (\\Seen)",
        "a FETCH 1 (BODY[HEADER.FIELDS ()])",
        "a FETCH 1 BODY[0]",
        "a FETCH 1 BODY[]<0.4294967296>",
        "a COPY 1Trash",
        "a STORE 1 +FLAGS (\\Recent)",
        "a STORE 1 XFLAGS (\\Seen)",
        "a NOOP extra",
        "a LIST \"\"",
        "d SEARCH SUBJECT \"a\0b\"",
    ] {
        assert!(
            matches!(refused(bad_command), ParseError::Bad(_)),
            "{bad_command:?}"
        );
    }
    // The range is one item, not four billion (SECURITY-TESTS IM-06).
    let CommandBody::Fetch { set, .. } = parse("c FETCH 1:4294967295 FLAGS") else {
        panic!()
    };
    assert_eq!(
        set.ranges,
        vec![SeqRange {
            start: SeqNum::Value(nz(1)),
            end: SeqNum::Value(nz(u32::MAX))
        }]
    );
    assert!(matches!(
        parse("g SEARCH UID 4294967295:1"),
        CommandBody::Search { .. }
    ));
    // Limits are NO [LIMIT] (SECURITY-TESTS IM-18).
    let flags = vec!["\\Flagged"; 2000].join(" ");
    assert!(matches!(
        refused(&format!("c APPEND INBOX ({flags}) {{2}}\r\nhi")),
        ParseError::Limit(_)
    ));
    // ID limits (RFC 2971 §3.3, SECURITY-TESTS IM-14).
    let pairs: Vec<String> = (0..31).map(|n| format!("\"k{n:02}\" \"v\"")).collect();
    assert!(matches!(
        refused(&format!("a ID ({})", pairs.join(" "))),
        ParseError::Bad(_)
    ));
    assert!(matches!(
        refused(&format!("b ID (\"{}\" \"v\")", "k".repeat(31))),
        ParseError::Bad(_)
    ));
    assert!(matches!(
        refused(&format!("c ID (\"name\" \"{}\")", "v".repeat(1025))),
        ParseError::Bad(_)
    ));
    assert!(matches!(
        refused("d ID (\"name\" NIL \"name\" NIL)"),
        ParseError::Bad(_)
    ));
    // Search charsets (RFC 9051 §6.4.4).
    assert_eq!(
        refused("a SEARCH CHARSET ISO-8859-1 ALL"),
        ParseError::BadCharset
    );
}
