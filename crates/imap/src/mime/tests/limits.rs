//! SECURITY-TESTS §4.8 (MIME / content DoS): the generators of MD-01..MD-11, scaled where a
//! case is only about linearity. None of these asserts a time: a quadratic path would make the
//! suite visibly slow instead (DESIGN §5).

use super::super::{MAX_DEPTH, MAX_PARTS, PartKind, SectionKind, SectionSpec};
use super::*;

const H: &str = "From: x@ext.test\nTo: alice@local.test\nSubject: t\nMIME-Version: 1.0\n";

fn depth(part: &super::super::Part) -> usize {
    match &part.kind {
        PartKind::Multipart(children) => 1 + children.iter().map(depth).max().unwrap_or(0),
        PartKind::Message(inner) => 1 + depth(&inner.root),
        PartKind::Leaf | PartKind::Opaque => 1,
    }
}

fn count(part: &super::super::Part) -> usize {
    match &part.kind {
        PartKind::Multipart(children) => 1 + children.iter().map(count).sum::<usize>(),
        PartKind::Message(inner) => 1 + count(&inner.root),
        PartKind::Leaf | PartKind::Opaque => 1,
    }
}

fn check_outputs(raw: &[u8], ms: &MessageStructure) {
    for dialect in [REV1, REV2] {
        for ext in [false, true] {
            assert!(well_formed(&ms.bodystructure(ext, dialect)));
        }
        assert!(well_formed(&ms.envelope(dialect)));
    }
    let bytes = ms.to_bytes();
    assert_eq!(&MessageStructure::from_bytes(&bytes).unwrap(), ms);
    let _ = ms.text_contains(raw, "zz");
}

#[test]
fn md01_deep_multipart_nesting() {
    let d = 10_000;
    let mut m = String::from(H);
    for i in 0..d {
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
        ));
    }
    m.push_str("Content-Type: text/plain\n\nx\n");
    for i in (0..d).rev() {
        m.push_str(&format!("--b{i}--\n"));
    }
    let (raw, ms) = parse(&m);
    assert_eq!(depth(&ms.message.root), MAX_DEPTH);
    check_outputs(&raw, &ms);
    let path = vec![1; 60];
    let _ = ms.section(
        &raw,
        &SectionSpec {
            path,
            kind: SectionKind::Full,
        },
    );
}

#[test]
fn md02_many_parts() {
    let many = |n: usize| {
        format!(
            "{H}Content-Type: multipart/mixed; boundary=\"b\"\n\n{}--b--\n",
            "--b\n\nx\n".repeat(n)
        )
    };
    let (raw, ms) = parse(&many(100_000));
    assert_eq!(count(&ms.message.root), MAX_PARTS);
    check_outputs(&raw, &ms);
    let (_, ms) = parse(&many(MAX_PARTS - 1));
    assert_eq!(count(&ms.message.root), MAX_PARTS);
    // CVE-2020-25275: the 10 000th part is message/rfc822.
    let m = format!(
        "{H}Content-Type: multipart/mixed; boundary=\"b\"\n\n{}--b\nContent-Type: message/rfc822\n\n\
         Subject: inner\n\nbody\n--b\n\nafter\n--b--\n",
        "--b\n\nx\n".repeat(MAX_PARTS - 2)
    );
    let (raw, ms) = parse(&m);
    assert_eq!(count(&ms.message.root), MAX_PARTS);
    let PartKind::Multipart(children) = &ms.message.root.kind else {
        panic!("multipart expected");
    };
    assert_eq!(children.last().map(|p| &p.kind), Some(&PartKind::Opaque));
    check_outputs(&raw, &ms);
}

#[test]
fn md03_nested_rfc822() {
    let m = format!(
        "{H}{}x\n",
        "Content-Type: message/rfc822\n\n".repeat(10_000)
    );
    let (raw, ms) = parse(&m);
    assert_eq!(depth(&ms.message.root), MAX_DEPTH);
    check_outputs(&raw, &ms);
    let spec = SectionSpec {
        path: vec![1, 1, 1, 1, 1, 1],
        kind: SectionKind::Full,
    };
    assert!(
        ms.section(&raw, &spec)
            .starts_with(b"Content-Type: message/rfc822")
    );
    // An encapsulated message reusing the outer boundary, truncated mid-part.
    let m = format!(
        "{H}Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: message/rfc822\n\n\
         Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\ninner\n--b\n\nsecond"
    );
    let (raw, ms) = parse(&m);
    check_outputs(&raw, &ms);
}

