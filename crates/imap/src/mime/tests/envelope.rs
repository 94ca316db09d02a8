//! ENVELOPE golden tests.

use super::*;

fn env(s: &str) -> String {
    parse(s).1.envelope(REV1)
}

#[test]
fn rfc3501_example() {
    // RFC 3501 §8 (also RFC 9051 §8): the ENVELOPE of the sample FETCH, verbatim.
    let m = "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\n\
             From: Terry Gray <gray@cac.washington.edu>\n\
             Subject: IMAP4rev1 WG mtg summary and minutes\n\
             To: imap@cac.washington.edu\n\
             cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\n\
             Message-Id: <B27397-0100000@cac.washington.edu>\n\
             MIME-Version: 1.0\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\n\nbody\n";
    assert_eq!(
        env(m),
        "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((NIL NIL \"imap\" \"cac.washington.edu\")) \
         ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")\
         (\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \
         \"<B27397-0100000@cac.washington.edu>\")"
    );
}

#[test]
fn missing_headers_are_nil() {
    assert_eq!(
        env("X-Other: 1\n\nbody"),
        "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    );
    // Present but empty Subject is "", absent is NIL.
    assert!(env("Subject:\n\n").starts_with("(NIL \"\" NIL"));
}

#[test]
fn sender_reply_to_default_and_explicit() {
    let m = "From: a@x.example\nSender: s@y.example\nReply-To:\nIn-Reply-To: <p@x>\n\n";
    assert_eq!(
        env(m),
        "(NIL NIL ((NIL NIL \"a\" \"x.example\")) ((NIL NIL \"s\" \"y.example\")) \
         ((NIL NIL \"a\" \"x.example\")) NIL NIL NIL \"<p@x>\" NIL)"
    );
}

#[test]
fn encoded_words_pass_through_and_folding_removed() {
    let m = "Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=\n =?utf-8?B?w6k=?=\n\
             From: =?iso-8859-1?Q?J=F6rg?= <j@x.example>\n\n";
    assert_eq!(
        env(m),
        "(NIL \"=?utf-8?Q?Gr=C3=BC=C3=9Fe?= =?utf-8?B?w6k=?=\" \
         ((\"=?iso-8859-1?Q?J=F6rg?=\" NIL \"j\" \"x.example\")) \
         ((\"=?iso-8859-1?Q?J=F6rg?=\" NIL \"j\" \"x.example\")) \
         ((\"=?iso-8859-1?Q?J=F6rg?=\" NIL \"j\" \"x.example\")) NIL NIL NIL NIL NIL)"
    );
}

#[test]
fn group_syntax() {
    let m = "From: x@y\nTo: Friends: a@b, \"C D\" <c@d>;, undisclosed-recipients:;\n\n";
    assert_eq!(
        env(m),
        "(NIL NIL ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) \
         ((NIL NIL \"Friends\" NIL)(NIL NIL \"a\" \"b\")(\"C D\" NIL \"c\" \"d\")(NIL NIL NIL NIL)\
         (NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL)"
    );
}

#[test]
fn quoting_and_literals() {
    let m = "Subject: say \"hi\" \\o/\nFrom: \"Smith, J\\\"r\" <j@x>\n\n";
    let e = env(m);
    assert!(e.starts_with("(NIL \"say \\\"hi\\\" \\\\o/\" ((\"Smith, J\\\"r\" NIL \"j\" \"x\"))"));
    // 8-bit: a literal unless UTF-8 is allowed (RFC 9051 §4.3, RFC 6855).
    let (_, ms) = parse("Subject: Grüße\n\n");
    assert!(ms.envelope(REV1).starts_with("(NIL {7}\r\nGrüße NIL"));
    assert!(ms.envelope(REV2).starts_with("(NIL \"Grüße\" NIL"));
    // Invalid UTF-8 and NUL never reach the output as such.
    let raw = b"Subject: \x00\xff\xfe\n\n".to_vec();
    let e = MessageStructure::parse(&raw).envelope(REV1);
    assert!(well_formed(&e), "{e}");
    assert!(!e.contains('\0'));
}

#[test]
fn source_route_and_missing_host() {
    let m = "From: <@relay.example:joe@x.example>\nTo: joe\n\n";
    assert_eq!(
        env(m),
        "(NIL NIL ((NIL \"@relay.example\" \"joe\" \"x.example\")) \
         ((NIL \"@relay.example\" \"joe\" \"x.example\")) \
         ((NIL \"@relay.example\" \"joe\" \"x.example\")) \
         ((NIL NIL \"joe\" \".MISSING-HOST-NAME.\")) NIL NIL NIL NIL)"
    );
}

#[test]
fn first_occurrence_wins() {
    let m = "Subject: one\nSubject: two\n\n";
    assert!(env(m).starts_with("(NIL \"one\" "));
}
