//! One POP3 session: the loop between the connection, the core and the store.

use std::time::Duration;

use sealpost_net::{CancellationToken, Connection, NetError};
use sealpost_sasl::{Credentials, SaslError, SaslExchange, Step};
use sealpost_store::StoreError;
use sealpost_store::authenticate::AuthError;
use tokio::time::{Instant, timeout_at};

use super::maildrop::{self, LockGuard, PIECE, Snapshot};
use super::{LOGGED_IN_TIMEOUT, LOGIN_TIMEOUT, Pop3Service};
use crate::core::{Answer, AuthAbort, CoreConfig, Event, ServerCore};

/// Bytes read from the socket at a time (commands are short; this only bounds a burst).
const READ_CHUNK: usize = 16 * 1024;
/// Output written to the socket once this much is waiting while a message is sent.
const WRITE_THRESHOLD: usize = 64 * 1024;

pub(super) struct Session<'a> {
    service: &'a Pop3Service,
    conn: &'a mut Connection,
    core: ServerCore,
    sasl: Option<SaslExchange>,
    /// Held from login to the end of the session (released when the session is dropped).
    _lock: Option<LockGuard>,
    snapshot: Option<Snapshot>,
    /// `[limits] idle_timeout_secs`, as the listener set it.
    idle: Duration,
}

impl<'a> Session<'a> {
    pub(super) fn new(
        service: &'a Pop3Service,
        conn: &'a mut Connection,
        config: CoreConfig,
    ) -> Self {
        let idle = conn.idle_timeout();
        Self {
            service,
            conn,
            core: ServerCore::new(config),
            sasl: None,
            _lock: None,
            snapshot: None,
            idle,
        }
    }

    /// How long the client has for its next command: short before login, at least the
    /// 10 minutes of RFC 1939 §3 after.
    fn command_timeout(&self) -> Duration {
        if self.core.is_logged_in() {
            self.idle.max(LOGGED_IN_TIMEOUT)
        } else {
            self.idle.min(LOGIN_TIMEOUT)
        }
    }

