//! The SASL exchange (RFC 4422) for the mechanisms sealpost offers, independent of the
//! protocol that carries it. SMTP AUTH (RFC 4954), IMAP AUTHENTICATE (RFC 9051 §6.2.2) and
//! POP3 AUTH (RFC 5034) all carry base64 lines: the protocol core hands each client line
//! to [`SaslExchange::step`] and sends back the challenge it gets, base64-encoded by
//! [`Step::challenge_base64`].

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sealpost_types::Secret;

/// Mechanisms offered. Both send the password itself, so they are offered only over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// draft-murchison-sasl-login-00 (still what Outlook and older clients use).
    Login,
}

impl Mechanism {
    pub const ALL: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }

    /// Looks a mechanism up by name; SASL mechanism names are case-insensitive (RFC 4422 §3.1).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|mechanism| mechanism.name().eq_ignore_ascii_case(name))
    }
}

/// What the client proved it knows, to be checked against the directory.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Authorization identity; empty when the client asks to act as itself.
    pub authzid: String,
    /// Authentication identity (the login name).
    pub authcid: String,
    pub password: Secret<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &self.password)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("the client cancelled the authentication exchange")]
    Cancelled,
    #[error("the client response is not valid base64")]
    BadBase64,
    #[error("the client response is malformed: {0}")]
    Malformed(&'static str),
    #[error("the client response is too long")]
    TooLong,
    #[error("the exchange is already finished")]
    Finished,
}

/// The result of one step of the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge (raw bytes; encode with [`Step::challenge_base64`]) and wait for
    /// the client's next line.
    Challenge(Vec<u8>),
    /// The client has sent its credentials.
    Done(Credentials),
}

impl Step {
    pub fn challenge_base64(challenge: &[u8]) -> String {
        BASE64.encode(challenge)
    }
}

/// Longest decoded client response accepted; far above any real identity plus password.
const MAX_RESPONSE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    PlainAwaitingResponse,
    LoginAwaitingUsername,
    LoginAwaitingPassword,
    Finished,
}

/// One authentication exchange, driven line by line.
pub struct SaslExchange {
    mechanism: Mechanism,
    state: State,
    login_username: String,
}

impl fmt::Debug for SaslExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslExchange")
            .field("mechanism", &self.mechanism)
            .field("state", &self.state)
            .finish()
    }
}

fn decode(line: &[u8]) -> Result<Vec<u8>, SaslError> {
    let trimmed = line.trim_ascii_end();
    // RFC 4954 §4 / RFC 9051 §6.2.2 / RFC 5034 §4: a lone "*" cancels the exchange.
    if trimmed == b"*" {
        return Err(SaslError::Cancelled);
    }
    if trimmed.len() > MAX_RESPONSE * 4 / 3 + 4 {
        return Err(SaslError::TooLong);
    }
    // RFC 4954 §4: "=" stands for an empty initial response.
    if trimmed == b"=" {
        return Ok(Vec::new());
    }
    BASE64.decode(trimmed).map_err(|_| SaslError::BadBase64)
}

fn utf8(bytes: &[u8], what: &'static str) -> Result<String, SaslError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| SaslError::Malformed(what))
}

