use std::fmt;

/// A mailbox name in UTF-8 with `/` as the hierarchy separator.
///
/// Refused: empty names, names over 255 characters, leading, trailing or doubled `/`,
/// `.` or `..` components, C0/C1 control characters and U+2028/U+2029. `INBOX` is
/// case-insensitive (RFC 9051 §5.1) and always stored as `INBOX`, also as the first
/// component of a hierarchical name. A mailbox name never becomes a file path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxNameError {
    #[error("the mailbox name is empty")]
    Empty,
    #[error("the mailbox name is longer than 255 characters")]
    TooLong,
    #[error("the mailbox name has an empty, \".\" or \"..\" component")]
    BadComponent,
    #[error("the mailbox name contains a control character")]
    ControlCharacter,
}

impl MailboxName {
    pub const SEPARATOR: char = '/';
    pub const MAX_CHARS: usize = 255;

    pub fn parse(input: &str) -> Result<Self, MailboxNameError> {
        if input.is_empty() {
            return Err(MailboxNameError::Empty);
        }
        if input.chars().count() > Self::MAX_CHARS {
            return Err(MailboxNameError::TooLong);
        }
        if input
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
        {
            return Err(MailboxNameError::ControlCharacter);
        }
        let mut components = Vec::new();
        for component in input.split(Self::SEPARATOR) {
            if component.is_empty() || component == "." || component == ".." {
                return Err(MailboxNameError::BadComponent);
            }
            components.push(component);
        }
        let mut normalised = String::with_capacity(input.len());
        for (index, component) in components.iter().enumerate() {
            if index > 0 {
                normalised.push(Self::SEPARATOR);
            }
            // RFC 9051 §5.1: INBOX is case-insensitive; so is INBOX as a hierarchy root.
            if index == 0 && component.eq_ignore_ascii_case("INBOX") {
                normalised.push_str("INBOX");
            } else {
                normalised.push_str(component);
            }
        }
        Ok(MailboxName(normalised))
    }

    pub fn inbox() -> Self {
        MailboxName("INBOX".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }

    /// The name of the parent mailbox, if this one is nested.
    pub fn parent(&self) -> Option<MailboxName> {
        self.0
            .rsplit_once(Self::SEPARATOR)
            .map(|(parent, _)| MailboxName(parent.to_string()))
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_is_case_insensitive() {
        assert_eq!(MailboxName::parse("inbox").unwrap().as_str(), "INBOX");
        assert_eq!(
            MailboxName::parse("InBox/Sub").unwrap().as_str(),
            "INBOX/Sub"
        );
        assert_eq!(
            MailboxName::parse("Archive/inbox").unwrap().as_str(),
            "Archive/inbox"
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a/../b",
            "..",
            ".",
            "a\u{0}b",
            "a\rb",
            "a\u{2028}",
        ] {
            assert!(MailboxName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(MailboxName::parse(&"x".repeat(256)).is_err());
        assert!(MailboxName::parse(&"x".repeat(255)).is_ok());
        assert_eq!(
            MailboxName::parse("Ünïcødé/日本")
                .unwrap()
                .parent()
                .unwrap()
                .as_str(),
            "Ünïcødé"
        );
    }
}
