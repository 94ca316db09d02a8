//! The queue scheduler: takes due messages from the store, groups their recipients per
//! destination domain, delivers them with [`deliver_batch`] (several messages per connection,
//! RFC 5321 §4.5.4.1), records every outcome in the store, and tells the sender about failures
//! and long delays (RFC 3464).
//!
//! Durability (DESIGN §1.4): the store is the queue. A message is in flight only in memory;
//! its recipients stay `Queued` in the store until [`Store::record_attempt`] commits their
//! outcome, which happens as soon as each transaction's replies are in ([`Progress`]). A crash
//! (kill -9) at any point therefore loses nothing: after a restart every recipient whose
//! outcome was not committed is tried again. The one window for a duplicate is between the
//! remote 250 after the data and that commit (one group commit, milliseconds; RFC 5321 §6.1
//! and RFC 1047 accept a duplicate over a loss).
//!
//! Retries (RFC 5321 §4.5.4.1): the first after [`RetryPolicy::first_retry`], doubling up to
//! [`RetryPolicy::max_retry`], until [`RetryPolicy::lifetime`] after queueing; then the
//! recipient fails. A delay report goes out once per message when a recipient is still
//! waiting [`RetryPolicy::delay_warning`] after queueing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sealpost_smtp::client::{Envelope, MessageBody, Recipient, RecipientOutcome, Reply};
use sealpost_smtp::core::{DsnNotify, DsnRet};
use sealpost_store::{
    AttemptOutcome, DueMessage, EntryRecipient, QueueEntry, QueueId, RecipientResult,
    RecipientStatus, Store, TlsSessions,
};
use sealpost_types::Domain;
use sealpost_types::date::{UtcDateTime, unix_now};
use tokio::sync::{Mutex, Notify, OnceCell, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::deliver::{
    DeliveryOptions, DeliveryOutcome, DeliveryReport, Failure, Outgoing, Progress, deliver_batch,
    show,
};
use crate::dkim::{DkimSigner, signing_domain};
use crate::dsn::{self, Action, Diagnostic, DsnRecipient};
use crate::notify::notify_sender;
use crate::route::{HostPolicy, Route, Router};
use sealpost_dns::Target;

/// How often the store is asked for due messages when nothing wakes the scheduler (a
/// deferred recipient coming due, `sealpost queue flush` from another process).
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Queue entries read from the store at a time.
const FETCH: usize = 500;
/// The fewest messages a connection is given when more wait.
const MIN_BATCH: usize = 10;
/// Messages held in memory (in flight or waiting for a connection) at most.
const MAX_IN_FLIGHT: usize = 5_000;
/// How long a domain's DKIM keys are used before they are read again (`sealpost domain`
/// commands run in other processes).
const SIGNER_TTL: Duration = Duration::from_secs(60);

/// When to try again and when to give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt.
    pub first_retry: Duration,
    /// The longest wait between two attempts.
    pub max_retry: Duration,
    /// Tell the sender once when a recipient still waits this long after queueing; `None`:
    /// never.
    pub delay_warning: Option<Duration>,
    /// Give up (and bounce) this long after queueing.
    pub lifetime: Duration,
}

impl Default for RetryPolicy {
    /// 5 minutes doubling to 4 hours, a warning after 4 hours, 5 days in all (RFC 5321
    /// §4.5.4.1: at least 30 minutes between tries, give up after at least 4-5 days).
    fn default() -> Self {
        RetryPolicy {
            first_retry: Duration::from_secs(5 * 60),
            max_retry: Duration::from_secs(4 * 3600),
            delay_warning: Some(Duration::from_secs(4 * 3600)),
            lifetime: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed attempt (1 for the first).
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.first_retry
            .saturating_mul(1u32 << doublings)
            .min(self.max_retry)
    }
}

/// Everything the scheduler needs to know besides the store and the resolver.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Our name in EHLO and in reports.
    pub hostname: String,
    /// The TCP port of remote MX hosts (25; another port only in tests).
    pub remote_port: u16,
    pub retry: RetryPolicy,
    /// Connections open at once, to all destinations.
    pub max_connections: usize,
    /// Connections open at once to one destination domain.
    pub max_connections_per_domain: usize,
    /// Messages sent over one connection before it is closed and another opened.
    pub max_messages_per_connection: usize,
    pub poll_interval: Duration,
    pub delivery: DeliveryOptions,
}

