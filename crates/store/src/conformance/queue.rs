//! The outbound queue as the scheduler and `sealpost queue` use it: what is due, recording
//! attempts, flushing, dropping an entry.

use super::*;
use crate::{
    DmarcReportRow, DueMessage, EntryRecipient, OutboundEnvelope, OutboundRecipient, QueueId,
    RecipientResult, RecipientStatus, TlsSessions,
};

/// Queues `raw` for `recipients` (remote only); returns the entry.
async fn enqueue(
    store: &dyn Store,
    raw: Arc<[u8]>,
    from: Option<&str>,
    recipients: &[&str],
) -> QueueId {
    store
        .accept_message(raw, 1, &[], Some(envelope(from, recipients)))
        .await
        .unwrap()
        .queued
        .expect("a queue entry")
}

fn addresses(recipients: &[EntryRecipient]) -> Vec<&str> {
    recipients.iter().map(|r| r.address.as_str()).collect()
}

fn ids(due: &[DueMessage]) -> Vec<QueueId> {
    due.iter().map(|d| d.entry.queue_id).collect()
}

fn deferred(next_attempt: i64, error: &str) -> RecipientResult {
    RecipientResult::Deferred {
        next_attempt,
        error: error.into(),
    }
}

fn failed(error: &str) -> RecipientResult {
    RecipientResult::Failed {
        error: error.into(),
    }
}

fn result(address: &str, outcome: RecipientResult) -> (String, RecipientResult) {
    (address.to_string(), outcome)
}

pub async fn queue_due_oldest_first_with_envelopes(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    assert!(
        store.due(unix_now() + 1, 10).await.unwrap().is_empty(),
        "empty"
    );
    let before = unix_now();
    let first = store
        .accept_message(
            message(0),
            1,
            &[],
            Some(OutboundEnvelope {
                from: Some("alice@example.org".into()),
                recipients: vec![
                    OutboundRecipient {
                        address: "a@remote.example".into(),
                        notify: Some("FAILURE,DELAY".into()),
                        orcpt: Some("rfc822;A@remote.example".into()),
                    },
                    OutboundRecipient::new("b@remote.example"),
                ],
                ret: Some("HDRS".into()),
                envid: Some("ENV-1".into()),
                submitted_by: Some(alice),
                require_tls: false,
            }),
        )
        .await
        .unwrap()
        .queued
        .unwrap();
    let second = enqueue(store, message(1), None, &["c@remote.example"]).await;
    let third = enqueue(store, message(2), None, &["d@remote.example"]).await;
    let now = unix_now() + 1;

    let due = store.due(now, 10).await.unwrap();
    assert_eq!(ids(&due), [first, second, third], "oldest first");
    let entry = &due[0].entry;
    assert_eq!(entry.blob, blob_of(&message(0)));
    assert_eq!(entry.from.as_deref(), Some("alice@example.org"));
    assert_eq!(entry.ret.as_deref(), Some("HDRS"));
    assert_eq!(entry.envid.as_deref(), Some("ENV-1"));
    assert_eq!(entry.submitted_by, Some(alice));
    assert_eq!(entry.size, message(0).len() as u64);
    assert!((before..=now).contains(&entry.created), "{entry:?}");
    assert_eq!(
        due[0].recipients[0],
        EntryRecipient {
            address: "a@remote.example".into(),
            notify: Some("FAILURE,DELAY".into()),
            orcpt: Some("rfc822;A@remote.example".into()),
            status: RecipientStatus::Queued,
            attempts: 0,
            next_attempt: entry.created,
            last_error: None,
        }
    );
    assert_eq!(
        addresses(&due[0].recipients),
        ["a@remote.example", "b@remote.example"]
    );
    assert_eq!(due[1].entry.from, None, "<> stays None");
    assert_eq!(due[1].entry.submitted_by, None);
    assert_eq!(addresses(&due[1].recipients), ["c@remote.example"]);
    // The blob is there to be read while the entry is.
    assert_eq!(
        &store.read_blob(&due[2].entry.blob).await.unwrap()[..],
        &message(2)[..]
    );

    // A limit counts messages, not recipients.
    assert_eq!(ids(&store.due(now, 2).await.unwrap()), [first, second]);
    assert!(store.due(now, 0).await.unwrap().is_empty());
    // Nothing is due before it was queued.
    assert!(store.due(before - 1, 10).await.unwrap().is_empty());

    // A recipient deferred to later is left out until its time; its message still comes
    // for the other one.
    let later = now + 3600;
    store
        .record_attempt(
            first,
            &[result(
                "a@remote.example",
                deferred(later, "451 4.4.1 try later"),
            )],
        )
        .await
        .unwrap();
    let due = store.due(now, 10).await.unwrap();
    assert_eq!(ids(&due), [first, second, third]);
    assert_eq!(addresses(&due[0].recipients), ["b@remote.example"]);
    let due = store.due(later, 10).await.unwrap();
    assert_eq!(
        addresses(&due[0].recipients),
        ["a@remote.example", "b@remote.example"]
    );
    assert_eq!(due[0].recipients[0].attempts, 1);
    assert_eq!(due[0].recipients[0].next_attempt, later);
    assert_eq!(
        due[0].recipients[0].last_error.as_deref(),
        Some("451 4.4.1 try later")
    );
    // Once b is delivered the message waits for a alone: not due before `later`.
    store
        .record_attempt(
            first,
            &[result("b@remote.example", RecipientResult::Delivered)],
        )
        .await
        .unwrap();
    assert_eq!(ids(&store.due(now, 10).await.unwrap()), [second, third]);
    let due = store.due(later, 10).await.unwrap();
    assert_eq!(ids(&due), [first, second, third]);
    assert_eq!(addresses(&due[0].recipients), ["a@remote.example"]);
}

