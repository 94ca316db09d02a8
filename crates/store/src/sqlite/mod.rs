//! The embedded backend: one SQLite database, `data_dir/sealpost.db`, in WAL mode.
//!
//! - Writes go to one thread that owns the read-write connection and commits them in
//!   batches (group commit, `writer`); a write is acknowledged only once committed with
//!   `synchronous=FULL`, i.e. fsync'd.
//! - Reads use a small pool of read-only connections on blocking threads (`readers`).
//! - The SQL of each operation lives in plain synchronous functions (`directory`,
//!   `mailboxes`, `messages`, `queue`) that take a connection or transaction; the async trait
//!   methods only move them to the right thread and publish change events after commit.

mod directory;
mod dmarc;
mod mailboxes;
mod mailstore;
mod messages;
mod queue;
mod readers;
mod rows;
mod schema;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sealpost_types::AccountId;
use tokio::sync::broadcast;

use crate::{ChangeEvent, StoreError, StoreResult};
use readers::Readers;
use writer::Writer;

/// File name of the database inside `data_dir`.
pub const DATABASE_FILE: &str = "sealpost.db";

/// Events kept per account for a slow subscriber before it starts missing some (it then
/// gets `RecvError::Lagged` and resynchronises from the store).
const EVENT_CAPACITY: usize = 64;

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}

/// The SQLite store. Cheap to share behind an `Arc`; dropping the last handle stops the
/// writer thread after it has finished the jobs already queued.
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Readers,
    events: Events,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`, applying schema migrations.
    pub async fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        let data_dir = data_dir.to_path_buf();
        let display = data_dir.display().to_string();
        tokio::task::spawn_blocking(move || Self::open_blocking(&data_dir))
            .await
            .map_err(|e| StoreError::Open {
                path: display,
                reason: format!("the opening task failed: {e}"),
            })?
    }

    fn open_blocking(data_dir: &Path) -> StoreResult<SqliteStore> {
        create_private_dir(data_dir).map_err(|e| StoreError::Open {
            path: data_dir.display().to_string(),
            reason: format!("cannot create the data folder: {e}"),
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let conn = schema::open_writer(&path)?;
        let writer = Writer::start(conn)?;
        Ok(SqliteStore {
            readers: Readers::new(path.clone()),
            path,
            writer,
            events: Events::default(),
        })
    }

    /// Path of the database file.
    pub fn database_path(&self) -> &Path {
        &self.path
    }

    /// Write transactions committed since open; with group commit this grows more slowly
    /// than the number of writes (a metric, and what tests use to see batching).
    pub fn write_commits(&self) -> u64 {
        self.writer.commits()
    }
}

/// Creates the data folder readable by the server's user only: it holds password hashes,
/// DKIM private keys and everyone's mail. An existing folder keeps its mode.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// One broadcast channel per account that has (or had) a subscriber.
#[derive(Default)]
struct Events {
    channels: Mutex<HashMap<AccountId, broadcast::Sender<ChangeEvent>>>,
}

impl Events {
    fn subscribe(&self, account: AccountId) -> broadcast::Receiver<ChangeEvent> {
        // A panic elsewhere while holding the lock leaves the map itself intact.
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels
            .entry(account)
            .or_insert_with(|| broadcast::channel(EVENT_CAPACITY).0)
            .subscribe()
    }

    /// Sends `event` to the account's subscribers. Called only after the write that caused
    /// it has committed, so a subscriber that reacts by reading sees the change.
    fn publish(&self, account: AccountId, event: ChangeEvent) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = channels.get(&account)
            && sender.send(event).is_err()
        {
            // Nobody listens any more: drop the channel rather than keep one per account
            // that ever had a session.
            channels.remove(&account);
        }
    }

    fn publish_all(&self, events: impl IntoIterator<Item = (AccountId, ChangeEvent)>) {
        for (account, event) in events {
            self.publish(account, event);
        }
    }

    fn forget(&self, account: AccountId) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.remove(&account);
    }
}
