//! The cache format of [`MessageStructure`]: a versioned, compact binary encoding.
//!
//! ```text
//! cache    = "SPMS" version message                 ; version = %x01
//! message  = span span envelope part                ; header, body
//! envelope = 10 opt-str                             ; date subject from sender reply-to to cc
//!                                                   ; bcc in-reply-to message-id
//! part     = span span varint content kind          ; header, body, lines
//! content  = str str params opt-str opt-str opt-str opt-str disposition languages opt-str
//!                                                   ; type subtype params id description
//!                                                   ; encoding md5 disposition language location
//! kind     = %x00 / %x01 varint 1*part / %x02 message / %x03   ; leaf, multipart, message, opaque
//! span     = varint varint                          ; start, length
//! params   = varint *(str str)
//! disposition = %x00 / %x01 str params
//! languages = varint *str
//! opt-str  = %x00 / %x01 str
//! str      = varint *OCTET                          ; UTF-8
//! varint   = LEB128, at most 10 octets
//! ```
//!
//! Decoding never panics and never trusts a length: every count is checked against the bytes
//! left before anything is allocated, nesting is limited, and trailing bytes are an error, so a
//! corrupt or hostile cache entry yields [`DecodeError`] (the store then re-parses the message).

use super::content::{ContentFields, Disposition};
use super::envelope::Envelope;
use super::structure::{MessageNode, MessageStructure, Part, PartKind, Span};
use super::{MAX_DEPTH, MAX_PARTS};

const MAGIC: &[u8; 4] = b"SPMS";
/// Bumped whenever the format or the parser's output changes; old entries are re-parsed.
const VERSION: u8 = 1;
/// Deepest part nesting a cache entry may hold (parse produces at most [`MAX_DEPTH`] parts
/// deep; a message node and its root are one level each here).
const MAX_DECODE_DEPTH: usize = 2 * MAX_DEPTH + 4;

/// Why a cache entry was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a sealpost message structure")]
    Magic,
    #[error("unsupported message structure version {0}")]
    Version(u8),
    #[error("message structure truncated")]
    Truncated,
    #[error("message structure malformed")]
    Malformed,
    #[error("message structure exceeds limits")]
    Limits,
}

impl MessageStructure {
    /// Encodes this structure for the cache.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        put_message(&mut out, &self.message);
        out
    }

    /// Decodes a cache entry made by [`MessageStructure::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<MessageStructure, DecodeError> {
        let mut r = Reader {
            bytes,
            pos: 0,
            parts: 0,
        };
        if r.take(4)? != MAGIC {
            return Err(DecodeError::Magic);
        }
        let version = r.byte()?;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let message = r.message(0)?;
        if r.pos != bytes.len() {
            return Err(DecodeError::Malformed);
        }
        Ok(MessageStructure { message })
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

fn put_span(out: &mut Vec<u8>, span: Span) {
    put_varint(out, span.start as u64);
    put_varint(out, span.len() as u64);
}

fn put_params(out: &mut Vec<u8>, params: &[(String, String)]) {
    put_varint(out, params.len() as u64);
    for (k, v) in params {
        put_str(out, k);
        put_str(out, v);
    }
}

fn put_message(out: &mut Vec<u8>, m: &MessageNode) {
    put_span(out, m.header);
    put_span(out, m.body);
    let e = &m.envelope;
    for field in [
        &e.date,
        &e.subject,
        &e.from,
        &e.sender,
        &e.reply_to,
        &e.to,
        &e.cc,
        &e.bcc,
        &e.in_reply_to,
        &e.message_id,
    ] {
        put_opt(out, field.as_deref());
    }
    put_part(out, &m.root);
}

