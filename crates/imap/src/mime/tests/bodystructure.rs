//! BODY / BODYSTRUCTURE golden tests.

use super::*;

fn bs(s: &str) -> String {
    parse(s).1.bodystructure(true, REV1)
}

fn body(s: &str) -> String {
    parse(s).1.bodystructure(false, REV1)
}

/// The message behind the BODYSTRUCTURE example of RFC 9051 §7.5.2 (the same as RFC 3501
/// §7.4.2): part 1 has 1152 octets in 23 lines, part 2 4554 octets in 73 lines.
pub(super) fn rfc_example() -> String {
    let mut m = String::from(
        "From: Terry Gray <gray@cac.washington.edu>\nSubject: example\n\
         MIME-Version: 1.0\nContent-Type: MULTIPART/MIXED; BOUNDARY=\"b1\"\n\n--b1\n\
         Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\n\n",
    );
    // 23 lines of 48 + CRLF, then 2 octets: 23 * 50 + 2 = 1152, 23 LFs (the CRLF before the
    // delimiter belongs to it, RFC 2046 §5.1.1).
    for _ in 0..23 {
        m.push_str(&"x".repeat(48));
        m.push('\n');
    }
    m.push_str(
        "ab\n--b1\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\n\
                Content-ID: <960723163407.20117h@cac.washington.edu>\n\
                Content-Description: Compiler diff\nContent-Transfer-Encoding: BASE64\n\n",
    );
    // 73 lines of 60 + CRLF, then 28 octets: 73 * 62 + 28 = 4554.
    for _ in 0..73 {
        m.push_str(&"QUJD".repeat(15));
        m.push('\n');
    }
    m.push_str(&"QUJD".repeat(7));
    m.push_str("\n--b1--\n");
    m
}

#[test]
fn rfc9051_and_rfc3501_example() {
    // RFC 9051 §7.5.2 / RFC 3501 §7.4.2, verbatim (that example has no extension data: BODY).
    assert_eq!(
        body(&rfc_example()),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") \
         \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) \
         \"MIXED\")"
    );
    assert_eq!(
        bs(&rfc_example()),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23 NIL NIL NIL NIL)\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") \
         \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73 \
         NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"b1\") NIL NIL NIL)"
    );
}

#[test]
fn simple_text() {
    let m = "From: a@b.example\nSubject: hi\n\nHello Bob,\nHow are you?\n";
    // "Hello Bob,\r\n" (12) + "How are you?\r\n" (14) = 26 octets, 2 lines.
    assert_eq!(
        bs(m),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 26 2 NIL NIL NIL NIL)"
    );
    assert_eq!(
        body(m),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 26 2)"
    );
    // No final line end: 1 LF.
    assert!(bs("Subject: x\n\na\nb").contains("\"7BIT\" 4 1 "));
    // No body at all (no empty line).
    assert!(bs("Subject: x").contains("\"7BIT\" 0 0 "));
}

#[test]
fn alternative_quoted_printable() {
    let m = "From: a@b.example\nMIME-Version: 1.0\n\
             Content-Type: multipart/alternative; boundary=\"=_alt\"\n\n\
             This is a multi-part message in MIME format.\n\n--=_alt\n\
             Content-Type: text/plain; charset=\"utf-8\"; format=flowed\n\
             Content-Transfer-Encoding: quoted-printable\n\nCaf=C3=A9\n\n--=_alt\n\
             Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n\
             <p>Caf&eacute;</p>\n--=_alt--\n";
    assert_eq!(
        bs(m),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\" \"FORMAT\" \"flowed\") NIL NIL \
         \"QUOTED-PRINTABLE\" 11 1 NIL NIL NIL NIL)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 18 0 NIL NIL NIL NIL) \
         \"ALTERNATIVE\" (\"BOUNDARY\" \"=_alt\") NIL NIL NIL)"
    );
}

const MIXED_ATTACHMENT: &str = "From: a@b.example\nMIME-Version: 1.0\n\
     Content-Type: multipart/mixed; boundary=frontier\n\n--frontier\n\
     Content-Type: text/plain\n\nSee attached.\n--frontier\n\
     Content-Type: application/pdf; name=\"r.pdf\"\n\
     Content-Disposition: attachment;\n filename*=utf-8''r%C3%A9sum%C3%A9.pdf\n\
     Content-Transfer-Encoding: base64\nContent-Language: en, de\n\
     Content-Location: http://example.com/r.pdf\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\n\
     JVBERi0xLjQK\n--frontier--\n";

#[test]
fn mixed_with_attachment() {
    assert_eq!(
        bs(MIXED_ATTACHMENT),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 13 0 NIL NIL NIL NIL)\
         (\"APPLICATION\" \"PDF\" (\"NAME\" \"r.pdf\") NIL NIL \"BASE64\" 12 \
         \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"ATTACHMENT\" (\"FILENAME*\" \
         \"utf-8''r%C3%A9sum%C3%A9.pdf\")) (\"en\" \"de\") \"http://example.com/r.pdf\") \
         \"MIXED\" (\"BOUNDARY\" \"frontier\") NIL NIL NIL)"
    );
    // With UTF-8 allowed the decoded filename is sent as it is.
    let (_, ms) = parse(MIXED_ATTACHMENT);
    assert!(
        ms.bodystructure(true, REV2)
            .contains("(\"ATTACHMENT\" (\"FILENAME\" \"résumé.pdf\"))")
    );
}

