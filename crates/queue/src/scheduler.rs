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

    /// The message as it leaves: the stored bytes without our leading Return-Path (added
    /// for the local copies that share the blob, RFC 5321 §4.4: only the final delivery adds
    /// it), DKIM-signed when its From domain is ours.
    async fn prepare<'m>(&self, message: &'m Message) -> Result<&'m Prepared, String> {
        message
            .prepared
            .get_or_init(|| async {
                let stored = self
                    .store
                    .read_blob(&message.entry.blob)
                    .await
                    .map_err(|error| error.to_string())?;
                let original: Arc<[u8]> = Arc::from(stored);
                let unsigned = strip_return_path(&original);
                let mut body = Vec::with_capacity(unsigned.len() + 2048);
                if let Some(signer) = self.signer_for(unsigned).await {
                    match signer.sign(unsigned) {
                        Ok(signatures) => body.extend_from_slice(&signatures),
                        Err(error) => tracing::error!(
                            queue_id = %message.entry.queue_id,
                            %error,
                            "DKIM signing failed; sending unsigned"
                        ),
                    }
                }
                body.extend_from_slice(unsigned);
                Ok(Prepared {
                    body: MessageBody::from(body),
                    original,
                })
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The signer of the message's From domain when that domain is ours and has keys.
    async fn signer_for(&self, message: &[u8]) -> Option<Arc<DkimSigner>> {
        let domain = signing_domain(message)?;
        let mut signers = self.signers.lock().await;
        if let Some((read, signer)) = signers.get(&domain)
            && read.elapsed() < SIGNER_TTL
        {
            return signer.clone();
        }
        let signer = match self.store.domain(&domain).await {
            Ok(Some(record)) => match DkimSigner::new(&record) {
                Ok(signer) => Some(Arc::new(signer)),
                Err(error) => {
                    tracing::warn!(%domain, %error, "cannot sign for this domain");
                    None
                }
            },
            Ok(None) => None,
            Err(error) => {
                tracing::error!(%domain, %error, "store error reading DKIM keys");
                return None;
            }
        };
        signers.insert(domain, (Instant::now(), signer.clone()));
        signer
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

    /// Commits one attempt's outcomes for `job`, then sends the reports they call for.
    async fn record(&self, job: &Job, results: Vec<(String, RecipientResult)>) {
        let entry = &job.message.entry;
        let now = unix_now();
        let outcome = match self.store.record_attempt(entry.queue_id, &results).await {
            Ok(outcome) => outcome,
            Err(error) => {
                // NotFound: dropped meanwhile (`sealpost queue drop`). Otherwise the
                // recipients stay queued and are tried again.
                tracing::warn!(queue_id = %entry.queue_id, %error, "cannot record the delivery attempt");
                return;
            }
        };
        self.report_delay(job, &results, &outcome, now).await;
        if let Some(finished) = outcome.finished {
            let failed: Vec<DsnRecipient> = finished
                .recipients
                .iter()
                .filter(|r| r.status == RecipientStatus::Failed)
                .filter(|r| dsn::wants_report(r.notify.as_deref(), Action::Failed))
                .map(|r| failed_recipient(r, now))
                .collect();
            if failed.is_empty() {
                return;
            }
            let original = finished.raw.as_deref().unwrap_or_default();
            self.notify(&finished.entry, &failed, original, now, "bounce")
                .await;
        }
    }

    /// The message as stored, for a report; empty when it cannot be read any more.
    async fn original(&self, message: &Message) -> Arc<[u8]> {
        match self.prepare(message).await {
            Ok(prepared) => Arc::clone(&prepared.original),
            Err(_) => Arc::from(Vec::new()),
        }
    }

    /// Sends the sender of `entry` a report (`what`, for the log) on `recipients`, with the
    /// original without our Return-Path.
    async fn notify(
        &self,
        entry: &QueueEntry,
        recipients: &[DsnRecipient],
        original: &[u8],
        now: i64,
        what: &str,
    ) {
        let original = strip_return_path(original);
        let hostname = &self.settings.hostname;
        match notify_sender(
            self.store.as_ref(),
            hostname,
            entry,
            recipients,
            original,
            now,
        )
        .await
        {
            Ok(notified) => tracing::info!(queue_id = %entry.queue_id, "{what}: {notified}"),
            Err(error) => {
                tracing::error!(queue_id = %entry.queue_id, %error, "cannot send the {what}")
            }
        }
    }

    /// RFC 3461 §6.2.1: a recipient that asked for SUCCESS, accepted by a server that does
    /// not offer DSN, gets a `relayed` report from us: no other will come.
    async fn report_relayed(&self, job: &Job, report: &DeliveryReport, now: i64) {
        let relayed: Vec<DsnRecipient> = job
            .recipients
            .iter()
            .zip(&report.recipients)
            .filter_map(|(recipient, outcome)| {
                let DeliveryOutcome::Replied(RecipientOutcome::Accepted(reply)) = outcome else {
                    return None;
                };
                if recipient.notify.is_none()
                    || !dsn::wants_report(recipient.notify.as_deref(), Action::Relayed)
                {
                    return None;
                }
                let remote = remote_error(report.host.as_deref(), reply);
                let (_, remote_mta, diagnostic) = describe(&remote, '2');
                Some(DsnRecipient {
                    address: recipient.address.clone(),
                    orcpt: recipient.orcpt.clone(),
                    action: Action::Relayed,
                    // RFC 3463 §3.1: 2.0.0, success.
                    status: "2.0.0".to_string(),
                    remote_mta,
                    diagnostic: Some(diagnostic),
                    last_attempt: Some(now),
                    will_retry_until: None,
                })
            })
            .collect();
        if relayed.is_empty() {
            return;
        }
        let original = self.original(&job.message).await;
        self.notify(
            &job.message.entry,
            &relayed,
            &original,
            now,
            "relayed report",
        )
        .await;
    }

    /// RFC 3464 `Action: delayed`, once per message (the store decides who sends it), when
    /// a recipient that asked for it (RFC 3461 §4.1) still waits after the warning time.
    async fn report_delay(
        &self,
        job: &Job,
        results: &[(String, RecipientResult)],
        outcome: &AttemptOutcome,
        now: i64,
    ) {
        let entry = &job.message.entry;
        let Some(warning) = self.settings.retry.delay_warning else {
            return;
        };
        if entry.delay_reported
            || outcome.still_queued == 0
            || now < entry.created.saturating_add(seconds(warning))
        {
            return;
        }
        let until = entry
            .created
            .saturating_add(seconds(self.settings.retry.lifetime));
        let delayed: Vec<DsnRecipient> = results
            .iter()
            .filter_map(|(address, result)| {
                let RecipientResult::Deferred { error, .. } = result else {
                    return None;
                };
                let recipient = job.recipients.iter().find(|r| &r.address == address)?;
                if !dsn::wants_report(recipient.notify.as_deref(), Action::Delayed) {
                    return None;
                }
                let (status, remote_mta, diagnostic) = describe(error, '4');
                Some(DsnRecipient {
                    address: address.clone(),
                    orcpt: recipient.orcpt.clone(),
                    action: Action::Delayed,
                    status,
                    remote_mta,
                    diagnostic: Some(diagnostic),
                    last_attempt: Some(now),
                    will_retry_until: Some(until),
                })
            })
            .collect();
        if delayed.is_empty() {
            return;
        }
        match self.store.claim_delay_report(entry.queue_id).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(queue_id = %entry.queue_id, %error, "cannot note the delay report");
                return;
            }
        }
        let original = self.original(&job.message).await;
        self.notify(entry, &delayed, &original, now, "delay report")
            .await;
    }
}

