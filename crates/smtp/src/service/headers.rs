//! Just enough of RFC 5322 header parsing for the submission checks: find fields, unfold
//! them, and pull the addresses out of From. MIME parsing proper belongs to mail-parser.

use rand::Rng;

/// The header section of a message: fields with lower-case names and unfolded values.
#[derive(Debug, Default)]
pub(super) struct HeaderBlock {
    fields: Vec<(String, String)>,
}

/// Header sections longer than this are not searched further (the message size limit
/// still applies to the whole message).
const MAX_HEADER_BYTES: usize = 1024 * 1024;

impl HeaderBlock {
    /// RFC 5322 §2.2: `name ":" value CRLF`, continuation lines start with WSP (§2.2.3);
    /// the header section ends at the first empty line (§2.1).
    pub fn parse(message: &[u8]) -> Self {
        let limited = message.get(..MAX_HEADER_BYTES).unwrap_or(message);
        let mut fields: Vec<(String, String)> = Vec::new();
        for raw_line in limited.split(|&byte| byte == b'\n') {
            let line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
            if line.is_empty() {
                break;
            }
            let text = String::from_utf8_lossy(line);
            if text.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(text.trim());
                }
                continue;
            }
            match text.split_once(':') {
                Some((name, value)) if !name.is_empty() && !name.contains([' ', '\t']) => {
                    fields.push((name.to_ascii_lowercase(), value.trim().to_string()));
                }
                // Not a header field: the header section is malformed from here on.
                _ => break,
            }
        }
        Self { fields }
    }

    pub fn count(&self, name: &str) -> usize {
        self.fields
            .iter()
            .filter(|(field, _)| field == name)
            .count()
    }

    pub fn has(&self, name: &str) -> bool {
        self.count(name) > 0
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// The addr-specs of a mailbox-list (RFC 5322 §3.4), ignoring display names and comments.
/// Anything odd — a group, an unterminated quote, comment or angle bracket — yields an entry
/// that does not parse as an address, so the caller refuses rather than guesses.
pub(super) fn addresses_in(value: &str) -> Vec<String> {
    /// Marks an entry that must not pass as an address.
    const INVALID: &str = "\u{0}";
    #[derive(PartialEq)]
    enum Angle {
        /// No `<` seen in this mailbox yet: the bare text is the address.
        None,
        /// Inside `<...>`.
        Open,
        /// After `>`: the rest of the mailbox is ignored.
        Closed,
    }
    let mut addresses = Vec::new();
    let mut bare = String::new();
    let mut bracketed = String::new();
    let mut angle = Angle::None;
    let mut in_quotes = false;
    let mut comment_depth = 0usize;
    let mut escaped = false;
    let mut invalid = false;
    let mut finish =
        |bare: &mut String, bracketed: &mut String, angle: &mut Angle, invalid: &mut bool| {
            let entry = if *invalid || *angle == Angle::Open {
                INVALID.to_string()
            } else if *angle == Angle::Closed {
                std::mem::take(bracketed)
            } else {
                bare.trim().to_string()
            };
            // RFC 5322 §4.4: an obsolete source route before the address is dropped.
            let entry = match entry.split_once(':') {
                Some((route, address)) if route.starts_with('@') => address.to_string(),
                _ => entry,
            };
            if !entry.is_empty() {
                addresses.push(entry);
            }
            bare.clear();
            bracketed.clear();
            *angle = Angle::None;
            *invalid = false;
        };
    for c in value.chars() {
        let target = match angle {
            Angle::Open => Some(&mut bracketed),
            Angle::None => Some(&mut bare),
            Angle::Closed => None,
        };
        if escaped {
            escaped = false;
            if let (Some(target), 0) = (target, comment_depth) {
                target.push(c);
            }
            continue;
        }
        if comment_depth > 0 {
            match c {
                '\\' => escaped = true,
                '(' => comment_depth += 1,
                ')' => comment_depth -= 1,
                _ => {}
            }
            continue;
        }
        if in_quotes {
            match c {
                '\\' => escaped = true,
                '"' => in_quotes = false,
                _ => {}
            }
            if let Some(target) = target {
                target.push(c);
            }
            continue;
        }
        match (c, &angle) {
            ('"', _) => {
                in_quotes = true;
                if let Some(target) = target {
                    target.push(c);
                }
            }
            ('(', _) => comment_depth += 1,
            ('<', Angle::None) => angle = Angle::Open,
            ('<', _) => invalid = true,
            ('>', Angle::Open) => angle = Angle::Closed,
            (',', Angle::None | Angle::Closed) => {
                finish(&mut bare, &mut bracketed, &mut angle, &mut invalid)
            }
            // A group (`name: a@b;`) is not supported in From: refuse it.
            (':' | ';', Angle::None) => invalid = true,
            (_, _) => {
                if let Some(target) = target {
                    target.push(c);
                }
            }
        }
    }
    if in_quotes || comment_depth > 0 {
        invalid = true;
    }
    finish(&mut bare, &mut bracketed, &mut angle, &mut invalid);
    addresses
}

/// A random identifier from letters and digits (queue ids, Message-ID left parts).
pub(super) fn random_id(length: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_unfold_and_stop_at_the_body() {
        let message = b"From: Alice\r\n <alice@example.org>\r\nSubject: hi\r\nsubject: again\r\n\r\nFrom: body@example.org\r\n";
        let header = HeaderBlock::parse(message);
        assert_eq!(header.all("from"), vec!["Alice <alice@example.org>"]);
        assert_eq!(header.count("subject"), 2);
        assert!(!header.has("date"));
    }

    #[test]
    fn from_addresses() {
        let cases: &[(&str, &[&str])] = &[
            ("alice@example.org", &["alice@example.org"]),
            ("Alice <alice@example.org>", &["alice@example.org"]),
            (
                "\"Alice, Smith\" <alice@example.org>",
                &["alice@example.org"],
            ),
            (
                "\"bob@evil.test\" <alice@example.org>",
                &["alice@example.org"],
            ),
            (
                "Alice <alice@example.org>, bob@evil.test",
                &["alice@example.org", "bob@evil.test"],
            ),
            (
                "alice@example.org (Alice <bob@evil.test>)",
                &["alice@example.org"],
            ),
            ("<@route.test:alice@example.org>", &["alice@example.org"]),
            ("Alice <alice@example.org> trailing", &["alice@example.org"]),
        ];
        for (value, expected) in cases {
            assert_eq!(addresses_in(value), *expected, "{value}");
        }
    }

    #[test]
    fn odd_from_values_yield_no_valid_address() {
        for value in [
            "group: alice@example.org;",
            "\"unterminated <alice@example.org>",
            "Alice <alice@example.org",
            "(unterminated",
        ] {
            let addresses = addresses_in(value);
            assert!(
                addresses.is_empty()
                    || addresses
                        .iter()
                        .any(|a| sealpost_types::Address::parse(a).is_err()),
                "{value}: {addresses:?}"
            );
        }
    }
}
