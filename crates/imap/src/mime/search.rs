//! What SEARCH needs (RFC 9051 §6.4.4, RFC 3501 §6.4.4): decoded header values, case-insensitive
//! substring search over decoded text, and the Date header as a time.
//!
//! Matching is case-insensitive with Unicode simple case folding ([`fold_case`]) on UTF-8 text
//! (RFC 9051 §6.4.4: "In all search keys that use strings, ... case-insensitive"; the service
//! converts the search charset to UTF-8 first). Text parts are decoded (transfer encoding, then
//! charset through mail-parser) before matching; other parts are not searched. The work per
//! message is bounded by [`MAX_SEARCH_BYTES`] of decoded text.

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

use super::MAX_SEARCH_BYTES;
use super::binary::{Cte, cte, decode_into};
use super::encoded_word::{decode_header_value, to_utf8};
use super::header::{fields, name_is, unfold};
use super::structure::{MessageNode, MessageStructure, Part, PartKind, Span};

/// Longest header value decoded for SEARCH.
const MAX_SEARCH_FIELD: usize = 256 * 1024;

/// Unicode simple case folding (CaseFolding.txt statuses C and S), derived from the standard
/// library's case mappings: a character is mapped to its single-character upper case, then to
/// that one's single-character lower case. Characters whose mapping expands (`ß`, `İ`) are left
/// as simple folding leaves them. Strings that fold alike compare equal.
pub fn fold_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        out.push(fold_char(c));
    }
    out
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let up = single(c.to_uppercase()).unwrap_or(c);
    single(up.to_lowercase()).unwrap_or(up)
}

fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

/// Remaining decoded-text budget of one search.
struct Budget(usize);

impl Budget {
    /// Takes up to `len` octets from the budget; how many may be examined.
    fn take(&mut self, len: usize) -> usize {
        let n = len.min(self.0);
        self.0 -= n;
        n
    }
}

/// One search: the folded needle and the budget.
struct Matcher {
    needle: String,
    budget: Budget,
}

impl Matcher {
    fn new(needle: &str) -> Matcher {
        Matcher {
            needle: fold_case(needle),
            budget: Budget(MAX_SEARCH_BYTES),
        }
    }

    fn text(&mut self, text: &str) -> bool {
        let n = self.budget.take(text.len());
        let mut cut = n;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        fold_case(text.get(..cut).unwrap_or_default()).contains(&self.needle)
    }

    /// Every field of a header block, decoded, as `name: value`.
    fn header(&mut self, raw: &[u8], header: Span) -> bool {
        for field in fields(raw, header.start..header.end) {
            if self.budget.0 == 0 {
                return false;
            }
            let value = decode_header_value(&unfold(field.value, MAX_SEARCH_FIELD));
            let line = format!("{}: {value}", String::from_utf8_lossy(field.name));
            if self.text(&line) {
                return true;
            }
        }
        false
    }

    /// A message's body: its text parts, nested messages' headers and bodies, and (for TEXT)
    /// the MIME headers of parts.
    fn message_body(&mut self, raw: &[u8], message: &MessageNode, mime_headers: bool) -> bool {
        self.part(raw, &message.root, mime_headers, true, 0)
    }

    fn part(&mut self, raw: &[u8], part: &Part, mime: bool, is_root: bool, depth: usize) -> bool {
        if self.budget.0 == 0 || depth > 2 * super::MAX_DEPTH + 2 {
            return false;
        }
        // The root's header is the message header, searched by the caller.
        if mime && !is_root && self.header(raw, part.header) {
            return true;
        }
        match &part.kind {
            PartKind::Multipart(children) => children
                .iter()
                .any(|c| self.part(raw, c, mime, false, depth + 1)),
            PartKind::Message(inner) => {
                self.header(raw, inner.header) || self.part(raw, &inner.root, mime, true, depth + 1)
            }
            PartKind::Leaf if part.content.is_text() => self.leaf_text(raw, part),
            PartKind::Leaf | PartKind::Opaque => false,
        }
    }

    fn leaf_text(&mut self, raw: &[u8], part: &Part) -> bool {
        let body = part.body.slice(raw);
        let body = body
            .get(..body.len().min(self.budget.0))
            .unwrap_or_default();
        let mut decoded = Vec::new();
        let bytes: &[u8] = match cte(part) {
            Ok(Cte::Identity) | Err(_) => body,
            Ok(other) => {
                decode_into(body, other, &mut decoded);
                &decoded
            }
        };
        let charset = part.content.param("charset").unwrap_or("us-ascii");
        let text =
            to_utf8(bytes, charset).unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned());
        self.text(&text)
    }
}

impl MessageStructure {
    /// The values of every top-level header field called `name` (case-insensitive), unfolded,
    /// with RFC 2047 encoded words decoded to UTF-8: for SEARCH HEADER, SUBJECT, FROM, TO, CC,
    /// BCC (RFC 9051 §6.4.4), which the service matches with [`fold_case`].
    pub fn header_values(&self, raw: &[u8], name: &str) -> Vec<String> {
        let header = self.message.header;
        fields(raw, header.start..header.end)
            .filter(|f| name_is(f.name, name))
            .map(|f| decode_header_value(&unfold(f.value, MAX_SEARCH_FIELD)))
            .collect()
    }

    /// SEARCH TEXT (RFC 9051 §6.4.4): `needle` in the header (MIME headers included) or the
    /// body, case-insensitively, over decoded text.
    pub fn text_contains(&self, raw: &[u8], needle: &str) -> bool {
        let mut m = Matcher::new(needle);
        m.header(raw, self.message.header) || m.message_body(raw, &self.message, true)
    }

    /// SEARCH BODY (RFC 9051 §6.4.4): `needle` in the body, case-insensitively, over decoded
    /// text parts (encapsulated messages' headers count as body).
    pub fn body_contains(&self, raw: &[u8], needle: &str) -> bool {
        Matcher::new(needle).message_body(raw, &self.message, false)
    }

    /// The Date header as seconds since the Unix epoch (UTC), if it parses (RFC 5322 §3.3).
    pub fn sent_date(&self) -> Option<i64> {
        self.parsed_date().map(|d| d.to_timestamp())
    }

    /// The Date header's calendar day as written, "disregarding time and timezone" (RFC 9051
    /// §6.4.4 SENTBEFORE/SENTON/SENTSINCE), as days since 1970-01-01.
    pub fn sent_day(&self) -> Option<i64> {
        self.parsed_date()
            .map(|d| days_from_civil(i64::from(d.year), d.month.into(), d.day.into()))
    }

    fn parsed_date(&self) -> Option<mail_parser::DateTime> {
        let date = self.message.envelope.date.as_deref()?;
        // Dates are short; a longer value is junk (SECURITY-TESTS MD-10: 10 000-digit year).
        let mut buf = date.as_bytes().get(..date.len().min(256))?.to_vec();
        buf.push(b'\n');
        match MessageStream::new(&buf).parse_date() {
            HeaderValue::DateTime(d) if d.is_valid() => Some(d),
            _ => None,
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding() {
        assert_eq!(fold_case("HeLLo"), "hello");
        assert_eq!(fold_case("ΣΑΣ"), fold_case("σας"));
        assert_eq!(fold_case("ſ"), "s");
        assert_eq!(fold_case("Straße"), "straße");
        assert_eq!(fold_case("K"), "k"); // KELVIN SIGN
        assert_eq!(fold_case("İ"), "İ");
    }

    #[test]
    fn civil() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }
}
