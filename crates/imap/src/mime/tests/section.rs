//! Section extraction, partial ranges and BINARY.

use std::borrow::Cow;

use super::super::{BinaryError, SectionKind, SectionSpec, apply_partial};
use super::*;

fn spec(path: &[u32], kind: SectionKind) -> SectionSpec {
    SectionSpec {
        path: path.to_vec(),
        kind,
    }
}

fn get(raw: &[u8], ms: &MessageStructure, path: &[u32], kind: SectionKind) -> String {
    String::from_utf8(ms.section(raw, &spec(path, kind)).into_owned()).unwrap()
}

/// The part layout of RFC 9051 §6.4.5's example, each leaf's body naming its part number.
fn rfc_layout() -> String {
    "Subject: top\nContent-Type: MULTIPART/MIXED; boundary=\"a\"\n\n--a\n\npart 1\n--a\n\
     Content-Type: APPLICATION/OCTET-STREAM\n\npart 2\n--a\nContent-Type: MESSAGE/RFC822\n\n\
     Subject: three\nContent-Type: MULTIPART/MIXED; boundary=\"b\"\n\n--b\n\npart 3.1\n--b\n\
     Content-Type: APPLICATION/OCTET-STREAM\n\npart 3.2\n--b--\n--a\n\
     Content-Type: MULTIPART/MIXED; boundary=\"c\"\n\n--c\nContent-Type: IMAGE/GIF\n\n\
     part 4.1\n--c\nContent-Type: MESSAGE/RFC822\n\nSubject: four-two\n\
     Content-Type: MULTIPART/MIXED; boundary=\"d\"\n\n--d\n\npart 4.2.1\n--d\n\
     Content-Type: MULTIPART/ALTERNATIVE; boundary=\"e\"\n\n--e\n\npart 4.2.2.1\n--e\n\
     Content-Type: TEXT/RICHTEXT\n\npart 4.2.2.2\n--e--\n--d--\n--c--\n--a--\n"
        .to_string()
}

#[test]
fn rfc9051_part_numbering() {
    let (raw, ms) = parse(&rfc_layout());
    for (path, text) in [
        (&[1][..], "part 1"),
        (&[2], "part 2"),
        (&[3, 1], "part 3.1"),
        (&[3, 2], "part 3.2"),
        (&[4, 1], "part 4.1"),
        (&[4, 2, 1], "part 4.2.1"),
        (&[4, 2, 2, 1], "part 4.2.2.1"),
        (&[4, 2, 2, 2], "part 4.2.2.2"),
    ] {
        assert_eq!(get(&raw, &ms, path, SectionKind::Full), text, "{path:?}");
    }
    assert_eq!(
        get(&raw, &ms, &[3], SectionKind::Header),
        "Subject: three\r\nContent-Type: MULTIPART/MIXED; boundary=\"b\"\r\n\r\n"
    );
    assert!(get(&raw, &ms, &[3], SectionKind::Text).starts_with("--b\r\n\r\npart 3.1\r\n"));
    assert_eq!(
        get(&raw, &ms, &[4, 1], SectionKind::Mime),
        "Content-Type: IMAGE/GIF\r\n\r\n"
    );
    assert_eq!(
        get(&raw, &ms, &[4, 2], SectionKind::Mime),
        "Content-Type: MESSAGE/RFC822\r\n\r\n"
    );
    assert!(get(&raw, &ms, &[4, 2], SectionKind::Header).starts_with("Subject: four-two\r\n"));
    assert!(get(&raw, &ms, &[4, 2], SectionKind::Text).ends_with("--d--"));
    assert_eq!(
        get(&raw, &ms, &[4, 2, 2, 2], SectionKind::Mime),
        "Content-Type: TEXT/RICHTEXT\r\n\r\n"
    );
    // Whole parts: a multipart's body, a message/rfc822 part's body is the whole message.
    assert!(get(&raw, &ms, &[4], SectionKind::Full).starts_with("--c\r\nContent-Type: IMAGE/GIF"));
    assert!(get(&raw, &ms, &[3], SectionKind::Full).starts_with("Subject: three\r\n"));
}

#[test]
fn top_level_kinds() {
    let (raw, ms) = parse(
        "Received: x\nSubject: hello\n world\nFrom: a@b\nX-Empty:\nSUBJECT: again\n\nThe body.\n",
    );
    assert_eq!(get(&raw, &ms, &[], SectionKind::Full).as_bytes(), &raw[..]);
    assert_eq!(
        get(&raw, &ms, &[], SectionKind::Header),
        "Received: x\r\nSubject: hello\r\n world\r\nFrom: a@b\r\nX-Empty:\r\nSUBJECT: again\r\n\r\n"
    );
    assert_eq!(get(&raw, &ms, &[], SectionKind::Text), "The body.\r\n");
    // RFC 9051 §6.4.5: matching fields in message order, case-insensitive, then CRLF.
    let fields = |names: &[&str], not| SectionKind::HeaderFields {
        names: names.iter().map(|s| s.to_string()).collect(),
        not,
    };
    assert_eq!(
        get(&raw, &ms, &[], fields(&["from", "Subject"], false)),
        "Subject: hello\r\n world\r\nFrom: a@b\r\nSUBJECT: again\r\n\r\n"
    );
    assert_eq!(
        get(&raw, &ms, &[], fields(&["SUBJECT", "x-empty"], true)),
        "Received: x\r\nFrom: a@b\r\n\r\n"
    );
    assert_eq!(get(&raw, &ms, &[], fields(&["X-Absent"], false)), "\r\n");
    // A non-multipart message has only part 1, its body.
    assert_eq!(get(&raw, &ms, &[1], SectionKind::Full), "The body.\r\n");
    assert!(get(&raw, &ms, &[1], SectionKind::Mime).starts_with("Received: x\r\n"));
    // MIME needs a part number.
    assert_eq!(get(&raw, &ms, &[], SectionKind::Mime), "");
}

