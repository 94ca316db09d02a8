//! Command handling per state (RFC 1939 §4-§6) and the settling of the service's answers.

use sealpost_sasl::{Mechanism, Step};

use super::command::{self, Command, CommandError};
use super::encoder::MessageEncoder;
use super::maildrop::{Lookup, Maildrop};
use super::response::{self, RespCode};
use super::server::{
    Answer, AuthAbort, Event, Flow, MAX_AUTH_COMMAND_LINE, MAX_NOOPS_BEFORE_LOGIN, Pending, Phase,
    ServerCore, State,
};

impl ServerCore {
    /// One complete command line (line end removed); `wire_len` counts the line end too.
    pub(super) fn command_line(&mut self, line: &[u8], wire_len: usize) -> Flow {
        let command = match command::parse(line) {
            Ok(command) => command,
            // RFC 1939 §3: an unknown command or a bad argument gets a negative response.
            // The line is never echoed (ALPACA reflection, SECURITY-TESTS TLS-08).
            Err(CommandError::Unknown) => {
                self.bad("Unknown command");
                return Flow::Continue;
            }
            Err(CommandError::Syntax) => {
                self.bad("Invalid arguments");
                return Flow::Continue;
            }
        };
        if let Command::Auth {
            initial_response: Some(_),
            ..
        } = command
            && wire_len > MAX_AUTH_COMMAND_LINE
        {
            // RFC 5034 §4: an initial response that would make the command longer than 255
            // octets must be sent after an empty challenge instead.
            self.bad("Line too long for an initial response");
            return Flow::Continue;
        }
        match self.state {
            State::Authorization { .. } => self.authorization(command),
            State::Transaction(_) => self.transaction(command),
        }
    }

    /// RFC 2449 §5: the capabilities; those of the AUTHORIZATION state are listed in both.
    fn capa(&mut self) {
        response::ok(&mut self.output, "Capability list follows");
        let mut lines = vec![
            "TOP".to_string(),
            "UIDL".to_string(),
            "RESP-CODES".to_string(),
            "AUTH-RESP-CODE".to_string(),
            "PIPELINING".to_string(),
        ];
        if self.auth_offered() {
            // RFC 2595 §4, RFC 2449 §6.3: no cleartext login offered before TLS.
            lines.push("USER".to_string());
            lines.push(format!("SASL {}", self.mechanism_names()));
        }
        if self.stls_offered() {
            lines.push("STLS".to_string());
        }
        lines.push("IMPLEMENTATION sealpost".to_string());
        for line in lines {
            response::line(&mut self.output, &line);
        }
        response::end(&mut self.output);
    }

    fn mechanism_names(&self) -> String {
        let names: Vec<&str> = self.config.mechanisms.iter().map(|m| m.name()).collect();
        names.join(" ")
    }

    fn authorization(&mut self, command: Command<'_>) -> Flow {
        match command {
            Command::Capa => self.capa(),
            Command::Stls => return self.stls(),
            Command::Quit => {
                // RFC 1939 §4: QUIT in the AUTHORIZATION state ends the session at once.
                let text = format!("{} POP3 server signing off", self.config.hostname);
                response::ok(&mut self.output, &text);
                self.close();
            }
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } | Command::Apop
                if !self.auth_offered() =>
            {
                // RFC 2595 §4, RFC 8314 §3: no credentials over a cleartext connection;
                // nothing reaches the authenticator (SECURITY-TESTS ST-06, PO-02).
                self.bad("Authentication requires TLS, use STLS first");
            }
            Command::User(name) => {
                // RFC 1939 §7: the same answer whatever the name, so USER never tells
                // which accounts exist (SECURITY-TESTS AU-09).
                self.state = State::Authorization {
                    user: Some(name.to_string()),
                };
                response::ok(&mut self.output, "Send PASS");
            }
            Command::Pass(password) => {
                let user = match &mut self.state {
                    State::Authorization { user } => user.take(),
                    State::Transaction(_) => None,
                };
                let Some(user) = user else {
                    self.bad("USER first");
                    return Flow::Continue;
                };
                self.phase = Phase::Pending(Pending::Login);
                return Flow::Event(Event::Login {
                    user,
                    password: password.to_string().into(),
                });
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => return self.auth(mechanism, initial_response),
            // RFC 1939 §7: APOP is optional; it is not offered (its MD5 challenge needs the
            // password stored in the clear). Counted as a failed login.
            Command::Apop => self.auth_failed_with(None, "APOP is not supported"),
            Command::Noop if self.noops_before_login < MAX_NOOPS_BEFORE_LOGIN => {
                self.noops_before_login += 1;
                response::ok(&mut self.output, "");
            }
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top(..)
            | Command::Uidl(_) => {
                // RFC 1939 §3: these are valid in the TRANSACTION state only.
                self.bad("Not logged in");
            }
        }
        Flow::Continue
    }

