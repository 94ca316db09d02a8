//! ENVELOPE (RFC 9051 §7.5.2, RFC 3501 §7.4.2; identical in both revisions).
//!
//! ```text
//! envelope     = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP
//!                env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"
//! env-from     = "(" 1*address ")" / nil                       ; same for the other lists
//! address      = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"
//! env-date     = nstring                                       ; also subject, in-reply-to,
//!                                                              ; message-id
//! ```

use super::Dialect;
use super::address::{AddressItem, parse_address_list};
use super::header::{fields, name_is, unfold_string};
use super::imap_string::ImapString;
use super::structure::{MessageStructure, Span};

/// Longest header value kept for one ENVELOPE member (SECURITY-TESTS MD-04/MD-05: bounded
/// ENVELOPE output whatever the header holds).
const MAX_ENVELOPE_FIELD: usize = 32 * 1024;

/// The header values ENVELOPE is built from: the first occurrence of each field, unfolded
/// (RFC 5322 §2.2.3) and trimmed, otherwise raw (RFC 2047 encoded words left as they are).
/// `None` when the field is absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    pub date: Option<String>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub sender: Option<String>,
    pub reply_to: Option<String>,
    pub to: Option<String>,
    pub cc: Option<String>,
    pub bcc: Option<String>,
    pub in_reply_to: Option<String>,
    pub message_id: Option<String>,
}

impl Envelope {
    /// Reads the envelope fields of the header `raw[header]`.
    pub(crate) fn parse(raw: &[u8], header: Span) -> Envelope {
        let mut env = Envelope::default();
        for field in fields(raw, header.start..header.end) {
            let slot = match field.name.len() {
                2 if name_is(field.name, "to") => &mut env.to,
                2 if name_is(field.name, "cc") => &mut env.cc,
                3 if name_is(field.name, "bcc") => &mut env.bcc,
                4 if name_is(field.name, "date") => &mut env.date,
                4 if name_is(field.name, "from") => &mut env.from,
                6 if name_is(field.name, "sender") => &mut env.sender,
                7 if name_is(field.name, "subject") => &mut env.subject,
                8 if name_is(field.name, "reply-to") => &mut env.reply_to,
                10 if name_is(field.name, "message-id") => &mut env.message_id,
                11 if name_is(field.name, "in-reply-to") => &mut env.in_reply_to,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(unfold_string(field.value, MAX_ENVELOPE_FIELD));
            }
        }
        env
    }

    /// Appends the ENVELOPE structure.
    pub fn render(&self, out: &mut String, dialect: Dialect) {
        let utf8 = dialect.utf8;
        let from = addresses(self.from.as_deref());
        // RFC 9051 §7.5.2: sender and reply-to default to from when absent or empty.
        let sender = addresses(self.sender.as_deref());
        let reply_to = addresses(self.reply_to.as_deref());
        out.push('(');
        ImapString::write_nstring(out, self.date.as_deref(), utf8);
        out.push(' ');
        ImapString::write_nstring(out, self.subject.as_deref(), utf8);
        out.push(' ');
        write_addresses(out, &from, utf8);
        out.push(' ');
        write_addresses(out, if sender.is_empty() { &from } else { &sender }, utf8);
        out.push(' ');
        write_addresses(
            out,
            if reply_to.is_empty() {
                &from
            } else {
                &reply_to
            },
            utf8,
        );
        for list in [&self.to, &self.cc, &self.bcc] {
            out.push(' ');
            write_addresses(out, &addresses(list.as_deref()), utf8);
        }
        out.push(' ');
        ImapString::write_nstring(out, self.in_reply_to.as_deref(), utf8);
        out.push(' ');
        ImapString::write_nstring(out, self.message_id.as_deref(), utf8);
        out.push(')');
    }
}

fn addresses(value: Option<&str>) -> Vec<AddressItem> {
    value.map(parse_address_list).unwrap_or_default()
}

/// RFC 9051 §7.5.2: `"(" 1*address ")"`, or NIL for no address.
fn write_addresses(out: &mut String, items: &[AddressItem], utf8: bool) {
    if items.is_empty() {
        out.push_str("NIL");
        return;
    }
    out.push('(');
    for item in items {
        match item {
            AddressItem::Mailbox {
                name,
                adl,
                mailbox,
                host,
            } => {
                out.push('(');
                ImapString::write_nstring(out, name.as_deref(), utf8);
                out.push(' ');
                ImapString::write_nstring(out, adl.as_deref(), utf8);
                out.push(' ');
                ImapString::write(out, mailbox, utf8);
                out.push(' ');
                ImapString::write(out, host, utf8);
                out.push(')');
            }
            // RFC 9051 §7.5.2: NIL host marks group syntax; the mailbox field is the name.
            AddressItem::GroupStart(name) => {
                out.push_str("(NIL NIL ");
                ImapString::write(out, name, utf8);
                out.push_str(" NIL)");
            }
            AddressItem::GroupEnd => out.push_str("(NIL NIL NIL NIL)"),
        }
    }
    out.push(')');
}

impl MessageStructure {
    /// The ENVELOPE of the top-level message.
    pub fn envelope(&self, dialect: Dialect) -> String {
        let mut out = String::with_capacity(256);
        self.message.envelope.render(&mut out, dialect);
        out
    }
}