impl QueueSettings {
    /// The default limits: 100 connections, 10 per domain (Postfix: 100 and 20), 100
    /// messages per connection.
    pub fn new(hostname: impl Into<String>, remote_port: u16, delivery: DeliveryOptions) -> Self {
        QueueSettings {
            hostname: hostname.into(),
            remote_port,
            retry: RetryPolicy::default(),
            max_connections: 100,
            max_connections_per_domain: 10,
            max_messages_per_connection: 100,
            poll_interval: POLL_INTERVAL,
            delivery,
        }
    }
}

/// The outbound queue's delivery engine. [`Scheduler::waker`] gives what the SMTP service
/// pokes after queueing, so that new mail leaves at once.
pub struct Scheduler {
    shared: Arc<Shared>,
    wake: Arc<Notify>,
}

struct Shared {
    store: Arc<dyn Store>,
    router: Router,
    settings: QueueSettings,
    /// Per From domain: when its keys were read, and its signer (`None`: not ours, or no
    /// usable key).
    signers: Mutex<HashMap<Domain, CachedSigner>>,
}

type CachedSigner = (Instant, Option<Arc<DkimSigner>>);

/// A queued message being delivered: its entry and, read once for all its destinations,
/// the bytes as they leave.
struct Message {
    entry: QueueEntry,
    prepared: OnceCell<Result<Prepared, String>>,
    /// Destination jobs of this message not finished yet.
    open_jobs: AtomicUsize,
}

struct Prepared {
    /// Signed, without our local Return-Path.
    body: MessageBody,
    /// The bytes as stored, for reports.
    original: Arc<[u8]>,
}

/// The recipients of one message at one destination.
struct Job {
    message: Arc<Message>,
    recipients: Vec<EntryRecipient>,
}

#[derive(Default)]
struct Destination {
    waiting: VecDeque<Job>,
    connections: usize,
}

/// What a finished connection reports back.
struct WorkerDone {
    domain: String,
    /// Messages none of whose jobs are left.
    finished: Vec<QueueId>,
}

#[derive(Default)]
struct State {
    in_flight: HashSet<QueueId>,
    /// Where the next read of due entries goes on from (created, id); `None`: the start.
    cursor: Option<(i64, QueueId)>,
    /// When the reading last started again from the oldest entry (where deferred ones come
    /// due and `queue flush` makes everything due); in between, only newer entries are read.
    rescanned: Option<Instant>,
    destinations: HashMap<String, Destination>,
    connections: usize,
    workers: JoinSet<WorkerDone>,
}

impl Scheduler {
    pub fn new(store: Arc<dyn Store>, router: Router, settings: QueueSettings) -> Self {
        Scheduler {
            shared: Arc::new(Shared {
                store,
                router,
                settings,
                signers: Mutex::new(HashMap::new()),
            }),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Call `notify_one` on this after queueing a message: the scheduler looks at once.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Delivers until `shutdown`; connections still open then are dropped (their recipients
    /// stay queued and are tried again after the restart).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut state = State::default();
        let poll = self.shared.settings.poll_interval;
        loop {
            self.fill(&mut state).await;
            self.start_connections(&mut state);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => {}
                Some(done) = state.workers.join_next(), if !state.workers.is_empty() => {
                    match done {
                        Ok(done) => self.finished(&mut state, done),
                        Err(error) => tracing::error!(%error, "a delivery task failed"),
                    }
                    // Collect the others that are done too before reading the store again.
                    while let Some(done) = state.workers.try_join_next() {
                        match done {
                            Ok(done) => self.finished(&mut state, done),
                            Err(error) => tracing::error!(%error, "a delivery task failed"),
                        }
                    }
                }
                () = tokio::time::sleep(poll) => {}
            }
        }
        state.workers.shutdown().await;
    }

    fn finished(&self, state: &mut State, done: WorkerDone) {
        state.connections = state.connections.saturating_sub(1);
        if let Some(destination) = state.destinations.get_mut(&done.domain) {
            destination.connections = destination.connections.saturating_sub(1);
            if destination.connections == 0 && destination.waiting.is_empty() {
                state.destinations.remove(&done.domain);
            }
        }
        for id in done.finished {
            state.in_flight.remove(&id);
        }
    }

    /// Reads due entries not in flight yet and files their recipients by destination.
    async fn fill(&self, state: &mut State) {
        let now = unix_now();
        while state.in_flight.len() < MAX_IN_FLIGHT {
            let due = match self.shared.store.due_after(now, state.cursor, FETCH).await {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!(%error, "cannot read the queue");
                    return;
                }
            };
            let complete = due.len() < FETCH;
            state.cursor = due
                .last()
                .map(|d| (d.entry.created, d.entry.queue_id))
                .or(state.cursor);
            for message in due {
                if state.in_flight.insert(message.entry.queue_id) {
                    self.file(state, message);
                }
            }
            if complete {
                // From the start again once per poll interval, not at every wake: the
                // entries in flight would be read again each time.
                let poll = self.shared.settings.poll_interval;
                if state.rescanned.is_none_or(|at| at.elapsed() >= poll) {
                    state.cursor = None;
                    state.rescanned = Some(Instant::now());
                }
                return;
            }
        }
    }

