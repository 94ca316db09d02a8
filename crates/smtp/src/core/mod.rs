//! The sans-IO SMTP server core (RFC 5321 and the extensions sealpost offers).
//!
//! The core owns framing (command lines, DATA dot-unstuffing, BDAT counting), limits,
//! command sequencing and every security invariant of the wire; it never decides policy.
//! The driver loop is:
//!
//! ```text
//! core = ServerCore::new(config)            // greeting is queued as output at once
//! loop {
//!     write core.take_output() if non-empty   // RFC 2920: flush before blocking on input
//!     if core.should_close() { break }
//!     read some bytes -> core.feed(bytes)  (EOF -> core.feed_eof())
//!     while let Some(event) = core.next_event() {
//!         match event { ... the service answers with core.answer(...) ... }
//!     }
//! }
//! ```
//!
//! `next_event` returns `None` when it needs more input or while an event waits for its
//! answer. Replies the core can give alone (EHLO, NOOP, RSET, HELP, VRFY, QUIT, sequencing
//! errors, syntax errors, size and smuggling refusals) are queued as output without an event.

mod command;
mod data;
mod params;
pub(crate) mod path;
mod reply;
mod server;
mod session;
mod transaction;

#[cfg(test)]
mod tests;

pub use reply::Reply;
pub use server::{
    Answer, AuthParams, BodyType, COMMAND_TIMEOUT, CoreConfig, DATA_BLOCK_TIMEOUT,
    DATA_TERMINATION_TIMEOUT, DsnNotify, DsnRet, Event, JUNK_COMMAND_LIMIT, MAX_AUTH_LINE,
    MAX_BUFFERED_INPUT, MAX_COMMAND_LINE, MAX_DISCARDED_LINE, MailParams, RcptParams, ServerCore,
    SessionInfo,
};
