//! Concurrency: readers during writes, group commit.

use super::*;

pub async fn concurrent_reads_during_writes(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    const TASKS: usize = 60;
    // One write for every two reads, interleaved so that reads start while writes queue.
    let is_write = |n: usize| n.is_multiple_of(3);
    let mut tasks: Vec<LocalFuture<'_, usize>> = Vec::new();
    for n in 0..TASKS {
        if is_write(n) {
            tasks.push(Box::pin(async move {
                deliver_one(store, inbox.id, n).await.0.0 as usize
            }));
            continue;
        }
        tasks.push(Box::pin(async move {
            // One consistent state per read: UIDs ascending, every blob readable, UIDNEXT
            // beyond every UID (read after the list, so it can only have grown).
            let listed = store.messages(inbox.id).await.unwrap();
            let uids: Vec<Uid> = listed.iter().map(|m| m.uid).collect();
            assert!(strictly_ascending(&uids), "{uids:?}");
            for meta in &listed {
                let bytes = store.read_blob(&meta.blob).await.unwrap();
                assert_eq!(bytes.len() as u64, meta.size);
            }
            let now = mailbox(store, alice, "INBOX").await;
            assert!(uids.last().is_none_or(|last| *last < now.uid_next));
            listed.len()
        }));
    }
    let outputs = join_all(tasks).await;
    let writes = (0..TASKS).filter(|n| is_write(*n)).count();
    let mut given: Vec<usize> = (0..TASKS)
        .filter(|n| is_write(*n))
        .map(|n| outputs[n])
        .collect();
    given.sort_unstable();
    assert_eq!(
        given,
        (1..=writes).collect::<Vec<_>>(),
        "every write got its own UID"
    );
    assert!(
        (0..TASKS)
            .filter(|n| !is_write(*n))
            .all(|n| outputs[n] <= writes)
    );
    assert_eq!(store.messages(inbox.id).await.unwrap().len(), writes);
}

pub async fn group_commit_concurrent_delivers(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let bob = new_account(store, "bob@example.org").await;
    let alice_inbox = mailbox(store, alice, "INBOX").await;
    let bob_inbox = mailbox(store, bob, "INBOX").await;
    const DELIVERIES: usize = 100;
    let mut deliveries: Vec<LocalFuture<'_, Vec<(MailboxId, Uid, ModSeq)>>> = Vec::new();
    for n in 0..DELIVERIES {
        let targets = if n % 4 == 0 {
            vec![(alice_inbox.id, Vec::new()), (bob_inbox.id, Vec::new())]
        } else {
            vec![(alice_inbox.id, Vec::new())]
        };
        deliveries.push(Box::pin(async move {
            store.deliver(message(n), 1, &targets).await.unwrap()
        }));
    }
    let placed = join_all(deliveries).await;
    let mut alice_uids: Vec<u32> = placed.iter().map(|p| p[0].1.0).collect();
    alice_uids.sort_unstable();
    assert_eq!(
        alice_uids,
        (1..=DELIVERIES as u32).collect::<Vec<_>>(),
        "distinct UIDs"
    );
    let mut modseqs: Vec<u64> = placed.iter().map(|p| p[0].2.0).collect();
    modseqs.sort_unstable();
    modseqs.dedup();
    assert_eq!(modseqs.len(), DELIVERIES, "distinct MODSEQs");
    assert_eq!(
        store.messages(alice_inbox.id).await.unwrap().len(),
        DELIVERIES
    );
    assert_eq!(
        store.messages(bob_inbox.id).await.unwrap().len(),
        DELIVERIES / 4
    );
}