fn put_part(out: &mut Vec<u8>, p: &Part) {
    put_span(out, p.header);
    put_span(out, p.body);
    put_varint(out, p.lines);
    let c = &p.content;
    put_str(out, &c.media_type);
    put_str(out, &c.subtype);
    put_params(out, &c.params);
    put_opt(out, c.id.as_deref());
    put_opt(out, c.description.as_deref());
    put_opt(out, c.encoding.as_deref());
    put_opt(out, c.md5.as_deref());
    match &c.disposition {
        None => out.push(0),
        Some(d) => {
            out.push(1);
            put_str(out, &d.kind);
            put_params(out, &d.params);
        }
    }
    put_varint(out, c.language.len() as u64);
    for tag in &c.language {
        put_str(out, tag);
    }
    put_opt(out, c.location.as_deref());
    match &p.kind {
        PartKind::Leaf => out.push(0),
        PartKind::Multipart(children) => {
            out.push(1);
            put_varint(out, children.len() as u64);
            for child in children {
                put_part(out, child);
            }
        }
        PartKind::Message(inner) => {
            out.push(2);
            put_message(out, inner);
        }
        PartKind::Opaque => out.push(3),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    parts: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(*self.take(1)?.first().ok_or(DecodeError::Truncated)?)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && bits > 1 {
                return Err(DecodeError::Malformed);
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Malformed)
    }

    fn usize(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.varint()?).map_err(|_| DecodeError::Malformed)
    }

    /// A count of items each at least `min_size` octets long, checked against what is left.
    fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let n = self.usize()?;
        if n.saturating_mul(min_size) > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.usize()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Malformed)
    }

    fn opt(&mut self) -> Result<Option<String>, DecodeError> {
        match self.byte()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            _ => Err(DecodeError::Malformed),
        }
    }

    fn span(&mut self) -> Result<Span, DecodeError> {
        let start = self.usize()?;
        let len = self.usize()?;
        let end = start.checked_add(len).ok_or(DecodeError::Malformed)?;
        Ok(Span { start, end })
    }

    fn params(&mut self) -> Result<Vec<(String, String)>, DecodeError> {
        let n = self.count(2)?;
        let mut params = Vec::with_capacity(n);
        for _ in 0..n {
            params.push((self.string()?, self.string()?));
        }
        Ok(params)
    }

    fn message(&mut self, depth: usize) -> Result<MessageNode, DecodeError> {
        if depth > MAX_DECODE_DEPTH {
            return Err(DecodeError::Limits);
        }
        let header = self.span()?;
        let body = self.span()?;
        let mut f = [(); 10].map(|_| None);
        for slot in &mut f {
            *slot = self.opt()?;
        }
        let [
            date,
            subject,
            from,
            sender,
            reply_to,
            to,
            cc,
            bcc,
            in_reply_to,
            message_id,
        ] = f;
        let envelope = Envelope {
            date,
            subject,
            from,
            sender,
            reply_to,
            to,
            cc,
            bcc,
            in_reply_to,
            message_id,
        };
        let root = self.part(depth + 1)?;
        Ok(MessageNode {
            header,
            body,
            envelope,
            root,
        })
    }

    fn part(&mut self, depth: usize) -> Result<Part, DecodeError> {
        self.parts += 1;
        if depth > MAX_DECODE_DEPTH || self.parts > MAX_PARTS {
            return Err(DecodeError::Limits);
        }
        let header = self.span()?;
        let body = self.span()?;
        let lines = self.varint()?;
        let media_type = self.string()?;
        let subtype = self.string()?;
        let params = self.params()?;
        let id = self.opt()?;
        let description = self.opt()?;
        let encoding = self.opt()?;
        let md5 = self.opt()?;
        let disposition = match self.byte()? {
            0 => None,
            1 => Some(Disposition {
                kind: self.string()?,
                params: self.params()?,
            }),
            _ => return Err(DecodeError::Malformed),
        };
        let n = self.count(1)?;
        let mut language = Vec::with_capacity(n);
        for _ in 0..n {
            language.push(self.string()?);
        }
        let location = self.opt()?;
        let kind = match self.byte()? {
            0 => PartKind::Leaf,
            1 => {
                // A part encodes to well over 16 octets.
                let n = self.count(16)?;
                if n == 0 {
                    return Err(DecodeError::Malformed);
                }
                let mut children = Vec::with_capacity(n);
                for _ in 0..n {
                    children.push(self.part(depth + 1)?);
                }
                PartKind::Multipart(children)
            }
            2 => PartKind::Message(Box::new(self.message(depth + 1)?)),
            3 => PartKind::Opaque,
            _ => return Err(DecodeError::Malformed),
        };
        Ok(Part {
            header,
            body,
            lines,
            content: ContentFields {
                media_type,
                subtype,
                params,
                id,
                description,
                encoding,
                md5,
                disposition,
                language,
                location,
            },
            kind,
        })
    }
}
