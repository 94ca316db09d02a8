//! Accepting a message (local copies and the outbound queue in one write) and the queue.

use super::*;
use crate::{AcceptedMessage, OutboundEnvelope, OutboundRecipient, QueueId, QueuedRecipient};

fn recipients_of(queue: &[QueuedRecipient], id: QueueId) -> Vec<&str> {
    queue
        .iter()
        .filter(|q| q.queue_id == id)
        .map(|q| q.recipient.as_str())
        .collect()
}

pub async fn accept_message_local_only(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let bob = new_account(store, "bob@example.org").await;
    let alice_inbox = mailbox(store, alice, "INBOX").await;
    let bob_inbox = mailbox(store, bob, "INBOX").await;
    let mut alice_events = store.subscribe(alice);
    let mut bob_events = store.subscribe(bob);
    let raw = message(1);
    let targets = [
        (alice_inbox.id, flags(&["$Junk"])),
        (bob_inbox.id, Vec::new()),
    ];
    let accepted = store
        .accept_message(raw.clone(), 1_700_000_000, &targets, None)
        .await
        .unwrap();
    assert_eq!(accepted.queued, None);
    assert_eq!(accepted.delivered.len(), 2);
    assert_eq!(
        (accepted.delivered[0].0, accepted.delivered[0].1),
        (alice_inbox.id, Uid(1))
    );
    assert_eq!(
        (accepted.delivered[1].0, accepted.delivered[1].1),
        (bob_inbox.id, Uid(1))
    );
    let at_alice = store.messages(alice_inbox.id).await.unwrap();
    assert_eq!(at_alice.len(), 1);
    assert_eq!(at_alice[0].flags, ["$Junk"]);
    assert_eq!(at_alice[0].modseq, accepted.delivered[0].2);
    assert_eq!(at_alice[0].internal_date, 1_700_000_000);
    assert_eq!(at_alice[0].blob, blob_of(&raw));
    assert_eq!(uids(store, bob_inbox.id).await, [1]);
    assert!(store.queued().await.unwrap().is_empty(), "nothing queued");
    // Sessions hear of it as of any delivery.
    assert_eq!(
        next_event(&mut alice_events).await,
        ChangeEvent::MessagesAdded {
            mailbox: alice_inbox.id
        }
    );
    assert_eq!(
        next_event(&mut bob_events).await,
        ChangeEvent::MessagesAdded {
            mailbox: bob_inbox.id
        }
    );

    // Nothing to store is refused, as is an outbound part without a recipient.
    let nothing = store.accept_message(message(2), 1, &[], None).await;
    assert!(
        matches!(nothing, Err(StoreError::Refused(_))),
        "{nothing:?}"
    );
    let nobody = store
        .accept_message(message(2), 1, &[], Some(envelope(None, &[])))
        .await;
    assert!(matches!(nobody, Err(StoreError::Refused(_))), "{nobody:?}");
    let nobody = store
        .accept_message(
            message(2),
            1,
            &[(alice_inbox.id, Vec::new())],
            Some(envelope(None, &[])),
        )
        .await;
    assert!(matches!(nobody, Err(StoreError::Refused(_))), "{nobody:?}");
    assert_eq!(
        uids(store, alice_inbox.id).await,
        [1],
        "the refusal stored nothing"
    );
    assert!(store.queued().await.unwrap().is_empty());
    assert!(matches!(
        store.read_blob(&blob_of(&message(2))).await,
        Err(StoreError::NotFound(_))
    ));
    // deliver() without targets still stores nothing and is no error.
    assert!(store.deliver(message(3), 1, &[]).await.unwrap().is_empty());
}

