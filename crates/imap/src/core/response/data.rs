//! Untagged data responses (RFC 9051 §7.2–§7.5 and the extensions named), typed so the
//! service never assembles protocol text by hand.

use std::fmt;
use std::num::NonZeroU32;

use super::encode::{
    Encoding, is_flag_like, write_astring, write_flags, write_literal, write_literal8,
    write_mailbox, write_nstring, write_string,
};
use super::{Code, Status, write_status_line};
use crate::core::command::{StatusItem, Tag};
use crate::core::datetime::DateTime;
use crate::core::fetch_items::{PartPath, Section};
use crate::core::flags::Flag;
use crate::core::sequence::SequenceSet;

/// One LIST/LSUB result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    /// `\HasChildren`, `\Noselect`, `\Subscribed`, `\Sent`, ... (invalid ones are dropped).
    pub attributes: Vec<String>,
    /// The mailbox name in UTF-8 (`""` for the `LIST "" ""` delimiter request).
    pub name: String,
    /// LIST-EXTENDED `("CHILDINFO" ("SUBSCRIBED"))` (RFC 5258 §3.5).
    pub child_info_subscribed: bool,
}

/// Which kind of ESEARCH result; each is written only when present.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ESearch {
    /// The command's tag (RFC 4731 §3.1: `(TAG "a")`).
    pub tag: Option<Tag>,
    pub uid: bool,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub all: Option<SequenceSet>,
    pub count: Option<u32>,
    /// RFC 7162 §3.1.5.
    pub modseq: Option<u64>,
}

/// A FETCH response item. ENVELOPE and BODY/BODYSTRUCTURE come pre-encoded (the
/// parenthesised list, written with [`super::encode`]'s functions for the same
/// [`Encoding`]).
#[derive(Clone, PartialEq, Eq)]
pub enum FetchItem {
    Uid(u32),
    Flags(Vec<Flag>),
    InternalDate(DateTime),
    Rfc822Size(u64),
    /// RFC 7162 §3.1.4.
    ModSeq(u64),
    Envelope(Vec<u8>),
    Body(Vec<u8>),
    BodyStructure(Vec<u8>),
    /// `BODY[section]<origin> data` (always a literal; `None` writes NIL).
    BodySection {
        section: Section,
        origin: Option<u32>,
        data: Option<Vec<u8>>,
    },
    /// `BINARY[part]<origin> data`: literal8 when the data holds NUL (RFC 3516 §4.2).
    Binary {
        part: Vec<NonZeroU32>,
        origin: Option<u32>,
        data: Option<Vec<u8>>,
    },
    BinarySize {
        part: Vec<NonZeroU32>,
        size: u64,
    },
    Rfc822(Option<Vec<u8>>),
    Rfc822Header(Option<Vec<u8>>),
    Rfc822Text(Option<Vec<u8>>),
}

impl fmt::Debug for FetchItem {
    // Message content is summarised by its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = |data: &Option<Vec<u8>>| data.as_ref().map(Vec::len);
        match self {
            FetchItem::Uid(uid) => write!(f, "Uid({uid})"),
            FetchItem::Flags(flags) => write!(f, "Flags({flags:?})"),
            FetchItem::InternalDate(date) => write!(f, "InternalDate({date})"),
            FetchItem::Rfc822Size(size) => write!(f, "Rfc822Size({size})"),
            FetchItem::ModSeq(modseq) => write!(f, "ModSeq({modseq})"),
            FetchItem::Envelope(raw) => write!(f, "Envelope({} octets)", raw.len()),
            FetchItem::Body(raw) => write!(f, "Body({} octets)", raw.len()),
            FetchItem::BodyStructure(raw) => write!(f, "BodyStructure({} octets)", raw.len()),
            FetchItem::BodySection {
                section,
                origin,
                data,
            } => {
                write!(
                    f,
                    "BodySection([{section}] {origin:?} {:?} octets)",
                    len(data)
                )
            }
            FetchItem::Binary { part, origin, data } => {
                write!(
                    f,
                    "Binary([{}] {origin:?} {:?} octets)",
                    PartPath(part),
                    len(data)
                )
            }
            FetchItem::BinarySize { part, size } => {
                write!(f, "BinarySize([{}] {size})", PartPath(part))
            }
            FetchItem::Rfc822(data) => write!(f, "Rfc822({:?} octets)", len(data)),
            FetchItem::Rfc822Header(data) => write!(f, "Rfc822Header({:?} octets)", len(data)),
            FetchItem::Rfc822Text(data) => write!(f, "Rfc822Text({:?} octets)", len(data)),
        }
    }
}