pub async fn queue_record_attempt_counts_and_settles(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let raw = message(1);
    let id = enqueue(
        store,
        raw.clone(),
        Some("alice@example.org"),
        &["x@remote.example", "Y@remote.example", "z@remote.example"],
    )
    .await;
    let now = unix_now();

    let outcome = store
        .record_attempt(
            id,
            &[
                result(
                    "x@remote.example",
                    deferred(now + 600, "451 4.4.1 no answer"),
                ),
                result("Y@remote.example", RecipientResult::Delivered),
            ],
        )
        .await
        .unwrap();
    assert_eq!(outcome.still_queued, 2);
    assert_eq!(outcome.finished, None);
    let queue = store.queued().await.unwrap();
    let listed: Vec<(&str, u32, i64, Option<&str>)> = queue
        .iter()
        .map(|q| {
            (
                q.recipient.as_str(),
                q.attempts,
                q.next_attempt,
                q.last_error.as_deref(),
            )
        })
        .collect();
    let created = queue[0].created;
    assert_eq!(
        listed,
        [
            (
                "x@remote.example",
                1,
                now + 600,
                Some("451 4.4.1 no answer")
            ),
            ("z@remote.example", 0, created, None),
        ],
        "the delivered recipient is no longer listed"
    );

    // Results for settled or unknown addresses change nothing (the address is matched as
    // it was given).
    let outcome = store
        .record_attempt(
            id,
            &[
                result("Y@remote.example", failed("550 late")),
                result("y@remote.example", RecipientResult::Delivered),
                result("nobody@remote.example", RecipientResult::Delivered),
            ],
        )
        .await
        .unwrap();
    assert_eq!(outcome.still_queued, 2);
    assert_eq!(outcome.finished, None);

    // The last queued recipients settle: the entry goes, and all of it comes back.
    let outcome = store
        .record_attempt(
            id,
            &[
                result("x@remote.example", failed("550 5.1.1 no such user")),
                result("z@remote.example", RecipientResult::Delivered),
            ],
        )
        .await
        .unwrap();
    assert_eq!(outcome.still_queued, 0);
    let finished = outcome.finished.expect("the entry is finished");
    assert_eq!(finished.entry.queue_id, id);
    assert_eq!(finished.entry.from.as_deref(), Some("alice@example.org"));
    assert_eq!(finished.entry.blob, blob_of(&raw));
    assert_eq!(finished.entry.size, raw.len() as u64);
    let settled: Vec<(&str, RecipientStatus, u32, Option<&str>)> = finished
        .recipients
        .iter()
        .map(|r| {
            (
                r.address.as_str(),
                r.status,
                r.attempts,
                r.last_error.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        settled,
        [
            (
                "x@remote.example",
                RecipientStatus::Failed,
                2,
                Some("550 5.1.1 no such user")
            ),
            ("Y@remote.example", RecipientStatus::Delivered, 1, None),
            ("z@remote.example", RecipientStatus::Delivered, 1, None),
        ]
    );
    assert_eq!(
        finished.raw.as_deref(),
        Some(&raw[..]),
        "a failure: the bytes for the bounce"
    );
    // Nothing of it is left: not listed, not due, its blob released.
    assert!(store.queued().await.unwrap().is_empty());
    assert!(store.due(now + 100_000, 10).await.unwrap().is_empty());
    let blob = store.read_blob(&blob_of(&raw)).await;
    assert!(matches!(blob, Err(StoreError::NotFound(_))), "{blob:?}");
    let again = store
        .record_attempt(
            id,
            &[result("x@remote.example", RecipientResult::Delivered)],
        )
        .await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");

    // All delivered: finished without the bytes; a mailbox copy keeps the blob.
    let sent = mailbox(store, alice, "Sent").await;
    let raw = message(2);
    let id = store
        .accept_message(
            raw.clone(),
            1,
            &[(sent.id, Vec::new())],
            Some(envelope(Some("alice@example.org"), &["x@remote.example"])),
        )
        .await
        .unwrap()
        .queued
        .unwrap();
    let outcome = store
        .record_attempt(
            id,
            &[result("x@remote.example", RecipientResult::Delivered)],
        )
        .await
        .unwrap();
    let finished = outcome.finished.expect("finished");
    assert_eq!(finished.raw, None);
    assert_eq!(finished.recipients[0].status, RecipientStatus::Delivered);
    assert!(store.queued().await.unwrap().is_empty());
    assert_eq!(
        &store.read_blob(&blob_of(&raw)).await.unwrap()[..],
        &raw[..]
    );

    // A delivery whose recipient asked for a success report (NOTIFY=SUCCESS) keeps the
    // bytes for it too.
    let raw = message(4);
    let id = store
        .accept_message(
            raw.clone(),
            1,
            &[],
            Some(OutboundEnvelope {
                recipients: vec![OutboundRecipient {
                    address: "s@remote.example".into(),
                    notify: Some("failure,success".into()),
                    orcpt: None,
                }],
                ..envelope(Some("alice@example.org"), &[])
            }),
        )
        .await
        .unwrap()
        .queued
        .unwrap();
    let outcome = store
        .record_attempt(
            id,
            &[result("s@remote.example", RecipientResult::Delivered)],
        )
        .await
        .unwrap();
    assert_eq!(outcome.finished.unwrap().raw.as_deref(), Some(&raw[..]));

    // An attempt that names nobody still answers with the count.
    let id = enqueue(store, message(3), None, &["w@remote.example"]).await;
    let outcome = store.record_attempt(id, &[]).await.unwrap();
    assert_eq!(outcome.still_queued, 1);
    assert_eq!(outcome.finished, None);
}

pub async fn queue_flush_makes_everything_due(store: &dyn Store) {
    assert_eq!(store.flush(unix_now()).await.unwrap(), 0, "empty queue");
    let first = enqueue(
        store,
        message(1),
        None,
        &["a@remote.example", "b@remote.example"],
    )
    .await;
    let second = enqueue(
        store,
        message(2),
        None,
        &["c@remote.example", "d@remote.example"],
    )
    .await;
    let now = unix_now();
    let later = now + 86_400;
    store
        .record_attempt(
            first,
            &[
                result("a@remote.example", deferred(later, "421 4.3.2 busy")),
                result("b@remote.example", deferred(later, "421 4.3.2 busy")),
            ],
        )
        .await
        .unwrap();
    store
        .record_attempt(
            second,
            &[
                result("c@remote.example", RecipientResult::Delivered),
                result("d@remote.example", deferred(later, "no MX answered")),
            ],
        )
        .await
        .unwrap();
    assert!(store.due(now, 10).await.unwrap().is_empty(), "all deferred");

    assert_eq!(
        store.flush(now).await.unwrap(),
        3,
        "the delivered one is not counted"
    );
    let due = store.due(now, 10).await.unwrap();
    assert_eq!(ids(&due), [first, second]);
    assert_eq!(
        addresses(&due[0].recipients),
        ["a@remote.example", "b@remote.example"]
    );
    assert_eq!(addresses(&due[1].recipients), ["d@remote.example"]);
    for recipient in due.iter().flat_map(|d| &d.recipients) {
        assert_eq!(recipient.next_attempt, now);
        assert_eq!(recipient.attempts, 1, "attempts kept");
        assert!(recipient.last_error.is_some(), "errors kept");
    }
    // Already due stays due (a flush never pushes anything later).
    assert_eq!(store.flush(now - 1000).await.unwrap(), 3);
    assert_eq!(store.due(now, 10).await.unwrap().len(), 2);
}

pub async fn queue_drop_entry_returns_what_a_bounce_needs(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    assert_eq!(store.drop_entry(QueueId(4242)).await.unwrap(), None);
    let raw = message(1);
    let id = store
        .accept_message(
            raw.clone(),
            1,
            &[],
            Some(OutboundEnvelope {
                from: Some("alice@example.org".into()),
                recipients: vec![
                    OutboundRecipient {
                        address: "a@remote.example".into(),
                        notify: None,
                        orcpt: Some("rfc822;a@remote.example".into()),
                    },
                    OutboundRecipient::new("b@remote.example"),
                    OutboundRecipient::new("c@remote.example"),
                ],
                ret: Some("FULL".into()),
                envid: Some("E-42".into()),
                submitted_by: Some(alice),
                require_tls: false,
            }),
        )
        .await
        .unwrap()
        .queued
        .unwrap();
    // Another entry on the same bytes is not touched by the drop.
    let other = enqueue(store, raw.clone(), None, &["o@remote.example"]).await;
    let now = unix_now();
    store
        .record_attempt(
            id,
            &[
                result("a@remote.example", deferred(now + 60, "451 greylisted")),
                result("b@remote.example", RecipientResult::Delivered),
            ],
        )
        .await
        .unwrap();

    let dropped = store.drop_entry(id).await.unwrap().expect("dropped");
    assert_eq!(dropped.entry.queue_id, id);
    assert_eq!(dropped.entry.from.as_deref(), Some("alice@example.org"));
    assert_eq!(dropped.entry.ret.as_deref(), Some("FULL"));
    assert_eq!(dropped.entry.envid.as_deref(), Some("E-42"));
    assert_eq!(dropped.entry.submitted_by, Some(alice));
    assert_eq!(dropped.raw, &raw[..]);
    assert_eq!(
        addresses(&dropped.recipients),
        ["a@remote.example", "c@remote.example"],
        "only those still queued"
    );
    assert_eq!(dropped.recipients[0].attempts, 1);
    assert_eq!(
        dropped.recipients[0].orcpt.as_deref(),
        Some("rfc822;a@remote.example")
    );
    assert_eq!(
        dropped.recipients[0].last_error.as_deref(),
        Some("451 greylisted")
    );
    assert!(
        dropped
            .recipients
            .iter()
            .all(|r| r.status == RecipientStatus::Queued)
    );
    let queue = store.queued().await.unwrap();
    assert!(queue.iter().all(|q| q.queue_id == other), "{queue:?}");
    assert_eq!(queue.len(), 1);
    assert_eq!(store.drop_entry(id).await.unwrap(), None, "gone");
    // The other entry still holds the blob; dropping it too releases it.
    assert_eq!(
        &store.read_blob(&blob_of(&raw)).await.unwrap()[..],
        &raw[..]
    );
    let last = store.drop_entry(other).await.unwrap().expect("dropped");
    assert_eq!(last.raw, &raw[..]);
    assert_eq!(addresses(&last.recipients), ["o@remote.example"]);
    let blob = store.read_blob(&blob_of(&raw)).await;
    assert!(matches!(blob, Err(StoreError::NotFound(_))), "{blob:?}");
    assert!(store.queued().await.unwrap().is_empty());
    assert!(store.due(now + 100_000, 10).await.unwrap().is_empty());

    // A mailbox copy keeps the blob after the drop.
    let inbox = mailbox(store, alice, "INBOX").await;
    let raw = message(2);
    let id = store
        .accept_message(
            raw.clone(),
            1,
            &[(inbox.id, Vec::new())],
            Some(envelope(None, &["x@remote.example"])),
        )
        .await
        .unwrap()
        .queued
        .unwrap();
    assert!(store.drop_entry(id).await.unwrap().is_some());
    assert_eq!(
        &store.read_blob(&blob_of(&raw)).await.unwrap()[..],
        &raw[..]
    );
    assert_eq!(uids(store, inbox.id).await, [1]);
}

pub async fn queue_delay_report_claimed_once(store: &dyn Store) {
    assert!(
        !store.claim_delay_report(QueueId(4242)).await.unwrap(),
        "no entry"
    );
    let id = enqueue(
        store,
        message(7),
        Some("alice@example.org"),
        &["a@remote.example"],
    )
    .await;
    let now = unix_now();
    let due = store.due(now, 10).await.unwrap();
    let entry = due.iter().find(|d| d.entry.queue_id == id).expect("due");
    assert!(
        !entry.entry.delay_reported,
        "a new entry has sent no delay report"
    );
    assert!(
        store.claim_delay_report(id).await.unwrap(),
        "the first claim wins"
    );
    assert!(!store.claim_delay_report(id).await.unwrap(), "only once");
    let due = store.due(now, 10).await.unwrap();
    let entry = due
        .iter()
        .find(|d| d.entry.queue_id == id)
        .expect("still due");
    assert!(entry.entry.delay_reported);
    assert_eq!(entry.recipients.len(), 1, "recipients untouched");
}

pub async fn tls_sessions_are_counted_per_day_and_outcome(store: &dyn Store) {
    let session = |day: &str, result: &str, ip: &str, count: u64| TlsSessions {
        day: day.to_string(),
        policy_domain: "remote.example".to_string(),
        policy_type: "sts".to_string(),
        policy_string: vec!["version: STSv1".to_string(), "mode: enforce".to_string()],
        mx_host: "mx.remote.example".to_string(),
        result: result.to_string(),
        receiving_ip: ip.to_string(),
        reason: String::new(),
        count,
    };
    assert!(store.tls_sessions("2026-11-29").await.unwrap().is_empty());
    store
        .record_tls_sessions(vec![
            session("2026-11-29", "success", "", 3),
            session("2026-11-29", "certificate-host-mismatch", "192.0.2.1", 1),
            session("2026-11-30", "success", "", 7),
        ])
        .await
        .unwrap();
    store
        .record_tls_sessions(vec![session("2026-11-29", "success", "", 2)])
        .await
        .unwrap();
    store.record_tls_sessions(Vec::new()).await.unwrap();
    let day = store.tls_sessions("2026-11-29").await.unwrap();
    assert_eq!(
        day.iter()
            .map(|s| (s.result.as_str(), s.receiving_ip.as_str(), s.count))
            .collect::<Vec<_>>(),
        [
            ("certificate-host-mismatch", "192.0.2.1", 1),
            ("success", "", 5)
        ]
    );
    assert_eq!(day[1].policy_string, ["version: STSv1", "mode: enforce"]);
    assert_eq!(store.tls_sessions("2026-11-30").await.unwrap()[0].count, 7);
}

pub async fn dmarc_rows_are_counted_per_day_until_reported(store: &dyn Store) {
    let row = |day: &str, domain: &str, ip: &str, count: u64| DmarcReportRow {
        day: day.to_string(),
        policy_domain: domain.to_string(),
        policy_published: "adkim=r;aspf=r;p=reject;pct=100;rua=mailto:d@example.org".to_string(),
        source_ip: ip.to_string(),
        header_from: domain.to_string(),
        envelope_from: domain.to_string(),
        envelope_to: "local.test".to_string(),
        disposition: "reject".to_string(),
        dkim_aligned: "fail".to_string(),
        spf_aligned: "fail".to_string(),
        override_reason: String::new(),
        dkim_results: String::new(),
        spf_result: format!("{domain} mfrom fail"),
        count,
    };
    assert!(store.dmarc_rows("2026-11-28").await.unwrap().is_empty());
    store
        .record_dmarc(vec![
            row("2026-11-28", "example.org", "192.0.2.1", 1),
            row("2026-11-28", "example.org", "192.0.2.2", 1),
            row("2026-11-28", "example.net", "192.0.2.1", 4),
            row("2026-11-29", "example.org", "192.0.2.1", 1),
        ])
        .await
        .unwrap();
    store
        .record_dmarc(vec![row("2026-11-28", "example.org", "192.0.2.1", 2)])
        .await
        .unwrap();
    store.record_dmarc(Vec::new()).await.unwrap();
    let day = store.dmarc_rows("2026-11-28").await.unwrap();
    assert_eq!(
        day.iter()
            .map(|r| (r.policy_domain.as_str(), r.source_ip.as_str(), r.count))
            .collect::<Vec<_>>(),
        [
            ("example.net", "192.0.2.1", 4),
            ("example.org", "192.0.2.1", 3),
            ("example.org", "192.0.2.2", 1),
        ]
    );
    assert_eq!(day[1], row("2026-11-28", "example.org", "192.0.2.1", 3));
    assert_eq!(
        store.dmarc_days_before("2026-11-30").await.unwrap(),
        ["2026-11-28", "2026-11-29"]
    );
    assert_eq!(
        store.dmarc_days_before("2026-11-29").await.unwrap(),
        ["2026-11-28"]
    );
    store
        .delete_dmarc_rows("2026-11-28", "example.org")
        .await
        .unwrap();
    let left = store.dmarc_rows("2026-11-28").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].policy_domain, "example.net");
    assert_eq!(store.dmarc_rows("2026-11-29").await.unwrap().len(), 1);
}