#[test]
fn nested_multipart() {
    let m = "Content-Type: multipart/mixed; boundary=outer\n\n--outer\n\
             Content-Type: multipart/alternative; boundary=inner\n\n--inner\n\n\
             plain\n--inner\nContent-Type: text/html\n\n<b>html</b>\n--inner--\n\
             --outer\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\
             Content-Disposition: inline\n\niVBORw0KGgo=\n--outer--\n";
    assert_eq!(
        body(m),
        "(((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 0)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 11 0) \"ALTERNATIVE\")\
         (\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 12) \"MIXED\")"
    );
    assert!(bs(m).contains("\"BASE64\" 12 NIL (\"INLINE\" NIL) NIL NIL)"));
}

pub(super) const RFC822_ATTACHMENT: &str = "From: Outer <outer@example.com>\n\
     Subject: Fwd: inner\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n\
     --XX\nContent-Type: text/plain\n\nForwarded below.\n--XX\n\
     Content-Type: message/rfc822\nContent-Description: forwarded\n\n\
     From: Inner <inner@example.org>\nTo: Someone <someone@example.net>\nSubject: inner\n\
     Date: Tue, 1 Jul 2003 10:52:37 +0200\nMessage-ID: <inner@example.org>\n\n\
     Inner body\nsecond line\n--XX--\n";

#[test]
fn message_rfc822_attachment() {
    // The encapsulated message: 5 header lines + blank + 2 body lines; its body part is
    // "Inner body\r\nsecond line" (23 octets, 1 LF) since the delimiter's CRLF is not part of it.
    let inner_env = "(\"Tue, 1 Jul 2003 10:52:37 +0200\" \"inner\" \
         ((\"Inner\" NIL \"inner\" \"example.org\")) ((\"Inner\" NIL \"inner\" \"example.org\")) \
         ((\"Inner\" NIL \"inner\" \"example.org\")) ((\"Someone\" NIL \"someone\" \"example.net\")) \
         NIL NIL NIL \"<inner@example.org>\")";
    let inner_msg = "From: Inner <inner@example.org>\r\nTo: Someone <someone@example.net>\r\n\
                     Subject: inner\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\n\
                     Message-ID: <inner@example.org>\r\n\r\nInner body\r\nsecond line";
    let expected = format!(
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 16 0)\
         (\"MESSAGE\" \"RFC822\" NIL NIL \"forwarded\" \"7BIT\" {} {inner_env} \
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 23 1) 7) \"MIXED\")",
        inner_msg.len()
    );
    assert_eq!(body(RFC822_ATTACHMENT), expected);
    let ext = bs(RFC822_ATTACHMENT);
    assert!(
        ext.contains("\"7BIT\" 23 1 NIL NIL NIL NIL) 7 NIL NIL NIL NIL)"),
        "{ext}"
    );
    assert!(well_formed(&ext));
}

#[test]
fn missing_mime_version_still_mime() {
    let m = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b--\n";
    assert!(body(m).ends_with(" \"MIXED\")"));
}

#[test]
fn odd_parameters() {
    let m = "Content-Type: Text/Plain ; CharSet = \"iso-8859-1\" ; Name=\"a \\\"q\\\" b.txt\" \
             (comment) ; format=flowed ; charset=dup\n\nx\n";
    assert_eq!(
        body(m),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"iso-8859-1\" \"NAME\" \"a \\\"q\\\" b.txt\" \
         \"FORMAT\" \"flowed\") NIL NIL \"7BIT\" 3 1)"
    );
    // RFC 2231 continuations reassembled.
    let m = "Content-Type: application/x-thing; name*0=\"long\"; name*1=\"name.bin\"\n\nx";
    assert!(body(m).contains("(\"NAME\" \"longname.bin\")"));
}

#[test]
fn invalid_multiparts_become_text() {
    // RFC 2045 §5.2: a multipart without a usable boundary is an invalid Content-Type.
    for m in [
        "Content-Type: multipart/mixed\n\n--b\n\nx\n--b--\n",
        "Content-Type: multipart/mixed; boundary=zz\n\nno delimiter here\n",
    ] {
        assert!(
            body(m).starts_with("(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\")"),
            "{m}"
        );
    }
}

#[test]
fn digest_defaults_to_message() {
    let m = "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody one\n\
             --d\nContent-Type: text/plain\n\ntwo\n--d--\n";
    let b = body(m);
    assert!(
        b.starts_with("((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" "),
        "{b}"
    );
    assert!(
        b.contains("(NIL \"one\" NIL NIL NIL NIL NIL NIL NIL NIL)"),
        "{b}"
    );
    assert!(b.ends_with(
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 3 0) \"DIGEST\")"
    ));
}

#[test]
fn message_global_depends_on_revision() {
    let m = "Content-Type: message/global\n\nSubject: g\n\nbody\n";
    let (_, ms) = parse(m);
    let rev2 = ms.bodystructure(false, REV2);
    assert!(rev2.starts_with("(\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"7BIT\" 20 (NIL \"g\""));
    assert_eq!(
        ms.bodystructure(false, REV1),
        "(\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"7BIT\" 20)"
    );
}

#[test]
fn encoded_message_is_opaque() {
    // RFC 2046 §5.2.1: message/rfc822 is never base64; such a part is not descended into.
    let m = "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n\
             U3ViamVjdDogeAoKeQo=\n";
    assert_eq!(
        body(m),
        "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" 22)"
    );
}

#[test]
fn utf8_and_8bit_values() {
    let m = "Content-Type: text/plain; charset=utf-8\nContent-Description: Résumé\n\nx";
    assert!(body(m).contains(" {8}\r\nRésumé \"7BIT\""));
    let (_, ms) = parse(m);
    assert!(
        ms.bodystructure(false, REV2)
            .contains(" \"Résumé\" \"7BIT\"")
    );
}
