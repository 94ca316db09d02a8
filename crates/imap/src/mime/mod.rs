//! What FETCH and SEARCH need from a stored message: ENVELOPE, BODY/BODYSTRUCTURE, sections,
//! BINARY decoding and SEARCH text matching, over a compact structure computed once.
//!
//! Pure code: no I/O, no async. The store computes [`MessageStructure::parse`] once per message
//! (at delivery/APPEND or on first FETCH), keeps [`MessageStructure::to_bytes`] beside the blob
//! and later rebuilds it with [`MessageStructure::from_bytes`], so listing a large mailbox never
//! re-parses MIME. Every other call takes the raw message plus the cached structure.
//!
//! Parsing is split deliberately:
//! - the part tree (header/body split, multipart delimiters, message/rfc822 encapsulation) is our
//!   own single linear pass with a depth limit ([`MAX_DEPTH`]) and a part budget ([`MAX_PARTS`]).
//!   mail-parser 0.11's tree parser matches `--boundary` anywhere in a line, has no depth or part
//!   limit, and rescans the rest of the message for every multipart whose boundary is missing
//!   (quadratic); SECURITY-TESTS MD-01..MD-03 need all three bounded, and IMAP section offsets
//!   must follow RFC 2046 §5.1.1 exactly;
//! - header field *contents* go through mail-parser: Content-Type/Content-Disposition (RFC 2045,
//!   RFC 2231 continuations and charsets), charset conversion and Date parsing. Inputs handed to
//!   it are capped first ([`content`]) because some of its field parsers are superlinear;
//! - ENVELOPE addresses use our own RFC 5322 parser because ENVELOPE passes RFC 2047 encoded
//!   words through untouched (mail-parser decodes them), and transfer decoding is our own
//!   lenient RFC 2045 §6.7/§6.8 decoder (mail-parser's rejects what §6.8 says to ignore).
//!
//! Limits: nesting deeper than [`MAX_DEPTH`] or parts beyond [`MAX_PARTS`] become opaque leaves
//! (`APPLICATION/OCTET-STREAM`), never an error; header values kept for ENVELOPE and body
//! fields are capped; SEARCH decodes at most [`MAX_SEARCH_BYTES`] per message.

mod address;
mod binary;
mod bodystructure;
mod content;
mod encoded_word;
mod encoding;
mod envelope;
mod header;
mod imap_string;
mod search;
mod section;
mod structure;

#[cfg(test)]
mod tests;

pub use binary::BinaryError;
pub use content::{ContentFields, Disposition};
pub use encoding::DecodeError;
pub use envelope::Envelope;
pub use imap_string::ImapString;
pub use search::fold_case;
pub use section::{SectionKind, SectionSpec, apply_partial};
pub use structure::{MessageNode, MessageStructure, Part, PartKind, Span};

/// Deepest MIME nesting parsed (multipart and message/rfc822 levels together); deeper content is
/// an opaque leaf. SECURITY-TESTS MD-01/MD-03 (Dovecot uses 100, Postfix 100).
pub const MAX_DEPTH: usize = 50;

/// Most parts (every node of the tree, encapsulated messages' parts included) kept for one
/// message; further siblings are dropped. SECURITY-TESTS MD-02, Dovecot's
/// `MESSAGE_PARSER_DEFAULT_MAX_TOTAL_MIME_PARTS`.
pub const MAX_PARTS: usize = 10_000;

/// Most decoded text SEARCH examines in one message (TEXT/BODY keys).
pub const MAX_SEARCH_BYTES: usize = 32 * 1024 * 1024;

/// What the connection allows in output strings; the two IMAP revisions differ here only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dialect {
    /// IMAP4rev2 (RFC 9051) is in effect: `message/global` is an encapsulated message in
    /// BODYSTRUCTURE (RFC 9051 §9 `media-message`); in IMAP4rev1 (RFC 3501 §9) it is a basic part.
    pub rev2: bool,
    /// UTF-8 may be sent in quoted strings (RFC 9051 §4.3 `QUOTED-CHAR` with UTF8-2/3/4, or
    /// RFC 6855 UTF8=ACCEPT enabled). Otherwise 8-bit text goes in literals and 8-bit MIME
    /// parameter values are sent RFC 2231-encoded.
    pub utf8: bool,
}