/// An untagged response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `* OK|NO|BAD|BYE [code] text` (RFC 9051 §7.1). A BYE sent this way does not
    /// close the session: use [`crate::core::ImapCore::shutdown`] or a BYE completion.
    Status {
        status: Status,
        code: Option<Code>,
        text: String,
    },
    /// `* CAPABILITY ...` of the session's current state.
    Capability,
    /// `* ENABLED ...` (RFC 5161 §3.2).
    Enabled(Vec<String>),
    Exists(u32),
    /// IMAP4rev1 only.
    Recent(u32),
    Expunge(u32),
    /// `* VANISHED [(EARLIER)] uids` (RFC 7162 §3.2.10).
    Vanished {
        earlier: bool,
        uids: SequenceSet,
    },
    Flags(Vec<Flag>),
    List(ListItem),
    /// LIST-STATUS result and STATUS command (RFC 9051 §7.3.5).
    MailboxStatus {
        name: String,
        items: Vec<(StatusItem, u64)>,
    },
    Lsub(ListItem),
    /// `* SEARCH n n ... [(MODSEQ m)]` (IMAP4rev1; RFC 7162 §3.1.5).
    Search {
        numbers: Vec<u32>,
        modseq: Option<u64>,
    },
    ESearch(ESearch),
    /// `* NAMESPACE` (RFC 9051 §7.3.1): (prefix, delimiter) lists; empty writes NIL.
    Namespace {
        personal: Vec<(String, char)>,
        other: Vec<(String, char)>,
        shared: Vec<(String, char)>,
    },
    /// `* ID (...)` or `* ID NIL` (RFC 2971 §3.2).
    Id(Option<Vec<(String, Option<String>)>>),
    /// `* QUOTA root (resource usage limit ...)` (RFC 9208 §5.1).
    Quota {
        root: String,
        resources: Vec<(String, u64, u64)>,
    },
    /// `* QUOTAROOT mailbox root ...` (RFC 9208 §5.2).
    QuotaRoot {
        mailbox: String,
        roots: Vec<String>,
    },
    Fetch {
        seq: u32,
        items: Vec<FetchItem>,
    },
}