    /// RFC 2595 §4: STLS in the AUTHORIZATION state, before TLS, on a port that offers it.
    fn stls(&mut self) -> Flow {
        if !self.stls_offered() {
            self.bad("STLS is not available");
            return Flow::Continue;
        }
        response::ok(&mut self.output, "Begin TLS negotiation");
        // RFC 2595 §4, CVE-2011-0411: commands pipelined after STLS are never executed.
        self.drop_input();
        self.phase = Phase::AwaitingTls;
        Flow::Event(Event::StartTls)
    }

    /// RFC 5034 §4: AUTH; without a mechanism, the list of mechanisms (as RFC 1734 servers
    /// and their clients still use).
    fn auth(&mut self, mechanism: Option<&str>, initial_response: Option<&str>) -> Flow {
        let Some(name) = mechanism else {
            response::ok(&mut self.output, "Mechanisms follow");
            for mechanism in self.config.mechanisms.clone() {
                response::line(&mut self.output, mechanism.name());
            }
            response::end(&mut self.output);
            return Flow::Continue;
        };
        let Some(mechanism) =
            Mechanism::from_name(name).filter(|m| self.config.mechanisms.contains(m))
        else {
            // RFC 5034 §4: an unsupported mechanism gets a negative response.
            self.auth_failed_with(None, "Unsupported authentication mechanism");
            return Flow::Continue;
        };
        if let State::Authorization { user } = &mut self.state {
            *user = None;
        }
        self.phase = Phase::Pending(Pending::Auth);
        Flow::Event(Event::Auth {
            mechanism,
            initial_response: initial_response.map(|text| match text {
                // RFC 5034 §4: "=" is an empty initial response.
                "=" => Vec::new(),
                other => other.as_bytes().to_vec(),
            }),
        })
    }

    fn transaction(&mut self, command: Command<'_>) -> Flow {
        let State::Transaction(maildrop) = &mut self.state else {
            return Flow::Continue;
        };
        match command {
            Command::Capa => self.capa(),
            Command::Stat => {
                // RFC 1939 §5: count and size of the messages not marked deleted.
                let (count, size) = maildrop.stat();
                response::ok(&mut self.output, &format!("{count} {size}"));
            }
            Command::List(None) => maildrop.write_list(&mut self.output),
            Command::Uidl(None) => maildrop.write_uidl(&mut self.output),
            Command::List(Some(number)) => match maildrop.lookup(number) {
                Ok(index) => {
                    let size = maildrop.entry(index).map_or(0, |e| e.size);
                    response::ok(&mut self.output, &format!("{number} {size}"));
                }
                Err(why) => no_message(&mut self.output, why),
            },
            Command::Uidl(Some(number)) => match maildrop.lookup(number) {
                Ok(index) => {
                    let id = maildrop.entry(index).map_or("", |e| e.unique_id());
                    let text = format!("{number} {id}");
                    response::ok(&mut self.output, &text);
                }
                Err(why) => no_message(&mut self.output, why),
            },
            Command::Dele(number) => match maildrop.lookup(number) {
                Ok(index) => {
                    // RFC 1939 §5: only marked; removed in the UPDATE state.
                    maildrop.mark_deleted(index);
                    response::ok(&mut self.output, "Message deleted");
                }
                Err(why) => no_message(&mut self.output, why),
            },
            Command::Rset => {
                maildrop.unmark_all();
                let (count, size) = maildrop.stat();
                let text = format!("Maildrop has {count} messages ({size} octets)");
                response::ok(&mut self.output, &text);
            }
            Command::Noop => response::ok(&mut self.output, ""),
            Command::Retr(number) => return self.retrieve(number, None),
            Command::Top(number, lines) => return self.retrieve(number, Some(lines)),
            Command::Quit => return self.quit(),
            Command::User(_)
            | Command::Pass(_)
            | Command::Apop
            | Command::Auth { .. }
            | Command::Stls => {
                // RFC 1939 §3: valid in the AUTHORIZATION state only.
                self.bad("Already logged in");
            }
        }
        Flow::Continue
    }

