//! Matching a TLS server name against the DNS names of a certificate.

/// Lower-cases `name` and drops one trailing dot, the form every comparison uses.
pub(crate) fn normalise(name: &str) -> String {
    // RFC 6125 §6.4.1: DNS names compare case-insensitively (ASCII only after A-label conversion).
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// How a certificate name covers a host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Coverage {
    /// The names are equal.
    Exact,
    /// A `*.` wildcard in the certificate covers the first label of the host.
    Wildcard,
}

/// Whether the certificate name `pattern` covers `host`; both already [`normalise`]d.
pub(crate) fn covers(pattern: &str, host: &str) -> Option<Coverage> {
    if pattern.is_empty() || host.is_empty() {
        return None;
    }
    if pattern == host {
        return Some(Coverage::Exact);
    }
    // RFC 6125 §6.4.3: a wildcard is only the complete left-most label and matches exactly one
    // label; "*.example.com" covers "a.example.com", not "example.com" nor "a.b.example.com".
    let suffix = pattern.strip_prefix("*.")?;
    if !suffix.contains('.') || suffix.contains('*') {
        return None;
    }
    let (label, rest) = host.split_once('.')?;
    (!label.is_empty() && rest == suffix).then_some(Coverage::Wildcard)
}

/// The best coverage of `host` by any of `names`.
pub(crate) fn best_coverage<'a>(
    names: impl IntoIterator<Item = &'a String>,
    host: &str,
) -> Option<Coverage> {
    names.into_iter().filter_map(|n| covers(n, host)).min()
}

#[cfg(test)]
mod tests {
    use super::{Coverage, covers, normalise};

    #[test]
    fn exact_and_case_insensitive() {
        assert_eq!(normalise("Mail.Example.COM."), "mail.example.com");
        assert_eq!(
            covers("mail.example.com", &normalise("MAIL.example.com")),
            Some(Coverage::Exact)
        );
        assert_eq!(covers("mail.example.com", "mail.example.org"), None);
    }

    #[test]
    fn wildcard_matches_one_label() {
        assert_eq!(
            covers("*.example.com", "imap.example.com"),
            Some(Coverage::Wildcard)
        );
        assert_eq!(covers("*.example.com", "example.com"), None);
        assert_eq!(covers("*.example.com", "a.b.example.com"), None);
        assert_eq!(covers("*.example.com", ".example.com"), None);
        assert_eq!(covers("*.com", "example.com"), None);
        assert_eq!(covers("f*.example.com", "foo.example.com"), None);
        assert_eq!(covers("", ""), None);
    }
}
