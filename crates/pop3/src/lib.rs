//! POP3 for sealpost: a sans-IO server core ([`core`]) and the service that drives it over a
//! [`sealpost_net::Connection`] and answers its events from the store ([`service`]).
//!
//! The maildrop is the account's INBOX, shared with IMAP: messages are numbered from 1 at
//! login, unique-ids are `<UIDVALIDITY>.<UID>`, and messages marked with DELE are expunged
//! (durably, visible to IMAP sessions) only when QUIT moves the session to the UPDATE state.
#![forbid(unsafe_code)]

pub mod core;
pub mod service;
