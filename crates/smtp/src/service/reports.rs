//! Delivery status notifications for local recipients (RFC 3461, RFC 3464).
//!
//! Remote recipients get their reports from the outbound queue. A local recipient's fate is
//! known as soon as the message is committed: it is in the mailbox, or (rarely: the account
//! was deleted meanwhile, or its mailbox could not be written) it is not, although the client
//! already got its 250. Either may call for a report to the sender. The report itself (an
//! RFC 3464 message, into the sender's INBOX or the queue) is built by the queue's code,
//! which this crate cannot use (the queue depends on it); so the service hands the outcome to
//! a [`DeliveryReports`] given by the binary.

use std::sync::Arc;

use async_trait::async_trait;

use super::recipients::{LocalRecipient, Transaction};
use crate::core::{DsnNotify, DsnRet};

/// What became of one local recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalOutcome {
    /// Stored in the mailbox of every account the address resolves to.
    Delivered,
    /// Not stored (for at least one of its accounts), and never will be.
    Failed {
        /// RFC 3463 enhanced status code, class 5.
        status: &'static str,
        /// Why, in a few words.
        reason: &'static str,
    },
}

/// One local recipient of a message, with its RFC 3461 parameters as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDelivery {
    /// The forward-path as given in RCPT TO (canonical form).
    pub address: String,
    /// RFC 3461 NOTIFY as received ("SUCCESS,FAILURE", "NEVER"), or `None`; the same text the
    /// queue keeps for remote recipients.
    pub notify: Option<String>,
    /// RFC 3461 ORCPT as "rfc822;addr", or `None`.
    pub orcpt: Option<String>,
    pub outcome: LocalOutcome,
}

/// Everything a report about a message's local recipients needs.
#[derive(Debug, Clone)]
pub struct LocalDeliveries {
    /// The reverse-path, to whom a report goes; never the null one (RFC 3461 §6.2).
    pub sender: String,
    /// RFC 3461 ENVID as received (xtext).
    pub envid: Option<String>,
    /// RFC 3461 RET as received ("FULL" or "HDRS").
    pub ret: Option<String>,
    /// Unix seconds when the message was accepted.
    pub arrival: i64,
    /// Every local recipient, in the order given; the receiver picks those whose NOTIFY
    /// asks for a report of their outcome (RFC 3461 §4.1).
    pub recipients: Vec<LocalDelivery>,
    /// The message as stored.
    pub message: Arc<[u8]>,
}

/// Sends the delivery reports that local recipients call for. Implemented by the binary over
/// the queue's report builder.
#[async_trait]
pub trait DeliveryReports: Send + Sync {
    /// Called after the commit, before the 250, only when some recipient may want a report
    /// (see [`may_want_report`]). Best effort: a report that cannot be sent is logged, the
    /// message stays accepted.
    async fn local_deliveries(&self, deliveries: LocalDeliveries);
}

/// The NOTIFY parameter as the queue keeps it ("SUCCESS,FAILURE", "NEVER").
pub(super) fn notify_text(notify: &DsnNotify) -> String {
    if notify.never {
        return "NEVER".to_string();
    }
    let mut parts = Vec::new();
    if notify.success {
        parts.push("SUCCESS");
    }
    if notify.failure {
        parts.push("FAILURE");
    }
    if notify.delay {
        parts.push("DELAY");
    }
    parts.join(",")
}

pub(super) fn ret_text(ret: DsnRet) -> String {
    match ret {
        DsnRet::Full => "FULL".to_string(),
        DsnRet::Headers => "HDRS".to_string(),
    }
}

/// Whether this outcome may call for a report. RFC 3461 §4.1: SUCCESS asks for one on
/// delivery, FAILURE on failure, NEVER for none; without NOTIFY a failure is reported.
pub fn may_want_report(notify: Option<&DsnNotify>, outcome: &LocalOutcome) -> bool {
    match (outcome, notify) {
        (LocalOutcome::Delivered, Some(notify)) => notify.success,
        (LocalOutcome::Delivered, None) => false,
        (LocalOutcome::Failed { .. }, Some(notify)) => notify.failure,
        (LocalOutcome::Failed { .. }, None) => true,
    }
}

