//! The Authentication-Results header field (RFC 8601): the one we add, and the forged ones we
//! remove before adding it (RFC 8601 §5).

use crate::Assessment;
use crate::fields;
use crate::policy::Disposition;
use crate::spf::SpfIdentity;

/// Comments carry reasons from the network (exp= text, error messages): kept short.
const MAX_COMMENT: usize = 120;

/// `Authentication-Results: <authserv-id>; <method results>` with one result per line,
/// ending in CRLF (RFC 8601 §2.2). The DMARC comment's `dis=` is the policy DMARC asks for
/// this message (after `pct`); see [`header_field_applied`] for what was done.
pub fn header_field(authserv_id: &str, assessment: &Assessment) -> String {
    build(
        authserv_id,
        assessment,
        assessment.dmarc.disposition.as_str(),
    )
}

/// As [`header_field`], with `dis=` saying what was done with the message: `none` when it
/// was delivered, `quarantine` when filed as junk (a local policy or a trusted forwarder may
/// have overridden the sender's policy).
pub fn header_field_applied(
    authserv_id: &str,
    assessment: &Assessment,
    applied: &Disposition,
) -> String {
    let done = match applied {
        Disposition::Deliver | Disposition::Defer { .. } => "none",
        Disposition::Junk { .. } => "quarantine",
        Disposition::Reject { .. } => "reject",
    };
    build(authserv_id, assessment, done)
}

fn build(authserv_id: &str, assessment: &Assessment, disposition: &str) -> String {
    let mut results: Vec<String> = Vec::new();

    let iprev = &assessment.iprev;
    let mut line = format!(
        "iprev={} policy.iprev={}",
        iprev.result.as_str(),
        value(&iprev.address.to_string())
    );
    if let Some(name) = &iprev.name {
        line.push_str(&format!(" ({})", comment(name)));
    }
    results.push(line);

    let spf = &assessment.spf;
    let property = match spf.identity {
        // RFC 8601 §2.7.2: smtp.mailfrom for the MAIL FROM identity, smtp.helo for HELO.
        SpfIdentity::MailFrom => "smtp.mailfrom",
        SpfIdentity::Helo => "smtp.helo",
    };
    let mut line = format!("spf={}", spf.result.as_str());
    if !spf.reason.is_empty() {
        line.push_str(&format!(" ({})", comment(&spf.reason)));
    }
    line.push_str(&format!(" {property}={}", value(&spf.checked)));
    results.push(line);

    if assessment.dkim.is_empty() {
        results.push("dkim=none".to_string());
    }
    for dkim in &assessment.dkim {
        let mut line = format!("dkim={}", dkim.result.as_str());
        if !dkim.reason.is_empty() {
            line.push_str(&format!(" ({})", comment(&dkim.reason)));
        }
        // RFC 8601 §2.7.1 header.d and header.s; RFC 6008 header.b; header.a (RFC 8601 §2.7.1).
        if !dkim.domain.is_empty() {
            line.push_str(&format!(" header.d={}", value(&dkim.domain)));
        }
        if !dkim.selector.is_empty() {
            line.push_str(&format!(" header.s={}", value(&dkim.selector)));
        }
        if !dkim.algorithm.is_empty() {
            line.push_str(&format!(" header.a={}", dkim.algorithm));
        }
        if !dkim.signature_prefix.is_empty() {
            line.push_str(&format!(" header.b={}", value(&dkim.signature_prefix)));
        }
        results.push(line);
    }

    let dmarc = &assessment.dmarc;
    let mut line = format!("dmarc={}", dmarc.result.as_str());
    let mut notes = Vec::new();
    if let Some(record) = &dmarc.record {
        notes.push(format!("p={}", record.policy.as_str()));
        if let Some(subdomain) = record.subdomain_policy {
            notes.push(format!("sp={}", subdomain.as_str()));
        }
        notes.push(format!("dis={disposition}"));
    }
    if !dmarc.reason.is_empty() {
        notes.push(dmarc.reason.clone());
    }
    if !notes.is_empty() {
        line.push_str(&format!(" ({})", comment(&notes.join(" "))));
    }
    if !dmarc.from_domain.is_empty() {
        // RFC 7489 §11.2: the dmarc method reports header.from.
        line.push_str(&format!(" header.from={}", value(&dmarc.from_domain)));
    }
    results.push(line);

    let arc = &assessment.arc;
    let mut line = format!("arc={}", arc.result.as_str());
    if arc.instances > 0 {
        let mut note = format!("i={}", arc.instances);
        if let Some(sealer) = arc.newest_sealer() {
            note.push_str(&format!(" d={sealer}"));
        }
        if !arc.reason.is_empty() {
            note.push_str(&format!(" {}", arc.reason));
        }
        line.push_str(&format!(" ({})", comment(&note)));
        // RFC 8617 §10.2: smtp.remote-ip names the client the chain was judged for.
        line.push_str(&format!(
            " smtp.remote-ip={}",
            value(&iprev.address.to_string())
        ));
    }
    results.push(line);

    let mut field = format!("Authentication-Results: {}", value(authserv_id));
    for result in results {
        field.push_str(";\r\n\t");
        field.push_str(&result);
    }
    field.push_str("\r\n");
    field
}

