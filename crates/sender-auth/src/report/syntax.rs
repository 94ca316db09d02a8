//! The strict syntax every value must have before it goes into a header field of a report
//! message. Anything outside it is refused rather than repaired: none of these checks lets
//! through a CR, LF, space, quote, comma, `<` or `>`, so no value can end a field, start a
//! new one or add an address.

/// RFC 1035 §2.3.1 preferred name syntax ("LDH"): labels of letters, digits and inner
/// hyphens, 1..=63 characters each, joined by dots, 253 characters at most, no final dot.
///
/// ```text
/// domain = label *("." label)
/// label  = let-dig [*61(let-dig / "-") let-dig]
/// ```
pub(crate) fn is_domain(text: &str) -> bool {
    // RFC 1035 §2.3.4: 255 octets on the wire is 253 characters written out.
    (1..=253).contains(&text.len()) && text.split('.').all(is_label)
}

fn is_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// RFC 5322 §3.2.3 `atext`, the characters of an unquoted local-part.
fn is_atext(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&byte)
}

/// RFC 5322 §3.2.3 `dot-atom-text`: atext runs joined by single dots.
fn is_dot_atom_text(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext))
}

/// An address we are willing to write in From or To: `local-part@domain` with a dot-atom
/// local-part (RFC 5322 §3.4.1; quoted local-parts are refused) of at most 64 characters
/// (RFC 5321 §4.5.3.1.1) and an LDH domain.
pub(crate) fn is_address(text: &str) -> bool {
    match text.rsplit_once('@') {
        Some((local, domain)) => local.len() <= 64 && is_dot_atom_text(local) && is_domain(domain),
        None => false,
    }
}

/// A report id that can appear as the left side of a msg-id (RFC 5322 §3.6.4
/// `id-left = dot-atom-text`), in the Subject and in the XML: letters, digits, `-`, `_`
/// and inner dots, 64 characters at most.
pub(crate) fn is_report_id(text: &str) -> bool {
    text.len() <= 64
        && is_dot_atom_text(text)
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

/// A value the caller formatted for a header field (the Date): printable ASCII and spaces
/// only, so it stays on its one line.
pub(crate) fn is_single_line_text(text: &str) -> bool {
    !text.trim().is_empty()
        && text
            .bytes()
            .all(|byte| byte == b' ' || byte.is_ascii_graphic())
}
