//! The sans-IO IMAP server core: RFC 9051 (IMAP4rev2) and RFC 3501 (IMAP4rev1) together,
//! the revision chosen per session with `ENABLE IMAP4rev2` (RFC 9051 Appendix E, RFC 5161).
//!
//! # Our own parser, not imap-codec / imap-next
//!
//! DESIGN §3 names imap-codec `=2.0.0-alpha.10` (imap-types `2.0.0-alpha.8`) and imap-next
//! `=0.3.4`. Both were built on Rust 1.95 in a scratch crate (they build; the pair pulls
//! tokio and tokio-rustls through imap-next's default `stream` feature, ~3 min release
//! build) and fed the server-side commands this core must take. They do not cover them:
//!
//! - LIST-EXTENDED / LIST-STATUS / SPECIAL-USE: `LIST (SUBSCRIBED) "" "*"`,
//!   `LIST "" "*" RETURN (SPECIAL-USE)`, `LIST "" (a b) RETURN (STATUS (...))` all fail
//!   to parse (`CommandBody::List` has only reference and pattern).
//! - ESEARCH / SEARCHRES (both part of IMAP4rev2): `SEARCH RETURN (MIN MAX COUNT) ...`
//!   and the `$` sequence set fail to parse.
//! - `STATUS ... (APPENDLIMIT)` (RFC 7889) and MULTIAPPEND (RFC 3502) fail to parse.
//! - The parser is not session-aware: UTF-8 mailbox names are accepted from an IMAP4rev1
//!   client that never enabled UTF8=ACCEPT, and there is no modified UTF-7 validation.
//! - imap-next's server has one `max_literal_size` for every literal (no APPEND vs
//!   other, no pre-auth limit, no per-command literal count), refuses only with `BAD`
//!   (never `NO [TOOBIG]`), and keeps *reading* an oversize non-synchronising literal
//!   up to `max_command_size` (25 MiB by default) instead of closing; it enforces no
//!   session states and leaves STARTTLS buffering to the caller.
//! - Alphas with breaking churn between releases, pinned with `=`.
//!
//! CONDSTORE/QRESYNC parameters, MOVE, UID EXPUNGE, ID, QUOTA, BINARY, ENABLE and
//! LITERAL+ did parse. Patching the gaps would mean forking an alpha; the grammar we need
//! is small enough to own, with every limit where we want it. So this module is our own
//! recursive-descent parser (each production carries its ABNF, every recursion has a
//! depth limit) over a framer that checks each literal before its `+`.
//!
//! # Driver loop
//!
//! ```text
//! core = ImapCore::new(config)                 // greeting queued
//! loop {
//!     write core.take_output()
//!     if core.should_close() { break }
//!     if core.wants_input() { read (timeout core.read_timeout()) -> core.feed(bytes) }
//!     //  EOF -> core.feed_eof(); timeout -> core.autologout()
//!     while let Some(event) = core.next_event() {
//!         match event {
//!             Event::Command(cmd)   => service: core.send(&Response::..)*, core.finish(Completion)
//!                                      (AUTHENTICATE: core.auth_continue(challenge) first;
//!                                       IDLE: core.idle_accept(), later send() updates)
//!             Event::AuthResponse(line) => core.auth_continue(..) or core.finish(..)
//!             Event::IdleDone { done }  => core.finish(ok or bad)
//!             Event::StartTls           => flush output, handshake, core.tls_started()
//!         }
//!     }
//! }
//! ```
//!
//! Commands are handled one at a time in the order received (pipelined commands wait in
//! the input buffer). The core answers CAPABILITY, LOGOUT, STARTTLS, ENABLE, NOOP before
//! login, every syntax error, wrong-state command, LOGINDISABLED refusal and literal
//! refusal itself; error texts are fixed strings, never echoes of client bytes.

mod capability;
pub mod command;
mod config;
mod datetime;
mod dispatch;
mod fetch_items;
mod flags;
mod framing;
mod list_match;
pub mod mutf7;
mod parser;
pub mod response;
mod search;
mod sequence;
mod server;
mod state;
mod step;

#[cfg(test)]
mod tests;

pub use command::{
    AppendMessage, Command, CommandBody, CommandName, ListCommand, ListReturn, ListSelection,
    QResync, StatusItem, StoreMode, Tag, decode_mailbox,
};
pub use config::{
    AUTOLOGOUT_TIMEOUT, CoreConfig, Extensions, IDLE_KEEPALIVE_INTERVAL, IDLE_TIMEOUT, Limits,
    PREAUTH_TIMEOUT,
};
pub use datetime::{Date, DateTime};
pub use fetch_items::{FetchAttr, MAX_SECTION_PARTS, PartPath, Partial, Section, SectionText};
pub use flags::{Flag, MAX_FLAGS_PER_COMMAND};
pub use list_match::ListPattern;
pub use parser::ParseError;
pub use response::data::{ESearch, FetchItem, ListItem, Response};
pub use response::encode::Encoding;
pub use response::{Code, Completion, Status};
pub use search::{SearchKey, SearchProgram, SearchReturn};
pub use sequence::{SeqNum, SeqRange, SequenceSet};
pub use server::{Event, ImapCore};
pub use state::{Enabled, SessionInfo, SessionState, Transition};
