//! One IMAP session: the loop between the connection, the core and the store, and the
//! dispatch of commands to the files that implement them.

use std::collections::HashMap;
use std::sync::Arc;

use sealpost_net::{CancellationToken, Connection, NetError};
use sealpost_sasl::SaslExchange;
use sealpost_store::{Account, ChangeEvent, StoreError};
use sealpost_types::{BlobId, MailboxId, Uid};
use tokio::sync::broadcast;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::ImapService;
use super::selected::{Selected, concerns};
use crate::core::{
    AUTOLOGOUT_TIMEOUT, Code, Command, CommandBody, Completion, CoreConfig, Event,
    IDLE_KEEPALIVE_INTERVAL, ImapCore, Tag,
};
use crate::mime::{Dialect, MessageStructure};

/// Bytes read from the socket at a time (commands are short; this only bounds a burst).
const READ_CHUNK: usize = 16 * 1024;
/// Output is written to the socket once this much waits while a long answer is built.
pub(super) const WRITE_THRESHOLD: usize = 64 * 1024;
/// Parsed MIME structures a session keeps in memory (by blob) besides the store's copy, so
/// a client fetching one message's parts one by one decodes the structure once.
const MAX_CACHED_STRUCTURES: usize = 64;

pub(super) struct Session<'a> {
    pub(super) service: &'a ImapService,
    pub(super) conn: &'a mut Connection,
    pub(super) core: ImapCore,
    pub(super) sasl: Option<SaslExchange>,
    pub(super) account: Option<Account>,
    pub(super) selected: Option<Selected>,
    /// The account's change broadcast (subscribed at login).
    pub(super) changes: Option<broadcast::Receiver<ChangeEvent>>,
    /// The SEARCHRES result (`$`, RFC 5182): UIDs of the last SEARCH ... RETURN (SAVE).
    pub(super) saved_search: Option<Vec<Uid>>,
    /// IDLE is running (between `+ idling` and DONE).
    pub(super) idling: bool,
    structures: HashMap<BlobId, Arc<MessageStructure>>,
    /// This session's place among the account's sessions from its address (taken at login).
    pub(super) slot: Option<super::limits::SessionSlot>,
    /// The account's quota as read at login; with one, the core learns after every
    /// command how much an APPEND may still upload.
    pub(super) quota: Option<u64>,
    /// Output taken from the core but not yet written.
    pending_output: Vec<u8>,
}

/// What handling the buffered input did.
enum Drained {
    Nothing,
    Handled,
    Closed,
}

/// What woke the loop.
enum Wake {
    Read(Result<Result<usize, NetError>, tokio::time::error::Elapsed>),
    /// A change event arrived (`Some(true)`: it concerns the selected mailbox, or some
    /// were missed); `None`: the broadcast ended.
    Change(Option<bool>),
    Keepalive,
    Shutdown,
}

impl<'a> Session<'a> {
    pub(super) fn new(
        service: &'a ImapService,
        conn: &'a mut Connection,
        config: CoreConfig,
    ) -> Self {
        Self {
            service,
            conn,
            core: ImapCore::new(config),
            sasl: None,
            account: None,
            selected: None,
            changes: None,
            saved_search: None,
            idling: false,
            structures: HashMap::new(),
            slot: None,
            quota: None,
            pending_output: Vec::new(),
        }
    }

    /// Writes every queued byte and flushes.
    pub(super) async fn flush(&mut self) -> Result<(), NetError> {
        let mut output = std::mem::take(&mut self.pending_output);
        output.extend_from_slice(&self.core.take_output());
        if !output.is_empty() {
            self.conn.write_all(&output).await?;
            self.conn.flush().await?;
        }
        Ok(())
    }

