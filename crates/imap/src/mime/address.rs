//! RFC 5322 address lists, as ENVELOPE reports them (RFC 9051 §7.5.2 address structure).
//!
//! ```text
//! address-list = (address *("," address)) / obs-addr-list        ; RFC 5322 §3.4
//! address      = mailbox / group
//! mailbox      = name-addr / addr-spec
//! name-addr    = [display-name] angle-addr
//! angle-addr   = [CFWS] "<" [obs-route] addr-spec ">" [CFWS]
//! obs-route    = obs-domain-list ":"                              ; §4.4, ENVELOPE addr-adl
//! group        = display-name ":" [group-list] ";" [CFWS]
//! addr-spec    = local-part "@" domain
//! ```
//!
//! One tokenizing pass and one pass over the tokens, no backtracking, so any input (such as
//! `<<<<<<<` × 10 000, SECURITY-TESTS MD-10) costs linear time. Quoting is removed from names
//! and local parts; RFC 2047 encoded words are passed through as they are (RFC 9051 §7.5.2
//! leaves decoding to the client). Malformed input yields a best effort, never an error.

use std::borrow::Cow;

/// Host used when an address has none; c-client's convention, so that the address is not
/// mistaken for a group marker (RFC 9051 §7.5.2: NIL host means group syntax).
pub(crate) const MISSING_HOST: &str = ".MISSING-HOST-NAME.";
/// Mailbox used when an address has a host but no local part.
pub(crate) const MISSING_MAILBOX: &str = "MISSING_MAILBOX";

/// One element of an ENVELOPE address list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AddressItem {
    /// `(name adl mailbox host)`.
    Mailbox {
        name: Option<String>,
        adl: Option<String>,
        mailbox: String,
        host: String,
    },
    /// RFC 9051 §7.5.2: start of group, `(NIL NIL "name" NIL)`.
    GroupStart(String),
    /// RFC 9051 §7.5.2: end of group, `(NIL NIL NIL NIL)`.
    GroupEnd,
}

#[derive(Debug)]
enum Token<'a> {
    /// An atom (dots included), or the contents of a quoted string.
    Word(Cow<'a, str>),
    /// A domain literal, brackets included.
    Literal(&'a str),
    /// The text of a comment.
    Comment(String),
    Special(u8),
}

fn tokenize(s: &str) -> Vec<Token<'_>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b' ' | b'\t' | b'\r' | b'\n' | b')' | b']' => i += 1,
            b'<' | b'>' | b'@' | b',' | b';' | b':' => {
                out.push(Token::Special(c));
                i += 1;
            }
            b'(' => {
                // RFC 5322 §3.2.2: comments nest; "\" quotes the next character.
                let mut depth = 0usize;
                let mut text = Vec::new();
                while let Some(&c) = b.get(i) {
                    i += 1;
                    match c {
                        b'\\' => {
                            if let Some(&n) = b.get(i) {
                                text.push(n);
                                i += 1;
                            }
                        }
                        b'(' => {
                            if depth > 0 {
                                text.push(c);
                            }
                            depth += 1;
                        }
                        b')' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                break;
                            }
                            text.push(c);
                        }
                        _ => text.push(c),
                    }
                }
                out.push(Token::Comment(String::from_utf8_lossy(&text).into_owned()));
            }
            b'"' => {
                // RFC 5322 §3.2.4: quoted-string; quoting removed.
                i += 1;
                let mut text = Vec::new();
                while let Some(&c) = b.get(i) {
                    i += 1;
                    match c {
                        b'\\' => {
                            if let Some(&n) = b.get(i) {
                                text.push(n);
                                i += 1;
                            }
                        }
                        b'"' => break,
                        _ => text.push(c),
                    }
                }
                out.push(Token::Word(
                    String::from_utf8_lossy(&text).into_owned().into(),
                ));
            }
            b'[' => {
                // RFC 5322 §3.4.1: domain-literal.
                let start = i;
                i += 1;
                while let Some(&c) = b.get(i) {
                    i += 1;
                    if c == b'\\' {
                        i += 1;
                    } else if c == b']' {
                        break;
                    }
                }
                let end = i.min(b.len());
                out.push(Token::Literal(s.get(start..end).unwrap_or_default()));
            }
            _ => {
                let start = i;
                while let Some(&c) = b.get(i) {
                    if matches!(
                        c,
                        b' ' | b'\t'
                            | b'\r'
                            | b'\n'
                            | b'('
                            | b')'
                            | b'<'
                            | b'>'
                            | b'@'
                            | b','
                            | b';'
                            | b':'
                            | b'"'
                            | b'['
                            | b']'
                    ) {
                        break;
                    }
                    i += 1;
                }
                // All delimiters are ASCII, so `start..i` are char boundaries.
                out.push(Token::Word(Cow::Borrowed(
                    s.get(start..i).unwrap_or_default(),
                )));
            }
        }
    }
    out
}

/// The address being read.
#[derive(Default)]
struct Pending {
    /// Words before `<` or `@` (display name, or local part of a bare addr-spec).
    words: Vec<String>,
    at: bool,
    domain: String,
    comment: Option<String>,
    in_angle: bool,
    angle_done: bool,
    display: Vec<String>,
    route_mode: bool,
    route: String,
    local: String,
    angle_at: bool,
    angle_domain: String,
}

impl Pending {
    fn word(&mut self, w: &str) {
        if self.in_angle {
            if self.route_mode {
                self.route.push_str(w);
            } else if self.angle_at {
                self.angle_domain.push_str(w);
            } else {
                self.local.push_str(w);
            }
        } else if self.angle_done {
            // Text after `>`: ignored (RFC 5322 allows only CFWS there).
        } else if self.at {
            self.domain.push_str(w);
        } else {
            self.words.push(w.to_string());
        }
    }

