//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3), used with IMAP4rev1 clients that have
//! not enabled UTF8=ACCEPT (RFC 6855) or IMAP4rev2 (RFC 9051 §5.1 uses UTF-8).
//!
//! ```text
//! mailbox-name  = *(direct / shifted / "&-")
//! direct        = %x20-25 / %x27-7E          ; printable US-ASCII except "&"
//! shifted       = "&" 1*B64CHAR "-"           ; UTF-16BE in modified BASE64
//! B64CHAR       = ALPHA / DIGIT / "+" / ","   ; "," replaces "/"; no "=" padding
//! ```
//!
//! Decoding is strict, so that one name has exactly one spelling (SECURITY-TESTS IM-09;
//! the cases of Dovecot `test-imap-utf7.c` and mox `utf7_test.go`): an unterminated
//! shift, a character outside the alphabet, leftover bits that are not zero padding, an
//! odd number of octets, a lone or swapped surrogate, an encoded printable ASCII
//! character, and two shifts in a row (which must be one) are all refused.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Mutf7Error {
    #[error("octet outside printable US-ASCII")]
    NotAscii,
    #[error("unterminated shift sequence")]
    Unterminated,
    #[error("invalid modified BASE64")]
    BadBase64,
    #[error("incomplete UTF-16 (odd octets or non-zero padding)")]
    Incomplete,
    #[error("invalid UTF-16 surrogate")]
    BadSurrogate,
    #[error("printable US-ASCII must not be encoded")]
    NeedlessShift,
    #[error("adjacent shift sequences must be merged")]
    AdjacentShift,
}

fn is_direct(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}') && c != '&'
}

/// Encodes a UTF-8 name as modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_direct(c) || c == '&' {
            flush(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut out, &mut pending);
    out
}

fn flush(out: &mut String, units: &mut Vec<u16>) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut bits: u32 = 0;
    let mut count = 0u32;
    let mut push = |value: u32| {
        if let Some(&symbol) = ALPHABET.get((value & 0x3f) as usize) {
            out.push(char::from(symbol));
        }
    };
    for unit in units.drain(..) {
        bits = (bits << 16) | u32::from(unit);
        count += 16;
        while count >= 6 {
            count -= 6;
            push(bits >> count);
        }
        bits &= (1 << count) - 1;
    }
    if count > 0 {
        push(bits << (6 - count));
    }
    out.push('-');
}

fn sextet(byte: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == byte).map(|p| p as u32)
}

/// Decodes a modified UTF-7 name to UTF-8, strictly.
pub fn decode(name: &[u8]) -> Result<String, Mutf7Error> {
    let mut out = String::with_capacity(name.len());
    let mut index = 0;
    // Whether the previous token was a (non-empty) shift: another one right after it
    // should have been merged into it.
    let mut after_shift = false;
    while let Some(&byte) = name.get(index) {
        if byte != b'&' {
            if !(0x20..=0x7e).contains(&byte) {
                return Err(Mutf7Error::NotAscii);
            }
            out.push(char::from(byte));
            index += 1;
            after_shift = false;
            continue;
        }
        index += 1;
        if name.get(index) == Some(&b'-') {
            out.push('&');
            index += 1;
            after_shift = false;
            continue;
        }
        if after_shift {
            return Err(Mutf7Error::AdjacentShift);
        }
        let rest = name.get(index..).unwrap_or_default();
        let Some(end) = rest.iter().position(|&b| b == b'-') else {
            return Err(Mutf7Error::Unterminated);
        };
        decode_shift(rest.get(..end).unwrap_or_default(), &mut out)?;
        index += end + 1;
        after_shift = true;
    }
    Ok(out)
}

