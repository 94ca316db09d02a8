use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// A DNS domain name in lower case, checked against RFC 1035 §2.3.1 / RFC 5321 §4.1.2.
///
/// ```text
/// Domain     = sub-domain *("." sub-domain)          ; RFC 5321 §4.1.2
/// sub-domain = Let-dig [Ldh-str]
/// Let-dig    = ALPHA / DIGIT
/// Ldh-str    = *( ALPHA / DIGIT / "-" ) Let-dig
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("the domain is empty")]
    Empty,
    #[error("the domain is longer than 253 characters")]
    TooLong,
    #[error("the domain has an empty label (two dots, or a leading or trailing dot)")]
    EmptyLabel,
    #[error("the domain label {0:?} is longer than 63 characters")]
    LabelTooLong(String),
    #[error(
        "the domain label {0:?} may hold only letters, digits and inner hyphens \
         (internationalised names go in A-label form, xn--...)"
    )]
    InvalidLabel(String),
}

impl Domain {
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        // A single trailing dot is the DNS root: accept "example.com." as "example.com".
        let trimmed = input.strip_suffix('.').unwrap_or(input);
        if trimmed.is_empty() {
            return Err(DomainError::Empty);
        }
        // RFC 1035 §2.3.4: 255 octets on the wire, 253 in presentation form.
        if trimmed.len() > 253 {
            return Err(DomainError::TooLong);
        }
        let lower = trimmed.to_ascii_lowercase();
        for label in lower.split('.') {
            if label.is_empty() {
                return Err(DomainError::EmptyLabel);
            }
            // RFC 1035 §2.3.4: labels are 63 octets or less.
            if label.len() > 63 {
                return Err(DomainError::LabelTooLong(label.to_string()));
            }
            let valid_chars = label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid_chars || label.starts_with('-') || label.ends_with('-') {
                return Err(DomainError::InvalidLabel(label.to_string()));
            }
        }
        Ok(Domain(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Domain {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Domain::parse(s)
    }
}

impl<'de> Deserialize<'de> for Domain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Domain::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A mailbox address `local@domain` as used for accounts and aliases.
///
/// The local part is a dot-atom (RFC 5322 §3.2.3), extended to UTF-8 by RFC 6531 §3.3;
/// quoted local parts are not accepted for accounts. Accounts are case-insensitive, so the
/// address is kept in lower case.
///
/// ```text
/// Mailbox    = Local-part "@" Domain             ; RFC 5321 §4.1.2
/// Local-part = Dot-string
/// Dot-string = Atom *("."  Atom)
/// Atom       = 1*atext                            ; atext: RFC 5322 §3.2.3, + UTF8-non-ascii (RFC 6531)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local: String,
    domain: Domain,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("{0:?} is not an email address (expected local@domain)")]
    MissingAt(String),
    #[error("the local part of {0:?} is empty")]
    EmptyLocal(String),
    #[error("the local part of {0:?} is longer than 64 octets")]
    LocalTooLong(String),
    #[error(
        "the local part of {0:?} may not contain spaces, control characters, quotes or \
         any of ()<>[]:;@\\, and may not start, end or repeat a dot"
    )]
    InvalidLocal(String),
    #[error("the domain of {address:?} is invalid: {source}")]
    InvalidDomain {
        address: String,
        #[source]
        source: DomainError,
    },
}

fn is_atext(c: char) -> bool {
    // RFC 5322 §3.2.3 atext, plus any non-ASCII character (RFC 6531 §3.3 UTF8-non-ascii).
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_control())
}

