//! LOGIN (RFC 9051 §6.2.3) and AUTHENTICATE PLAIN with SASL-IR (RFC 9051 §6.2.2,
//! RFC 4959), over the shared [`Authenticator`](sealpost_store::authenticate::Authenticator)
//! (its growing delay on failures, its login cache).

use sealpost_sasl::{Credentials, Mechanism, SaslError, SaslExchange, Step};
use sealpost_store::authenticate::AuthError;
use sealpost_types::Secret;

use super::session::Session;
use std::time::Duration;

use crate::core::{AUTOLOGOUT_TIMEOUT, Code, Completion, Transition};

impl Session<'_> {
    pub(super) async fn login(&mut self, username: String, password: Secret<String>) -> Completion {
        let credentials = Credentials {
            authzid: String::new(),
            authcid: username,
            password,
        };
        self.check_credentials(&credentials).await
    }

    pub(super) async fn authenticate(
        &mut self,
        mechanism: Mechanism,
        initial_response: Option<Secret<Vec<u8>>>,
    ) -> Option<Completion> {
        let initial = initial_response.as_ref().map(|r| r.expose().as_slice());
        let (exchange, step) = SaslExchange::start(mechanism, initial);
        self.sasl = Some(exchange);
        self.auth_step(step).await
    }

    /// The client's line after a challenge.
    pub(super) async fn auth_response(&mut self, line: &[u8]) -> Option<Completion> {
        let step = match self.sasl.as_mut() {
            Some(exchange) => exchange.step(line),
            None => Err(SaslError::Finished),
        };
        self.auth_step(step).await
    }

    async fn auth_step(&mut self, step: Result<Step, SaslError>) -> Option<Completion> {
        let credentials = match step {
            Ok(Step::Challenge(challenge)) => {
                // RFC 9051 §6.2.2: `+ base64` and wait for the client's response.
                if self.core.auth_continue(&challenge) {
                    return None;
                }
                self.sasl = None;
                return Some(Completion::bad("Authentication exchange out of order"));
            }
            Ok(Step::Done(credentials)) => credentials,
            Err(SaslError::Cancelled) => {
                self.sasl = None;
                // RFC 9051 §6.2.2: a cancelled exchange gets a tagged BAD.
                return Some(Completion::bad("Authentication cancelled"));
            }
            Err(_) => {
                self.sasl = None;
                return Some(Completion::bad("Malformed authentication response"));
            }
        };
        self.sasl = None;
        Some(self.check_credentials(&credentials).await)
    }

    async fn check_credentials(&mut self, credentials: &Credentials) -> Completion {
        let client_ip = self.conn.peer().ip();
        let account = match self
            .service
            .authenticator
            .authenticate(credentials, client_ip)
            .await
        {
            Ok(account) => account,
            // RFC 5530 §3: AUTHENTICATIONFAILED, the same for every cause (after the
            // authenticator's growing delay).
            Err(AuthError::Failed) => {
                return Completion::no("Authentication failed")
                    .with_code(Code::AuthenticationFailed);
            }
            Err(AuthError::Temporary(reason)) => {
                tracing::error!(%reason, "authentication unavailable");
                return Completion::no("Authentication temporarily unavailable")
                    .with_code(Code::Unavailable);
            }
        };
        // SECURITY-TESTS RL-15: a bounded number of sessions per account and address.
        let Some(slot) = self.service.user_sessions.acquire(
            account.id,
            client_ip,
            self.service.max_sessions_per_user_ip,
        ) else {
            tracing::info!(user = %account.address, "IMAP login refused: too many sessions");
            // RFC 5530 §3: LIMIT.
            return Completion::no("Too many sessions for this user from this address")
                .with_code(Code::Limit);
        };
        self.slot = Some(slot);
        tracing::info!(user = %account.address, "IMAP login");
        self.changes = Some(self.service.store.subscribe(account.id));
        // The connection's own read timeout is only a backstop once logged in: the
        // session's 30-minute autologout (RFC 9051 §5.4) and IDLE must not be cut short.
        let idle = self
            .conn
            .idle_timeout()
            .max(AUTOLOGOUT_TIMEOUT + Duration::from_secs(60));
        self.conn.set_idle_timeout(idle);
        let user = account.address.to_string();
        self.quota = account.quota_bytes;
        self.account = Some(account);
        self.refresh_append_allowance().await;
        // RFC 9051 §6.2.3: the capabilities after login go in the tagged OK.
        Completion::ok("Logged in")
            .with_code(Code::Capability)
            .with_transition(Transition::Authenticated { user })
    }
}
