//! Outbound delivery (issue 6): what happens to a message after the store accepted it for
//! remote recipients — DKIM signing before it leaves, delivery status notifications (bounces,
//! RFC 3464) when it cannot, and (next) the scheduler that drives the SMTP client core
//! (`sealpost_smtp::client`) to each destination's MX hosts.
#![forbid(unsafe_code)]

pub mod dkim;
pub mod dsn;