impl Response {
    /// Encodes the response for a client with `encoding`; `capabilities` is the session's
    /// CAPABILITY list (for [`Response::Capability`] and [`Code::Capability`]).
    pub(crate) fn write(&self, out: &mut Vec<u8>, encoding: Encoding, capabilities: &str) {
        if let Response::Status { status, code, text } = self {
            write_status_line(
                out,
                None,
                *status,
                code.as_ref(),
                text,
                encoding,
                capabilities,
            );
            return;
        }
        out.extend_from_slice(b"* ");
        match self {
            Response::Status { .. } => {}
            Response::Capability => {
                out.extend_from_slice(b"CAPABILITY ");
                out.extend_from_slice(capabilities.as_bytes());
            }
            Response::Enabled(names) => {
                out.extend_from_slice(b"ENABLED");
                for name in names.iter().filter(|name| is_flag_like(name)) {
                    out.push(b' ');
                    out.extend_from_slice(name.as_bytes());
                }
            }
            Response::Exists(n) => out.extend_from_slice(format!("{n} EXISTS").as_bytes()),
            Response::Recent(n) => out.extend_from_slice(format!("{n} RECENT").as_bytes()),
            Response::Expunge(n) => out.extend_from_slice(format!("{n} EXPUNGE").as_bytes()),
            Response::Vanished { earlier, uids } => {
                let earlier = if *earlier { "(EARLIER) " } else { "" };
                out.extend_from_slice(format!("VANISHED {earlier}{uids}").as_bytes());
            }
            Response::Flags(flags) => {
                out.extend_from_slice(b"FLAGS ");
                write_flags(out, flags);
            }
            Response::List(item) => write_list(out, b"LIST ", item, encoding),
            Response::Lsub(item) => write_list(out, b"LSUB ", item, encoding),
            Response::MailboxStatus { name, items } => {
                out.extend_from_slice(b"STATUS ");
                write_mailbox(out, name, encoding);
                out.extend_from_slice(b" (");
                let pairs: Vec<String> = items
                    .iter()
                    .map(|(item, value)| format!("{} {value}", item.name()))
                    .collect();
                out.extend_from_slice(pairs.join(" ").as_bytes());
                out.push(b')');
            }
            Response::Search { numbers, modseq } => {
                out.extend_from_slice(b"SEARCH");
                for n in numbers {
                    out.extend_from_slice(format!(" {n}").as_bytes());
                }
                if let Some(modseq) = modseq {
                    out.extend_from_slice(format!(" (MODSEQ {modseq})").as_bytes());
                }
            }
            Response::ESearch(result) => write_esearch(out, result, encoding),
            Response::Namespace {
                personal,
                other,
                shared,
            } => {
                out.extend_from_slice(b"NAMESPACE");
                for list in [personal, other, shared] {
                    out.push(b' ');
                    write_namespace(out, list, encoding);
                }
            }
            Response::Id(params) => {
                out.extend_from_slice(b"ID ");
                write_id(out, params.as_deref(), encoding);
            }
            Response::Quota { root, resources } => {
                out.extend_from_slice(b"QUOTA ");
                write_astring(out, root.as_bytes(), encoding);
                out.extend_from_slice(b" (");
                let triples: Vec<String> = resources
                    .iter()
                    .filter(|(name, _, _)| is_flag_like(name))
                    .map(|(name, usage, limit)| format!("{name} {usage} {limit}"))
                    .collect();
                out.extend_from_slice(triples.join(" ").as_bytes());
                out.push(b')');
            }
            Response::QuotaRoot { mailbox, roots } => {
                out.extend_from_slice(b"QUOTAROOT ");
                write_mailbox(out, mailbox, encoding);
                for root in roots {
                    out.push(b' ');
                    write_astring(out, root.as_bytes(), encoding);
                }
            }
            Response::Fetch { seq, items } => write_fetch(out, *seq, items),
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// `mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP
/// mailbox [SP mbox-list-extended]`.
fn write_list(out: &mut Vec<u8>, keyword: &[u8], item: &ListItem, encoding: Encoding) {
    out.extend_from_slice(keyword);
    out.push(b'(');
    let attributes: Vec<&str> = item
        .attributes
        .iter()
        .map(String::as_str)
        .filter(|a| is_flag_like(a))
        .collect();
    out.extend_from_slice(attributes.join(" ").as_bytes());
    out.extend_from_slice(b") \"/\" ");
    write_mailbox(out, &item.name, encoding);
    if item.child_info_subscribed {
        out.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    }
}

fn write_esearch(out: &mut Vec<u8>, result: &ESearch, encoding: Encoding) {
    out.extend_from_slice(b"ESEARCH");
    if let Some(tag) = &result.tag {
        out.extend_from_slice(b" (TAG ");
        write_string(out, tag.as_str().as_bytes(), encoding);
        out.push(b')');
    }
    if result.uid {
        out.extend_from_slice(b" UID");
    }
    if let Some(min) = result.min {
        out.extend_from_slice(format!(" MIN {min}").as_bytes());
    }
    if let Some(max) = result.max {
        out.extend_from_slice(format!(" MAX {max}").as_bytes());
    }
    if let Some(all) = result.all.as_ref().filter(|all| !all.is_empty()) {
        out.extend_from_slice(format!(" ALL {all}").as_bytes());
    }
    if let Some(count) = result.count {
        out.extend_from_slice(format!(" COUNT {count}").as_bytes());
    }
    if let Some(modseq) = result.modseq {
        out.extend_from_slice(format!(" MODSEQ {modseq}").as_bytes());
    }
}

fn write_namespace(out: &mut Vec<u8>, list: &[(String, char)], encoding: Encoding) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (prefix, delimiter) in list {
        out.push(b'(');
        write_string(out, prefix.as_bytes(), encoding);
        out.push(b' ');
        let mut buffer = [0u8; 4];
        write_string(out, delimiter.encode_utf8(&mut buffer).as_bytes(), encoding);
        out.push(b')');
    }
    out.push(b')');
}

fn write_id(out: &mut Vec<u8>, params: Option<&[(String, Option<String>)]>, encoding: Encoding) {
    let Some(params) = params.filter(|params| !params.is_empty()) else {
        out.extend_from_slice(b"NIL");
        return;
    };
    out.push(b'(');
    for (index, (field, value)) in params.iter().enumerate() {
        if index > 0 {
            out.push(b' ');
        }
        write_string(out, field.as_bytes(), encoding);
        out.push(b' ');
        write_nstring(out, value.as_deref().map(str::as_bytes), encoding);
    }
    out.push(b')');
}

fn write_origin(out: &mut Vec<u8>, origin: Option<u32>) {
    if let Some(origin) = origin {
        out.extend_from_slice(format!("<{origin}>").as_bytes());
    }
}

/// Message data is always a literal (it holds CRLF), NIL when absent.
fn write_data(out: &mut Vec<u8>, data: Option<&[u8]>) {
    match data {
        Some(data) => write_literal(out, data),
        None => out.extend_from_slice(b"NIL"),
    }
}

fn write_fetch(out: &mut Vec<u8>, seq: u32, items: &[FetchItem]) {
    out.extend_from_slice(format!("{seq} FETCH (").as_bytes());
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(b' ');
        }
        match item {
            FetchItem::Uid(uid) => out.extend_from_slice(format!("UID {uid}").as_bytes()),
            FetchItem::Flags(flags) => {
                out.extend_from_slice(b"FLAGS ");
                write_flags(out, flags);
            }
            FetchItem::InternalDate(date) => {
                out.extend_from_slice(format!("INTERNALDATE \"{date}\"").as_bytes());
            }
            FetchItem::Rfc822Size(size) => {
                out.extend_from_slice(format!("RFC822.SIZE {size}").as_bytes())
            }
            FetchItem::ModSeq(modseq) => {
                out.extend_from_slice(format!("MODSEQ ({modseq})").as_bytes())
            }
            FetchItem::Envelope(raw) => {
                out.extend_from_slice(b"ENVELOPE ");
                out.extend_from_slice(raw);
            }
            FetchItem::Body(raw) => {
                out.extend_from_slice(b"BODY ");
                out.extend_from_slice(raw);
            }
            FetchItem::BodyStructure(raw) => {
                out.extend_from_slice(b"BODYSTRUCTURE ");
                out.extend_from_slice(raw);
            }
            FetchItem::BodySection {
                section,
                origin,
                data,
            } => {
                out.extend_from_slice(format!("BODY[{section}]").as_bytes());
                write_origin(out, *origin);
                out.push(b' ');
                write_data(out, data.as_deref());
            }
            FetchItem::Binary { part, origin, data } => {
                out.extend_from_slice(format!("BINARY[{}]", PartPath(part)).as_bytes());
                write_origin(out, *origin);
                out.push(b' ');
                match data {
                    Some(data) if data.contains(&0) => write_literal8(out, data),
                    other => write_data(out, other.as_deref()),
                }
            }
            FetchItem::BinarySize { part, size } => {
                out.extend_from_slice(format!("BINARY.SIZE[{}] {size}", PartPath(part)).as_bytes());
            }
            FetchItem::Rfc822(data) => {
                out.extend_from_slice(b"RFC822 ");
                write_data(out, data.as_deref());
            }
            FetchItem::Rfc822Header(data) => {
                out.extend_from_slice(b"RFC822.HEADER ");
                write_data(out, data.as_deref());
            }
            FetchItem::Rfc822Text(data) => {
                out.extend_from_slice(b"RFC822.TEXT ");
                write_data(out, data.as_deref());
            }
        }
    }
    out.push(b')');
}

#[cfg(test)]
mod tests;
