//! A temporary SQLite store with the accounts every service test logs in as, and the
//! look-ups tests make on it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sealpost_sasl::FailureDelays;
use sealpost_store::authenticate::Authenticator;
use sealpost_store::sqlite::SqliteStore;
use sealpost_store::{Directory, Store};
use sealpost_types::{AccountId, Address, Domain, MailboxId, SpecialUse};

/// The password of the accounts of [`fixture_store`] in the IMAP and POP3 tests.
pub const PASSWORD: &str = "correct-horse";

/// The local domain of [`fixture_store`].
pub const DOMAIN: &str = "test.example";

/// The accounts of [`fixture_store`].
pub const USERS: [&str; 2] = ["alice@test.example", "bob@test.example"];

/// Opens a SQLite store in `path` with the domain [`DOMAIN`] and the accounts [`USERS`],
/// each with `password`.
pub async fn fixture_store(path: &Path, password: &str) -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path).await.unwrap());
    store
        .add_domain(&Domain::parse(DOMAIN).unwrap(), Vec::new())
        .await
        .unwrap();
    let hash = sealpost_sasl::hash_password(password).unwrap();
    for user in USERS {
        store
            .add_account(&Address::parse(user).unwrap(), &hash)
            .await
            .unwrap();
    }
    store
}

/// An authenticator over `store` whose failure delays are milliseconds instead of seconds,
/// so that tests of wrong passwords do not wait.
pub fn fast_authenticator(store: &Arc<dyn Store>) -> Arc<Authenticator> {
    let directory: Arc<dyn Directory> = Arc::clone(store) as Arc<dyn Directory>;
    let delays = FailureDelays::new(
        Duration::from_millis(1),
        Duration::from_millis(5),
        Duration::from_secs(60),
    );
    Arc::new(Authenticator::with_delays(directory, delays))
}

/// The id of `user`'s account (which must exist).
pub async fn account_id(store: &dyn Store, user: &str) -> AccountId {
    store
        .account(&Address::parse(user).unwrap())
        .await
        .unwrap()
        .unwrap()
        .id
}

/// The id of `user`'s INBOX.
pub async fn inbox_id(store: &dyn Store, user: &str) -> MailboxId {
    let account = account_id(store, user).await;
    store
        .mailbox_by_special_use(account, SpecialUse::Inbox)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Delivers `message` to `user`'s INBOX, as the SMTP service would (at a fixed time).
pub async fn deliver_to_inbox(store: &dyn Store, user: &str, message: &[u8]) {
    let inbox = inbox_id(store, user).await;
    store
        .deliver(Arc::from(message), 1_700_000_000, &[(inbox, Vec::new())])
        .await
        .unwrap();
}

/// The messages in `user`'s INBOX, oldest first, as stored.
pub async fn inbox_messages(store: &dyn Store, user: &str) -> Vec<Vec<u8>> {
    let inbox = inbox_id(store, user).await;
    let mut out = Vec::new();
    for meta in store.messages(inbox).await.unwrap() {
        out.push(store.read_blob(&meta.blob).await.unwrap());
    }
    out
}
