//! Session-level commands (EHLO/HELO, RSET, NOOP, QUIT, VRFY, EXPN, HELP, STARTTLS, AUTH),
//! command dispatch, and how the service's answers change the session.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sealpost_sasl::Mechanism;

use super::command::{self, Command, CommandError};
use super::path::is_helo_name;
use super::reply::{Reply, canned};
use super::server::{Answer, Event, Flow, Pending, Phase, ServerCore, Transaction};

impl ServerCore {
    /// A complete command line (CRLF removed).
    pub(super) fn command_line(&mut self, content: &[u8]) -> Flow {
        // RFC 5321 §2.3.8 / §4.1.1: no bare CR, NUL or other control characters in a
        // command (SECURITY-TESTS SM-11, SM-12); the text must be UTF-8.
        let clean = content.iter().all(|&b| b >= 0x20 && b != 0x7f);
        let Some(text) = std::str::from_utf8(content).ok().filter(|_| clean) else {
            self.send(&canned::bad_characters());
            return Flow::Continue;
        };
        if text.is_empty() {
            self.send(&canned::empty_line());
            return Flow::Continue;
        }
        // RFC 6531 §3.3: UTF-8 is legal only inside the paths of MAIL and RCPT.
        if !text.is_ascii() {
            let verb = text.split(' ').next().unwrap_or_default();
            if !verb.eq_ignore_ascii_case("MAIL") && !verb.eq_ignore_ascii_case("RCPT") {
                self.send(&canned::bad_characters());
                return Flow::Continue;
            }
        }
        match command::parse(text) {
            Ok(command) => self.dispatch(command),
            Err(CommandError::Reply(reply)) => {
                self.send(&reply);
                Flow::Continue
            }
            Err(CommandError::Fatal(reply)) => {
                self.send(&reply);
                self.close();
                Flow::Continue
            }
        }
    }

    fn dispatch(&mut self, command: Command<'_>) -> Flow {
        match command {
            Command::Ehlo(name) => self.hello(name, true),
            Command::Helo(name) => self.hello(name, false),
            Command::Mail(args) => return self.mail(args),
            Command::Rcpt(args) => return self.rcpt(args),
            Command::Data => self.data(),
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Rset => {
                // RFC 5321 §4.1.1.5: abort the transaction, keep the session.
                self.txn = Transaction::default();
                self.send_junk(&canned::reset());
            }
            Command::Noop => self.send_junk(&canned::ok()),
            Command::Quit => {
                // RFC 5321 §4.1.1.10: 221, then close.
                self.send(&canned::bye());
                self.close();
            }
            // RFC 5321 §3.5.3 / §7.3: 252 without checking (no user enumeration; RS-19).
            Command::Vrfy => self.send_junk(&canned::vrfy()),
            // RFC 5321 §3.5.3: EXPN is not offered.
            Command::Expn => self.send_junk(&canned::not_implemented()),
            Command::Help => self.send_junk(&canned::help()),
            Command::StartTls => return self.starttls(),
            Command::Auth {
                mechanism,
                initial_response,
            } => return self.auth(mechanism, initial_response),
            Command::Forbidden => self.close_with(canned::forbidden_command()),
        }
        Flow::Continue
    }

    /// EHLO / HELO (RFC 5321 §4.1.1.1).
    fn hello(&mut self, name: &str, esmtp: bool) {
        if !is_helo_name(name) {
            self.send(&canned::syntax("Invalid domain name"));
            return;
        }
        // RFC 5321 §4.1.4: EHLO/HELO resets any transaction, as RSET does.
        self.txn = Transaction::default();
        self.session.helo = Some(name.to_string());
        self.session.esmtp = esmtp;
        // RFC 2034 §3: no enhanced code in the reply to EHLO/HELO.
        let hostname = self.config.hostname.clone();
        if !esmtp {
            self.send(&Reply::new(250, "", hostname));
            return;
        }
        let mut lines = vec![
            hostname,
            "PIPELINING".to_string(),                         // RFC 2920
            format!("SIZE {}", self.config.max_message_size), // RFC 1870
            "8BITMIME".to_string(),                           // RFC 6152
            "SMTPUTF8".to_string(),                           // RFC 6531
            "ENHANCEDSTATUSCODES".to_string(),                // RFC 2034
            "CHUNKING".to_string(),                           // RFC 3030
        ];
        if self.session.tls {
            // RFC 8689 §4: REQUIRETLS is offered on TLS sessions only.
            lines.push("REQUIRETLS".to_string());
        }
        if self.starttls_available() {
            lines.push("STARTTLS".to_string()); // RFC 3207
        }
        if self.auth_available() {
            // RFC 4954 §3; not before TLS where TLS is required (RFC 8314 §3.3).
            let names: Vec<&str> = self
                .config
                .auth_mechanisms
                .iter()
                .map(|mechanism| mechanism.name())
                .collect();
            lines.push(format!("AUTH {}", names.join(" ")));
        }
        if self.config.offer_dsn {
            lines.push("DSN".to_string()); // RFC 3461
        }
        self.send(&Reply::multiline(250, "", lines));
    }

