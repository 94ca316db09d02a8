//! The sans-IO SMTP client core (RFC 5321 §3, §4 from the sending side): what the outbound
//! queue drives to hand a message to a remote MX (or to a local receiving instance in tests).
//!
//! The core owns reply framing (multi-line replies, enhanced status codes, limits), command
//! sequencing (greeting, EHLO with the HELO fallback, STARTTLS, PIPELINING, RSET between
//! transactions), the DATA encoding (CRLF line endings, dot-stuffing, the terminator) and the
//! security invariants of the wire: nothing the server sent before the TLS handshake is
//! trusted after it (RFC 3207 §4.2), a server that never ends a line or a reply cannot grow
//! memory, and no envelope value can inject a command line. It never decides policy (use
//! STARTTLS? deliver without TLS? retry where?): it emits an event and the caller answers by
//! calling [`ClientCore::start_tls`], [`ClientCore::send`] or [`ClientCore::quit`].
//! The driver loop is:
//!
//! ```text
//! core = ClientCore::new(config)?            // waits for the 220 greeting; no output yet
//! loop {
//!     loop {                                 // a body is produced in ~64 KiB pieces
//!         out = core.take_output()
//!         if out.is_empty() { break }
//!         write out                          // each write within core.timeout()
//!     }
//!     if core.should_close() { break }
//!     read some bytes within core.timeout()  // None: no reply is awaited
//!         -> core.feed(bytes)   (EOF -> core.feed_eof(); timeout -> core.timed_out())
//!     while let Some(event) = core.next_event() {
//!         match event {
//!             Ready { extensions, tls_active } => core.start_tls() / core.send(..) / core.quit()
//!             UpgradeTls => { flush output; TLS handshake (drop the driver's read buffer);
//!                             core.tls_started() }
//!             StartTlsRefused(reply) => policy: send in plaintext, or quit
//!             Transaction(result) => record result.outcomes(); core.send(..) again or quit
//!             Closed(end) => the session is over (the loop ends at should_close)
//!         }
//!     }
//! }
//! ```
//!
//! `next_event` returns `None` when more input is needed or the core waits for the caller.
//! Every event is final: the core never waits for an answer to an event, only for the next
//! call. The caller may call `send`, `start_tls` or `quit` only while the core is idle
//! ([`ClientCore::is_idle`]): after `Ready`, `StartTlsRefused` or a `Transaction` that was
//! not followed by `Closed`.
//!
//! Memory: the message body is shared ([`MessageBody`] holds an `Arc`), never copied whole;
//! its wire form is produced on demand, at most [`BODY_CHUNK`] octets per `take_output`.

mod body;
mod envelope;
mod extensions;
mod reply;
mod session;
mod transaction;

#[cfg(test)]
mod tests;

pub use crate::core::{DsnNotify, DsnRet, Reply};
pub use envelope::{Envelope, MessageBody, Recipient, SendError};
pub use extensions::Extensions;
pub use reply::{MAX_REPLY_LINE, MAX_REPLY_LINES, ProtocolError};
pub use session::{
    BODY_CHUNK, COMMAND_TIMEOUT, ClientConfig, ClientCore, ConfigError, DATA_BLOCK_TIMEOUT,
    DATA_INITIATION_TIMEOUT, DATA_TERMINATION_TIMEOUT, Event, GREETING_TIMEOUT, MAIL_TIMEOUT,
    MAX_BUFFERED_INPUT, RCPT_TIMEOUT, SessionEnd, UsageError,
};
pub use transaction::{RecipientOutcome, TransactionResult};