impl Job {
    /// This job is over: the message's id when it was its last one.
    fn done(&self) -> Option<QueueId> {
        (self.message.open_jobs.fetch_sub(1, Ordering::AcqRel) == 1)
            .then_some(self.message.entry.queue_id)
    }
}

/// TLS-RPT data (RFC 8460 §4.4) of one batch: each session counted once (a batch's reports
/// share their sessions), by the policy that applied to its host.
fn tls_sessions(
    domain: &str,
    route: &Route,
    reports: &[DeliveryReport],
    now: i64,
) -> Vec<TlsSessions> {
    let day = {
        let t = UtcDateTime::from_unix(now);
        format!("{:04}-{:02}-{:02}", t.year, t.month, t.day)
    };
    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    let mut sessions: Vec<TlsSessions> = Vec::new();
    // One session: host, address and what happened (each report of a batch repeats it).
    let mut add = |host: &str, address: &SocketAddr, result: &str, ip: String, reason: String| {
        if !seen.insert((host.to_string(), address.to_string(), reason.clone())) {
            return;
        }
        let (policy_type, policy_string) = route.tls_policy(host);
        match sessions
            .iter_mut()
            .find(|s| s.mx_host == host && s.result == result && s.receiving_ip == ip)
        {
            Some(session) => session.count += 1,
            None => sessions.push(TlsSessions {
                day: day.clone(),
                policy_domain: domain.to_string(),
                policy_type: policy_type.to_string(),
                policy_string,
                mx_host: host.to_string(),
                result: result.to_string(),
                receiving_ip: ip,
                reason,
                count: 1,
            }),
        }
    };
    for report in reports {
        if let (Some(host), Some(address)) = (&report.host, &report.address) {
            match &report.tls {
                Some(_) => add(host, address, "success", String::new(), String::new()),
                // RFC 8460 §4.3.1: the server offered no STARTTLS.
                None => add(
                    host,
                    address,
                    "starttls-not-supported",
                    address.ip().to_string(),
                    "plaintext session".to_string(),
                ),
            }
        }
        for (host, address, failure) in &report.failures {
            if let Some(result) = tls_result(failure) {
                add(
                    host,
                    address,
                    result,
                    address.ip().to_string(),
                    failure.to_string(),
                );
            }
        }
    }
    sessions
}

