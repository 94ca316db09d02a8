//! Sending a delivery status notification (RFC 3464) to the sender of a queued message:
//! into the sender's INBOX when the sender is a local account, else into the queue with
//! the null reverse-path (RFC 3461 §6.2). Used by the scheduler (failures, delays) and by
//! `sealpost queue drop`.

use std::fmt;
use std::sync::Arc;

use rand::Rng;
use sealpost_store::{OutboundEnvelope, OutboundRecipient, QueueEntry, QueueId, Store, StoreError};
use sealpost_types::{AccountId, Address, SpecialUse};

use crate::dsn::{self, DsnError, DsnRecipient, DsnRequest};

/// What became of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notified {
    /// Stored in the INBOX of the local account(s) that receive the sender's mail.
    Delivered { to: String },
    /// Queued for delivery to a remote sender.
    Queued {
        to: String,
        queue_id: Option<QueueId>,
    },
    /// Not sent, and why (a null sender, NOTIFY, a local address nobody receives).
    NotSent(String),
}

impl fmt::Display for Notified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notified::Delivered { to } => write!(f, "bounce delivered to {to}"),
            Notified::Queued {
                to,
                queue_id: Some(id),
            } => write!(f, "bounce queued to {to} as queue entry {id}"),
            Notified::Queued { to, queue_id: None } => write!(f, "bounce queued to {to}"),
            Notified::NotSent(reason) => write!(f, "no bounce: {reason}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dsn(#[from] DsnError),
    #[error("the account of {0} has no INBOX")]
    NoInbox(String),
}

/// Sends the sender of `entry` a report about `recipients` (already filtered by what their
/// NOTIFY asked for, RFC 3461 §4.1), with `original` returned as RET says (RFC 3461
/// §4.3). Never to the null reverse-path (RFC 5321 §4.5.5).
pub async fn notify_sender(
    store: &dyn Store,
    hostname: &str,
    entry: &QueueEntry,
    recipients: &[DsnRecipient],
    original: &[u8],
    now: i64,
) -> Result<Notified, NotifyError> {
    // RFC 3461 §6.2 / RFC 5321 §4.5.5: never a report to <> (a report is never reported on).
    let sender = match entry.from.as_deref() {
        Some(sender) if !dsn::must_not_bounce(Some(sender)) => sender,
        _ => return Ok(Notified::NotSent("the sender is <>".to_string())),
    };
    if recipients.is_empty() {
        return Ok(Notified::NotSent(
            "no recipient asked for one (NOTIFY)".to_string(),
        ));
    }
    let unique = format!(
        "dsn.{}.{now}.{:08x}",
        entry.queue_id,
        rand::rng().random::<u32>()
    );
    // RFC 8689 §5: a report on a REQUIRETLS message returns the header only, and travels
    // under REQUIRETLS itself.
    let ret = if entry.require_tls {
        Some("HDRS")
    } else {
        entry.ret.as_deref()
    };
    let report = dsn::build(&DsnRequest {
        reporting_mta: hostname,
        sender,
        envid: entry.envid.as_deref(),
        ret,
        arrival: entry.created,
        now,
        unique: &unique,
        recipients,
        original,
    })?;

    let address = Address::parse(sender).ok();
    let accounts = match &address {
        Some(address) => store.resolve_recipient(address).await?,
        None => Vec::new(),
    };
    if !accounts.is_empty() {
        deliver_locally(store, sender, &accounts, report, now).await?;
        return Ok(Notified::Delivered {
            to: sender.to_string(),
        });
    }
    if let Some(address) = &address
        && store.domain(address.domain()).await?.is_some()
    {
        return Ok(Notified::NotSent(format!(
            "nobody receives mail for {sender} here any more"
        )));
    }
    // RFC 3461 §6.2: the report goes out with the null reverse-path.
    let envelope = OutboundEnvelope {
        from: None,
        recipients: vec![OutboundRecipient::new(sender)],
        require_tls: entry.require_tls,
        ..OutboundEnvelope::default()
    };
    let accepted = store
        .accept_message(Arc::from(report), now, &[], Some(envelope))
        .await?;
    Ok(Notified::Queued {
        to: sender.to_string(),
        queue_id: accepted.queued,
    })
}

/// Stores the report in the INBOX of each local account that receives the sender's mail,
/// as a delivery over SMTP would.
async fn deliver_locally(
    store: &dyn Store,
    sender: &str,
    accounts: &[AccountId],
    report: Vec<u8>,
    now: i64,
) -> Result<(), NotifyError> {
    let mut targets = Vec::with_capacity(accounts.len());
    for account in accounts {
        let inbox = store
            .mailbox_by_special_use(*account, SpecialUse::Inbox)
            .await?
            .ok_or_else(|| NotifyError::NoInbox(sender.to_string()))?;
        targets.push((inbox.id, Vec::new()));
    }
    // RFC 5321 §4.4: the delivering MTA records the reverse-path, here the null one.
    let mut raw = b"Return-Path: <>\r\n".to_vec();
    raw.extend_from_slice(&report);
    store.deliver(Arc::from(raw), now, &targets).await?;
    Ok(())
}