impl SaslExchange {
    /// Starts an exchange. `initial_response` is the base64 text the client sent with the
    /// command (SASL-IR, RFC 4959; RFC 4954 §4), if any.
    pub fn start(
        mechanism: Mechanism,
        initial_response: Option<&[u8]>,
    ) -> (Self, Result<Step, SaslError>) {
        let mut exchange = SaslExchange {
            mechanism,
            state: State::Start,
            login_username: String::new(),
        };
        let step = match (mechanism, initial_response) {
            (Mechanism::Plain, Some(response)) => {
                exchange.state = State::PlainAwaitingResponse;
                exchange.step(response)
            }
            (Mechanism::Plain, None) => {
                // RFC 4616 §2: the server sends an empty challenge when there is no initial response.
                exchange.state = State::PlainAwaitingResponse;
                Ok(Step::Challenge(Vec::new()))
            }
            (Mechanism::Login, Some(response)) => {
                exchange.state = State::LoginAwaitingUsername;
                exchange.step(response)
            }
            (Mechanism::Login, None) => {
                exchange.state = State::LoginAwaitingUsername;
                Ok(Step::Challenge(b"Username:".to_vec()))
            }
        };
        (exchange, step)
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Feeds one client line (base64, with or without its line ending).
    pub fn step(&mut self, line: &[u8]) -> Result<Step, SaslError> {
        let result = self.advance(line);
        if result.is_err() || matches!(result, Ok(Step::Done(_))) {
            self.state = State::Finished;
            self.login_username.clear();
        }
        result
    }

    fn advance(&mut self, line: &[u8]) -> Result<Step, SaslError> {
        match self.state {
            State::Start | State::Finished => Err(SaslError::Finished),
            State::PlainAwaitingResponse => parse_plain(&decode(line)?).map(Step::Done),
            State::LoginAwaitingUsername => {
                let username = decode(line)?;
                if username.is_empty() || username.len() > MAX_RESPONSE {
                    return Err(SaslError::Malformed("empty or overlong user name"));
                }
                self.login_username = utf8(&username, "user name is not UTF-8")?;
                self.state = State::LoginAwaitingPassword;
                Ok(Step::Challenge(b"Password:".to_vec()))
            }
            State::LoginAwaitingPassword => {
                let password = decode(line)?;
                Ok(Step::Done(Credentials {
                    authzid: String::new(),
                    authcid: std::mem::take(&mut self.login_username),
                    password: Secret::new(utf8(&password, "password is not UTF-8")?),
                }))
            }
        }
    }
}

/// ```text
/// message   = [authzid] UTF8NUL authcid UTF8NUL passwd   ; RFC 4616 §2
/// authcid   = 1*SAFE ; MUST accept up to 255 octets
/// passwd    = 1*SAFE
/// ```
fn parse_plain(message: &[u8]) -> Result<Credentials, SaslError> {
    if message.len() > MAX_RESPONSE {
        return Err(SaslError::TooLong);
    }
    let mut parts = message.split(|&byte| byte == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed(
            "expected authzid NUL authcid NUL password",
        ));
    };
    if authcid.is_empty() || password.is_empty() {
        return Err(SaslError::Malformed(
            "empty authentication identity or password",
        ));
    }
    Ok(Credentials {
        authzid: utf8(authzid, "authzid is not UTF-8")?,
        authcid: utf8(authcid, "authcid is not UTF-8")?,
        password: Secret::new(utf8(password, "password is not UTF-8")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(raw: &[u8]) -> Vec<u8> {
        BASE64.encode(raw).into_bytes()
    }

    #[test]
    fn plain_with_initial_response() {
        let (_, step) = SaslExchange::start(Mechanism::Plain, Some(&b64(b"\0alice@x.org\0secret")));
        let Step::Done(credentials) = step.unwrap() else {
            panic!("not done")
        };
        assert_eq!(credentials.authzid, "");
        assert_eq!(credentials.authcid, "alice@x.org");
        assert_eq!(credentials.password.expose(), "secret");
        assert!(!format!("{credentials:?}").contains("secret"));
    }

    #[test]
    fn plain_with_empty_challenge_and_crlf() {
        let (mut exchange, step) = SaslExchange::start(Mechanism::Plain, None);
        assert_eq!(step.unwrap(), Step::Challenge(Vec::new()));
        let mut line = b64(b"admin\0alice\0pw");
        line.extend_from_slice(b"\r\n");
        let Step::Done(credentials) = exchange.step(&line).unwrap() else {
            panic!()
        };
        assert_eq!(credentials.authzid, "admin");
        assert_eq!(exchange.step(&line), Err(SaslError::Finished));
    }

    #[test]
    fn plain_rejects_malformed() {
        for raw in [
            &b"alice\0pw"[..],
            b"\0alice\0",
            b"\0\0pw",
            b"a\0b\0c\0d",
            b"\0\xff\0pw",
        ] {
            let (_, step) = SaslExchange::start(Mechanism::Plain, Some(&b64(raw)));
            assert!(matches!(step, Err(SaslError::Malformed(_))), "{raw:?}");
        }
        let (_, step) = SaslExchange::start(Mechanism::Plain, Some(b"%%%"));
        assert_eq!(step, Err(SaslError::BadBase64));
        let (_, step) = SaslExchange::start(Mechanism::Plain, Some(b"*"));
        assert_eq!(step, Err(SaslError::Cancelled));
        let huge = b64(&vec![b'a'; 10_000]);
        let (_, step) = SaslExchange::start(Mechanism::Plain, Some(&huge));
        assert_eq!(step, Err(SaslError::TooLong));
    }

    #[test]
    fn login_two_steps() {
        let (mut exchange, step) = SaslExchange::start(Mechanism::Login, None);
        assert_eq!(step.unwrap(), Step::Challenge(b"Username:".to_vec()));
        assert_eq!(
            exchange.step(&b64(b"bob@x.org")).unwrap(),
            Step::Challenge(b"Password:".to_vec())
        );
        let Step::Done(credentials) = exchange.step(&b64(b"pw")).unwrap() else {
            panic!()
        };
        assert_eq!(credentials.authcid, "bob@x.org");
        assert_eq!(credentials.password.expose(), "pw");
    }

    #[test]
    fn login_cancel_and_names() {
        let (mut exchange, _) = SaslExchange::start(Mechanism::Login, Some(&b64(b"bob")));
        assert_eq!(exchange.step(b"*\r\n"), Err(SaslError::Cancelled));
        assert_eq!(Mechanism::from_name("plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::from_name("CRAM-MD5"), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_lines_never_panic(lines in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..200), 0..4)) {
            for mechanism in Mechanism::ALL {
                let (mut exchange, _) = SaslExchange::start(mechanism, None);
                for line in &lines {
                    let _ = exchange.step(line);
                }
            }
        }
    }
}