#[test]
fn nonexistent_and_meaningless_sections_are_empty() {
    let (raw, ms) = parse(bodystructure::RFC822_ATTACHMENT);
    for path in [&[0][..], &[3], &[1, 1], &[2, 2], &[2, 1, 1], &[9, 9, 9]] {
        assert_eq!(get(&raw, &ms, path, SectionKind::Full), "", "{path:?}");
    }
    // RFC 9051 §6.4.5: HEADER/TEXT only on message/rfc822 parts; elsewhere empty.
    assert_eq!(get(&raw, &ms, &[1], SectionKind::Header), "");
    assert_eq!(get(&raw, &ms, &[1], SectionKind::Text), "");
    let not = SectionKind::HeaderFields {
        names: vec![],
        not: true,
    };
    assert_eq!(get(&raw, &ms, &[1], not.clone()), "");
    // On the message/rfc822 part they address the encapsulated message.
    assert!(get(&raw, &ms, &[2], not).starts_with("From: Inner <inner@example.org>\r\n"));
    assert_eq!(
        get(&raw, &ms, &[2, 1], SectionKind::Full),
        "Inner body\r\nsecond line"
    );
    assert_eq!(
        get(&raw, &ms, &[2], SectionKind::Text),
        "Inner body\r\nsecond line"
    );
}

#[test]
fn header_without_body() {
    let (raw, ms) = parse("Subject: x\nFrom: y");
    let fields = SectionKind::HeaderFields {
        names: vec!["from".into()],
        not: false,
    };
    assert_eq!(get(&raw, &ms, &[], fields), "From: y\r\n\r\n");
    assert_eq!(get(&raw, &ms, &[], SectionKind::Text), "");
}

#[test]
fn partial_ranges() {
    let data: &[u8] = b"0123456789";
    assert_eq!(&*apply_partial(Cow::Borrowed(data), 0, 4), b"0123");
    assert_eq!(&*apply_partial(Cow::Borrowed(data), 8, 100), b"89");
    assert_eq!(&*apply_partial(Cow::Borrowed(data), 10, 1), b"");
    assert_eq!(
        &*apply_partial(Cow::Borrowed(data), u64::MAX, u64::MAX),
        b""
    );
    assert_eq!(&*apply_partial(Cow::Owned(data.to_vec()), 3, 2), b"34");
    // Applied after HEADER.FIELDS subsetting (RFC 9051 §6.4.5).
    let (raw, ms) = parse("A: 1\nB: 2\n\n");
    let sub = ms.section(
        &raw,
        &spec(
            &[],
            SectionKind::HeaderFields {
                names: vec!["b".into()],
                not: false,
            },
        ),
    );
    assert_eq!(&*apply_partial(sub, 1, 3), b": 2");
}

#[test]
fn binary_decoding() {
    let m = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\
             Content-Transfer-Encoding: base64\n\naGVs\nbG8=\n--b\n\
             Content-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9=\n!\n--b\n\
             Content-Transfer-Encoding: x-uuencode\n\nbegin\n--b\n\n7bit text\n--b--\n";
    let (raw, ms) = parse(m);
    assert_eq!(&*ms.binary(&raw, &[1]).unwrap(), b"hello");
    assert_eq!(ms.binary_size(&raw, &[1]).unwrap(), 5);
    assert_eq!(&*ms.binary(&raw, &[2]).unwrap(), "café!".as_bytes());
    assert_eq!(ms.binary_size(&raw, &[2]).unwrap(), 6);
    assert_eq!(
        ms.binary(&raw, &[3]),
        Err(BinaryError::UnknownCte("x-uuencode".into()))
    );
    assert_eq!(
        ms.binary_size(&raw, &[3]),
        Err(BinaryError::UnknownCte("x-uuencode".into()))
    );
    assert!(matches!(
        ms.binary(&raw, &[4]).unwrap(),
        Cow::Borrowed(b"7bit text")
    ));
    assert_eq!(&*ms.binary(&raw, &[9]).unwrap(), b"");
    assert_eq!(ms.binary(&raw, &[]).unwrap().len(), raw.len());
    assert_eq!(ms.binary_size(&raw, &[]).unwrap(), raw.len() as u64);
    // Partial BINARY counts decoded octets.
    assert_eq!(
        &*apply_partial(ms.binary(&raw, &[1]).unwrap(), 1, 3),
        b"ell"
    );
}

#[test]
fn cache_mismatch_never_panics() {
    let (raw, ms) = parse(&rfc_layout());
    let short = &raw[..raw.len() / 3];
    for path in [&[][..], &[1], &[3, 2], &[4, 2, 2, 2]] {
        for kind in [
            SectionKind::Full,
            SectionKind::Header,
            SectionKind::Text,
            SectionKind::Mime,
        ] {
            let _ = ms.section(short, &spec(path, kind));
        }
        let _ = ms.binary(short, path);
        let _ = ms.binary_size(short, path);
    }
    assert!(!ms.text_contains(b"", "part"));
}
