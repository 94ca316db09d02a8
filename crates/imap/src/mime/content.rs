//! The MIME header fields of one part (RFC 2045 §5–§8, RFC 2183, RFC 3282, RFC 2557), as
//! BODYSTRUCTURE needs them.
//!
//! ```text
//! content      := "Content-Type" ":" type "/" subtype *(";" parameter)   ; RFC 2045 §5.1
//! parameter    := attribute "=" value                                    ; RFC 2231 §3-§5:
//!                 attribute "*" N ["*"] "=" value                        ;   continuations,
//!                 attribute "*" "=" charset "'" [lang] "'" %-octets      ;   charsets
//! disposition  := "Content-Disposition" ":" type *(";" parameter)        ; RFC 2183 §2
//! encoding     := "Content-Transfer-Encoding" ":" mechanism              ; RFC 2045 §6.1
//! ```
//!
//! Content-Type and Content-Disposition are parsed by mail-parser (RFC 2231 reassembly and
//! charset decoding), on a value first cut to [`MAX_PARAM_FIELD`] octets and [`MAX_PARAMS`]
//! parameters: its continuation merge and encoded-word scan are superlinear in the value
//! (SECURITY-TESTS MD-06, MD-08), so the cut keeps them bounded.

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

use super::header::{Field, fields, name_is, unfold, unfold_string};
use super::structure::Span;

/// Longest Content-Type / Content-Disposition value handed to mail-parser.
const MAX_PARAM_FIELD: usize = 8 * 1024;
/// Most parameters kept per field (SECURITY-TESTS MD-06: "parameter count capped").
const MAX_PARAMS: usize = 64;
/// Longest Content-ID / -Description / -MD5 / -Location / -Language value kept.
const MAX_TEXT_FIELD: usize = 4 * 1024;
/// Most Content-Language tags kept.
const MAX_LANGUAGES: usize = 32;

/// Everything BODYSTRUCTURE reports about one part, from its MIME header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentFields {
    /// Media type, lower case (`text`).
    pub media_type: String,
    /// Media subtype, lower case (`plain`).
    pub subtype: String,
    /// Content-Type parameters in order, names lower case, values decoded to UTF-8.
    pub params: Vec<(String, String)>,
    /// Content-ID, unfolded.
    pub id: Option<String>,
    /// Content-Description, unfolded (encoded words left as they are).
    pub description: Option<String>,
    /// Content-Transfer-Encoding mechanism, lower case; `None` means the default 7bit.
    pub encoding: Option<String>,
    /// Content-MD5 (RFC 1864), unfolded.
    pub md5: Option<String>,
    /// Content-Disposition (RFC 2183).
    pub disposition: Option<Disposition>,
    /// Content-Language tags (RFC 3282).
    pub language: Vec<String>,
    /// Content-Location (RFC 2557 §4), unfolded.
    pub location: Option<String>,
}

/// A Content-Disposition: type (lower case) and parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disposition {
    pub kind: String,
    pub params: Vec<(String, String)>,
}

/// The type a part has when its header has no (valid) Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DefaultType {
    /// RFC 2045 §5.2: `text/plain; charset=us-ascii`.
    Text,
    /// RFC 2046 §5.1.5: inside multipart/digest, `message/rfc822`.
    Message,
}

impl ContentFields {
    /// RFC 2045 §5.2 default: `text/plain; charset=us-ascii`.
    pub(crate) fn default_text() -> ContentFields {
        ContentFields {
            media_type: "text".into(),
            subtype: "plain".into(),
            params: vec![("charset".into(), "us-ascii".into())],
            ..ContentFields::default()
        }
    }