impl Address {
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let (local, domain) = input
            .rsplit_once('@')
            .ok_or_else(|| AddressError::MissingAt(input.to_string()))?;
        if local.is_empty() {
            return Err(AddressError::EmptyLocal(input.to_string()));
        }
        // RFC 5321 §4.5.3.1.1: the maximum total length of a local part is 64 octets.
        if local.len() > 64 {
            return Err(AddressError::LocalTooLong(input.to_string()));
        }
        let atoms_ok = local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext));
        if !atoms_ok {
            return Err(AddressError::InvalidLocal(input.to_string()));
        }
        let domain = Domain::parse(domain).map_err(|source| AddressError::InvalidDomain {
            address: input.to_string(),
            source,
        })?;
        Ok(Address {
            local: local.to_lowercase(),
            domain,
        })
    }

    pub fn local_part(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The address without a `+tag` sub-address, if it has one (`alice+news` -> `alice`).
    pub fn without_subaddress(&self) -> Option<Address> {
        let (base, _tag) = self.local.split_once('+')?;
        if base.is_empty() {
            return None;
        }
        Some(Address {
            local: base.to_string(),
            domain: self.domain.clone(),
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

/// The left side of an alias: one address, or `@domain` for a catch-all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AliasSource {
    Address(Address),
    CatchAll(Domain),
}

impl AliasSource {
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        match input.strip_prefix('@') {
            Some(domain) => Domain::parse(domain)
                .map(AliasSource::CatchAll)
                .map_err(|source| AddressError::InvalidDomain {
                    address: input.to_string(),
                    source,
                }),
            None => Address::parse(input).map(AliasSource::Address),
        }
    }

    pub fn domain(&self) -> &Domain {
        match self {
            AliasSource::Address(address) => address.domain(),
            AliasSource::CatchAll(domain) => domain,
        }
    }
}

impl fmt::Display for AliasSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AliasSource::Address(address) => address.fmt(f),
            AliasSource::CatchAll(domain) => write!(f, "@{domain}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_lowercased_and_checked() {
        assert_eq!(
            Domain::parse("Mail.Example.COM.").unwrap().as_str(),
            "mail.example.com"
        );
        assert_eq!(Domain::parse("localhost").unwrap().as_str(), "localhost");
        assert!(matches!(Domain::parse(""), Err(DomainError::Empty)));
        assert!(matches!(
            Domain::parse("a..b"),
            Err(DomainError::EmptyLabel)
        ));
        assert!(matches!(
            Domain::parse("-a.b"),
            Err(DomainError::InvalidLabel(_))
        ));
        assert!(matches!(
            Domain::parse("a_b.c"),
            Err(DomainError::InvalidLabel(_))
        ));
        assert!(matches!(
            Domain::parse(&"a".repeat(64)),
            Err(DomainError::LabelTooLong(_))
        ));
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
        ]
        .join(".");
        assert!(matches!(Domain::parse(&long), Err(DomainError::TooLong)));
    }

    #[test]
    fn addresses_parse_and_normalise() {
        let a = Address::parse("Alice.Smith+News@Example.org").unwrap();
        assert_eq!(a.to_string(), "alice.smith+news@example.org");
        assert_eq!(
            a.without_subaddress().unwrap().to_string(),
            "alice.smith@example.org"
        );
        assert_eq!(
            Address::parse("δοκιμή@example.org").unwrap().local_part(),
            "δοκιμή"
        );
        for bad in [
            "",
            "alice",
            "@example.org",
            "a..b@x.org",
            ".a@x.org",
            "a b@x.org",
            "a@",
            "a@b_c",
            "a\u{0}@x.org",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Address::parse(&format!("{}@x.org", "a".repeat(65))).is_err());
    }

    #[test]
    fn alias_sources() {
        assert_eq!(
            AliasSource::parse("@Example.org").unwrap(),
            AliasSource::CatchAll(Domain::parse("example.org").unwrap())
        );
        assert!(matches!(
            AliasSource::parse("info@example.org").unwrap(),
            AliasSource::Address(_)
        ));
        assert!(AliasSource::parse("@").is_err());
    }

    proptest::proptest! {
        #[test]
        fn address_parse_never_panics_and_round_trips(input in "\\PC{0,80}") {
            if let Ok(address) = Address::parse(&input) {
                let again = Address::parse(&address.to_string()).unwrap();
                proptest::prop_assert_eq!(again, address);
            }
        }
    }
}