/// A property value (RFC 8601 §2.2 `pvalue = [CFWS] ( value / [ [ local-part ] "@" ]
/// domain-name ) [CFWS]`, `value` a MIME token or quoted-string, RFC 2045 §5.1): as it is
/// when it is a token, or an address/domain of plain atoms; otherwise a quoted-string.
/// Control characters never pass.
fn value(text: &str) -> String {
    if is_token(text) || is_address(text) {
        return text.to_string();
    }
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// RFC 2045 §5.1 token: printable ASCII without space and tspecials `()<>@,;:\"/[]?=`.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c))
}

/// `[local-part] "@" domain-name` with a dot-atom local part (RFC 5322 §3.2.3 atext) and a
/// letters-digits-hyphens domain (RFC 8601 §2.2).
fn is_address(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return is_domain(text);
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let local_ok = local.is_empty()
        || local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atext));
    local_ok && is_domain(domain)
}

fn is_domain(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// The text of a comment (RFC 5322 §3.2.2): no control characters, parentheses and
/// backslashes escaped, bounded in length.
fn comment(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().filter(|c| !c.is_control()).take(MAX_COMMENT) {
        if matches!(c, '(' | ')' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// RFC 8601 §5: "an MTA ... MUST remove any instance of this header field that claims ...
/// to have been added within its trust boundary": the fields whose authserv-id is ours.
/// Returns the message without them, or `None` when there is none (nothing to copy).
pub fn without_forged(message: &[u8], authserv_id: &str) -> Option<Vec<u8>> {
    let forged: Vec<_> = fields::header_fields(message)
        .into_iter()
        .filter(|field| field.is("Authentication-Results") && claims(field.value, authserv_id))
        .map(|field| field.range)
        .collect();
    if forged.is_empty() {
        return None;
    }
    Some(fields::without(message, &forged))
}

/// Whether an Authentication-Results value names `authserv_id` (RFC 8601 §2.2: the first
/// token, after any comments and white space), case-insensitively and with or without a
/// final dot.
fn claims(value: &[u8], authserv_id: &str) -> bool {
    let text = String::from_utf8_lossy(value);
    let mut depth = 0usize;
    let mut escaped = false;
    let mut start = None;
    let mut end = text.len();
    for (index, c) in text.char_indices() {
        if depth > 0 {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            continue;
        }
        match (start, c) {
            (None, '(') => depth = 1,
            (None, c) if c.is_whitespace() => {}
            (None, _) => start = Some(index),
            (Some(_), c) if c.is_whitespace() || c == ';' || c == '(' => {
                end = index;
                break;
            }
            (Some(_), _) => {}
        }
    }
    let Some(start) = start else {
        return false;
    };
    let id = text[start..end].trim_matches('"').trim_end_matches('.');
    id.eq_ignore_ascii_case(authserv_id.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_fields_naming_us_are_removed_and_others_kept() {
        let message =
            b"Authentication-Results: MX.Example.org.; dkim=pass header.d=example.org\r\n\
Authentication-Results: (comment) mx.example.org;\r\n spf=pass\r\n\
Authentication-Results: other.example; spf=fail\r\n\
Subject: hi\r\n\r\nAuthentication-Results: mx.example.org; in the body\r\n";
        let cleaned = without_forged(message, "mx.example.org").unwrap();
        assert_eq!(
            cleaned,
            b"Authentication-Results: other.example; spf=fail\r\nSubject: hi\r\n\r\n\
Authentication-Results: mx.example.org; in the body\r\n"
        );
        assert!(without_forged(b"Subject: x\r\n\r\n", "mx.example.org").is_none());
    }

    #[test]
    fn the_authserv_id_is_the_first_token() {
        assert!(claims(b" mx.example.org; none", "mx.example.org"));
        assert!(claims(b" mx.example.org 1; none", "mx.example.org"));
        assert!(claims(b"(x (nested) y) mx.example.org;", "mx.example.org"));
        assert!(!claims(b" mx.example.org.evil; none", "mx.example.org"));
        assert!(!claims(b" evil.mx.example.org; none", "mx.example.org"));
        assert!(!claims(b" ;", "mx.example.org"));
        assert!(!claims(b"", "mx.example.org"));
    }

    #[test]
    fn values_and_comments_cannot_break_the_field() {
        assert_eq!(value("user@example.com"), "user@example.com");
        assert_eq!(value("a b\r\nX-Evil: 1"), "\"a bX-Evil: 1\"");
        assert_eq!(value("\"q\"@example.com"), "\"\\\"q\\\"@example.com\"");
        assert_eq!(value(""), "\"\"");
        assert_eq!(comment("a (b)\r\nc\\"), "a \\(b\\)c\\\\");
        assert_eq!(comment(&"x".repeat(500)).len(), MAX_COMMENT);
    }
}
