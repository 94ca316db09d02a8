//! Tests of the whole core, without sockets. Every transcript runs through
//! [`harness::transcript`], which replays it with the client's bytes split at every chunk
//! size and checks that output, events and final state never change.

mod authorization;
mod harness;
mod limits;
mod props;
mod transaction;