    /// STARTTLS (RFC 3207 §4).
    fn starttls(&mut self) -> Flow {
        if !self.starttls_available() {
            // RFC 3207 §4.2: not offered, or TLS is already active (ST-08).
            self.send(&canned::bad_sequence("STARTTLS not available"));
            return Flow::Continue;
        }
        if self.session.authenticated.is_some() {
            // SECURITY-TESTS ST-08: no STARTTLS after authentication.
            self.send(&canned::bad_sequence(
                "STARTTLS not allowed after authentication",
            ));
            return Flow::Continue;
        }
        self.send(&canned::ready_tls());
        // RFC 3207 §4.2 / CVE-2011-0411: whatever the client sent after STARTTLS was sent
        // in plaintext and must not be executed after the handshake.
        self.drop_input();
        self.phase = Phase::AwaitingTls;
        Flow::Event(Event::StartTls)
    }

    /// AUTH (RFC 4954 §4).
    fn auth(&mut self, name: &str, initial_response: Option<&str>) -> Flow {
        let refusal = if self.session.authenticated.is_some() {
            // RFC 4954 §4: "MUST reject any further AUTH commands with a 503 reply".
            Some(canned::bad_sequence("Already authenticated"))
        } else if self.config.auth_mechanisms.is_empty() {
            // No AUTH on this port (SECURITY-TESTS AU-08).
            Some(canned::bad_sequence("AUTH not available"))
        } else if !self.session.tls && self.config.auth_requires_tls {
            // RFC 3207 §4 / RFC 4954 §4: no credentials before TLS (ST-06).
            Some(canned::starttls_first())
        } else if !self.session.esmtp {
            // RFC 4954 §3: AUTH is an extension announced in the EHLO reply.
            Some(canned::bad_sequence("Send EHLO first"))
        } else if self.txn.mail {
            // RFC 4954 §4: "AUTH command is not permitted during a mail transaction".
            Some(canned::bad_sequence(
                "AUTH not permitted during a mail transaction",
            ))
        } else {
            None
        };
        if let Some(reply) = refusal {
            self.send(&reply);
            return Flow::Continue;
        }
        // RFC 4422 §3.1: mechanism names are case-insensitive.
        let offered = Mechanism::from_name(name)
            .filter(|mechanism| self.config.auth_mechanisms.contains(mechanism));
        let Some(mechanism) = offered else {
            // RFC 4954 §4: 504 for an unsupported mechanism.
            self.send(&canned::unknown_mechanism());
            return Flow::Continue;
        };
        // RFC 4954 §4: "=" is an empty initial response.
        let initial_response = initial_response.map(|response| {
            if response == "=" {
                Vec::new()
            } else {
                response.as_bytes().to_vec()
            }
        });
        self.phase = Phase::Pending(Pending::Auth);
        Flow::Event(Event::Auth {
            mechanism,
            initial_response,
        })
    }

    /// Applies the service's answer to the event that was pending.
    pub(super) fn settle(&mut self, pending: Pending, answer: Answer) -> bool {
        match (pending, answer) {
            (_, Answer::Close(reply)) => {
                self.close_with(reply);
                true
            }
            (Pending::Mail { smtputf8 }, Answer::Accept(reply)) => {
                // RFC 5321 §4.1.1.2: MAIL starts a new transaction.
                self.txn = Transaction {
                    mail: true,
                    smtputf8,
                    ..Transaction::default()
                };
                self.send(&reply);
                true
            }
            (Pending::Rcpt, Answer::Accept(reply)) => {
                self.txn.accepted = self.txn.accepted.saturating_add(1);
                self.send(&reply);
                true
            }
            (Pending::Rcpt, Answer::Reject(reply)) => {
                self.txn.refused = self.txn.refused.saturating_add(1);
                self.send(&reply);
                true
            }
            (Pending::Mail { .. }, Answer::Reject(reply)) => {
                self.send(&reply);
                true
            }
            (Pending::Message, Answer::Accept(reply)) => {
                // RFC 5321 §4.1.1.4: the end of data ends the transaction.
                self.txn = Transaction::default();
                self.forgive();
                self.send(&reply);
                true
            }
            (Pending::Message, Answer::Reject(reply)) => {
                self.txn = Transaction::default();
                self.send(&reply);
                true
            }
            (Pending::Auth, Answer::AuthChallenge(challenge)) => {
                // RFC 4954 §4: "334" SP [base64] CRLF.
                self.send(&Reply::new(334, "", BASE64.encode(challenge)));
                self.phase = Phase::AuthLine;
                true
            }
            (Pending::Auth, Answer::AuthSuccess { login }) => {
                self.session.authenticated = Some(login);
                self.send(&canned::auth_success());
                true
            }
            (Pending::Auth, Answer::AuthFailure(reply)) => {
                self.send(&reply);
                true
            }
            (Pending::Auth, Answer::Accept(reply) | Answer::Reject(reply)) => {
                // A service bug: end the exchange, unauthenticated.
                let reply = if reply.is_error() {
                    reply
                } else {
                    canned::auth_internal_error()
                };
                self.send(&reply);
                false
            }
            (pending, _) => {
                // An AUTH answer to a MAIL/RCPT/message event: a service bug.
                if pending == Pending::Message {
                    self.txn = Transaction::default();
                }
                self.send(&canned::internal_error());
                false
            }
        }
    }
}