/// The RFC 8460 §4.3 result type of a TLS failure; `None` for failures before TLS (no
/// connection, a refused session).
fn tls_result(failure: &Failure) -> Option<&'static str> {
    match failure {
        Failure::TlsNotOffered | Failure::StartTlsRefused(_) => Some("starttls-not-supported"),
        Failure::Certificate { problem, .. } => Some(problem.result_type()),
        Failure::TlsHandshake(_) => Some("validation-failure"),
        _ => None,
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

/// A remote reply as kept in the queue: `HOST said: CODE ENHANCED TEXT` (what `queue list`
/// shows and [`describe`] reads back for a report).
fn remote_error(host: Option<&str>, reply: &Reply) -> String {
    format!("{} said: {}", host.unwrap_or("the server"), show(reply))
}

/// What a kept error says for a report: the RFC 3463 status, the remote MTA and the
/// diagnostic (RFC 3464 §2.3.4-§2.3.6). `class` is the status class when the error has
/// none ('5' for failures, '4' for delays).
fn describe(error: &str, class: char) -> (String, Option<String>, Diagnostic) {
    if let Some((word, rest)) = error.split_once(' ')
        && is_status(word)
    {
        return (word.to_string(), None, Diagnostic::Local(rest.to_string()));
    }
    if let Some((host, reply)) = error.split_once(" said: ") {
        let mut words = reply.split_whitespace();
        let code = words.next().unwrap_or_default();
        let status = words
            .next()
            .filter(|word| is_status(word))
            .map(str::to_string)
            .unwrap_or_else(|| {
                let first = code.chars().next().filter(|c| matches!(c, '4' | '5'));
                format!("{}.0.0", first.unwrap_or(class))
            });
        return (
            status,
            Some(host.to_string()),
            Diagnostic::Smtp(reply.to_string()),
        );
    }
    (
        format!("{class}.0.0"),
        None,
        Diagnostic::Local(error.to_string()),
    )
}

/// `class.subject.detail` (RFC 3463 §2).
fn is_status(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && matches!(parts.first(), Some(&"2" | &"4" | &"5"))
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn failed_recipient(recipient: &EntryRecipient, now: i64) -> DsnRecipient {
    let error = recipient.last_error.as_deref().unwrap_or("5.0.0 failed");
    let (mut status, remote_mta, diagnostic) = describe(error, '5');
    // A failed recipient's status is permanent (RFC 3464 §2.3.4), even after temporary
    // replies until the lifetime ran out.
    if status.starts_with('4') {
        status.replace_range(..1, "5");
    }
    DsnRecipient {
        address: recipient.address.clone(),
        orcpt: recipient.orcpt.clone(),
        action: Action::Failed,
        status,
        remote_mta,
        diagnostic: Some(diagnostic),
        last_attempt: Some(now),
        will_retry_until: None,
    }
}

/// Drops the first line when it is a Return-Path header field: sealpost's own, added for the
/// local copies of a mixed delivery (the final delivery adds it, RFC 5321 §4.4).
fn strip_return_path(raw: &[u8]) -> &[u8] {
    const NAME: &[u8] = b"return-path:";
    let starts = raw
        .get(..NAME.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(NAME));
    if !starts {
        return raw;
    }
    match raw.windows(2).position(|w| w == b"\r\n") {
        Some(end) => raw.get(end + 2..).unwrap_or_default(),
        None => raw,
    }
}

/// The SMTP envelope of one job: its recipients with their DSN parameters (RFC 3461, passed
/// on when the next server offers DSN), SMTPUTF8 when an address or the header needs it.
fn envelope(entry: &QueueEntry, recipients: &[EntryRecipient], body: &MessageBody) -> Envelope {
    let recipients: Vec<Recipient> = recipients
        .iter()
        .map(|r| Recipient {
            address: r.address.clone(),
            notify: r.notify.as_deref().map(parse_notify),
            orcpt: r
                .orcpt
                .as_deref()
                .and_then(|o| o.split_once(';'))
                .map(|(kind, address)| (kind.to_string(), address.to_string())),
        })
        .collect();
    let header_end = body
        .as_bytes()
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(body.as_bytes().len());
    let eight_bit_header = body
        .as_bytes()
        .get(..header_end)
        .is_some_and(|h| !h.is_ascii());
    let non_ascii_address = entry.from.as_deref().is_some_and(|f| !f.is_ascii())
        || recipients.iter().any(|r| !r.address.is_ascii());
    Envelope {
        from: entry.from.clone(),
        recipients,
        smtputf8: eight_bit_header || non_ascii_address,
        // RFC 8689 §4.2.1: passed on; the core refuses a server that does not offer it.
        require_tls: entry.require_tls,
        ret: entry.ret.as_deref().and_then(|ret| {
            if ret.eq_ignore_ascii_case("FULL") {
                Some(DsnRet::Full)
            } else if ret.eq_ignore_ascii_case("HDRS") {
                Some(DsnRet::Headers)
            } else {
                None
            }
        }),
        envid: entry.envid.clone(),
    }
}

/// NOTIFY as kept ("SUCCESS,FAILURE", "NEVER").
fn parse_notify(text: &str) -> DsnNotify {
    let mut notify = DsnNotify::default();
    for keyword in text.split(',') {
        match keyword.trim().to_ascii_uppercase().as_str() {
            "NEVER" => notify.never = true,
            "SUCCESS" => notify.success = true,
            "FAILURE" => notify.failure = true,
            "DELAY" => notify.delay = true,
            _ => {}
        }
    }
    notify
}

#[cfg(test)]
mod tests;
