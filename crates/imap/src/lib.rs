//! IMAP for sealpost (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1).
//!
//! - [`core`]: the sans-IO protocol core: framing (lines, literals), command parsing,
//!   response encoding, limits and session states.
//! - [`mime`]: what FETCH and SEARCH need from a message: ENVELOPE, BODYSTRUCTURE, sections,
//!   and a compact parsed form to cache.
//!
//! - [`service`]: the IMAP service: sessions over the store, one file per command.
#![forbid(unsafe_code)]

pub mod core;
pub mod mime;
pub mod service;