pub async fn accept_message_remote_only(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    let raw = message(1);
    let outbound = OutboundEnvelope {
        from: Some("alice@example.org".into()),
        recipients: vec![
            OutboundRecipient {
                address: "x@remote.example".into(),
                notify: Some("SUCCESS,FAILURE".into()),
                orcpt: Some("rfc822;x@remote.example".into()),
            },
            OutboundRecipient::new("Y@other.example"),
            // The same address twice is queued once.
            OutboundRecipient {
                address: "x@remote.example".into(),
                notify: Some("NEVER".into()),
                orcpt: None,
            },
        ],
        ret: Some("HDRS".into()),
        envid: Some("QQ314159".into()),
        submitted_by: Some(alice),
        require_tls: false,
    };
    let before = unix_now();
    let accepted = store
        .accept_message(raw.clone(), 1_700_000_000, &[], Some(outbound))
        .await
        .unwrap();
    let after = unix_now();
    assert!(accepted.delivered.is_empty());
    let id = accepted.queued.expect("a queue entry");
    assert!(store.messages(inbox.id).await.unwrap().is_empty());

    let queue = store.queued().await.unwrap();
    assert_eq!(queue.len(), 2, "{queue:?}");
    assert_eq!(
        recipients_of(&queue, id),
        ["x@remote.example", "Y@other.example"]
    );
    let created = queue[0].created;
    assert!((before..=after).contains(&created), "created {created}");
    for entry in &queue {
        assert_eq!(
            entry,
            &QueuedRecipient {
                queue_id: id,
                recipient: entry.recipient.clone(),
                from: Some("alice@example.org".into()),
                attempts: 0,
                next_attempt: created,
                last_error: None,
                created,
                size: raw.len() as u64,
            },
            "due at once, nothing tried yet"
        );
    }
    // The queue alone keeps the blob: the delivery engine will read it from there.
    assert_eq!(
        &store.read_blob(&blob_of(&raw)).await.unwrap()[..],
        &raw[..]
    );

    // The null reverse-path (bounces) is kept as None.
    let bounce = store
        .accept_message(
            message(2),
            1,
            &[],
            Some(envelope(None, &["x@remote.example"])),
        )
        .await
        .unwrap();
    let second = bounce.queued.unwrap();
    assert_ne!(second, id);
    let queue = store.queued().await.unwrap();
    let entry = queue.iter().find(|q| q.queue_id == second).unwrap();
    assert_eq!(entry.from, None);
    assert_eq!(entry.size, message(2).len() as u64);
}

pub async fn accept_message_mixed_shares_one_blob(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let bob = new_account(store, "bob@example.org").await;
    let alice_sent = mailbox(store, alice, "Sent").await;
    let bob_inbox = mailbox(store, bob, "INBOX").await;
    let mut bob_events = store.subscribe(bob);
    let raw = message(7);
    let targets = [
        (alice_sent.id, flags(&["\\Seen"])),
        (bob_inbox.id, Vec::new()),
    ];
    let outbound = OutboundEnvelope {
        submitted_by: Some(alice),
        ..envelope(
            Some("alice@example.org"),
            &["carol@remote.example", "dave@remote.example"],
        )
    };
    let accepted = store
        .accept_message(raw.clone(), 1_700_000_000, &targets, Some(outbound))
        .await
        .unwrap();
    let AcceptedMessage { delivered, queued } = accepted;
    let id = queued.expect("a queue entry");
    assert_eq!(delivered.len(), 2);
    assert_eq!((delivered[0].0, delivered[0].1), (alice_sent.id, Uid(1)));
    assert_eq!((delivered[1].0, delivered[1].1), (bob_inbox.id, Uid(1)));
    assert_eq!(
        next_event(&mut bob_events).await,
        ChangeEvent::MessagesAdded {
            mailbox: bob_inbox.id
        }
    );

    let blob = blob_of(&raw);
    let in_sent = store.messages(alice_sent.id).await.unwrap();
    let in_inbox = store.messages(bob_inbox.id).await.unwrap();
    assert_eq!(in_sent[0].blob, blob, "one blob");
    assert_eq!(in_inbox[0].blob, blob, "one blob");
    assert_eq!(in_sent[0].flags, ["\\Seen"]);
    let queue = store.queued().await.unwrap();
    assert_eq!(
        recipients_of(&queue, id),
        ["carol@remote.example", "dave@remote.example"]
    );
    assert!(queue.iter().all(|q| q.size == raw.len() as u64));

    // The blob outlives every mailbox copy while the message is queued.
    store.expunge(alice_sent.id, &[Uid(1)]).await.unwrap();
    store.expunge(bob_inbox.id, &[Uid(1)]).await.unwrap();
    assert_eq!(&store.read_blob(&blob).await.unwrap()[..], &raw[..]);
    // ... and the account that submitted it going away does not take its queued mail.
    store
        .delete_account(&address("alice@example.org"))
        .await
        .unwrap();
    assert_eq!(recipients_of(&store.queued().await.unwrap(), id).len(), 2);
    assert_eq!(&store.read_blob(&blob).await.unwrap()[..], &raw[..]);

    // The same bytes accepted again: a new queue entry on the same blob.
    let again = store
        .accept_message(
            raw.clone(),
            1,
            &[(bob_inbox.id, Vec::new())],
            Some(envelope(None, &["carol@remote.example"])),
        )
        .await
        .unwrap();
    assert_ne!(again.queued, Some(id));
    assert_eq!(store.messages(bob_inbox.id).await.unwrap()[0].blob, blob);
}