    /// Writes what waits once it has grown large (between FETCH responses), so memory
    /// stays bounded on big mailboxes.
    pub(super) async fn flush_if_large(&mut self) -> Result<(), NetError> {
        let output = self.core.take_output();
        self.pending_output.extend_from_slice(&output);
        if self.pending_output.len() >= WRITE_THRESHOLD {
            let pending = std::mem::take(&mut self.pending_output);
            self.conn.write_all(&pending).await?;
        }
        Ok(())
    }

    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        let mut buffer = vec![0u8; READ_CHUNK];
        let mut keepalive = Instant::now() + IDLE_KEEPALIVE_INTERVAL;
        let mut deadline = self.next_deadline();
        loop {
            // Responses to pipelined commands go out together, before blocking on input.
            if self.flush().await.is_err() || self.core.should_close() {
                return;
            }
            if !self.core.wants_input() {
                match self.drain_events().await {
                    Drained::Closed => return,
                    Drained::Handled => {
                        deadline = self.next_deadline();
                        continue;
                    }
                    // Nothing to do without input: read (the core ends a session that
                    // overfills its buffer), never spin.
                    Drained::Nothing => {}
                }
            }
            let selected = self.selected.as_ref().map(|s| s.mailbox.id);
            let wake = tokio::select! {
                read = timeout_at(deadline, self.conn.read_chunk(&mut buffer)) => Wake::Read(read),
                () = shutdown.cancelled() => Wake::Shutdown,
                change = wait_change(&mut self.changes, selected), if self.idling => {
                    Wake::Change(change)
                }
                () = sleep_until(keepalive), if self.idling => Wake::Keepalive,
            };
            match wake {
                Wake::Read(Ok(Ok(0))) => self.core.feed_eof(),
                Wake::Read(Ok(Ok(count))) => {
                    self.core.feed(buffer.get(..count).unwrap_or_default());
                }
                // RFC 9051 §5.4: the autologout timer.
                Wake::Read(Err(_) | Ok(Err(NetError::Timeout(_)))) => self.core.autologout(),
                Wake::Read(Ok(Err(_))) => return,
                Wake::Shutdown => {
                    // RFC 9051 §7.1.5: BYE when the server closes the connection.
                    self.core.shutdown("Server shutting down");
                    let _ = self.flush().await;
                    return;
                }
                Wake::Change(change) => {
                    // RFC 2177 §3 / RFC 9051 §6.3.13: updates at once during IDLE.
                    if let Some(relevant) = change {
                        self.announce(relevant).await;
                    }
                    continue;
                }
                Wake::Keepalive => {
                    // SECURITY-TESTS IM-17: `* OK Still here` about every 2 minutes.
                    self.core.idle_keepalive();
                    keepalive = Instant::now() + IDLE_KEEPALIVE_INTERVAL;
                    continue;
                }
            }
            match self.drain_events().await {
                Drained::Closed => return,
                Drained::Handled => {
                    deadline = self.next_deadline();
                    keepalive = Instant::now() + IDLE_KEEPALIVE_INTERVAL;
                }
                Drained::Nothing => {}
            }
        }
    }

    /// When the client must have sent its next command by. It runs from the end of the
    /// last command, so trickling bytes does not extend it (SECURITY-TESTS PO-08/RL-08
    /// for IMAP): 30 minutes once logged in and during IDLE (RFC 9051 §5.4, the core
    /// chooses), shorter before login.
    fn next_deadline(&self) -> Instant {
        let limit = self.core.read_timeout().unwrap_or(AUTOLOGOUT_TIMEOUT);
        Instant::now() + limit
    }

    /// Handles every event the buffered input yields.
    async fn drain_events(&mut self) -> Drained {
        let mut handled = Drained::Nothing;
        while let Some(event) = self.core.next_event() {
            if !self.handle(event).await {
                return Drained::Closed;
            }
            handled = Drained::Handled;
        }
        handled
    }

    async fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::StartTls => return self.start_tls().await,
            Event::Command(command) => {
                if let Some(completion) = self.command(command).await {
                    self.core.finish(completion);
                }
            }
            Event::AuthResponse(line) => {
                if let Some(completion) = self.auth_response(line.expose()).await {
                    self.core.finish(completion);
                }
            }
            Event::IdleDone { done } => {
                self.idling = false;
                let completion = if done {
                    Completion::ok("IDLE terminated")
                } else {
                    // RFC 2177 §3: anything but DONE ends IDLE with BAD.
                    Completion::bad("Expected DONE")
                };
                self.core.finish(completion);
            }
        }
        true
    }

    /// RFC 9051 §6.2.1: upgrade in place; the core dropped what was pipelined after the
    /// command and the connection drops its own buffer (CVE-2011-0411).
    async fn start_tls(&mut self) -> bool {
        if self.flush().await.is_err() {
            return false;
        }
        match self.conn.start_tls_default().await {
            Ok(()) => {
                self.core.tls_started();
                self.sasl = None;
                true
            }
            Err(error) => {
                tracing::debug!(%error, "STARTTLS handshake failed");
                false
            }
        }
    }

    /// Runs one command; `None` when the core waits for more (AUTHENTICATE challenge,
    /// IDLE accepted).
    async fn command(&mut self, command: Command) -> Option<Completion> {
        let Command { tag, body } = command;
        // RFC 9051 §7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH (their UID
        // forms may carry it); updates go out after the other commands' own data.
        let announce = match &body {
            CommandBody::Fetch { uid, .. }
            | CommandBody::Store { uid, .. }
            | CommandBody::Search { uid, .. } => *uid,
            CommandBody::Select { .. }
            | CommandBody::Close
            | CommandBody::Unselect
            | CommandBody::Idle
            | CommandBody::Logout => false,
            _ => true,
        };
        // RFC 9051 §6.1.2: NOOP (and CHECK) is how clients poll: look at the store even
        // without a change event (changes by other processes are not broadcast).
        let poll = matches!(body, CommandBody::Noop | CommandBody::Check);
        let completion = self.dispatch(&tag, body).await?;
        if announce && self.selected.is_some() {
            self.announce(poll).await;
        }
        if self.quota.is_some() {
            self.refresh_append_allowance().await;
        }
        Some(completion)
    }

    async fn dispatch(&mut self, tag: &Tag, body: CommandBody) -> Option<Completion> {
        let completion = match body {
            CommandBody::Login { username, password } => self.login(username, password).await,
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => return self.authenticate(mechanism, initial_response).await,
            CommandBody::Noop | CommandBody::Check => Completion::ok("NOOP completed"),
            CommandBody::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => self.select(&mailbox, read_only, condstore, qresync).await,
            CommandBody::Close => self.close().await,
            CommandBody::Unselect => self.unselect(),
            CommandBody::Create { mailbox } => self.create(&mailbox).await,
            CommandBody::Delete { mailbox } => self.delete(&mailbox).await,
            CommandBody::Rename { from, to } => self.rename(&from, &to).await,
            CommandBody::Subscribe { mailbox } => self.subscribe(&mailbox, true).await,
            CommandBody::Unsubscribe { mailbox } => self.subscribe(&mailbox, false).await,
            CommandBody::List(list) => self.list(&list).await,
            CommandBody::Lsub { reference, pattern } => self.lsub(&reference, &pattern).await,
            CommandBody::Namespace => self.namespace(),
            CommandBody::Status { mailbox, items } => self.status(&mailbox, &items).await,
            CommandBody::Fetch {
                uid,
                set,
                attrs,
                changed_since,
                vanished,
            } => self.fetch(uid, &set, &attrs, changed_since, vanished).await,
            CommandBody::Store {
                uid,
                set,
                unchanged_since,
                mode,
                silent,
                flags,
            } => {
                let request = super::store::StoreRequest {
                    uid,
                    set,
                    unchanged_since,
                    mode,
                    silent,
                    flags,
                };
                self.store_flags(request).await
            }
            CommandBody::Search { uid, program } => self.search(tag, uid, &program).await,
            CommandBody::Copy { uid, set, mailbox } => {
                self.copy_move(uid, &set, &mailbox, false).await
            }
            CommandBody::Move { uid, set, mailbox } => {
                self.copy_move(uid, &set, &mailbox, true).await
            }
            CommandBody::Expunge { uids } => self.expunge(uids.as_ref()).await,
            CommandBody::Append { mailbox, messages } => self.append(&mailbox, messages).await,
            CommandBody::Idle => return self.idle().await,
            CommandBody::Id { params } => self.id(params.as_ref()),
            CommandBody::GetQuota { root } => self.get_quota(&root).await,
            CommandBody::GetQuotaRoot { mailbox } => self.get_quota_root(&mailbox).await,
            // RFC 9208 §4.1: limits are set by the administrator (no QUOTASET).
            CommandBody::SetQuota { .. } => {
                Completion::no("Quota limits are set by the administrator").with_code(Code::NoPerm)
            }
            // Answered by the core itself.
            CommandBody::Capability
            | CommandBody::Logout
            | CommandBody::StartTls
            | CommandBody::Enable { .. } => Completion::bad("Unexpected command"),
        };
        Some(completion)
    }

    /// How MIME data is written for this client.
    pub(super) fn dialect(&self) -> Dialect {
        let session = self.core.session();
        Dialect {
            rev2: session.enabled.imap4rev2,
            utf8: session.utf8_names(),
        }
    }

    /// The MIME structure of a message: from this session's memory, else from the store's
    /// copy beside the blob, else parsed from `raw` (read here when not given) and saved
    /// for every later session.
    pub(super) async fn structure(
        &mut self,
        blob: BlobId,
        raw: Option<&[u8]>,
    ) -> Result<Arc<MessageStructure>, StoreError> {
        if let Some(found) = self.structures.get(&blob) {
            return Ok(Arc::clone(found));
        }
        let store = &self.service.store;
        let cached = store
            .blob_summary(&blob)
            .await?
            .and_then(|bytes| MessageStructure::from_bytes(&bytes).ok());
        let structure = match cached {
            Some(structure) => structure,
            None => {
                let parsed = match raw {
                    Some(raw) => MessageStructure::parse(raw),
                    None => MessageStructure::parse(&store.read_blob(&blob).await?),
                };
                // Saved in the background: the answer does not wait for the commit, and
                // the writer's group commit takes many of these at once.
                let store = Arc::clone(store);
                let summary = parsed.to_bytes();
                tokio::spawn(async move {
                    if let Err(error) = store.save_blob_summary(&blob, summary).await {
                        tracing::warn!(%error, "cannot keep a message structure");
                    }
                });
                parsed
            }
        };
        if self.structures.len() >= MAX_CACHED_STRUCTURES {
            self.structures.clear();
        }
        let structure = Arc::new(structure);
        self.structures.insert(blob, Arc::clone(&structure));
        Ok(structure)
    }
}

/// Waits for a change event: `Some(true)` when it concerns the selected mailbox (or
/// events were missed), `Some(false)` for others, `None` once the broadcast has ended
/// (then there is nothing more to wait for).
async fn wait_change(
    changes: &mut Option<broadcast::Receiver<ChangeEvent>>,
    selected: Option<MailboxId>,
) -> Option<bool> {
    match changes {
        Some(receiver) => match receiver.recv().await {
            Ok(event) => Some(selected.is_some_and(|m| concerns(&event, m))),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(true),
            Err(broadcast::error::RecvError::Closed) => {
                *changes = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// The answer for a store failure.
pub(super) fn store_failure(error: &StoreError) -> Completion {
    match error {
        StoreError::NotFound(_) => Completion::no("No such mailbox").with_code(Code::NonExistent),
        StoreError::AlreadyExists(_) => {
            Completion::no("Mailbox already exists").with_code(Code::AlreadyExists)
        }
        StoreError::Refused(_) | StoreError::InUse(..) => {
            Completion::no("Not allowed").with_code(Code::Cannot)
        }
        other => {
            tracing::error!(error = %other, "IMAP store failure");
            Completion::no("Temporary server failure").with_code(Code::ServerBug)
        }
    }
}
