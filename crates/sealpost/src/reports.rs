//! Delivery reports for the local recipients of a message (RFC 3461 §6.2.1, RFC 3464): the
//! SMTP service's [`DeliveryReports`] hook, built with the queue's report builder and sent as
//! the queue sends its own (into the sender's INBOX when the sender is local, else queued with
//! the null reverse-path). The SMTP crate cannot do this itself: the queue depends on it.

use std::sync::Arc;

use async_trait::async_trait;
use sealpost_queue::dsn::{self, Action, Diagnostic, DsnRecipient};
use sealpost_queue::notify::notify_sender;
use sealpost_smtp::service::{DeliveryReports, LocalDeliveries, LocalOutcome};
use sealpost_store::{QueueEntry, QueueId, Store};
use sealpost_types::BlobId;
use sealpost_types::date::unix_now;

/// Sends local delivery reports through the store, as the queue sends its bounces.
// Built in serve.rs (`handlers`) once wired there; until then only the tests use it.
pub struct QueueReports {
    hostname: String,
    store: Arc<dyn Store>,
}

impl QueueReports {
    /// Reports signed as `hostname` (`Reporting-MTA`, the report's From and Message-ID).
    pub fn new(hostname: &str, store: Arc<dyn Store>) -> QueueReports {
        QueueReports {
            hostname: hostname.to_string(),
            store,
        }
    }
}

/// The report line of one recipient, if its NOTIFY asks for one (RFC 3461 §4.1).
fn report_line(
    address: &str,
    orcpt: Option<&str>,
    notify: Option<&str>,
    outcome: &LocalOutcome,
    now: i64,
) -> Option<DsnRecipient> {
    let (action, status, diagnostic) = match outcome {
        // RFC 3464 §2.3.3: `delivered`, the message reached the recipient's mailbox.
        LocalOutcome::Delivered => (
            Action::Delivered,
            "2.0.0",
            "delivered to the mailbox".to_string(),
        ),
        LocalOutcome::Failed { status, reason } => (Action::Failed, *status, reason.to_string()),
    };
    if !dsn::wants_report(notify, action) {
        return None;
    }
    Some(DsnRecipient {
        address: address.to_string(),
        orcpt: orcpt.map(str::to_string),
        action,
        status: status.to_string(),
        remote_mta: None,
        diagnostic: Some(Diagnostic::Local(diagnostic)),
        last_attempt: Some(now),
        will_retry_until: None,
    })
}

