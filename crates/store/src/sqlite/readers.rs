//! A small pool of read-only connections, used from blocking threads.
//!
//! In WAL mode readers see the last committed state and never wait for the writer, so
//! several of them run at once. SQLite calls block, so they run under `spawn_blocking`,
//! never on the async worker threads.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, Transaction};
use tokio::sync::Semaphore;

use super::schema;
use crate::{StoreError, StoreResult};

/// Most read connections open at once (the machine has few cores; more would only queue
/// inside SQLite).
const MAX_READERS: usize = 4;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf) -> Readers {
        Readers {
            path,
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(Semaphore::new(MAX_READERS)),
        }
    }

    /// Runs `work` in a read transaction (one consistent snapshot for all its queries) on a
    /// pooled connection, opening one lazily when none is idle.
    pub(crate) async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Transaction) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Database("the reader pool is closed".into()))?;
        let idle = Arc::clone(&self.idle);
        let path = self.path.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let taken = idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut conn = match taken {
                Some(conn) => conn,
                None => schema::open_reader(&path)?,
            };
            let result = run(&mut conn, work);
            idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            result
        });
        task.await
            .map_err(|e| StoreError::Database(format!("a read task failed: {e}")))?
    }
}

fn run<T>(
    conn: &mut Connection,
    work: impl FnOnce(&Transaction) -> StoreResult<T>,
) -> StoreResult<T> {
    let txn = conn.transaction()?;
    let result = work(&txn);
    // Nothing to keep: ending the read transaction releases its WAL snapshot.
    txn.rollback()?;
    result
}
