//! RFC 2047 encoded-word decoding for SEARCH, and charset conversion (through mail-parser).
//!
//! ```text
//! encoded-word = "=?" charset ["*" language] "?" encoding "?" encoded-text "?="
//! encoding     = "B" / "Q"                              ; RFC 2047 §4, RFC 2231 §5
//! ```
//!
//! One left-to-right pass. An attempt starting at `=?` stops at the third `?` after it (the
//! encoded text cannot contain `?`), so attempts cover disjoint stretches of input and the
//! total work is linear; at most [`MAX_WORDS`] words are decoded per value, the rest stay as
//! they are; words in unknown charsets stay as they are; nothing is decoded twice
//! (SECURITY-TESTS MD-08).

use mail_parser::decoders::charsets::map::charset_decoder;

use super::binary::decode_base64;

/// Most encoded words decoded in one header value.
const MAX_WORDS: usize = 1000;
/// Longest charset name considered.
const MAX_CHARSET: usize = 75;

/// Converts `bytes` in `charset` to UTF-8; `None` for an unknown charset.
pub(crate) fn to_utf8(bytes: &[u8], charset: &str) -> Option<String> {
    let cs = charset.trim();
    if cs.eq_ignore_ascii_case("utf-8") || cs.eq_ignore_ascii_case("utf8") {
        return Some(String::from_utf8_lossy(bytes).into_owned());
    }
    if cs.is_empty() || cs.eq_ignore_ascii_case("us-ascii") || cs.eq_ignore_ascii_case("ascii") {
        // 8-bit text labelled (or defaulted to) US-ASCII is mostly unlabelled UTF-8 (RFC 6532);
        // otherwise take it as windows-1252, as mail-parser does.
        if let Ok(s) = std::str::from_utf8(bytes) {
            return Some(s.to_string());
        }
    }
    charset_decoder(cs.as_bytes()).map(|decode| decode(bytes))
}

/// Decodes the encoded words of a header value (unfolded) to UTF-8; the rest is taken as UTF-8
/// (RFC 6532), invalid octets replaced.
pub(crate) fn decode_header_value(value: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(value.len());
    let mut words = 0usize;
    let mut last_was_word = false;
    // Whitespace seen since the last token, held back: RFC 2047 §6.2 drops it between two
    // adjacent encoded words.
    let mut pending_ws: &[u8] = &[];
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        if b == b'='
            && value.get(i + 1) == Some(&b'?')
            && words < MAX_WORDS
            && let Some((decoded, end)) = encoded_word(value, i)
        {
            if !last_was_word {
                out.extend_from_slice(pending_ws);
            }
            pending_ws = &[];
            out.extend_from_slice(decoded.as_bytes());
            words += 1;
            last_was_word = true;
            i = end;
            continue;
        }
        if b == b' ' || b == b'\t' {
            let start = i;
            while matches!(value.get(i), Some(b' ' | b'\t')) {
                i += 1;
            }
            pending_ws = value.get(start..i).unwrap_or_default();
            continue;
        }
        out.extend_from_slice(pending_ws);
        pending_ws = &[];
        out.push(b);
        last_was_word = false;
        i += 1;
    }
    out.extend_from_slice(pending_ws);
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Decodes the encoded word starting at `start` (`=?`): the text and the offset after `?=`.
fn encoded_word(value: &[u8], start: usize) -> Option<(String, usize)> {
    let rest = value.get(start + 2..)?;
    let q1 = rest.iter().take(MAX_CHARSET + 1).position(|&b| b == b'?')?;
    let charset = rest.get(..q1)?;
    if charset.is_empty() || charset.iter().any(|&b| b == b' ' || b == b'\t') {
        return None;
    }
    let encoding = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let text_len = rest.get(text_start..)?.iter().position(|&b| b == b'?')?;
    let text = rest.get(text_start..text_start + text_len)?;
    if rest.get(text_start + text_len + 1) != Some(&b'=')
        || text.iter().any(|&b| b == b' ' || b == b'\t')
    {
        return None;
    }
    let mut bytes = Vec::with_capacity(text.len());
    match encoding {
        b'B' | b'b' => decode_base64(text, &mut bytes),
        b'Q' | b'q' => decode_q(text, &mut bytes),
        _ => return None,
    }
    // RFC 2231 §5: "charset*language".
    let charset = String::from_utf8_lossy(charset);
    let charset = charset.split('*').next().unwrap_or_default();
    let decoded = to_utf8(&bytes, charset)?;
    Some((decoded, start + 2 + text_start + text_len + 2))
}

/// RFC 2047 §4.2 Q encoding: `_` is space, `=XX` an octet.
fn decode_q(text: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        match b {
            b'_' => out.push(b' '),
            b'=' => {
                let h = text.get(i + 1).and_then(|&c| (c as char).to_digit(16));
                let l = text.get(i + 2).and_then(|&c| (c as char).to_digit(16));
                if let (Some(h), Some(l)) = (h, l) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                out.push(b);
            }
            _ => out.push(b),
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::decode_header_value as d;

    #[test]
    fn words() {
        assert_eq!(d(b"=?utf-8?B?w6k=?="), "é");
        assert_eq!(d(b"a =?ISO-8859-1?Q?caf=E9?= b"), "a café b");
        assert_eq!(d(b"=?utf-8?Q?a?= =?utf-8?Q?b?=  c"), "ab  c");
        assert_eq!(d(b"=?utf-8*en?Q?hello_world?="), "hello world");
        assert_eq!(d(b"=?x-unknown?Q?a?="), "=?x-unknown?Q?a?=");
        assert_eq!(d(b"=?utf-8?B?!!?="), "");
        assert_eq!(d(b"=?utf-8?Q?a b?="), "=?utf-8?Q?a b?=");
        assert_eq!(d("plain ü".as_bytes()), "plain ü");
        // Not decoded twice: the result of one decoding is left as it is.
        assert_eq!(
            d(b"=?utf-8?B?PT91dGYtOD9CP1FRPT0/PQ==?="),
            "=?utf-8?B?QQ==?="
        );
    }

    #[test]
    fn many_words_bounded() {
        let v = "=?utf-8?B?QQ==?= ".repeat(200_000);
        let out = d(v.as_bytes());
        assert!(out.starts_with("AAAA"));
        assert!(out.contains("=?utf-8?B?QQ==?="));
        let junk = "=?a".repeat(100_000);
        assert_eq!(d(junk.as_bytes()), junk);
    }
}
