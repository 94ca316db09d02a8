//! Tests of the client core without sockets. Every scripted transcript runs through
//! [`harness::transcript`], which replays it with the server's bytes split at every chunk
//! size and checks that output, events, call results and timeouts never change.

mod end_to_end;
mod harness;
mod limits;
mod props;
mod session;
mod transaction;