    fn file(&self, state: &mut State, due: DueMessage) {
        let mut by_domain: Vec<(String, Vec<EntryRecipient>)> = Vec::new();
        for recipient in due.recipients {
            let domain = destination_of(&recipient.address);
            match by_domain.iter_mut().find(|(d, _)| *d == domain) {
                Some((_, list)) => list.push(recipient),
                None => by_domain.push((domain, vec![recipient])),
            }
        }
        let message = Arc::new(Message {
            entry: due.entry,
            prepared: OnceCell::new(),
            open_jobs: AtomicUsize::new(by_domain.len()),
        });
        for (domain, recipients) in by_domain {
            state
                .destinations
                .entry(domain)
                .or_default()
                .waiting
                .push_back(Job {
                    message: Arc::clone(&message),
                    recipients,
                });
        }
    }

    /// Opens connections where messages wait, within the limits; the waiting messages are
    /// shared out among the connections a destination may still open.
    fn start_connections(&self, state: &mut State) {
        let settings = &self.shared.settings;
        for (domain, destination) in &mut state.destinations {
            while !destination.waiting.is_empty()
                && state.connections < settings.max_connections
                && destination.connections < settings.max_connections_per_domain
            {
                // Shared out among the connections the destination may still open, but
                // at least MIN_BATCH a connection: a few messages go faster pipelined over
                // one connection than over several handshakes.
                let free = settings.max_connections_per_domain - destination.connections;
                let share = destination.waiting.len().div_ceil(free).max(MIN_BATCH);
                let take = share.clamp(1, settings.max_messages_per_connection.max(1));
                let jobs: Vec<Job> = destination
                    .waiting
                    .drain(..take.min(destination.waiting.len()))
                    .collect();
                destination.connections += 1;
                state.connections += 1;
                let shared = Arc::clone(&self.shared);
                let domain = domain.clone();
                let wake = Arc::clone(&self.wake);
                state.workers.spawn(async move {
                    let finished = shared.deliver_jobs(&domain, jobs).await;
                    // Room for the next connection, and reports may have queued mail.
                    wake.notify_one();
                    WorkerDone { domain, finished }
                });
            }
        }
    }
}

impl Shared {
    /// One connection's worth of messages to `domain`: route, deliver, record. Returns the
    /// messages that have no other job left.
    async fn deliver_jobs(self: &Arc<Self>, domain: &str, jobs: Vec<Job>) -> Vec<QueueId> {
        let now = unix_now();
        match self.router.route(domain).await {
            Ok(route) => self.deliver_to(domain, route, jobs).await,
            Err(error) => {
                let status = error.enhanced_status();
                let text = format!("{status} {error}");
                let mut finished = Vec::new();
                for job in jobs {
                    let results: Vec<(String, RecipientResult)> = job
                        .recipients
                        .iter()
                        .map(|r| {
                            let result = if error.is_temporary() {
                                self.deferred(&job.message.entry, r, now, text.clone())
                            } else {
                                RecipientResult::Failed {
                                    error: text.clone(),
                                }
                            };
                            (r.address.clone(), result)
                        })
                        .collect();
                    self.record(&job, results).await;
                    finished.extend(job.done());
                }
                finished
            }
        }
    }

