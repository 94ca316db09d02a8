//! Core tests without sockets: scripted sessions replayed at every chunk size, the
//! SECURITY-TESTS cases that concern the core, and property tests.

mod harness;
mod props;
mod security;
mod sessions;
