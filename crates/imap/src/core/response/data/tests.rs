//! Untagged responses, byte for byte against the RFC examples.

use std::num::NonZeroU32;

use super::*;
use crate::core::fetch_items::SectionText;

const ASCII: Encoding = Encoding { utf8: false };
const UTF8: Encoding = Encoding { utf8: true };

fn text(response: &Response, encoding: Encoding) -> String {
    let mut out = Vec::new();
    response.write(&mut out, encoding, "IMAP4rev1 IMAP4rev2");
    String::from_utf8_lossy(&out).into_owned()
}

fn ascii(response: Response) -> String {
    text(&response, ASCII)
}

#[test]
fn mailbox_data() {
    assert_eq!(ascii(Response::Exists(23)), "* 23 EXISTS\r\n");
    assert_eq!(ascii(Response::Recent(5)), "* 5 RECENT\r\n");
    assert_eq!(ascii(Response::Expunge(44)), "* 44 EXPUNGE\r\n");
    assert_eq!(
        ascii(Response::Flags(vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft
        ])),
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    );
    assert_eq!(
        ascii(Response::Capability),
        "* CAPABILITY IMAP4rev1 IMAP4rev2\r\n"
    );
    assert_eq!(
        ascii(Response::Enabled(vec![
            "CONDSTORE".into(),
            "bad\r\nname".into()
        ])),
        "* ENABLED CONDSTORE\r\n"
    );
    assert_eq!(
        ascii(Response::Vanished {
            earlier: true,
            uids: SequenceSet::from_numbers([41, 43, 44, 45])
        }),
        "* VANISHED (EARLIER) 41,43:45\r\n"
    );
    assert_eq!(
        ascii(Response::Status {
            status: Status::Ok,
            code: Some(Code::UidValidity(3_857_529_045)),
            text: "UIDs valid".into()
        }),
        "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
    );
}

#[test]
fn list_responses() {
    let item = |attributes: &[&str], name: &str| ListItem {
        attributes: attributes.iter().map(|a| a.to_string()).collect(),
        name: name.into(),
        child_info_subscribed: false,
    };
    // RFC 9051 §7.3.1.
    assert_eq!(
        ascii(Response::List(item(&["\\Noselect"], ""))),
        "* LIST (\\Noselect) \"/\" \"\"\r\n"
    );
    assert_eq!(
        ascii(Response::List(item(
            &["\\HasNoChildren", "\\Sent", "bad attr"],
            "Sent Items"
        ))),
        "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n"
    );
    assert_eq!(
        ascii(Response::List(item(&[], "台北"))),
        "* LIST () \"/\" &U,BTFw-\r\n"
    );
    assert_eq!(
        text(&Response::List(item(&[], "台北")), UTF8),
        "* LIST () \"/\" \"台北\"\r\n"
    );
    let mut subscribed_children = item(&["\\NonExistent"], "Foo");
    subscribed_children.child_info_subscribed = true;
    assert_eq!(
        ascii(Response::List(subscribed_children)),
        "* LIST (\\NonExistent) \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
    );
    assert_eq!(
        ascii(Response::Lsub(item(&[], "INBOX"))),
        "* LSUB () \"/\" INBOX\r\n"
    );
    assert_eq!(
        ascii(Response::MailboxStatus {
            name: "blurdybloop".into(),
            items: vec![(StatusItem::Messages, 231), (StatusItem::UidNext, 44292)]
        }),
        "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"
    );
}

