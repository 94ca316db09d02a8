//! SEARCH helpers.

use super::super::fold_case;
use super::*;

const MESSAGE: &str = "From: =?iso-8859-1?Q?J=F6rg?= <jorg@example.com>\n\
     To: Ann <ann@example.org>\nSubject: =?utf-8?B?R3LDvMOfZQ==?= aus Berlin\n\
     Subject: second\nDate: Tue, 1 Jul 2003 23:52:37 -0700\n\
     Content-Type: multipart/mixed; boundary=b\n\n--b\n\
     Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n\
     Der Stra=DFenverkehr ist =\nlaut.\n--b\n\
     Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n\
     PHA+zp/OlM6lzqPOo86VzpHOozwvcD4=\n--b\n\
     Content-Type: application/octet-stream\nContent-Description: hidden-desc\n\n\
     secretbinaryword\n--b\nContent-Type: message/rfc822\n\n\
     Subject: nested subject words\n\nnested body words\n--b--\n";

#[test]
fn header_values_decoded() {
    let (raw, ms) = parse(MESSAGE);
    assert_eq!(
        ms.header_values(&raw, "SUBJECT"),
        vec!["Grüße aus Berlin".to_string(), "second".to_string()]
    );
    assert_eq!(
        ms.header_values(&raw, "from"),
        vec!["Jörg <jorg@example.com>".to_string()]
    );
    assert!(ms.header_values(&raw, "cc").is_empty());
    let needle = fold_case("GRÜSSE");
    assert!(!fold_case(&ms.header_values(&raw, "subject")[0]).contains(&needle));
    assert!(fold_case(&ms.header_values(&raw, "subject")[0]).contains(&fold_case("GRÜßE AUS")));
}

#[test]
fn body_and_text() {
    let (raw, ms) = parse(MESSAGE);
    // Quoted-printable ISO-8859-1, soft line break joined; simple folding keeps ß apart from SS.
    assert!(!ms.body_contains(&raw, "STRASSENVERKEHR"));
    assert!(ms.body_contains(&raw, "STRAßENVERKEHR IST LAUT"));
    // Base64 UTF-8 HTML; Greek matched case-insensitively (final sigma folds like sigma).
    assert!(ms.body_contains(&raw, "οδυσσεας"));
    assert!(ms.body_contains(&raw, "<P>ΟΔΥΣ"));
    // Non-text parts are not searched; encapsulated messages are.
    assert!(!ms.body_contains(&raw, "secretbinaryword"));
    assert!(ms.body_contains(&raw, "NESTED BODY"));
    assert!(ms.body_contains(&raw, "nested subject"));
    // TEXT adds the header (decoded) and MIME headers.
    assert!(!ms.body_contains(&raw, "Berlin"));
    assert!(ms.text_contains(&raw, "grüße AUS berlin"));
    assert!(ms.text_contains(&raw, "hidden-desc"));
    assert!(!ms.body_contains(&raw, "hidden-desc"));
    assert!(ms.text_contains(&raw, ""));
    assert!(!ms.text_contains(&raw, "not there at all"));
}

#[test]
fn dates() {
    let (_, ms) = parse(MESSAGE);
    // 2003-07-01 23:52:37 -0700 = 2003-07-02 06:52:37 UTC.
    assert_eq!(ms.sent_date(), Some(1_057_128_757));
    // The day as written: 2003-07-01.
    assert_eq!(ms.sent_day(), Some(12_234));
    let (_, ms) = parse("Date: yesterday\n\n");
    assert_eq!(ms.sent_date(), None);
    let (_, ms) = parse(&format!(
        "Date: 1 Jan {} 00:00 +0000\n\n",
        "9".repeat(10_000)
    ));
    let _ = ms.sent_date();
    let (_, ms) = parse("Subject: no date\n\n");
    assert_eq!(ms.sent_day(), None);
}

#[test]
fn charset_variants() {
    let m = "Content-Type: text/plain; charset=shift_jis\nContent-Transfer-Encoding: base64\n\n\
             gqCCooKk\n";
    let (raw, ms) = parse(m);
    assert!(ms.body_contains(&raw, "あいう"));
    let (raw, ms) = parse("Subject: x\n\nunlabelled utf-8: Grüße\n");
    assert!(ms.body_contains(&raw, "GRÜßE"));
    let raw = b"Content-Type: text/plain\r\n\r\nlatin-1: Gr\xfc\xdfe\r\n";
    let ms = MessageStructure::parse(raw);
    assert!(ms.body_contains(raw, "grüße"));
    let m = "Content-Type: text/plain; charset=x-unknown\n\nplain ascii here\n";
    let (raw, ms) = parse(m);
    assert!(ms.body_contains(&raw, "ASCII HERE"));
}
