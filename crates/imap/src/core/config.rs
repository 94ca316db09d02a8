//! What the service tells the core about the port, the extensions it implements and the
//! limits; the timers the driver applies.

use std::time::Duration;

use sealpost_sasl::Mechanism;

/// How long a client that has not logged in may stay silent. RFC 9051 §5.4 sets no
/// minimum before login; mox uses 30 s, Dovecot 3 min; 60 s leaves slow mobile links
/// time to finish STARTTLS and the login round trips.
pub const PREAUTH_TIMEOUT: Duration = Duration::from_secs(60);
/// RFC 9051 §5.4: "an autologout timer MUST be at least 30 minutes" once logged in.
pub const AUTOLOGOUT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// During IDLE the client is silent on purpose. RFC 2177 §3 has clients re-issue IDLE at
/// least every 29 minutes because servers may log idle clients off after their
/// inactivity timeout; sealpost waits the same 30 minutes as elsewhere.
pub const IDLE_TIMEOUT: Duration = AUTOLOGOUT_TIMEOUT;
/// How often the service sends `* OK Still here` during IDLE (via
/// [`super::ImapCore::idle_keepalive`]) so NAT boxes keep the connection: Dovecot's
/// `imap_idle_notify_interval` (SECURITY-TESTS §1 "IMAP timers").
pub const IDLE_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2 * 60);

/// Extensions the service implements; each one off removes its capability and makes its
/// syntax a BAD. IMAP4rev1, IMAP4rev2, ENABLE, IDLE, NAMESPACE, UNSELECT, UIDPLUS, MOVE,
/// ID, CHILDREN, LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, ESEARCH, SEARCHRES,
/// STATUS=SIZE, SASL-IR and APPENDLIMIT are always offered (most are part of IMAP4rev2,
/// RFC 9051 Appendix E).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extensions {
    /// RFC 7162 CONDSTORE.
    pub condstore: bool,
    /// RFC 7162 QRESYNC (needs `condstore`).
    pub qresync: bool,
    /// RFC 9208 QUOTA with QUOTA=RES-STORAGE.
    pub quota: bool,
    /// RFC 3502 MULTIAPPEND.
    pub multiappend: bool,
    /// RFC 3516 BINARY.
    pub binary: bool,
    /// RFC 6855 UTF8=ACCEPT.
    pub utf8_accept: bool,
    /// RFC 7888: LITERAL+ (non-synchronising literals of any size, still capped by the
    /// limits below) when true, LITERAL- (at most 4096 octets) when false.
    pub literal_plus: bool,
}

impl Default for Extensions {
    fn default() -> Self {
        Extensions {
            condstore: true,
            qresync: true,
            quota: true,
            multiappend: true,
            binary: true,
            utf8_accept: true,
            literal_plus: true,
        }
    }
}

/// Sizes and counts the core enforces before allocating (DESIGN §1.8; SECURITY-TESTS §1
/// "IMAP command line", "IMAP literal", IM-02..IM-05).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest line, CRLF included (each line of a command with literals counts on its
    /// own). 64 KiB, Dovecot's `imap_max_line_length`, rather than mox's 16 KiB: RFC 7162
    /// §4 asks servers to take lines of at least 8192 octets and QRESYNC UID sets and
    /// long SEARCH or FETCH sequence lists of big mailboxes exceed 16 KiB in practice.
    /// Longer: `* BYE` and close (the end of an over-long line cannot be trusted).
    pub max_line: usize,
    /// Largest literal outside APPEND once logged in (mox: 100 KiB).
    pub max_literal: u64,
    /// Largest literal before login (SECURITY-TESTS §1: 8 KiB; a user name or password).
    pub max_preauth_literal: u64,
    /// Largest non-synchronising literal outside APPEND: RFC 7888 §5's LITERAL- bound,
    /// applied under LITERAL+ too. Over it the client sends the octets anyway, so the
    /// session ends (`BAD [TOOBIG]`, `* BYE`).
    pub max_nonsync_literal: u64,
    /// Largest APPEND message: APPENDLIMIT (RFC 7889); over it `NO [TOOBIG]` before any
    /// octet is read.
    pub max_append: u64,
    /// Most literals in one command (mox: 1000).
    pub max_literals: usize,
    /// Most octets of one command outside APPEND, lines and literals (mox: 1 MiB).
    pub max_command: u64,
    /// Most octets of one APPEND command, all its messages (MULTIAPPEND) together.
    pub max_append_command: u64,
    /// Deepest nesting of search keys (`NOT`, `OR`, parentheses).
    pub max_depth: usize,
    /// Consecutive BAD responses before `* BYE` and close: before login (Dovecot
    /// imap-login: 3) and after (Dovecot imap: 20) (SECURITY-TESTS IM-15).
    pub max_bad_preauth: usize,
    pub max_bad: usize,
    /// Failed LOGIN/AUTHENTICATE attempts (`NO [AUTHENTICATIONFAILED]` or
    /// `[AUTHORIZATIONFAILED]`) before `* BYE` and close: Dovecot imap-login and sealpost's
    /// POP3 and SMTP AUTH close after 3 (SECURITY-TESTS AU-02, §1 "Auth failure delay").
    pub max_auth_failures: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 64 * 1024,
            max_literal: 100 * 1024,
            max_preauth_literal: 8 * 1024,
            max_nonsync_literal: 4096,
            max_append: 50 * 1024 * 1024,
            max_literals: 1000,
            max_command: 1024 * 1024,
            max_append_command: 100 * 1024 * 1024,
            max_depth: 32,
            max_bad_preauth: 3,
            max_bad: 20,
            max_auth_failures: 3,
        }
    }
}

/// The core's configuration for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    /// Text of the `* OK` greeting.
    pub greeting: String,
    /// TLS is active from the start (993).
    pub tls_active: bool,
    /// STARTTLS is offered while TLS is not active (143).
    pub offer_starttls: bool,
    /// LOGIN and AUTHENTICATE need TLS: LOGINDISABLED is advertised and they get
    /// `NO [PRIVACYREQUIRED]` before TLS (RFC 9051 §6.2.3, RFC 8314 §3;
    /// SECURITY-TESTS ST-06).
    pub login_requires_tls: bool,
    /// SASL mechanisms offered (when login is allowed).
    pub auth_mechanisms: Vec<Mechanism>,
    pub extensions: Extensions,
    pub limits: Limits,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            greeting: "sealpost IMAP ready".to_string(),
            tls_active: true,
            offer_starttls: false,
            login_requires_tls: true,
            auth_mechanisms: vec![Mechanism::Plain],
            extensions: Extensions::default(),
            limits: Limits::default(),
        }
    }
}