    /// Delivers along `route`: REQUIRETLS messages (RFC 8689 §4.2.1) only to the hosts whose
    /// TLS is verified (DANE or MTA-STS), and bounced when there is none; the others to
    /// every target.
    async fn deliver_to(
        self: &Arc<Self>,
        domain: &str,
        route: Route,
        jobs: Vec<Job>,
    ) -> Vec<QueueId> {
        let (strict, plain): (Vec<Job>, Vec<Job>) = jobs
            .into_iter()
            .partition(|job| job.message.entry.require_tls);
        let mut finished = Vec::new();
        if !plain.is_empty() {
            finished.extend(
                self.deliver_group(domain, &route, &route.targets, plain)
                    .await,
            );
        }
        if strict.is_empty() {
            return finished;
        }
        let verified: Vec<Target> = route
            .targets
            .iter()
            .filter(|t| {
                matches!(
                    route.policies.get(&t.host),
                    Some(HostPolicy::Dane | HostPolicy::MtaSts)
                )
            })
            .cloned()
            .collect();
        if verified.is_empty() {
            // RFC 8689 §4.2.1: without an authenticated route the message is not sent;
            // RFC 3463 X.7.10 (RFC 8689 §5): REQUIRETLS could not be honoured.
            let error = format!(
                "5.7.10 REQUIRETLS: no MX host of {domain} has TLS verified by DANE or MTA-STS"
            );
            for job in strict {
                let results = job
                    .recipients
                    .iter()
                    .map(|r| {
                        (
                            r.address.clone(),
                            RecipientResult::Failed {
                                error: error.clone(),
                            },
                        )
                    })
                    .collect();
                self.record(&job, results).await;
                finished.extend(job.done());
            }
            return finished;
        }
        finished.extend(self.deliver_group(domain, &route, &verified, strict).await);
        finished
    }

    /// One connection's worth of messages over `targets` (some of `route`'s).
    async fn deliver_group(
        self: &Arc<Self>,
        domain: &str,
        route: &Route,
        targets: &[Target],
        jobs: Vec<Job>,
    ) -> Vec<QueueId> {
        let now = unix_now();
        let mut ready: Vec<Job> = Vec::with_capacity(jobs.len());
        let mut batch: Vec<Outgoing> = Vec::with_capacity(jobs.len());
        let mut finished = Vec::new();
        for job in jobs {
            match self.prepare(&job.message).await {
                Ok(prepared) => {
                    batch.push(Outgoing {
                        envelope: envelope(&job.message.entry, &job.recipients, &prepared.body),
                        body: prepared.body.clone(),
                    });
                    ready.push(job);
                }
                Err(error) => {
                    // The bytes cannot be read (a store error): try again later.
                    let text = format!("4.3.0 cannot read the queued message: {error}");
                    let results = job
                        .recipients
                        .iter()
                        .map(|r| {
                            let result = self.deferred(&job.message.entry, r, now, text.clone());
                            (r.address.clone(), result)
                        })
                        .collect();
                    self.record(&job, results).await;
                    finished.extend(job.done());
                }
            }
        }
        if ready.is_empty() {
            return finished;
        }
        let ready = Arc::new(ready);
        // Outcomes recorded as each transaction ends, while the batch goes on.
        let (progress, mut reports) = mpsc::unbounded_channel::<Progress>();
        let recorder = {
            let shared = Arc::clone(self);
            let ready = Arc::clone(&ready);
            tokio::spawn(async move {
                let mut recorded: HashSet<(usize, usize)> = HashSet::new();
                while let Some(Progress {
                    message,
                    host,
                    outcomes,
                }) = reports.recv().await
                {
                    let Some(job) = ready.get(message) else {
                        continue;
                    };
                    let now = unix_now();
                    let results = outcomes
                        .iter()
                        .filter_map(|(index, outcome)| {
                            let recipient = job.recipients.get(*index)?;
                            recorded.insert((message, *index));
                            Some((
                                recipient.address.clone(),
                                shared.result(
                                    &job.message.entry,
                                    recipient,
                                    outcome,
                                    Some(&host),
                                    now,
                                ),
                            ))
                        })
                        .collect();
                    shared.record(job, results).await;
                }
                recorded
            })
        };
        let settings = &self.settings;
        let mut options = settings.delivery.clone();
        options.hosts = route.hosts.clone();
        let delivered = deliver_batch(
            targets,
            settings.remote_port,
            &settings.hostname,
            &batch,
            &options,
            Some(&progress),
        )
        .await;
        drop(progress);
        let recorded = recorder.await.unwrap_or_default();
        let now = unix_now();
        let sessions = tls_sessions(domain, route, &delivered, now);
        if let Err(error) = self.store.record_tls_sessions(sessions).await {
            tracing::warn!(%domain, %error, "cannot record TLS-RPT data");
        }
        for ((index, job), report) in ready.iter().enumerate().zip(delivered) {
            let results: Vec<(String, RecipientResult)> = job
                .recipients
                .iter()
                .zip(&report.recipients)
                .enumerate()
                .filter(|(recipient, _)| !recorded.contains(&(index, *recipient)))
                .map(|(_, (recipient, outcome))| {
                    let result = self.result(
                        &job.message.entry,
                        recipient,
                        outcome,
                        report.host.as_deref(),
                        now,
                    );
                    (recipient.address.clone(), result)
                })
                .collect();
            if !results.is_empty() {
                self.record(job, results).await;
            }
            if !report.dsn {
                self.report_relayed(job, &report, now).await;
            }
            tracing::info!(
                queue_id = %job.message.entry.queue_id,
                host = report.host.as_deref().unwrap_or("-"),
                tls = report.tls.as_ref().map_or("none".to_string(), |t| format!("{} {}", t.version, t.cipher)),
                delivered = report.recipients.iter().filter(|o| o.is_accepted()).count(),
                failed = report.recipients.iter().filter(|o| o.is_permanent()).count(),
                deferred = report.recipients.iter().filter(|o| o.is_temporary()).count(),
                "delivery attempt"
            );
            for (host, address, failure) in &report.failures {
                tracing::debug!(queue_id = %job.message.entry.queue_id, %host, %address, %failure, "target failed");
            }
        }
        finished.extend(ready.iter().filter_map(Job::done));
        finished
    }