#[test]
fn search_responses() {
    assert_eq!(
        ascii(Response::Search {
            numbers: vec![2, 84, 882],
            modseq: None
        }),
        "* SEARCH 2 84 882\r\n"
    );
    assert_eq!(
        ascii(Response::Search {
            numbers: vec![],
            modseq: None
        }),
        "* SEARCH\r\n"
    );
    assert_eq!(
        ascii(Response::Search {
            numbers: vec![2, 5, 6],
            modseq: Some(917_162_500)
        }),
        "* SEARCH 2 5 6 (MODSEQ 917162500)\r\n"
    );
    // RFC 9051 §7.3.4, RFC 4731 §3.1.
    assert_eq!(
        ascii(Response::ESearch(ESearch {
            tag: Some(Tag::new("A282").unwrap()),
            min: Some(2),
            count: Some(3),
            ..ESearch::default()
        })),
        "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n"
    );
    assert_eq!(
        ascii(Response::ESearch(ESearch {
            tag: Some(Tag::new("A283").unwrap()),
            uid: true,
            all: Some(SequenceSet::from_numbers([2, 10, 11])),
            ..ESearch::default()
        })),
        "* ESEARCH (TAG \"A283\") UID ALL 2,10:11\r\n"
    );
    assert_eq!(
        ascii(Response::ESearch(ESearch {
            tag: Some(Tag::new("a").unwrap()),
            count: Some(0),
            all: Some(SequenceSet::default()),
            ..ESearch::default()
        })),
        "* ESEARCH (TAG \"a\") COUNT 0\r\n"
    );
}

#[test]
fn other_responses() {
    assert_eq!(
        ascii(Response::Namespace {
            personal: vec![("".into(), '/')],
            other: vec![],
            shared: vec![]
        }),
        "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"
    );
    assert_eq!(
        ascii(Response::Id(Some(vec![
            ("name".into(), Some("sealpost".into())),
            ("os".into(), None)
        ]))),
        "* ID (\"name\" \"sealpost\" \"os\" NIL)\r\n"
    );
    assert_eq!(ascii(Response::Id(None)), "* ID NIL\r\n");
    // RFC 9208 §5.
    assert_eq!(
        ascii(Response::Quota {
            root: "".into(),
            resources: vec![("STORAGE".into(), 10, 512)]
        }),
        "* QUOTA \"\" (STORAGE 10 512)\r\n"
    );
    assert_eq!(
        ascii(Response::QuotaRoot {
            mailbox: "INBOX".into(),
            roots: vec!["".into()]
        }),
        "* QUOTAROOT INBOX \"\"\r\n"
    );
}

#[test]
fn fetch_responses() {
    let date = crate::core::datetime::DateTime::from_unix(837_596_665, -420).unwrap();
    let items = vec![
        FetchItem::Flags(vec![Flag::Seen]),
        FetchItem::Uid(4827313),
        FetchItem::InternalDate(date),
        FetchItem::Rfc822Size(44827),
        FetchItem::ModSeq(12_121_231_000),
    ];
    assert_eq!(
        ascii(Response::Fetch { seq: 12, items }),
        "* 12 FETCH (FLAGS (\\Seen) UID 4827313 INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 44827 MODSEQ (12121231000))\r\n"
    );
    let section = Section {
        part: vec![],
        text: Some(SectionText::Header),
    };
    let items = vec![
        FetchItem::BodySection {
            section,
            origin: None,
            data: Some(b"Subject: x\r\n\r\n".to_vec()),
        },
        FetchItem::BodySection {
            section: Section::default(),
            origin: Some(100),
            data: None,
        },
    ];
    assert_eq!(
        ascii(Response::Fetch { seq: 1, items }),
        "* 1 FETCH (BODY[HEADER] {14}\r\nSubject: x\r\n\r\n BODY[]<100> NIL)\r\n"
    );
    let part = vec![NonZeroU32::new(1).unwrap()];
    let items = vec![
        FetchItem::Binary {
            part: part.clone(),
            origin: None,
            data: Some(b"a\0b".to_vec()),
        },
        FetchItem::Binary {
            part: part.clone(),
            origin: None,
            data: Some(b"ab".to_vec()),
        },
        FetchItem::BinarySize { part, size: 3 },
        FetchItem::Envelope(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)".to_vec()),
    ];
    let written = ascii(Response::Fetch { seq: 2, items });
    assert_eq!(
        written,
        "* 2 FETCH (BINARY[1] ~{3}\r\na\0b BINARY[1] {2}\r\nab BINARY.SIZE[1] 3 ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"
    );
    let debug = format!("{:?}", FetchItem::Rfc822(Some(b"secret mail".to_vec())));
    assert!(!debug.contains("secret"), "{debug}");
}
