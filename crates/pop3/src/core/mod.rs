//! The sans-IO POP3 server core (RFC 1939, RFC 2449, RFC 2595, RFC 3206, RFC 5034).
//!
//! The core owns framing (command lines, their limits, AUTH continuation lines), the states
//! AUTHORIZATION / TRANSACTION / UPDATE, the maildrop's numbering and deletion marks, the
//! dot-stuffing of message content and every security invariant of the wire (no credentials
//! before TLS, nothing pipelined after STLS executed, no attacker bytes reflected). It never
//! decides policy: passwords, locks and message bytes come from the service.
//!
//! ```text
//! core = ServerCore::new(config)              // greeting queued as output
//! loop {
//!     write core.take_output() if non-empty     // before blocking on input (PIPELINING)
//!     if core.should_close() { break }
//!     read some bytes -> core.feed(bytes)     (EOF -> core.feed_eof())
//!     while let Some(event) = core.next_event() {
//!         match event {
//!             StartTls => { write output; upgrade; core.tls_started() }
//!             Retrieve { .. } => { core.answer(MessageFollows);
//!                                  for piece in message { core.message_data(piece);
//!                                                         write core.take_output() }
//!                                  core.message_end() }
//!             other => core.answer(...)
//!         }
//!     }
//! }
//! ```
//!
//! STAT, LIST, UIDL, DELE, RSET, NOOP, CAPA and every refusal are answered by the core alone.

mod command;
mod encoder;
mod maildrop;
mod response;
mod server;
mod session;

#[cfg(test)]
mod tests;

pub use encoder::{Counter, MessageEncoder, Sink, wire_size};
pub use maildrop::{Maildrop, MaildropEntry};
pub use response::RespCode;
pub use server::{
    Answer, AuthAbort, CoreConfig, Event, MAX_AUTH_COMMAND_LINE, MAX_AUTH_LINE, MAX_BUFFERED_INPUT,
    MAX_COMMAND_LINE, MAX_DISCARDED_LINE, MAX_NOOPS_BEFORE_LOGIN, ServerCore,
};
