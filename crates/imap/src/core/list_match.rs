//! LIST/LSUB pattern matching (RFC 9051 §6.3.9): `*` matches anything, `%` anything but
//! the hierarchy separator `/`.
//!
//! The matcher simulates the pattern as an NFA, one name octet at a time, so a match
//! costs O(len(name) × len(pattern)) whatever the pattern: no backtracking, no regex
//! built from client input (SECURITY-TESTS IM-12, CWE-1333). Matching octet by octet is
//! exact for UTF-8 names, since the pattern's literal characters are whole UTF-8
//! sequences and the separator is ASCII.

use sealpost_types::MailboxName;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `*`
    Any,
    /// `%`
    AnyButSeparator,
}

/// A LIST pattern with its reference applied, ready to match mailbox names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPattern {
    tokens: Vec<Token>,
}

const SEPARATOR: u8 = MailboxName::SEPARATOR as u8;

impl ListPattern {
    /// The canonical pattern of `reference` and `pattern` (both UTF-8, already decoded
    /// from modified UTF-7 where needed): RFC 9051 §6.3.9 interprets them "into a
    /// canonical form that represents an unambiguous left-to-right hierarchy", which with
    /// `/` names is their concatenation. A first component that equals `INBOX`
    /// case-insensitively (no wildcards) matches the inbox (RFC 9051 §5.1).
    pub fn new(reference: &str, pattern: &str) -> Self {
        let mut canonical = format!("{reference}{pattern}");
        let first = canonical.split('/').next().unwrap_or_default();
        if first.eq_ignore_ascii_case("INBOX") {
            canonical.replace_range(..first.len(), "INBOX");
        }
        let mut tokens: Vec<Token> = Vec::with_capacity(canonical.len());
        for byte in canonical.bytes() {
            let token = match byte {
                b'*' => Token::Any,
                b'%' => Token::AnyButSeparator,
                other => Token::Byte(other),
            };
            // Runs of wildcards collapse to the widest one: `%*` = `*%` = `**` = `*`.
            match (tokens.last_mut(), token) {
                (Some(last @ (Token::Any | Token::AnyButSeparator)), Token::Any) => {
                    *last = Token::Any
                }
                (Some(Token::Any | Token::AnyButSeparator), Token::AnyButSeparator) => {}
                _ => tokens.push(token),
            }
        }
        ListPattern { tokens }
    }

    /// `LIST "" ""`: a request for the hierarchy delimiter (RFC 9051 §6.3.9).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn matches(&self, name: &str) -> bool {
        let states = self.tokens.len() + 1;
        let mut current = vec![false; states];
        let mut next = vec![false; states];
        if let Some(first) = current.first_mut() {
            *first = true;
        }
        self.close(&mut current);
        for byte in name.bytes() {
            next.iter_mut().for_each(|state| *state = false);
            for (index, token) in self.tokens.iter().enumerate() {
                if !current.get(index).copied().unwrap_or(false) {
                    continue;
                }
                let (stay, advance) = match *token {
                    Token::Any => (true, false),
                    Token::AnyButSeparator => (byte != SEPARATOR, false),
                    Token::Byte(expected) => (false, expected == byte),
                };
                if stay && let Some(state) = next.get_mut(index) {
                    *state = true;
                }
                if advance && let Some(state) = next.get_mut(index + 1) {
                    *state = true;
                }
            }
            self.close(&mut next);
            std::mem::swap(&mut current, &mut next);
            if !current.contains(&true) {
                return false;
            }
        }
        current.last().copied().unwrap_or(false)
    }

    /// Adds the states reachable by letting wildcards match nothing.
    fn close(&self, states: &mut [bool]) {
        for (index, token) in self.tokens.iter().enumerate() {
            if matches!(token, Token::Any | Token::AnyButSeparator)
                && states.get(index).copied().unwrap_or(false)
                && let Some(state) = states.get_mut(index + 1)
            {
                *state = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, name: &str) -> bool {
        ListPattern::new("", pattern).matches(name)
    }

    #[test]
    fn wildcards() {
        assert!(matches("*", "a/b/c"));
        assert!(matches("%", "a"));
        assert!(!matches("%", "a/b"));
        assert!(matches("a/%", "a/b"));
        assert!(!matches("a/%", "a/b/c"));
        assert!(matches("a/*", "a/b/c"));
        assert!(matches("a*c", "abc"));
        assert!(matches("a*c", "a/b/c"));
        assert!(!matches("a%c", "a/c"));
        assert!(matches("a%", "a"));
        assert!(!matches("b*", "a"));
        assert!(matches("日本*", "日本語"));
        assert!(matches("%/%", "台北/日本語"));
        assert!(!matches("", "a"));
        assert!(ListPattern::new("", "").is_empty());
    }

    #[test]
    fn reference_and_inbox() {
        assert!(ListPattern::new("Archive/", "%").matches("Archive/2024"));
        assert!(!ListPattern::new("Archive/", "%").matches("Archive"));
        assert!(ListPattern::new("", "inbox").matches("INBOX"));
        assert!(ListPattern::new("", "iNbOx/%").matches("INBOX/x"));
        assert!(!ListPattern::new("", "inbox*").matches("INBOX"));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        // SECURITY-TESTS IM-12: 1 000 names × a 42-token pattern.
        let name = "a".repeat(40);
        let stars = format!("{}b", "*a".repeat(20));
        let mixed = "%*".repeat(20) + "%";
        let start = std::time::Instant::now();
        for _ in 0..1000 {
            assert!(!matches(&stars, &name));
            assert!(matches(&mixed, &name));
        }
        // Generous bound: a backtracking matcher needs minutes here.
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    /// The obvious exponential matcher, as the reference for the property test.
    fn naive(pattern: &[u8], name: &[u8]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some((b'*', rest)) => {
                (0..=name.len()).any(|i| naive(rest, name.get(i..).unwrap_or_default()))
            }
            Some((b'%', rest)) => {
                let limit = name.iter().position(|&b| b == b'/').unwrap_or(name.len());
                (0..=limit).any(|i| naive(rest, name.get(i..).unwrap_or_default()))
            }
            Some((c, rest)) => {
                name.first() == Some(c) && naive(rest, name.get(1..).unwrap_or_default())
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_naive_matcher(pattern in "[ab/%*]{0,8}", name in "[ab/]{0,10}") {
            proptest::prop_assert_eq!(matches(&pattern, &name), naive(pattern.as_bytes(), name.as_bytes()));
        }
    }
}
