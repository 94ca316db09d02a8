//! Session states (RFC 9051 §3) and what ENABLE has switched on (RFC 5161).

/// RFC 9051 §3. The core enforces which commands each state allows; the service moves
/// the session between states with a [`Transition`] when it completes a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionState {
    #[default]
    NotAuthenticated,
    Authenticated,
    /// A mailbox is selected; `read_only` after EXAMINE (or a read-only SELECT).
    Selected {
        read_only: bool,
    },
    Logout,
}

/// Extensions the client has enabled with ENABLE (RFC 5161 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Enabled {
    /// RFC 7162 §3.1: also set by enabling QRESYNC and, by the core, on any
    /// CONDSTORE-enabling command (SELECT/EXAMINE (CONDSTORE), FETCH with MODSEQ or
    /// CHANGEDSINCE, SEARCH MODSEQ, STORE UNCHANGEDSINCE, STATUS HIGHESTMODSEQ).
    pub condstore: bool,
    /// RFC 7162 §3.2.3.
    pub qresync: bool,
    /// RFC 6855: UTF-8 mailbox names and quoted strings.
    pub utf8_accept: bool,
    /// RFC 9051 Appendix E: the session speaks IMAP4rev2 (UTF-8 names, ESEARCH, no
    /// `\Recent`, no LSUB).
    pub imap4rev2: bool,
}

/// What the service knows about the session from the core.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionInfo {
    pub state: SessionState,
    pub tls: bool,
    pub enabled: Enabled,
    /// The login name, once authenticated.
    pub user: Option<String>,
}

impl SessionInfo {
    /// Mailbox names travel as UTF-8 rather than modified UTF-7 (RFC 9051 §5.1,
    /// RFC 6855 §3).
    pub fn utf8_names(&self) -> bool {
        self.enabled.imap4rev2 || self.enabled.utf8_accept
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(
            self.state,
            SessionState::Authenticated | SessionState::Selected { .. }
        )
    }

    pub fn is_selected(&self) -> bool {
        matches!(self.state, SessionState::Selected { .. })
    }
}

/// A state change the service reports with its completion of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// LOGIN/AUTHENTICATE succeeded for this user.
    Authenticated { user: String },
    /// SELECT/EXAMINE succeeded.
    Selected { read_only: bool },
    /// CLOSE/UNSELECT, or a SELECT that failed after closing the previous mailbox
    /// (RFC 9051 §6.3.2).
    Unselected,
    /// The session ends after the completion is written (e.g. the account was deleted).
    Logout,
}
