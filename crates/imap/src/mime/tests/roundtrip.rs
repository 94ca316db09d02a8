//! Property tests: parsing never panics, the cache encoding round-trips, decoding arbitrary
//! bytes never panics, and every output is well-formed IMAP.

use proptest::prelude::*;

use super::super::{DecodeError, SectionKind, SectionSpec};
use super::*;

/// Lines MIME parsers trip on, to build messages that reach deep code paths.
fn mime_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("Content-Type: multipart/mixed; boundary=a".to_string()),
        Just("Content-Type: multipart/alternative; boundary=\"b\"".to_string()),
        Just("Content-Type: multipart/digest; boundary=a".to_string()),
        Just("Content-Type: message/rfc822".to_string()),
        Just("Content-Type: message/global".to_string()),
        Just(
            "Content-Type: text/plain; charset=utf-8; name*0=x; name*1*=utf-8''%C3%A9".to_string()
        ),
        Just("Content-Transfer-Encoding: base64".to_string()),
        Just("Content-Transfer-Encoding: quoted-printable".to_string()),
        Just("Content-Disposition: attachment; filename=\"a\\\"b\"".to_string()),
        Just("From: \"A, B\" <a@b>, group: c@d;, <@r:e@f>".to_string()),
        Just("Subject: =?utf-8?B?w6k=?= =?x?Q?y?=".to_string()),
        Just("Date: Tue, 1 Jul 2003 10:52:37 +0200".to_string()),
        Just("--a".to_string()),
        Just("--a--".to_string()),
        Just("--b".to_string()),
        Just("--b--".to_string()),
        Just(" folded continuation".to_string()),
        Just("aGVsbG8=".to_string()),
        Just("caf=C3=A9=".to_string()),
        "[ -~]{0,20}".prop_map(|s| s),
        "\\PC{0,10}".prop_map(|s| s),
    ]
}

fn mime_message() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(mime_line(), 0..60).prop_map(|lines| {
        let mut m = lines.join("\r\n");
        m.push_str("\r\n");
        m.into_bytes()
    })
}

fn exercise(raw: &[u8]) {
    let ms = MessageStructure::parse(raw);
    for dialect in [REV1, REV2] {
        for ext in [false, true] {
            let b = ms.bodystructure(ext, dialect);
            assert!(well_formed(&b), "{b:?}");
        }
        let e = ms.envelope(dialect);
        assert!(well_formed(&e), "{e:?}");
    }
    let bytes = ms.to_bytes();
    assert_eq!(MessageStructure::from_bytes(&bytes).as_ref(), Ok(&ms));
    for path in [&[][..], &[1], &[1, 1], &[2, 1], &[1, 2, 1]] {
        for kind in [
            SectionKind::Full,
            SectionKind::Header,
            SectionKind::Text,
            SectionKind::Mime,
            SectionKind::HeaderFields {
                names: vec!["content-type".into()],
                not: true,
            },
        ] {
            let spec = SectionSpec {
                path: path.to_vec(),
                kind,
            };
            let section = ms.section(raw, &spec);
            assert!(section.len() <= raw.len() + 4);
        }
        let _ = ms.binary(raw, path);
        let _ = ms.binary_size(raw, path);
    }
    let _ = ms.text_contains(raw, "é");
    let _ = ms.body_contains(raw, "A");
    let _ = ms.header_values(raw, "subject");
    let _ = ms.sent_date();
    let _ = ms.sent_day();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&raw);
    }

    #[test]
    fn mime_shaped(raw in mime_message()) {
        exercise(&raw);
    }

    #[test]
    fn decode_arbitrary_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = MessageStructure::from_bytes(&bytes);
        let mut with_magic = b"SPMS\x01".to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = MessageStructure::from_bytes(&with_magic);
    }

    #[test]
    fn corrupted_cache_never_panics(raw in mime_message(), cut in any::<prop::sample::Index>(),
                                    flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let bytes = MessageStructure::parse(&raw).to_bytes();
        let cut = cut.index(bytes.len());
        prop_assert!(MessageStructure::from_bytes(&bytes[..cut]).is_err());
        let mut flipped = bytes.clone();
        let i = flip.index(flipped.len());
        flipped[i] ^= 1 << bit;
        if let Ok(ms) = MessageStructure::from_bytes(&flipped) {
            // Whatever decodes must still render and extract safely.
            prop_assert!(well_formed(&ms.bodystructure(true, REV1)));
            prop_assert!(well_formed(&ms.envelope(REV1)));
            let _ = ms.section(&raw, &SectionSpec { path: vec![1, 1], kind: SectionKind::Mime });
        }
    }
}

#[test]
fn decode_errors() {
    assert_eq!(
        MessageStructure::from_bytes(b""),
        Err(DecodeError::Truncated)
    );
    assert_eq!(
        MessageStructure::from_bytes(b"XXXX\x01"),
        Err(DecodeError::Magic)
    );
    assert_eq!(
        MessageStructure::from_bytes(b"SPMS\x09"),
        Err(DecodeError::Version(9))
    );
    let mut bytes = MessageStructure::parse(b"Subject: x\r\n\r\nbody").to_bytes();
    bytes.push(0);
    assert_eq!(
        MessageStructure::from_bytes(&bytes),
        Err(DecodeError::Malformed)
    );
    // A huge claimed count is rejected before allocating.
    let mut huge = b"SPMS\x01".to_vec();
    huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert!(MessageStructure::from_bytes(&huge).is_err());
}

#[test]
fn golden_messages_round_trip() {
    for m in [
        bodystructure::rfc_example(),
        bodystructure::RFC822_ATTACHMENT.to_string(),
    ] {
        let (raw, ms) = parse(&m);
        let bytes = ms.to_bytes();
        // Compact: far smaller than the message for these.
        assert!(bytes.len() < raw.len(), "{} >= {}", bytes.len(), raw.len());
        let back = MessageStructure::from_bytes(&bytes).unwrap();
        assert_eq!(back, ms);
        assert_eq!(back.bodystructure(true, REV1), ms.bodystructure(true, REV1));
    }
}