/// The outcome of each local recipient, given what was stored: `delivered_to(account)`
/// says whether the account's copy is in its mailbox.
pub(super) fn outcomes(
    local: &[LocalRecipient],
    delivered_to: impl Fn(sealpost_types::AccountId) -> Option<bool>,
) -> Vec<(LocalDelivery, Option<DsnNotify>)> {
    local
        .iter()
        .map(|recipient| {
            let mut outcome = LocalOutcome::Delivered;
            for account in &recipient.accounts {
                match delivered_to(*account) {
                    Some(true) => {}
                    // RFC 3463 §3.2: 5.1.1, the mailbox does not exist (any more).
                    None => {
                        outcome = LocalOutcome::Failed {
                            status: "5.1.1",
                            reason: "the mailbox was removed before the message was stored",
                        };
                    }
                    // RFC 3463 §3.3: 5.2.0, other mailbox status.
                    Some(false) => {
                        outcome = LocalOutcome::Failed {
                            status: "5.2.0",
                            reason: "the message could not be stored in the mailbox",
                        };
                    }
                }
            }
            let delivery = LocalDelivery {
                address: recipient.address.clone(),
                notify: recipient.params.notify.as_ref().map(notify_text),
                orcpt: recipient
                    .params
                    .orcpt
                    .as_ref()
                    .map(|(kind, address)| format!("{kind};{address}")),
                outcome,
            };
            (delivery, recipient.params.notify)
        })
        .collect()
}

/// The request for [`DeliveryReports::local_deliveries`], when one is due.
pub(super) fn due(
    transaction: &Transaction,
    outcomes: Vec<(LocalDelivery, Option<DsnNotify>)>,
    arrival: i64,
    message: &Arc<[u8]>,
) -> Option<LocalDeliveries> {
    // RFC 3461 §6.2 / RFC 5321 §4.5.5: never a report to the null reverse-path.
    let sender = transaction.from.clone().filter(|from| !from.is_empty())?;
    if !outcomes
        .iter()
        .any(|(delivery, notify)| may_want_report(notify.as_ref(), &delivery.outcome))
    {
        return None;
    }
    Some(LocalDeliveries {
        sender,
        envid: transaction.params.envid.clone(),
        ret: transaction.params.ret.map(ret_text),
        arrival,
        recipients: outcomes.into_iter().map(|(delivery, _)| delivery).collect(),
        message: Arc::clone(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::RcptParams;
    use sealpost_types::AccountId;

    fn notify(success: bool, failure: bool) -> DsnNotify {
        DsnNotify {
            success,
            failure,
            ..DsnNotify::default()
        }
    }

    #[test]
    fn notify_decides_which_outcomes_are_reported() {
        let failed = LocalOutcome::Failed {
            status: "5.2.0",
            reason: "x",
        };
        let delivered = LocalOutcome::Delivered;
        assert!(!may_want_report(None, &delivered));
        assert!(may_want_report(None, &failed));
        assert!(may_want_report(Some(&notify(true, false)), &delivered));
        assert!(!may_want_report(Some(&notify(true, false)), &failed));
        assert!(!may_want_report(Some(&notify(false, true)), &delivered));
        let never = DsnNotify {
            never: true,
            ..DsnNotify::default()
        };
        assert!(!may_want_report(Some(&never), &failed));
        assert_eq!(notify_text(&never), "NEVER");
        assert_eq!(notify_text(&notify(true, true)), "SUCCESS,FAILURE");
    }

    #[test]
    fn a_recipient_is_delivered_only_when_every_account_got_it() {
        let local = vec![
            LocalRecipient {
                address: "team@x.example".to_string(),
                accounts: vec![AccountId(1), AccountId(2)],
                params: RcptParams {
                    notify: Some(notify(true, true)),
                    orcpt: Some(("rfc822".to_string(), "team@x.example".to_string())),
                },
            },
            LocalRecipient {
                address: "a@x.example".to_string(),
                accounts: vec![AccountId(1)],
                params: RcptParams::default(),
            },
        ];
        let outcomes = outcomes(&local, |account| match account.0 {
            1 => Some(true),
            _ => None,
        });
        assert!(matches!(
            outcomes[0].0.outcome,
            LocalOutcome::Failed {
                status: "5.1.1",
                ..
            }
        ));
        assert_eq!(outcomes[0].0.notify.as_deref(), Some("SUCCESS,FAILURE"));
        assert_eq!(
            outcomes[0].0.orcpt.as_deref(),
            Some("rfc822;team@x.example")
        );
        assert_eq!(outcomes[1].0.outcome, LocalOutcome::Delivered);

        let message: Arc<[u8]> = Arc::from(&b"x"[..]);
        let mut transaction = Transaction {
            from: Some("s@x.example".to_string()),
            ..Transaction::default()
        };
        assert!(due(&transaction, outcomes.clone(), 0, &message).is_some());
        transaction.from = None;
        assert!(due(&transaction, outcomes, 0, &message).is_none());
    }
}