    async fn flush_output(&mut self) -> Result<(), NetError> {
        if self.core.has_output() {
            let output = self.core.take_output();
            self.conn.write_all(&output).await?;
            self.conn.flush().await?;
        }
        Ok(())
    }

    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        let mut buffer = vec![0u8; READ_CHUNK];
        let mut deadline = Instant::now();
        loop {
            // RFC 2449 §6.6: responses to pipelined commands go out together, before we
            // block waiting for more input.
            if self.flush_output().await.is_err() || self.core.should_close() {
                return;
            }
            if !self.core.has_partial_input() {
                // The deadline runs from the start of a command: trickling one byte at a
                // time does not extend it (SECURITY-TESTS PO-08).
                deadline = Instant::now() + self.command_timeout();
            }
            let read = tokio::select! {
                read = timeout_at(deadline, self.conn.read_chunk(&mut buffer)) => read,
                () = shutdown.cancelled() => {
                    // RFC 3206 §4: SYS/TEMP; nothing marked deleted is removed (RFC 1939 §6).
                    let _ = self
                        .conn
                        .write_all(b"-ERR [SYS/TEMP] Server shutting down\r\n")
                        .await;
                    return;
                }
            };
            match read {
                Ok(Ok(0)) => self.core.feed_eof(),
                Ok(Ok(count)) => self.core.feed(buffer.get(..count).unwrap_or_default()),
                Err(_) | Ok(Err(NetError::Timeout(_))) => {
                    // RFC 1939 §3: the autologout timer ends the session without the UPDATE
                    // state.
                    let _ = self
                        .conn
                        .write_all(b"-ERR Disconnected for inactivity\r\n")
                        .await;
                    return;
                }
                Ok(Err(_)) => return,
            }
            while let Some(event) = self.core.next_event() {
                if !self.handle(event).await {
                    return;
                }
            }
        }
    }

    /// Acts on one event; `false` ends the session at once.
    async fn handle(&mut self, event: Event) -> bool {
        let answer = match event {
            Event::StartTls => return self.start_tls().await,
            Event::Retrieve { index, .. } => return self.retrieve(index).await,
            Event::Login { user, password } => {
                let credentials = Credentials {
                    authzid: String::new(),
                    authcid: user,
                    password,
                };
                self.login(&credentials).await
            }
            Event::Auth {
                mechanism,
                initial_response,
            } => {
                let (exchange, step) = SaslExchange::start(mechanism, initial_response.as_deref());
                self.sasl = Some(exchange);
                self.auth_step(step).await
            }
            Event::AuthResponse { line } => match self.sasl.as_mut() {
                Some(exchange) => {
                    let step = exchange.step(&line);
                    self.auth_step(step).await
                }
                None => Answer::AuthAborted(AuthAbort::Malformed),
            },
            Event::Update { deleted } => self.update(&deleted).await,
        };
        self.core.answer(answer);
        true
    }

    /// RFC 2595 §4: upgrade in place; the core dropped its buffered plaintext and the
    /// connection drops its own, so nothing sent before the handshake is executed.
    async fn start_tls(&mut self) -> bool {
        if self.flush_output().await.is_err() {
            return false;
        }
        match self.conn.start_tls_default().await {
            Ok(()) => {
                self.core.tls_started();
                self.sasl = None;
                true
            }
            Err(error) => {
                // RFC 2595 §4: no fallback to plaintext after a failed negotiation.
                tracing::debug!(%error, "STLS handshake failed");
                false
            }
        }
    }

    async fn auth_step(&mut self, step: Result<Step, SaslError>) -> Answer {
        let credentials = match step {
            Ok(Step::Challenge(challenge)) => return Answer::AuthChallenge(challenge),
            Ok(Step::Done(credentials)) => credentials,
            Err(SaslError::Cancelled) => {
                self.sasl = None;
                return Answer::AuthAborted(AuthAbort::Cancelled);
            }
            Err(_) => {
                self.sasl = None;
                return Answer::AuthAborted(AuthAbort::Malformed);
            }
        };
        self.sasl = None;
        self.login(&credentials).await
    }

    /// Checks the credentials, locks the maildrop and reads it (RFC 1939 §7 PASS).
    async fn login(&mut self, credentials: &Credentials) -> Answer {
        let client_ip = self.conn.peer().ip();
        let account = match self
            .service
            .authenticator
            .authenticate(credentials, client_ip)
            .await
        {
            Ok(account) => account,
            Err(AuthError::Failed) => return Answer::AuthFailed,
            Err(AuthError::Temporary(reason)) => {
                tracing::error!(%reason, "authentication unavailable");
                return Answer::TempFailure;
            }
        };
        // RFC 1939 §8: one session at a time per maildrop.
        let Some(lock) = self.service.locks.try_lock(account.id) else {
            tracing::info!(user = %account.address, "POP3 maildrop in use");
            return Answer::InUse;
        };
        let store = self.service.store.as_ref();
        match maildrop::open(store, &self.service.sizes, account.id).await {
            Ok((snapshot, maildrop)) => {
                tracing::info!(
                    user = %account.address,
                    messages = maildrop.len(),
                    "POP3 login"
                );
                self._lock = Some(lock);
                self.snapshot = Some(snapshot);
                self.conn.set_idle_timeout(self.idle.max(LOGGED_IN_TIMEOUT));
                Answer::LoggedIn(maildrop)
            }
            Err(error) => {
                // The lock is released here, before the negative response (RFC 1939 §7).
                tracing::error!(%error, user = %account.address, "cannot open the maildrop");
                Answer::TempFailure
            }
        }
    }

    /// RETR and TOP: the message is read and sent piece by piece, never held whole (the
    /// core's encoder applies TOP's cut and says when no more is wanted).
    async fn retrieve(&mut self, index: usize) -> bool {
        let Some(blob) = self
            .snapshot
            .as_ref()
            .and_then(|s| s.messages.get(index))
            .map(|m| m.blob)
        else {
            self.core.answer(Answer::TempFailure);
            return true;
        };
        let store = self.service.store.as_ref();
        let mut piece = match store.read_blob_range(&blob, 0, PIECE).await {
            Ok(piece) => piece,
            Err(StoreError::NotFound(_)) => {
                self.core.answer(Answer::MessageGone);
                return true;
            }
            Err(error) => {
                tracing::error!(%error, "cannot read a message");
                self.core.answer(Answer::TempFailure);
                return true;
            }
        };
        self.core.answer(Answer::MessageFollows);
        let mut offset = 0u64;
        loop {
            let wants_more = self.core.message_data(&piece);
            if self.core.output_len() >= WRITE_THRESHOLD {
                let output = self.core.take_output();
                if self.conn.write_all(&output).await.is_err() {
                    return false;
                }
            }
            if piece.len() < PIECE || !wants_more {
                break;
            }
            offset = offset.saturating_add(piece.len() as u64);
            piece = match store.read_blob_range(&blob, offset, PIECE).await {
                Ok(piece) => piece,
                Err(error) => {
                    // Removed by IMAP mid-way: the client must not take the part it got for
                    // the whole message, so the response is never terminated.
                    tracing::warn!(%error, "a message could not be read to its end");
                    self.core.message_abort();
                    return true;
                }
            };
        }
        self.core.message_end();
        true
    }

    /// RFC 1939 §6: the UPDATE state. The marked messages are expunged from INBOX (durably,
    /// and announced to IMAP sessions) before `+OK`.
    async fn update(&mut self, deleted: &[usize]) -> Answer {
        let Some(snapshot) = self.snapshot.as_ref() else {
            return Answer::TempFailure;
        };
        let uids = snapshot.uids(deleted);
        match self.service.store.expunge(snapshot.mailbox, &uids).await {
            Ok(removed) => {
                tracing::info!(deleted = removed.len(), "POP3 update");
                Answer::Updated
            }
            Err(error) => {
                tracing::error!(%error, "POP3 update failed");
                Answer::TempFailure
            }
        }
    }
}
