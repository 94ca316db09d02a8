//! SMTP for sealpost: a sans-IO server core ([`core`]) and the service that drives it over a
//! [`sealpost_net::Connection`] and answers its events from the store ([`service`]); a
//! sans-IO client core ([`client`]) for delivering to other servers.
#![forbid(unsafe_code)]

pub mod client;
pub mod core;
pub mod service;
