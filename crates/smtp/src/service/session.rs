//! One SMTP session: the loop between the connection, the core and the service's decisions.

use sealpost_net::{CancellationToken, Connection, NetError};
use sealpost_sasl::{SaslError, SaslExchange, Step};
use sealpost_store::Account;
use sealpost_store::authenticate::AuthError;

use super::recipients::{RecipientDecision, Transaction};
use super::{PortRole, SmtpService};
use crate::core::{Answer, CoreConfig, Event, Reply, ServerCore};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

pub(super) struct Session<'a> {
    pub(super) service: &'a SmtpService,
    pub(super) conn: &'a mut Connection,
    pub(super) core: ServerCore,
    pub(super) role: PortRole,
    pub(super) account: Option<Account>,
    sasl: Option<SaslExchange>,
    auth_failures: usize,
    pub(super) transaction: Option<Transaction>,
}

impl<'a> Session<'a> {
    pub(super) fn new(
        service: &'a SmtpService,
        conn: &'a mut Connection,
        config: CoreConfig,
        role: PortRole,
    ) -> Self {
        Self {
            service,
            conn,
            core: ServerCore::new(config),
            role,
            account: None,
            sasl: None,
            auth_failures: 0,
            transaction: None,
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
        // The connection's idle timeout is `[limits] idle_timeout_secs` (default 300 s, the
        // RFC 5321 §4.5.3.2.7 minimum for a server awaiting a command).
        loop {
            // RFC 2920 §3.1: replies to a pipelined group go out together, before we block
            // waiting for more input.
            if self.flush_output().await.is_err() || self.core.should_close() {
                return;
            }
            let read = tokio::select! {
                read = self.conn.read_chunk(&mut buffer) => read,
                () = shutdown.cancelled() => {
                    // RFC 5321 §3.8: a server shutting down answers 421 and closes.
                    let _ = self.conn.write_all(b"421 4.3.2 Service shutting down\r\n").await;
                    return;
                }
            };
            match read {
                Ok(0) => self.core.feed_eof(),
                Ok(count) => self.core.feed(buffer.get(..count).unwrap_or_default()),
                Err(NetError::Timeout(_)) => {
                    // RFC 5321 §4.5.3.2: the server may close after its timeout, with 421.
                    let _ = self
                        .conn
                        .write_all(b"421 4.4.2 Timeout waiting for the client, closing\r\n")
                        .await;
                    return;
                }
                Err(_) => return,
            }
            while let Some(event) = self.core.next_event() {
                if let Event::StartTls = event {
                    if !self.start_tls().await {
                        return;
                    }
                    continue;
                }
                let answer = self.decide(event).await;
                self.core.answer(answer);
            }
        }
    }

    /// RFC 3207 §4.2: upgrade in place; the core dropped its buffered plaintext and the
    /// connection drops its own, so nothing sent before the handshake is executed.
    async fn start_tls(&mut self) -> bool {
        if self.flush_output().await.is_err() {
            return false;
        }
        match self.conn.start_tls_default().await {
            Ok(()) => {
                self.core.tls_started();
                self.transaction = None;
                self.account = None;
                self.sasl = None;
                true
            }
            Err(error) => {
                // RFC 3207 §4.1: no fallback to plaintext after a failed handshake.
                tracing::debug!(%error, "STARTTLS handshake failed");
                false
            }
        }
    }

    async fn decide(&mut self, event: Event) -> Answer {
        match event {
            Event::Mail { from, params } => self.mail(from, params).await,
            Event::Rcpt { to, params } => match self.rcpt(&to, params).await {
                RecipientDecision::Accept(reply) => Answer::Accept(reply),
                RecipientDecision::Reject(reply) => Answer::Reject(reply),
            },
            Event::Message { body } => self.message(body).await,
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
                None => {
                    Answer::AuthFailure(Reply::new(503, "5.5.1", "No authentication in progress"))
                }
            },
            // Handled in `run` before `decide` is called; answered here only for completeness.
            Event::StartTls => Answer::Close(Reply::new(421, "4.3.0", "Unexpected TLS state")),
        }
    }

    async fn auth_step(&mut self, step: Result<Step, SaslError>) -> Answer {
        let credentials = match step {
            Ok(Step::Challenge(challenge)) => return Answer::AuthChallenge(challenge),
            Ok(Step::Done(credentials)) => credentials,
            Err(SaslError::Cancelled) => {
                self.sasl = None;
                // RFC 4954 §4: a cancelled exchange is answered with 501.
                return Answer::AuthFailure(Reply::new(501, "5.7.0", "Authentication cancelled"));
            }
            Err(SaslError::TooLong) => {
                self.sasl = None;
                return Answer::AuthFailure(Reply::new(
                    500,
                    "5.5.6",
                    "Authentication exchange line is too long",
                ));
            }
            Err(_) => {
                self.sasl = None;
                // RFC 4954 §4: undecodable BASE64 or a malformed response → 501.
                return Answer::AuthFailure(Reply::new(
                    501,
                    "5.5.2",
                    "Malformed authentication response",
                ));
            }
        };
        self.sasl = None;
        let client_ip = self.conn.peer().ip();
        match self
            .service
            .authenticator
            .authenticate(&credentials, client_ip)
            .await
        {
            Ok(account) => {
                let login = account.address.to_string();
                tracing::info!(user = %login, "SMTP AUTH succeeded");
                self.account = Some(account);
                Answer::AuthSuccess { login }
            }
            Err(AuthError::Failed) => {
                self.auth_failures += 1;
                if self.auth_failures >= self.service.limits.max_auth_failures {
                    return Answer::Close(Reply::new(
                        421,
                        "4.7.0",
                        "Too many failed authentications, closing",
                    ));
                }
                // RFC 4954 §6: invalid credentials.
                Answer::AuthFailure(Reply::new(
                    535,
                    "5.7.8",
                    "Authentication credentials invalid",
                ))
            }
            Err(AuthError::Temporary(reason)) => {
                tracing::error!(%reason, "authentication unavailable");
                // RFC 4954 §6: temporary authentication failure.
                Answer::AuthFailure(Reply::new(454, "4.7.0", "Temporary authentication failure"))
            }
        }
    }
}
