//! Outbound delivery (issue 6): what happens to a message after the store accepted it for
//! remote recipients — DKIM signing before it leaves, delivery status notifications (bounces,
//! RFC 3464) when it cannot, and [`deliver`]: one delivery attempt of one message to one
//! destination's MX hosts, driving the SMTP client core (`sealpost_smtp::client`) over TCP
//! and STARTTLS. The scheduler that queues, retries and bounces comes next.
#![forbid(unsafe_code)]

pub mod deliver;
pub mod dkim;
pub mod dsn;
pub mod mta_sts;
pub mod notify;
pub mod route;
pub mod scheduler;