    fn retrieve(&mut self, number: u64, top_lines: Option<u64>) -> Flow {
        let State::Transaction(maildrop) = &self.state else {
            return Flow::Continue;
        };
        match maildrop.lookup(number) {
            Ok(index) => {
                self.phase = Phase::Pending(Pending::Retrieve { index, top_lines });
                Flow::Event(Event::Retrieve { index, top_lines })
            }
            Err(why) => {
                no_message(&mut self.output, why);
                Flow::Continue
            }
        }
    }

    /// RFC 1939 §6: QUIT in the TRANSACTION state enters the UPDATE state.
    fn quit(&mut self) -> Flow {
        let deleted = self.maildrop().map(Maildrop::deleted).unwrap_or_default();
        if deleted.is_empty() {
            self.signing_off();
            return Flow::Continue;
        }
        self.phase = Phase::Pending(Pending::Update);
        Flow::Event(Event::Update { deleted })
    }

    fn signing_off(&mut self) {
        let text = format!("{} POP3 server signing off", self.config.hostname);
        response::ok(&mut self.output, &text);
        self.close();
    }

    pub(super) fn settle(&mut self, pending: Pending, answer: Answer) -> bool {
        match (pending, answer) {
            (Pending::Login | Pending::Auth, Answer::LoggedIn(maildrop)) => {
                let (count, size) = maildrop.stat();
                self.state = State::Transaction(maildrop);
                self.forgive();
                // RFC 1939 §7: "+OK maildrop locked and ready".
                let text = format!("Logged in, maildrop has {count} messages ({size} octets)");
                response::ok(&mut self.output, &text);
            }
            (Pending::Login | Pending::Auth, Answer::AuthFailed) => {
                // RFC 3206 §5: [AUTH], the credentials are wrong.
                self.auth_failed_with(Some(RespCode::Auth), "Authentication failed");
            }
            (Pending::Login | Pending::Auth, Answer::InUse) => {
                // RFC 2449 §8.1.1, RFC 1939 §8: the maildrop is locked by another session.
                let text = "Maildrop is in use by another session";
                response::err(&mut self.output, Some(RespCode::InUse), text);
            }
            (Pending::Login | Pending::Auth, Answer::TempFailure) => {
                let text = "Temporary authentication failure";
                response::err(&mut self.output, Some(RespCode::SysTemp), text);
            }
            (Pending::Auth, Answer::AuthChallenge(challenge)) => {
                // RFC 5034 §4: "+" SP base64 challenge.
                let line = format!("+ {}\r\n", Step::challenge_base64(&challenge));
                self.output.extend_from_slice(line.as_bytes());
                self.phase = Phase::AuthLine;
            }
            (Pending::Auth, Answer::AuthAborted(why)) => {
                let text = match why {
                    // RFC 5034 §4: a cancelled exchange gets a negative response.
                    AuthAbort::Cancelled => "Authentication cancelled",
                    AuthAbort::Malformed => "Malformed authentication response",
                };
                self.auth_failed_with(None, text);
            }
            (Pending::Retrieve { index, top_lines }, Answer::MessageFollows) => {
                let size = self
                    .maildrop()
                    .and_then(|m| m.entry(index))
                    .map_or(0, |e| e.size);
                let text = match top_lines {
                    None => format!("{size} octets"),
                    Some(_) => "Top of message follows".to_string(),
                };
                response::ok(&mut self.output, &text);
                self.phase = Phase::Streaming(MessageEncoder::new(top_lines));
            }
            (Pending::Retrieve { .. }, Answer::MessageGone) => {
                let text = "Message was removed by another session";
                response::err(&mut self.output, None, text);
            }
            (Pending::Retrieve { .. }, Answer::TempFailure) => {
                let text = "Message cannot be read now";
                response::err(&mut self.output, Some(RespCode::SysTemp), text);
            }
            (Pending::Update, Answer::Updated) => self.signing_off(),
            (Pending::Update, other) => {
                // RFC 1939 §6: an error in the UPDATE state is reported; the session ends.
                let text = "Deleted messages could not all be removed";
                response::err(&mut self.output, Some(RespCode::SysTemp), text);
                self.close();
                return other == Answer::TempFailure;
            }
            (_, _) => {
                response::err(&mut self.output, Some(RespCode::SysTemp), "Internal error");
                return false;
            }
        }
        true
    }
}

/// RFC 1939 §5: a message number that does not name a live message.
fn no_message(out: &mut Vec<u8>, why: Lookup) {
    let text = match why {
        Lookup::NoSuchMessage => "No such message",
        Lookup::Deleted => "Message already deleted",
    };
    response::err(out, None, text);
}