    /// Reads the MIME fields of the header `raw[header]` (first occurrence of each).
    pub(crate) fn parse(raw: &[u8], header: Span, default: DefaultType) -> ContentFields {
        let mut fields_seen = ContentFields::default();
        let mut content_type: Option<Field<'_>> = None;
        for field in fields(raw, header.start..header.end) {
            let name = field.name;
            // RFC 2045 §9: all MIME fields start with "Content-"; skip the rest quickly.
            if name.len() < 10 || !name.get(..8).is_some_and(|p| name_is(p, "content-")) {
                continue;
            }
            if name_is(name, "content-type") {
                content_type.get_or_insert(field);
            } else if name_is(name, "content-transfer-encoding") {
                if fields_seen.encoding.is_none() {
                    fields_seen.encoding = Some(mechanism(field.value));
                }
            } else if name_is(name, "content-id") {
                set_text(&mut fields_seen.id, field.value);
            } else if name_is(name, "content-description") {
                set_text(&mut fields_seen.description, field.value);
            } else if name_is(name, "content-md5") {
                set_text(&mut fields_seen.md5, field.value);
            } else if name_is(name, "content-location") {
                set_text(&mut fields_seen.location, field.value);
            } else if name_is(name, "content-language") {
                if fields_seen.language.is_empty() {
                    fields_seen.language = languages(field.value);
                }
            } else if name_is(name, "content-disposition") && fields_seen.disposition.is_none() {
                fields_seen.disposition = parse_params_field(field.value)
                    .map(|(kind, _, params)| Disposition { kind, params });
            }
        }
        let parsed = content_type
            .and_then(|f| parse_params_field(f.value))
            // RFC 2045 §5.2: a syntactically invalid Content-Type (no subtype) means the default.
            .and_then(|(t, sub, params)| Some((t, sub?, params)))
            .filter(|(t, sub, _)| !t.is_empty() && !sub.is_empty());
        match parsed {
            Some((media_type, subtype, params)) => {
                fields_seen.media_type = media_type;
                fields_seen.subtype = subtype;
                fields_seen.params = params;
            }
            None => {
                let base = match default {
                    DefaultType::Text => ContentFields::default_text(),
                    DefaultType::Message => ContentFields {
                        media_type: "message".into(),
                        subtype: "rfc822".into(),
                        ..ContentFields::default()
                    },
                };
                fields_seen.media_type = base.media_type;
                fields_seen.subtype = base.subtype;
                fields_seen.params = base.params;
            }
        }
        fields_seen
    }

    /// The value of parameter `name` (lower case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_multipart(&self) -> bool {
        self.media_type.eq_ignore_ascii_case("multipart")
    }

    /// message/rfc822 or message/global (RFC 6532 §3.7): an encapsulated message.
    pub fn is_message(&self) -> bool {
        self.media_type.eq_ignore_ascii_case("message")
            && (self.subtype.eq_ignore_ascii_case("rfc822")
                || self.subtype.eq_ignore_ascii_case("global"))
    }

    pub fn is_text(&self) -> bool {
        self.media_type.eq_ignore_ascii_case("text")
    }

    /// RFC 2045 §6.4 / RFC 2046 §5.2.1: 7bit, 8bit and binary are identity encodings.
    pub fn has_identity_encoding(&self) -> bool {
        match self.encoding.as_deref() {
            None => true,
            Some(e) => matches!(e, "7bit" | "8bit" | "binary" | ""),
        }
    }
}

fn set_text(slot: &mut Option<String>, value: &[u8]) {
    if slot.is_none() {
        *slot = Some(unfold_string(value, MAX_TEXT_FIELD));
    }
}

/// RFC 2045 §6.1: the mechanism token, lower case, comments and trailing junk dropped.
fn mechanism(value: &[u8]) -> String {
    let value = unfold(value, MAX_TEXT_FIELD);
    let token: Vec<u8> = value
        .iter()
        .copied()
        .take_while(|&b| !matches!(b, b' ' | b'\t' | b'(' | b';'))
        .map(|b| b.to_ascii_lowercase())
        .collect();
    String::from_utf8_lossy(&token).into_owned()
}

/// RFC 3282 §2: `Language-List = Language-Tag *("," Language-Tag)` (comments dropped).
fn languages(value: &[u8]) -> Vec<String> {
    let value = unfold_string(value, MAX_TEXT_FIELD);
    let mut depth = 0usize;
    let mut cleaned = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => cleaned.push(c),
            _ => {}
        }
    }
    cleaned
        .split(',')
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .take(MAX_LANGUAGES)
        .map(str::to_string)
        .collect()
}

/// Type parsed by mail-parser: (type, subtype, params), names lower case, the first of
/// duplicate parameters kept. `None` when mail-parser finds no type.
type ParsedParams = (String, Option<String>, Vec<(String, String)>);

