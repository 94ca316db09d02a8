//! The one writer thread, with group commit.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` every commit costs an
//! fsync. So all writes go to one thread that owns the read-write connection: it waits for
//! a job, takes every job already queued behind it (up to [`MAX_BATCH`]), runs each inside
//! its own SAVEPOINT of one transaction, commits once, and only then answers each caller.
//! Many concurrent deliveries thus share one fsync, and none is acknowledged before it is
//! durable (DESIGN §1.4).
//!
//! Jobs whose loss on a power cut costs nothing that matters (flag changes, cached MIME
//! structures) may be written *relaxed*: a batch made only of such jobs commits with
//! `synchronous=NORMAL`, which in WAL mode survives a crash of the process but skips the
//! fsync (the next durable commit, or a checkpoint, makes them durable too). Dovecot's
//! default `fsync_mode = optimized` draws the same line: mail saved is fsync'd, flags are
//! not.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use crate::{StoreError, StoreResult};

/// Most jobs committed together: bounds the latency the first job of a batch can suffer.
const MAX_BATCH: usize = 256;

/// A write job as the writer thread sees it: its result type is erased.
trait Job: Send {
    /// Whether the caller must not hear back before an fsync.
    fn durable(&self) -> bool;
    /// Runs the job inside the batch's transaction (the caller wraps it in a savepoint).
    fn run(self: Box<Self>, txn: &Transaction) -> Box<dyn Outcome>;
    /// Answers the caller without running the job (the batch could not start).
    fn abandon(self: Box<Self>, reason: &str);
}

/// A job that has run and waits for the commit before its caller is answered.
trait Outcome: Send {
    fn succeeded(&self) -> bool;
    /// `commit_error` is `Some` when the batch did not commit: the caller gets an error even
    /// if its own part went well, since nothing of it was stored.
    fn finish(self: Box<Self>, commit_error: Option<&str>);
}

struct Pending<F, T> {
    work: F,
    durable: bool,
    reply: oneshot::Sender<StoreResult<T>>,
}

struct Ran<T> {
    result: StoreResult<T>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<F, T> Job for Pending<F, T>
where
    F: FnOnce(&Transaction) -> StoreResult<T> + Send + 'static,
    T: Send + 'static,
{
    fn durable(&self) -> bool {
        self.durable
    }

    fn run(self: Box<Self>, txn: &Transaction) -> Box<dyn Outcome> {
        let Pending { work, reply, .. } = *self;
        // A bug that panics in one job must not take the writer (and every later write)
        // down with it: the job fails, its savepoint is rolled back, the thread goes on.
        let result = catch_unwind(AssertUnwindSafe(|| work(txn)))
            .unwrap_or_else(|_| Err(StoreError::Database("a write job panicked".into())));
        Box::new(Ran { result, reply })
    }

    fn abandon(self: Box<Self>, reason: &str) {
        // The caller may have gone away (dropped future); nothing to tell it then.
        let _ = self
            .reply
            .send(Err(StoreError::Database(reason.to_string())));
    }
}

impl<T: Send + 'static> Outcome for Ran<T> {
    fn succeeded(&self) -> bool {
        self.result.is_ok()
    }

    fn finish(self: Box<Self>, commit_error: Option<&str>) {
        let result = match (self.result, commit_error) {
            (Err(own), _) => Err(own),
            (Ok(_), Some(reason)) => Err(StoreError::Database(format!(
                "commit failed, nothing was stored: {reason}"
            ))),
            (Ok(value), None) => Ok(value),
        };
        let _ = self.reply.send(result);
    }
}

