//! BODY and BODYSTRUCTURE (RFC 9051 §7.5.2 and §9, RFC 3501 §7.4.2 and §9).
//!
//! ```text
//! body            = "(" (body-type-1part / body-type-mpart) ")"
//! body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]
//! body-type-basic = media-basic SP body-fields
//! body-type-msg   = media-message SP body-fields SP envelope SP body SP body-fld-lines
//! body-type-text  = media-text SP body-fields SP body-fld-lines
//! body-fields     = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
//!                   body-fld-octets
//! body-fld-param  = "(" string SP string *(SP string SP string) ")" / nil
//! body-ext-1part  = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc ...]]]
//! body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
//! body-ext-mpart  = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc ...]]]
//! body-fld-dsp    = "(" string SP body-fld-param ")" / nil
//! body-fld-lang   = nstring / "(" string *(SP string) ")"
//! media-message   = DQUOTE "MESSAGE" DQUOTE SP DQUOTE ("RFC822" / "GLOBAL") DQUOTE
//!                                       ; RFC 3501: "RFC822" only
//! ```
//!
//! Types, subtypes, parameter names, encodings and disposition types are written in upper
//! case (as the RFC examples are); values as the message has them. BODY is BODYSTRUCTURE
//! without extension data.

use super::content::{ContentFields, Disposition};
use super::imap_string::ImapString;
use super::structure::{MessageStructure, Part, PartKind};
use super::{Dialect, MAX_DEPTH};

impl MessageStructure {
    /// BODYSTRUCTURE (`extensible`) or BODY (not) of the top-level message.
    pub fn bodystructure(&self, extensible: bool, dialect: Dialect) -> String {
        let mut out = String::with_capacity(256);
        write_body(&mut out, &self.message.root, extensible, dialect, 0);
        out
    }
}

/// How a part is rendered.
enum Form<'a> {
    Multipart(&'a [Part]),
    Message(&'a super::structure::MessageNode),
    Text,
    Basic,
    /// Opaque content: APPLICATION/OCTET-STREAM.
    Opaque,
}

fn form<'a>(part: &'a Part, dialect: Dialect, depth: usize) -> Form<'a> {
    // Structures built in memory (or decoded) may nest deeper than parse allows: stay bounded.
    let too_deep = depth >= 2 * MAX_DEPTH + 2;
    let c = &part.content;
    match &part.kind {
        PartKind::Multipart(children) if !children.is_empty() && !too_deep => {
            Form::Multipart(children)
        }
        PartKind::Message(inner) if !too_deep && c.is_message() => {
            // RFC 3501 §9 knows only MESSAGE/RFC822; MESSAGE/GLOBAL is a basic part there.
            if c.subtype.eq_ignore_ascii_case("global") && !dialect.rev2 {
                Form::Basic
            } else {
                Form::Message(inner)
            }
        }
        PartKind::Leaf if c.is_multipart() || c.is_message() => Form::Opaque,
        PartKind::Leaf if c.is_text() => Form::Text,
        PartKind::Leaf => Form::Basic,
        _ => Form::Opaque,
    }
}

fn write_body(out: &mut String, part: &Part, ext: bool, dialect: Dialect, depth: usize) {
    let utf8 = dialect.utf8;
    let c = &part.content;
    out.push('(');
    match form(part, dialect, depth) {
        Form::Multipart(children) => {
            for child in children {
                write_body(out, child, ext, dialect, depth + 1);
            }
            out.push(' ');
            write_upper(out, &c.subtype, utf8);
            if ext {
                // RFC 9051 §7.5.2: multipart extension data: parameters, disposition,
                // language, location.
                out.push(' ');
                write_params(out, &c.params, dialect);
                write_ext_tail(out, c, dialect);
            }
        }
        Form::Message(inner) => {
            out.push_str("\"MESSAGE\" ");
            write_upper(out, &c.subtype, utf8);
            out.push(' ');
            write_fields(out, part, false, dialect);
            out.push(' ');
            inner.envelope.render(out, dialect);
            out.push(' ');
            write_body(out, &inner.root, ext, dialect, depth + 1);
            out.push(' ');
            out.push_str(&part.lines.to_string());
            if ext {
                write_ext_1part(out, c, dialect);
            }
        }
        Form::Text => {
            write_upper(out, &c.media_type, utf8);
            out.push(' ');
            write_upper(out, &c.subtype, utf8);
            out.push(' ');
            write_fields(out, part, true, dialect);
            out.push(' ');
            out.push_str(&part.lines.to_string());
            if ext {
                write_ext_1part(out, c, dialect);
            }
        }
        Form::Basic => {
            write_upper(out, &c.media_type, utf8);
            out.push(' ');
            write_upper(out, &c.subtype, utf8);
            out.push(' ');
            write_fields(out, part, false, dialect);
            if ext {
                write_ext_1part(out, c, dialect);
            }
        }
        Form::Opaque => {
            out.push_str("\"APPLICATION\" \"OCTET-STREAM\" ");
            write_fields(out, part, false, dialect);
            if ext {
                write_ext_1part(out, c, dialect);
            }
        }
    }
    out.push(')');
}