    /// A temporary failure: retry after the backoff, or fail when the lifetime is over.
    fn deferred(
        &self,
        entry: &QueueEntry,
        recipient: &EntryRecipient,
        now: i64,
        error: String,
    ) -> RecipientResult {
        let retry = &self.settings.retry;
        let expires = entry.created.saturating_add(seconds(retry.lifetime));
        let delay = seconds(retry.retry_delay(recipient.attempts.saturating_add(1)));
        let next_attempt = now.saturating_add(delay);
        if now >= expires {
            // RFC 3463 §3.5: X.4.7 "Delivery time expired".
            return RecipientResult::Failed {
                error: format!(
                    "5.4.7 delivery time expired after {} days; last error: {error}",
                    retry.lifetime.as_secs() / 86_400
                ),
            };
        }
        RecipientResult::Deferred {
            next_attempt: next_attempt.min(expires.max(now)),
            error,
        }
    }

    fn result(
        &self,
        entry: &QueueEntry,
        recipient: &EntryRecipient,
        outcome: &DeliveryOutcome,
        host: Option<&str>,
        now: i64,
    ) -> RecipientResult {
        match outcome {
            DeliveryOutcome::Replied(RecipientOutcome::Accepted(_)) => RecipientResult::Delivered,
            DeliveryOutcome::Replied(RecipientOutcome::PermanentFailure(reply)) => {
                RecipientResult::Failed {
                    error: remote_error(host, reply),
                }
            }
            DeliveryOutcome::Replied(RecipientOutcome::TemporaryFailure(reply)) => {
                self.deferred(entry, recipient, now, remote_error(host, reply))
            }
            DeliveryOutcome::Replied(RecipientOutcome::NotAttempted) => self.deferred(
                entry,
                recipient,
                now,
                "4.4.2 the connection ended before a reply".to_string(),
            ),
            DeliveryOutcome::Deferred(failure) => self.deferred(
                entry,
                recipient,
                now,
                format!("{} {failure}", failure.enhanced_status()),
            ),
            DeliveryOutcome::Failed(failure) => RecipientResult::Failed {
                error: format!("{} {failure}", failure.enhanced_status()),
            },
        }
    }
}

impl Job {
    /// This job is over: the message's id when it was its last one.
    fn done(&self) -> Option<QueueId> {
        (self.message.open_jobs.fetch_sub(1, Ordering::AcqRel) == 1)
            .then_some(self.message.entry.queue_id)
    }
}

/// The destination of a recipient: its domain, lower-cased (RFC 5321 §2.4: domains are
/// case-insensitive), or an address literal as written.
fn destination_of(address: &str) -> String {
    let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
    domain.trim_end_matches('.').to_ascii_lowercase()
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

mod outgoing;
mod reports;
mod tls_rpt;

use outgoing::{envelope, strip_return_path};
use reports::remote_error;
use tls_rpt::tls_sessions;

#[cfg(test)]
mod tests;