/// The handle through which async code submits writes.
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the writer thread, which owns `conn` until the last `Writer` handle is gone.
    pub(crate) fn start(conn: Connection) -> StoreResult<Writer> {
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&commits);
        thread::Builder::new()
            .name("sealpost-store-writer".into())
            .spawn(move || run(conn, queue, &counter))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { jobs, commits })
    }

    /// Runs `work` in the writer's transaction; resolves once the transaction holding it
    /// has been committed (fsync'd), or with the job's own error (its changes undone).
    pub(crate) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Transaction) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(work, true).await
    }

    /// Like [`Writer::write`], but the commit need not be fsync'd before the caller hears
    /// back: the change survives a crash of the process, not necessarily a power cut.
    pub(crate) async fn write_relaxed<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Transaction) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(work, false).await
    }

    async fn submit<T, F>(&self, work: F, durable: bool) -> StoreResult<T>
    where
        F: FnOnce(&Transaction) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(Pending {
                work,
                durable,
                reply,
            }))
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Transactions committed so far (lets tests observe that batching happened).
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

/// The writer thread: one batch per loop, until every `Writer` handle is dropped.
fn run(mut conn: Connection, queue: mpsc::Receiver<Box<dyn Job>>, commits: &AtomicU64) {
    // The connection starts with synchronous=FULL (schema::configure).
    let mut synchronous_full = true;
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // One durable job makes the whole batch durable.
        let durable = batch.iter().any(|job| job.durable());
        if durable != synchronous_full {
            let level = if durable { "FULL" } else { "NORMAL" };
            match conn.pragma_update(None, "synchronous", level) {
                Ok(()) => synchronous_full = durable,
                // Staying at FULL is only slower; staying at NORMAL would acknowledge
                // durable jobs before an fsync: those are refused instead.
                Err(error) if durable => {
                    let reason = format!("cannot switch to synchronous=FULL: {error}");
                    tracing::error!("{reason}");
                    for job in batch {
                        job.abandon(&reason);
                    }
                    continue;
                }
                Err(error) => tracing::warn!(%error, "cannot switch to synchronous=NORMAL"),
            }
        }
        if run_batch(&mut conn, batch) {
            commits.fetch_add(1, Ordering::Relaxed);
        }
    }
    tracing::debug!("store writer stopped");
}

/// Runs one batch in one transaction. Returns whether a commit happened.
fn run_batch(conn: &mut Connection, batch: Vec<Box<dyn Job>>) -> bool {
    // IMMEDIATE: take the write lock now (waiting up to busy_timeout for another process)
    // rather than failing half-way through the batch on a lock upgrade.
    let txn = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(txn) => txn,
        Err(error) => {
            let reason = format!("cannot begin a write transaction: {error}");
            tracing::error!("{reason}");
            for job in batch {
                job.abandon(&reason);
            }
            return false;
        }
    };
    let mut outcomes: Vec<Box<dyn Outcome>> = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    let mut poisoned: Option<String> = None;
    for job in jobs.by_ref() {
        if let Err(error) = txn.execute_batch("SAVEPOINT job") {
            let reason = format!("cannot open a savepoint: {error}");
            job.abandon(&reason);
            poisoned = Some(reason);
            break;
        }
        let outcome = job.run(&txn);
        let close = if outcome.succeeded() {
            "RELEASE job"
        } else {
            // Undo only this job's changes; the others of the batch still commit.
            "ROLLBACK TO job; RELEASE job"
        };
        outcomes.push(outcome);
        if let Err(error) = txn.execute_batch(close) {
            // Some errors (disk full, I/O) make SQLite roll back the whole transaction,
            // which also drops the savepoint: the batch cannot be trusted any more.
            poisoned = Some(format!("cannot close a savepoint: {error}"));
            break;
        }
    }
    if let Some(reason) = poisoned {
        tracing::error!("write batch abandoned: {reason}");
        drop(txn); // rolls back
        for outcome in outcomes {
            outcome.finish(Some(&reason));
        }
        for job in jobs {
            job.abandon(&reason);
        }
        return false;
    }
    // The one fsync of the batch. Callers hear back only after it succeeded.
    match txn.commit() {
        Ok(()) => {
            for outcome in outcomes {
                outcome.finish(None);
            }
            true
        }
        Err(error) => {
            // A failed COMMIT leaves the transaction open; dropping it rolled it back.
            let reason = error.to_string();
            tracing::error!("write batch commit failed: {reason}");
            for outcome in outcomes {
                outcome.finish(Some(&reason));
            }
            false
        }
    }
}