#[async_trait]
impl DeliveryReports for QueueReports {
    async fn local_deliveries(&self, deliveries: LocalDeliveries) {
        let now = unix_now();
        let recipients: Vec<DsnRecipient> = deliveries
            .recipients
            .iter()
            .filter_map(|recipient| {
                report_line(
                    &recipient.address,
                    recipient.orcpt.as_deref(),
                    recipient.notify.as_deref(),
                    &recipient.outcome,
                    now,
                )
            })
            .collect();
        if recipients.is_empty() {
            return;
        }
        // `notify_sender` takes what a queue entry knows of a message; this one was never
        // queued, so it has no queue id (0) and no blob of its own.
        let entry = QueueEntry {
            queue_id: QueueId(0),
            blob: BlobId([0; 32]),
            from: Some(deliveries.sender.clone()),
            ret: deliveries.ret.clone(),
            envid: deliveries.envid.clone(),
            submitted_by: None,
            created: deliveries.arrival,
            size: deliveries.message.len() as u64,
            delay_reported: false,
            require_tls: false,
        };
        match notify_sender(
            self.store.as_ref(),
            &self.hostname,
            &entry,
            &recipients,
            &deliveries.message,
            now,
        )
        .await
        {
            Ok(notified) => {
                tracing::info!(sender = %deliveries.sender, "delivery report: {notified}")
            }
            Err(error) => {
                tracing::error!(sender = %deliveries.sender, %error, "cannot send the delivery report")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealpost_smtp::service::LocalDelivery;
    use sealpost_store::sqlite::SqliteStore;
    use sealpost_types::{Address, Domain, SpecialUse};

    async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        store
            .add_domain(&Domain::parse("test.example").unwrap(), Vec::new())
            .await
            .unwrap();
        for user in ["alice@test.example", "bob@test.example"] {
            store
                .add_account(&Address::parse(user).unwrap(), "$argon2id$x")
                .await
                .unwrap();
        }
        (dir, store)
    }

    async fn inbox(store: &dyn Store, user: &str) -> Vec<String> {
        let account = store
            .account(&Address::parse(user).unwrap())
            .await
            .unwrap()
            .unwrap();
        let inbox = store
            .mailbox_by_special_use(account.id, SpecialUse::Inbox)
            .await
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        for meta in store.messages(inbox.id).await.unwrap() {
            let raw = store.read_blob(&meta.blob).await.unwrap();
            out.push(String::from_utf8(raw).unwrap());
        }
        out
    }

    fn deliveries(notify: Option<&str>, outcome: LocalOutcome) -> LocalDeliveries {
        LocalDeliveries {
            sender: "alice@test.example".to_string(),
            envid: Some("env+2B1".to_string()),
            ret: None,
            arrival: 1_700_000_000,
            recipients: vec![LocalDelivery {
                address: "bob@test.example".to_string(),
                notify: notify.map(str::to_string),
                orcpt: Some("rfc822;bob@test.example".to_string()),
                outcome,
            }],
            message: Arc::from(
                &b"From: alice@test.example\r\nSubject: hello\r\n\r\nsecret body\r\n"[..],
            ),
        }
    }

    #[tokio::test]
    async fn notify_success_gives_the_sender_a_delivered_report() {
        let (_dir, store) = store().await;
        let reports = QueueReports::new("mail.test.example", Arc::clone(&store));
        reports
            .local_deliveries(deliveries(Some("SUCCESS"), LocalOutcome::Delivered))
            .await;
        let inbox = inbox(&*store, "alice@test.example").await;
        assert_eq!(inbox.len(), 1);
        let report = &inbox[0];
        assert!(report.starts_with("Return-Path: <>\r\n"), "{report}");
        assert!(report.contains("report-type=delivery-status"), "{report}");
        assert!(
            report.contains("Original-Envelope-Id: env+1\r\n"),
            "{report}"
        );
        assert!(
            report.contains("Reporting-MTA: dns; mail.test.example\r\n"),
            "{report}"
        );
        assert!(
            report.contains("Final-Recipient: rfc822; bob@test.example\r\n"),
            "{report}"
        );
        assert!(
            report.contains("Action: delivered\r\nStatus: 2.0.0\r\n"),
            "{report}"
        );
        // RFC 3461 §4.3: a success report returns the header only.
        assert!(report.contains("Subject: hello"), "{report}");
        assert!(!report.contains("secret body"), "{report}");
    }

    #[tokio::test]
    async fn no_report_unless_notify_asks_for_it() {
        let (_dir, store) = store().await;
        let reports = QueueReports::new("mail.test.example", Arc::clone(&store));
        for notify in [None, Some("FAILURE,DELAY"), Some("NEVER")] {
            reports
                .local_deliveries(deliveries(notify, LocalOutcome::Delivered))
                .await;
        }
        let failed = LocalOutcome::Failed {
            status: "5.1.1",
            reason: "the mailbox was removed before the message was stored",
        };
        reports
            .local_deliveries(deliveries(Some("NEVER"), failed.clone()))
            .await;
        assert!(inbox(&*store, "alice@test.example").await.is_empty());

        // RFC 3461 §4.1: without NOTIFY a failure is reported.
        reports.local_deliveries(deliveries(None, failed)).await;
        let inbox = inbox(&*store, "alice@test.example").await;
        assert_eq!(inbox.len(), 1);
        assert!(
            inbox[0].contains("Action: failed\r\nStatus: 5.1.1\r\n"),
            "{}",
            inbox[0]
        );
    }
}