pub async fn accept_message_is_atomic(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    let raw = message(1);
    let outbound = || Some(envelope(Some("alice@example.org"), &["x@remote.example"]));

    // A bad mailbox after a good one: no copy, no queue row, no blob.
    let bad = [(inbox.id, Vec::new()), (MailboxId(i64::MAX), Vec::new())];
    let failed = store.accept_message(raw.clone(), 1, &bad, outbound()).await;
    assert!(matches!(failed, Err(StoreError::NotFound(_))), "{failed:?}");
    // A bad flag: the same.
    let bad_flag = [(inbox.id, flags(&["not a flag"]))];
    let failed = store
        .accept_message(raw.clone(), 1, &bad_flag, outbound())
        .await;
    assert!(matches!(failed, Err(StoreError::Refused(_))), "{failed:?}");
    // A bad outbound part after good copies: the copies go too.
    let failed = store
        .accept_message(
            raw.clone(),
            1,
            &[(inbox.id, Vec::new())],
            Some(envelope(None, &["x@remote.example", ""])),
        )
        .await;
    assert!(matches!(failed, Err(StoreError::Refused(_))), "{failed:?}");

    assert!(store.messages(inbox.id).await.unwrap().is_empty());
    let now = mailbox(store, alice, "INBOX").await;
    assert_eq!(now.uid_next, inbox.uid_next, "no UID spent");
    assert_eq!(now.highest_modseq, inbox.highest_modseq, "no MODSEQ spent");
    assert!(store.queued().await.unwrap().is_empty(), "no queue row");
    let blob = store.read_blob(&blob_of(&raw)).await;
    assert!(matches!(blob, Err(StoreError::NotFound(_))), "{blob:?}");

    // The store is fine afterwards.
    let accepted = store
        .accept_message(raw, 1, &[(inbox.id, Vec::new())], outbound())
        .await
        .unwrap();
    assert_eq!(accepted.delivered[0].1, Uid(1));
    assert_eq!(store.queued().await.unwrap().len(), 1);
}

pub async fn queued_lists_oldest_first(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    assert!(store.queued().await.unwrap().is_empty(), "empty store");
    let mut ids = Vec::new();
    for n in 0..5 {
        let recipients = [
            format!("r{n}-b@remote.example"),
            format!("r{n}-a@remote.example"),
        ];
        let recipients: Vec<&str> = recipients.iter().map(String::as_str).collect();
        let targets = if n % 2 == 0 {
            vec![(inbox.id, Vec::new())]
        } else {
            Vec::new()
        };
        let accepted = store
            .accept_message(message(n), 1, &targets, Some(envelope(None, &recipients)))
            .await
            .unwrap();
        ids.push(accepted.queued.unwrap());
        // A local-only message in between adds nothing to the queue.
        deliver_one(store, inbox.id, 100 + n).await;
    }
    assert!(strictly_ascending(&ids), "{ids:?}");

    let queue = store.queued().await.unwrap();
    let listed: Vec<(QueueId, &str)> = queue
        .iter()
        .map(|q| (q.queue_id, q.recipient.as_str()))
        .collect();
    let expected: Vec<(QueueId, String)> = ids
        .iter()
        .enumerate()
        .flat_map(|(n, id)| {
            [
                (*id, format!("r{n}-b@remote.example")),
                (*id, format!("r{n}-a@remote.example")),
            ]
        })
        .collect();
    let expected: Vec<(QueueId, &str)> = expected.iter().map(|(id, r)| (*id, r.as_str())).collect();
    assert_eq!(
        listed, expected,
        "oldest message first, recipients as given"
    );
    let created: Vec<i64> = queue.iter().map(|q| q.created).collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]), "{created:?}");
    for (entry, n) in queue.iter().zip((0..5).flat_map(|n| [n, n])) {
        assert_eq!(entry.size, message(n).len() as u64);
        assert_eq!(entry.attempts, 0);
    }
}
