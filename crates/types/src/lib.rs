//! Validated value types shared by every sealpost crate.
//!
//! Each type is checked when it is built ("parse, don't validate"), so code that holds a
//! `Domain` or an `Address` never re-checks it. Credentials are wrapped in [`Secret`] so that
//! they never reach `Debug` output or logs.
#![forbid(unsafe_code)]

mod address;
pub mod date;
mod ids;
mod mailbox_name;
mod secret;

pub use address::{Address, AddressError, AliasSource, Domain, DomainError};
pub use ids::{AccountId, BlobId, MailboxId, ModSeq, SpecialUse, Uid};
pub use mailbox_name::{MailboxName, MailboxNameError};
pub use secret::Secret;