/// `body-fields`. For text, a missing charset is reported as RFC 2046 §4.1.2's default.
fn write_fields(out: &mut String, part: &Part, text: bool, dialect: Dialect) {
    let utf8 = dialect.utf8;
    let c = &part.content;
    if text && c.param("charset").is_none() {
        // RFC 2046 §4.1.2: "The default character set ... is US-ASCII."
        let mut params = Vec::with_capacity(c.params.len() + 1);
        params.push(("charset".to_string(), "us-ascii".to_string()));
        params.extend(c.params.iter().cloned());
        write_params(out, &params, dialect);
    } else {
        write_params(out, &c.params, dialect);
    }
    out.push(' ');
    ImapString::write_nstring(out, c.id.as_deref(), utf8);
    out.push(' ');
    ImapString::write_nstring(out, c.description.as_deref(), utf8);
    out.push(' ');
    // RFC 2045 §6.1: no Content-Transfer-Encoding means 7BIT.
    match c.encoding.as_deref() {
        Some(e) if !e.is_empty() => write_upper(out, e, utf8),
        _ => out.push_str("\"7BIT\""),
    }
    out.push(' ');
    out.push_str(&part.body.len().to_string());
}

/// `body-ext-1part` after the leading SP: md5, disposition, language, location.
fn write_ext_1part(out: &mut String, c: &ContentFields, dialect: Dialect) {
    out.push(' ');
    ImapString::write_nstring(out, c.md5.as_deref(), dialect.utf8);
    write_ext_tail(out, c, dialect);
}

/// ` body-fld-dsp SP body-fld-lang SP body-fld-loc`.
fn write_ext_tail(out: &mut String, c: &ContentFields, dialect: Dialect) {
    let utf8 = dialect.utf8;
    out.push(' ');
    match &c.disposition {
        Some(Disposition { kind, params }) if !kind.is_empty() => {
            out.push('(');
            write_upper(out, kind, utf8);
            out.push(' ');
            write_params(out, params, dialect);
            out.push(')');
        }
        _ => out.push_str("NIL"),
    }
    out.push(' ');
    match c.language.as_slice() {
        [] => out.push_str("NIL"),
        [one] => ImapString::write(out, one, utf8),
        many => {
            out.push('(');
            for (i, tag) in many.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                ImapString::write(out, tag, utf8);
            }
            out.push(')');
        }
    }
    out.push(' ');
    ImapString::write_nstring(out, c.location.as_deref(), utf8);
}

/// `body-fld-param`. Without UTF-8 output, a non-ASCII value is sent in RFC 2231 §4 form
/// (`NAME*` `utf-8''%XX`) so that it stays 7-bit and clients can still decode it.
fn write_params(out: &mut String, params: &[(String, String)], dialect: Dialect) {
    if params.is_empty() {
        out.push_str("NIL");
        return;
    }
    out.push('(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if value.is_ascii() || dialect.utf8 {
            write_upper(out, name, dialect.utf8);
            out.push(' ');
            ImapString::write(out, value, dialect.utf8);
        } else {
            write_upper(out, &format!("{name}*"), false);
            out.push(' ');
            ImapString::write(out, &rfc2231_encode(value), false);
        }
    }
    out.push(')');
}

/// RFC 2231 §4: `utf-8''` followed by the value with every octet outside `attribute-char`
/// percent-encoded.
fn rfc2231_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 + 7);
    out.push_str("utf-8''");
    for &b in value.as_bytes() {
        // RFC 2231 §7: attribute-char excludes SPACE, CTLs, "*", "'", "%" and tspecials.
        let plain = b.is_ascii_graphic() && !b"*'%()<>@,;:\\\"/[]?=".contains(&b);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn write_upper(out: &mut String, s: &str, utf8: bool) {
    ImapString::write(out, &s.to_ascii_uppercase(), utf8);
}

#[cfg(test)]
mod tests {
    use super::rfc2231_encode;

    #[test]
    fn rfc2231() {
        assert_eq!(rfc2231_encode("€ a.txt"), "utf-8''%E2%82%AC%20a.txt");
    }
}