    fn at_sign(&mut self) {
        if self.in_angle {
            if self.route_mode || (self.local.is_empty() && !self.angle_at) {
                // RFC 5322 §4.4 obs-route: "@a,@b:" before the addr-spec.
                self.route_mode = true;
                self.route.push('@');
            } else {
                self.angle_at = true;
            }
        } else if !self.angle_done {
            self.at = true;
        }
    }

    /// Ends the current address and appends it to `out` if it has anything.
    fn finish(&mut self, out: &mut Vec<AddressItem>) {
        let p = std::mem::take(self);
        let (name, adl, mailbox, host) = if p.in_angle || p.angle_done {
            let name = if p.display.is_empty() {
                p.comment
            } else {
                Some(p.display.join(" "))
            };
            let adl = (!p.route.is_empty()).then_some(p.route);
            (name, adl, p.local, p.angle_domain)
        } else if p.at || !p.words.is_empty() {
            (p.comment, None, p.words.concat(), p.domain)
        } else {
            return;
        };
        if mailbox.is_empty() && host.is_empty() {
            // `<>` and empty elements carry no address.
            return;
        }
        out.push(AddressItem::Mailbox {
            name: name.filter(|n| !n.is_empty()),
            adl,
            mailbox: if mailbox.is_empty() {
                MISSING_MAILBOX.to_string()
            } else {
                mailbox
            },
            host: if host.is_empty() {
                MISSING_HOST.to_string()
            } else {
                host
            },
        });
    }
}

/// Parses an address-list header value (unfolded) into ENVELOPE address items.
pub(crate) fn parse_address_list(value: &str) -> Vec<AddressItem> {
    let mut out = Vec::new();
    let mut in_group = false;
    let mut cur = Pending::default();
    for token in tokenize(value) {
        match token {
            Token::Word(w) => cur.word(&w),
            Token::Literal(l) => cur.word(l),
            Token::Comment(c) => {
                if cur.comment.is_none() {
                    cur.comment = Some(c.trim().to_string());
                }
            }
            Token::Special(b',') if cur.route_mode => cur.route.push(','),
            Token::Special(b',') => cur.finish(&mut out),
            Token::Special(b';') => {
                cur.finish(&mut out);
                if in_group {
                    // RFC 9051 §7.5.2: end of group marker.
                    out.push(AddressItem::GroupEnd);
                    in_group = false;
                }
            }
            Token::Special(b':') => {
                if cur.in_angle {
                    cur.route_mode = false;
                } else if !in_group && !cur.at && !cur.angle_done {
                    // RFC 5322 §3.4 group: display-name ":"; RFC 9051 §7.5.2 start marker.
                    let name = std::mem::take(&mut cur.words).join(" ");
                    cur = Pending::default();
                    out.push(AddressItem::GroupStart(name));
                    in_group = true;
                }
            }
            Token::Special(b'<') => {
                if !cur.in_angle && !cur.angle_done {
                    cur.in_angle = true;
                    cur.display = std::mem::take(&mut cur.words);
                    // An addr-spec before "<" was really part of the phrase.
                    cur.at = false;
                    cur.domain.clear();
                }
            }
            Token::Special(b'>') => {
                if cur.in_angle {
                    cur.in_angle = false;
                    cur.angle_done = true;
                }
            }
            Token::Special(b'@') => cur.at_sign(),
            Token::Special(_) => {}
        }
    }
    cur.finish(&mut out);
    if in_group {
        out.push(AddressItem::GroupEnd);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(name: Option<&str>, mailbox: &str, host: &str) -> AddressItem {
        AddressItem::Mailbox {
            name: name.map(str::to_string),
            adl: None,
            mailbox: mailbox.into(),
            host: host.into(),
        }
    }

    #[test]
    fn common_forms() {
        assert_eq!(
            parse_address_list("\"Doe, John\" <john@example.com>, jane@example.org (Jane)"),
            vec![
                mb(Some("Doe, John"), "john", "example.com"),
                mb(Some("Jane"), "jane", "example.org"),
            ]
        );
        assert_eq!(
            parse_address_list("=?utf-8?Q?J=C3=B6rg?= <j@x>"),
            vec![mb(Some("=?utf-8?Q?J=C3=B6rg?="), "j", "x")]
        );
        assert_eq!(
            parse_address_list("John Q. Public <\"john q\"@[1.2.3.4]>"),
            vec![mb(Some("John Q. Public"), "john q", "[1.2.3.4]")]
        );
    }

    #[test]
    fn groups_and_routes() {
        assert_eq!(
            parse_address_list("A Group:Ed <ed@x>, al@y;, undisclosed-recipients:;"),
            vec![
                AddressItem::GroupStart("A Group".into()),
                mb(Some("Ed"), "ed", "x"),
                mb(None, "al", "y"),
                AddressItem::GroupEnd,
                AddressItem::GroupStart("undisclosed-recipients".into()),
                AddressItem::GroupEnd,
            ]
        );
        assert_eq!(
            parse_address_list("<@a,@b:x@y>"),
            vec![AddressItem::Mailbox {
                name: None,
                adl: Some("@a,@b".into()),
                mailbox: "x".into(),
                host: "y".into()
            }]
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(
            parse_address_list("alice"),
            vec![mb(None, "alice", MISSING_HOST)]
        );
        assert_eq!(parse_address_list("<>"), vec![]);
        assert_eq!(parse_address_list(""), vec![]);
        assert_eq!(
            parse_address_list("A <a@x, B <b@y>"),
            vec![mb(Some("A"), "a", "x"), mb(Some("B"), "b", "y")]
        );
        let many = "<".repeat(10_000);
        assert_eq!(parse_address_list(&many), vec![]);
    }
}