#[test]
fn md04_many_address_headers() {
    let m = format!("{H}{}\nx\n", "To: a@b.test\n".repeat(200_000));
    let (raw, ms) = parse(&m);
    assert!(ms.envelope(REV1).len() < 1024);
    check_outputs(&raw, &ms);
    let m = format!("{H}To: {}\n\nx\n", "a@b.test, ".repeat(200_000));
    let (raw, ms) = parse(&m);
    assert!(ms.envelope(REV1).len() < 8 * 32 * 1024);
    check_outputs(&raw, &ms);
}

#[test]
fn md05_enormous_headers() {
    let m = format!("{H}Subject: {}\n\nx\n", "A".repeat(10_000_000));
    let (raw, ms) = parse(&m);
    assert!(ms.envelope(REV1).len() < 64 * 1024);
    check_outputs(&raw, &ms);
    let m = format!("{H}X-Long: a\n{}\nx\n", " a\n".repeat(200_000));
    let (raw, ms) = parse(&m);
    let spec = SectionSpec {
        path: vec![],
        kind: SectionKind::HeaderFields {
            names: vec!["SUBJECT".into()],
            not: false,
        },
    };
    assert_eq!(&*ms.section(&raw, &spec), b"Subject: t\r\n\r\n");
    check_outputs(&raw, &ms);
}

#[test]
fn md06_rfc2231_flood() {
    let params: Vec<String> = (0..100_000)
        .map(|i| format!("filename*{i}=\"a\""))
        .collect();
    let mut names: Vec<String> = (0..100_000)
        .map(|i| format!("name*{i}*=utf-8''%41"))
        .collect();
    names.reverse();
    let m = format!(
        "{H}Content-Type: text/plain; {}\nContent-Disposition: attachment; {}\n\nx\n",
        names.join("; "),
        params.join("; ")
    );
    let (raw, ms) = parse(&m);
    assert!(ms.message.root.content.params.len() <= 64);
    check_outputs(&raw, &ms);
}

#[test]
fn md07_boundary_abuse() {
    let long = "b".repeat(100_000);
    let m = format!(
        "{H}Content-Type: multipart/mixed; boundary=\"{long}\"\n\n--{long}\n\nx\n--{long}--\n"
    );
    let (raw, ms) = parse(&m);
    assert_eq!(ms.message.root.kind, PartKind::Leaf);
    check_outputs(&raw, &ms);
    // "b" is a prefix of "bb": the inner delimiter is not the outer one.
    let m = format!(
        "{H}Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\
         Content-Type: multipart/mixed; boundary=\"bb\"\n\n--bb\n\none\n--bb\n\ntwo\n--bb--\n--b--\n"
    );
    let (raw, ms) = parse(&m);
    assert!(ms.bodystructure(false, REV1).starts_with("(((\"TEXT\""));
    check_outputs(&raw, &ms);
    let m = format!(
        "{H}Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\n{}--b--\n",
        "--b-\n".repeat(1_000_000)
    );
    let (raw, ms) = parse(&m);
    check_outputs(&raw, &ms);
}

#[test]
fn md09_encoding_bombs() {
    let m = format!(
        "{H}Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n{}\n",
        "!!!!".repeat(5_000_000)
    );
    let (raw, ms) = parse(&m);
    assert_eq!(ms.binary_size(&raw, &[1]), Ok(0));
    assert!(!ms.body_contains(&raw, "zz"));
    let m = format!(
        "{H}Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n{}x\n",
        "=\n".repeat(2_500_000)
    );
    let (raw, ms) = parse(&m);
    assert_eq!(ms.binary_size(&raw, &[1]), Ok(3));
}

#[test]
fn md10_pathological_headers() {
    for header in [
        "Content-Type: multipart/mixed\n",
        "Content-Type: ;;;;;;\n",
        "Content-Type: text/plain; charset=\"\n",
        &format!("From: {}\n", "<".repeat(10_000)),
        &format!("Date: Mon, 1 Jan {} 00:00:00 +0000\n", "9".repeat(10_000)),
        "From: (((((\nTo: \"unterminated\nCc: ,,,,;;;:::@@@<<>>\n",
    ] {
        let m = format!("{header}\nbody\n");
        let (raw, ms) = parse(&m);
        check_outputs(&raw, &ms);
        let _ = ms.sent_date();
    }
}

#[test]
fn md11_nul_8bit_and_no_separator() {
    for raw in [
        b"Subject: \x00\xff\xfe\r\n\r\nbody\x00with\x00nul\r\n".to_vec(),
        b"From: \xff\xfe <\xc3@\xa9>\r\n\r\nx".to_vec(),
        b"Subject: no separator\r\nFrom: a@b".to_vec(),
        b"".to_vec(),
        b"\r\n".to_vec(),
        b"no header at all".to_vec(),
    ] {
        let ms = MessageStructure::parse(&raw);
        check_outputs(&raw, &ms);
        assert!(!ms.text_contains(&raw, "\u{fffd}zz"));
    }
}