fn decode_shift(encoded: &[u8], out: &mut String) -> Result<(), Mutf7Error> {
    let mut units = Vec::with_capacity(encoded.len() * 6 / 16);
    let mut bits: u32 = 0;
    let mut count = 0u32;
    for &byte in encoded {
        let value = sextet(byte).ok_or(Mutf7Error::BadBase64)?;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 16 {
            count -= 16;
            units.push(((bits >> count) & 0xffff) as u16);
            bits &= (1 << count) - 1;
        }
    }
    // Fewer than 6 leftover bits, all zero: anything else is an odd octet or garbage.
    if count >= 6 || bits != 0 || units.is_empty() {
        return Err(Mutf7Error::Incomplete);
    }
    for decoded in char::decode_utf16(units) {
        let c = decoded.map_err(|_| Mutf7Error::BadSurrogate)?;
        if is_direct(c) || c == '&' {
            return Err(Mutf7Error::NeedlessShift);
        }
        out.push(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        for (utf8, mutf7) in [
            ("INBOX", "INBOX"),
            ("&", "&-"),
            ("&&", "&-&-"),
            ("台北/日本語", "&U,BTFw-/&ZeVnLIqe-"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("Café", "Caf&AOk-"),
            ("☺", "&Jjo-"),
            ("☺☺", "&JjomOg-"),
            ("\u{1F600}", "&2D3eAA-"),
            ("a&b€", "a&-b&IKw-"),
        ] {
            assert_eq!(encode(utf8), mutf7, "encode {utf8}");
            assert_eq!(
                decode(mutf7.as_bytes()).as_deref(),
                Ok(utf8),
                "decode {mutf7}"
            );
        }
    }

    #[test]
    fn strictness() {
        // SECURITY-TESTS IM-09 a-h, Dovecot test-imap-utf7.c, mox utf7_test.go.
        for (bad, why) in [
            ("&AC4ALgAv-", Mutf7Error::NeedlessShift), // "../"
            ("&Jjo", Mutf7Error::Unterminated),
            ("&", Mutf7Error::Unterminated),
            ("&Jjo-&Jjo-", Mutf7Error::AdjacentShift),
            ("&U,BTFw-&ZeVnLIqe-", Mutf7Error::AdjacentShift),
            ("&AGE-", Mutf7Error::NeedlessShift),
            ("&YQ-", Mutf7Error::Incomplete),
            ("&2AA-", Mutf7Error::BadSurrogate),
            ("&3ADYAA-", Mutf7Error::BadSurrogate),
            ("&Jjo!-", Mutf7Error::BadBase64),
            ("&Jjp-", Mutf7Error::Incomplete), // non-zero padding bits
            ("&JjoA-", Mutf7Error::Incomplete), // a superfluous sextet
            ("&-&", Mutf7Error::Unterminated),
        ] {
            assert_eq!(decode(bad.as_bytes()), Err(why), "{bad}");
        }
        assert_eq!(decode("&☺-".as_bytes()), Err(Mutf7Error::BadBase64));
        assert_eq!(decode(b"caf\xc3\xa9"), Err(Mutf7Error::NotAscii));
        assert_eq!(decode(b"a\x00b"), Err(Mutf7Error::NotAscii));
        assert_eq!(decode(b"a\tb"), Err(Mutf7Error::NotAscii));
        // Every printable ASCII character encoded on its own is refused.
        for c in (0x20u8..0x7f).map(char::from) {
            let mut units = [0u16; 1];
            let encoded = encode_units(c.encode_utf16(&mut units));
            assert_eq!(
                decode(encoded.as_bytes()),
                Err(Mutf7Error::NeedlessShift),
                "{c:?}"
            );
        }
        // Control characters may be encoded (the name check refuses them later).
        assert_eq!(decode(b"&AAE-").as_deref(), Ok("\u{1}"));
    }

    fn encode_units(units: &[u16]) -> String {
        let mut out = String::new();
        flush(&mut out, &mut units.to_vec());
        out
    }

    proptest::proptest! {
        #[test]
        fn round_trips(name in "\\PC{0,40}") {
            let encoded = encode(&name);
            proptest::prop_assert!(encoded.bytes().all(|b| (0x20..0x7f).contains(&b)));
            proptest::prop_assert_eq!(decode(encoded.as_bytes()), Ok(name));
        }

        #[test]
        fn decoding_is_canonical(bytes in proptest::collection::vec(proptest::prop_oneof![
            proptest::num::u8::ANY, proptest::strategy::Just(b'&'), proptest::strategy::Just(b'-'),
            proptest::sample::select(ALPHABET.to_vec())], 0..40)) {
            // Whatever decodes re-encodes to the same bytes: one spelling per name.
            if let Ok(decoded) = decode(&bytes) {
                proptest::prop_assert_eq!(encode(&decoded).into_bytes(), bytes);
            }
        }
    }
}