/// Parses a Content-Type-shaped value (also Content-Disposition) with mail-parser, after cutting
/// it to [`MAX_PARAM_FIELD`] octets and [`MAX_PARAMS`] parameters (SECURITY-TESTS MD-06).
fn parse_params_field(value: &[u8]) -> Option<ParsedParams> {
    let mut buf = unfold(value, MAX_PARAM_FIELD);
    cut_params(&mut buf, MAX_PARAMS);
    // mail-parser's field parsers read up to the field's final line end.
    buf.push(b'\n');
    let HeaderValue::ContentType(ct) = MessageStream::new(&buf).parse_content_type() else {
        return None;
    };
    let mut params: Vec<(String, String)> = Vec::new();
    for attr in ct.attributes.unwrap_or_default() {
        if params.len() >= MAX_PARAMS {
            break;
        }
        let name = attr.name.to_ascii_lowercase();
        if !name.is_empty() && !params.iter().any(|(k, _)| *k == name) {
            params.push((name, attr.value.into_owned()));
        }
    }
    Some((
        ct.c_type.to_ascii_lowercase(),
        ct.c_subtype.map(|s| s.to_ascii_lowercase()),
        params,
    ))
}

/// Truncates `buf` before its `max`-th parameter separator (a `;` outside quotes/comments).
fn cut_params(buf: &mut Vec<u8>, max: usize) {
    let mut in_quote = false;
    let mut escaped = false;
    let mut comment = 0usize;
    let mut seen = 0usize;
    for (i, &b) in buf.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'"' if comment == 0 => in_quote = !in_quote,
            b'(' if !in_quote => comment += 1,
            b')' if !in_quote && comment > 0 => comment -= 1,
            b';' if !in_quote && comment == 0 => {
                seen += 1;
                if seen > max {
                    buf.truncate(i);
                    return;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(header: &str) -> ContentFields {
        let raw = format!("{header}\r\n\r\n");
        let span = Span {
            start: 0,
            end: raw.len(),
        };
        ContentFields::parse(raw.as_bytes(), span, DefaultType::Text)
    }

    #[test]
    fn default_and_invalid() {
        assert_eq!(ct("Subject: x"), ContentFields::default_text());
        assert_eq!(ct("Content-Type: ;;;;;;"), ContentFields::default_text());
        assert_eq!(ct("Content-Type: text"), ContentFields::default_text());
        let f = ct("Content-Type: text/plain; charset=\"");
        assert_eq!(
            (f.media_type.as_str(), f.subtype.as_str()),
            ("text", "plain")
        );
    }

    #[test]
    fn rfc2231_and_fields() {
        let f = ct(
            "Content-Type: Text/HTML; Name*0=\"a\"; name*1=\"b\"; x*=utf-8''%E2%82%AC\r\n\
                    Content-Transfer-Encoding: Base64 (comment)\r\n\
                    Content-Disposition: attachment;\r\n filename=\"r.txt\"\r\n\
                    Content-Language: en, (c) de\r\nContent-ID: <id@x>\r\n\
                    Content-Location: http://x/\r\n  y",
        );
        assert_eq!(f.media_type, "text");
        assert_eq!(f.subtype, "html");
        assert_eq!(f.param("name"), Some("ab"));
        assert_eq!(f.param("x"), Some("€"));
        assert_eq!(f.encoding.as_deref(), Some("base64"));
        let d = f.disposition.unwrap();
        assert_eq!(d.kind, "attachment");
        assert_eq!(d.params, vec![("filename".into(), "r.txt".into())]);
        assert_eq!(f.language, vec!["en".to_string(), "de".to_string()]);
        assert_eq!(f.id.as_deref(), Some("<id@x>"));
        assert_eq!(f.location.as_deref(), Some("http://x/  y"));
    }

    #[test]
    fn parameter_flood_is_cut() {
        let mut h = String::from("Content-Type: text/plain");
        for i in 0..100_000 {
            h.push_str(&format!("; filename*{i}=\"a\""));
        }
        let f = ct(&h);
        assert_eq!(f.subtype, "plain");
        assert!(f.params.len() <= MAX_PARAMS);
    }
}
