//! Typed commands and the command parser (RFC 9051 §6 and §9, with the extensions named
//! in each variant). One file per command family: `auth`, `mailbox`, `list`,
//! `message`.
//!
//! ```text
//! command         = tag SP (command-any / command-auth / command-nonauth /
//!                   command-select) CRLF
//! tag             = 1*<any ASTRING-CHAR except "+">
//! command-any     = "CAPABILITY" / "LOGOUT" / "NOOP" / id               ; RFC 2971
//! command-nonauth = login / authenticate / "STARTTLS"
//! command-auth    = append / create / delete / enable / examine / list / lsub /
//!                   namespace / rename / select / status / subscribe / unsubscribe /
//!                   idle / getquota / getquotaroot / setquota              ; RFC 9208
//! command-select  = "CHECK" / "CLOSE" / "UNSELECT" / "EXPUNGE" / copy / move / fetch /
//!                   store / search / uid
//! uid             = "UID" SP (copy / move / fetch / search / store / uid-expunge)
//! ```

mod auth;
mod list;
mod mailbox;
mod message;

use std::fmt;

use sealpost_sasl::Mechanism;
use sealpost_types::{MailboxName, Secret};

use super::datetime::DateTime;
use super::fetch_items::FetchAttr;
use super::flags::Flag;
use super::parser::{Input, PResult, bad, is_astring_char};
use super::search::SearchProgram;
use super::sequence::SequenceSet;
use super::state::SessionState;

pub use list::{ListCommand, ListReturn, ListSelection};
pub(crate) use mailbox::check_append_prefix;
pub use mailbox::{QResync, StatusItem, decode_mailbox};

/// A command tag: `1*<any ASTRING-CHAR except "+">`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    /// A tag from text, if it is one.
    pub fn new(text: &str) -> Option<Tag> {
        (!text.is_empty() && text.bytes().all(|b| is_astring_char(b) && b != b'+'))
            .then(|| Tag(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: Tag,
    pub body: CommandBody,
}

/// STORE's operation (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `FLAGS`
    Replace,
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
}

/// One message of APPEND (several with MULTIAPPEND, RFC 3502).
#[derive(Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<Flag>,
    pub date: Option<DateTime>,
    /// The message octets exactly as sent (not normalised; may contain bare LF or, for
    /// `binary`, NUL: the service checks before storing, SECURITY-TESTS IM-18).
    pub data: Vec<u8>,
    /// Sent as literal8 `~{n}` (RFC 3516 §4.4).
    pub binary: bool,
}

impl fmt::Debug for AppendMessage {
    // Never the content: it can be megabytes and is private.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppendMessage")
            .field("flags", &self.flags)
            .field("date", &self.date)
            .field("octets", &self.data.len())
            .field("binary", &self.binary)
            .finish()
    }
}

/// Every command sealpost understands, with typed arguments. Mailbox names are already
/// decoded (modified UTF-7 or UTF-8 per the session) and validated as
/// [`MailboxName`]; LIST patterns are decoded but not validated.
///
/// The core answers `Capability`, `Logout`, `StartTls`, `Enable` and (before login)
/// `Noop` itself; the service receives every other variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    Capability,
    Noop,
    Logout,
    StartTls,
    /// RFC 9051 §6.2.2 with SASL-IR (RFC 4959): `initial_response` is the base64 text as
    /// sent (`=` for an empty response), ready for `sealpost_sasl::SaslExchange::start`.
    Authenticate {
        mechanism: Mechanism,
        initial_response: Option<Secret<Vec<u8>>>,
    },
    Login {
        username: String,
        password: Secret<String>,
    },
    /// RFC 5161; capability names upper-cased.
    Enable {
        capabilities: Vec<String>,
    },
    /// SELECT (`read_only: false`) or EXAMINE, with RFC 7162 parameters.
    Select {
        mailbox: MailboxName,
        read_only: bool,
        condstore: bool,
        qresync: Option<QResync>,
    },
    Create {
        mailbox: MailboxName,
    },
    Delete {
        mailbox: MailboxName,
    },
    Rename {
        from: MailboxName,
        to: MailboxName,
    },
    Subscribe {
        mailbox: MailboxName,
    },
    Unsubscribe {
        mailbox: MailboxName,
    },
    List(ListCommand),
    /// IMAP4rev1 only (refused once IMAP4rev2 is enabled, RFC 9051 Appendix E).
    Lsub {
        reference: String,
        pattern: String,
    },
    Namespace,
    Status {
        mailbox: MailboxName,
        items: Vec<StatusItem>,
    },
    Append {
        mailbox: MailboxName,
        messages: Vec<AppendMessage>,
    },
    Idle,
    /// IMAP4rev1 (RFC 3501 §6.4.1); a NOOP in effect.
    Check,
    Close,
    Unselect,
    /// EXPUNGE, or UID EXPUNGE (RFC 4315 §2.1) with its UID set.
    Expunge {
        uids: Option<SequenceSet>,
    },
    Search {
        uid: bool,
        program: SearchProgram,
    },
    Fetch {
        uid: bool,
        set: SequenceSet,
        attrs: Vec<FetchAttr>,
        /// CHANGEDSINCE (RFC 7162 §3.1.4.1).
        changed_since: Option<u64>,
        /// VANISHED (RFC 7162 §3.2.6): only with UID FETCH, CHANGEDSINCE and QRESYNC.
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        /// UNCHANGEDSINCE (RFC 7162 §3.1.3).
        unchanged_since: Option<u64>,
        mode: StoreMode,
        silent: bool,
        flags: Vec<Flag>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: MailboxName,
    },
    /// RFC 6851.
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: MailboxName,
    },
    /// RFC 2971: `None` for `ID NIL`; field names as sent (at most 30 pairs).
    Id {
        params: Option<Vec<(String, Option<String>)>>,
    },
    /// RFC 9208 §4.2.
    GetQuota {
        root: String,
    },
    GetQuotaRoot {
        mailbox: MailboxName,
    },
    /// RFC 9208 §4.3: resource names upper-cased.
    SetQuota {
        root: String,
        limits: Vec<(String, u64)>,
    },
}

/// Command names, for the checks made before the arguments are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandName {
    Capability,
    Noop,
    Logout,
    StartTls,
    Authenticate,
    Login,
    Enable,
    Select,
    Examine,
    Create,
    Delete,
    Rename,
    Subscribe,
    Unsubscribe,
    List,
    Lsub,
    Namespace,
    Status,
    Append,
    Idle,
    Check,
    Close,
    Unselect,
    Expunge,
    Search,
    Fetch,
    Store,
    Copy,
    Move,
    UidExpunge,
    UidSearch,
    UidFetch,
    UidStore,
    UidCopy,
    UidMove,
    Id,
    GetQuota,
    GetQuotaRoot,
    SetQuota,
}

/// Where a command is valid (RFC 9051 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// §6.1: any state.
    Any,
    /// §6.2: not authenticated.
    NotAuthenticated,
    /// §6.3: authenticated or selected.
    Authenticated,
    /// RFC 5161 §3.1: ENABLE "is only valid in the authenticated state".
    AuthenticatedOnly,
    /// §6.4: selected.
    Selected,
}

impl CommandName {
    fn from_word(word: &str, uid: bool) -> Option<CommandName> {
        use CommandName as C;
        let upper = word.to_ascii_uppercase();
        if uid {
            return Some(match upper.as_str() {
                "EXPUNGE" => C::UidExpunge,
                "SEARCH" => C::UidSearch,
                "FETCH" => C::UidFetch,
                "STORE" => C::UidStore,
                "COPY" => C::UidCopy,
                "MOVE" => C::UidMove,
                _ => return None,
            });
        }
        Some(match upper.as_str() {
            "CAPABILITY" => C::Capability,
            "NOOP" => C::Noop,
            "LOGOUT" => C::Logout,
            "STARTTLS" => C::StartTls,
            "AUTHENTICATE" => C::Authenticate,
            "LOGIN" => C::Login,
            "ENABLE" => C::Enable,
            "SELECT" => C::Select,
            "EXAMINE" => C::Examine,
            "CREATE" => C::Create,
            "DELETE" => C::Delete,
            "RENAME" => C::Rename,
            "SUBSCRIBE" => C::Subscribe,
            "UNSUBSCRIBE" => C::Unsubscribe,
            "LIST" => C::List,
            "LSUB" => C::Lsub,
            "NAMESPACE" => C::Namespace,
            "STATUS" => C::Status,
            "APPEND" => C::Append,
            "IDLE" => C::Idle,
            "CHECK" => C::Check,
            "CLOSE" => C::Close,
            "UNSELECT" => C::Unselect,
            "EXPUNGE" => C::Expunge,
            "SEARCH" => C::Search,
            "FETCH" => C::Fetch,
            "STORE" => C::Store,
            "COPY" => C::Copy,
            "MOVE" => C::Move,
            "ID" => C::Id,
            "GETQUOTA" => C::GetQuota,
            "GETQUOTAROOT" => C::GetQuotaRoot,
            "SETQUOTA" => C::SetQuota,
            _ => return None,
        })
    }

    fn scope(self) -> Scope {
        use CommandName as C;
        match self {
            C::Capability | C::Noop | C::Logout | C::Id => Scope::Any,
            C::StartTls | C::Authenticate | C::Login => Scope::NotAuthenticated,
            C::Enable => Scope::AuthenticatedOnly,
            C::Select
            | C::Examine
            | C::Create
            | C::Delete
            | C::Rename
            | C::Subscribe
            | C::Unsubscribe
            | C::List
            | C::Lsub
            | C::Namespace
            | C::Status
            | C::Append
            | C::Idle
            | C::GetQuota
            | C::GetQuotaRoot
            | C::SetQuota => Scope::Authenticated,
            C::Check
            | C::Close
            | C::Unselect
            | C::Expunge
            | C::Search
            | C::Fetch
            | C::Store
            | C::Copy
            | C::Move
            | C::UidExpunge
            | C::UidSearch
            | C::UidFetch
            | C::UidStore
            | C::UidCopy
            | C::UidMove => Scope::Selected,
        }
    }

    /// Whether the command is valid in `state` (RFC 9051 §3, §6; SECURITY-TESTS IM-15).
    pub fn allowed_in(self, state: SessionState) -> bool {
        match (self.scope(), state) {
            (_, SessionState::Logout) => false,
            (Scope::Any, _) => true,
            (Scope::NotAuthenticated, SessionState::NotAuthenticated) => true,
            (Scope::Authenticated, SessionState::Authenticated | SessionState::Selected { .. }) => {
                true
            }
            (Scope::AuthenticatedOnly, SessionState::Authenticated) => true,
            (Scope::Selected, SessionState::Selected { .. }) => true,
            _ => false,
        }
    }

    /// Whether the command has arguments at all (a literal after one that has none is
    /// refused before the `+`).
    pub fn takes_arguments(self) -> bool {
        use CommandName as C;
        !matches!(
            self,
            C::Capability
                | C::Noop
                | C::Logout
                | C::StartTls
                | C::Namespace
                | C::Idle
                | C::Check
                | C::Close
                | C::Unselect
                | C::Expunge
        )
    }

    /// APPEND: its literals are messages, limited by APPENDLIMIT (RFC 7889).
    pub fn is_append(self) -> bool {
        self == CommandName::Append
    }
}

/// Why the start of a command line could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// No valid tag: answered with an untagged `* BAD` (RFC 9051 §7.1.3).
    NoTag,
    /// A tag, but no known command after it.
    Unknown(Tag),
}

/// ```text
/// tag SP command-name            ; command-name = atom, or "UID" SP atom
/// ```
pub(crate) fn parse_head(input: &mut Input) -> Result<(Tag, CommandName), HeadError> {
    let raw = input.take_while(|b| is_astring_char(b) && b != b'+');
    let tag = String::from_utf8(raw)
        .ok()
        .and_then(|text| Tag::new(&text))
        .ok_or(HeadError::NoTag)?;
    if input.peek().is_some() && input.peek() != Some(b' ') {
        return Err(HeadError::NoTag);
    }
    let unknown = || HeadError::Unknown(tag.clone());
    input.sp().map_err(|_| unknown())?;
    let word = input.atom().map_err(|_| unknown())?;
    let uid = word.eq_ignore_ascii_case("UID");
    let word = if uid {
        input.sp().map_err(|_| unknown())?;
        input.atom().map_err(|_| unknown())?
    } else {
        word
    };
    let name = CommandName::from_word(&word, uid).ok_or_else(unknown)?;
    Ok((tag, name))
}

/// What the parser needs to know about the session and the configuration.
#[derive(Debug, Clone)]
pub(crate) struct ParseContext {
    /// Mailbox names are UTF-8 (IMAP4rev2 or UTF8=ACCEPT enabled), not modified UTF-7.
    pub(crate) utf8_names: bool,
    pub(crate) max_depth: usize,
    pub(crate) binary: bool,
    pub(crate) condstore: bool,
    /// QRESYNC has been enabled in this session (RFC 7162 §3.2.3).
    pub(crate) qresync_enabled: bool,
    pub(crate) multiappend: bool,
    pub(crate) quota: bool,
    pub(crate) mechanisms: Vec<Mechanism>,
}

/// The arguments of `name`; the input is right after the command name.
pub(crate) fn parse_args(
    name: CommandName,
    input: &mut Input,
    ctx: &ParseContext,
) -> PResult<CommandBody> {
    use CommandName as C;
    let body = match name {
        C::Capability => CommandBody::Capability,
        C::Noop => CommandBody::Noop,
        C::Logout => CommandBody::Logout,
        C::StartTls => CommandBody::StartTls,
        C::Namespace => CommandBody::Namespace,
        C::Idle => CommandBody::Idle,
        C::Check => CommandBody::Check,
        C::Close => CommandBody::Close,
        C::Unselect => CommandBody::Unselect,
        C::Expunge => CommandBody::Expunge { uids: None },
        C::Authenticate => auth::authenticate(input, ctx)?,
        C::Login => auth::login(input)?,
        C::Enable => auth::enable(input)?,
        C::Id => auth::id(input)?,
        C::Select | C::Examine => mailbox::select(input, ctx, name == C::Examine)?,
        C::Create => CommandBody::Create {
            mailbox: mailbox::create_arg(input, ctx)?,
        },
        C::Delete => CommandBody::Delete {
            mailbox: mailbox::arg(input, ctx)?,
        },
        C::Rename => {
            let from = mailbox::arg(input, ctx)?;
            CommandBody::Rename {
                from,
                to: mailbox::new_name_arg(input, ctx)?,
            }
        }
        C::Subscribe => CommandBody::Subscribe {
            mailbox: mailbox::arg(input, ctx)?,
        },
        C::Unsubscribe => CommandBody::Unsubscribe {
            mailbox: mailbox::arg(input, ctx)?,
        },
        C::Status => mailbox::status(input, ctx)?,
        C::Append => mailbox::append(input, ctx)?,
        C::GetQuota | C::GetQuotaRoot | C::SetQuota if !ctx.quota => {
            return bad("QUOTA is not available");
        }
        C::GetQuota => mailbox::getquota(input)?,
        C::GetQuotaRoot => CommandBody::GetQuotaRoot {
            mailbox: mailbox::arg(input, ctx)?,
        },
        C::SetQuota => mailbox::setquota(input)?,
        C::List => list::list(input, ctx)?,
        C::Lsub => list::lsub(input, ctx)?,
        C::Search | C::UidSearch => message::search(input, ctx, name == C::UidSearch)?,
        C::Fetch | C::UidFetch => message::fetch(input, ctx, name == C::UidFetch)?,
        C::Store | C::UidStore => message::store(input, ctx, name == C::UidStore)?,
        C::Copy | C::UidCopy => {
            let (set, mailbox) = message::set_and_mailbox(input, ctx)?;
            CommandBody::Copy {
                uid: name == C::UidCopy,
                set,
                mailbox,
            }
        }
        C::Move | C::UidMove => {
            let (set, mailbox) = message::set_and_mailbox(input, ctx)?;
            CommandBody::Move {
                uid: name == C::UidMove,
                set,
                mailbox,
            }
        }
        C::UidExpunge => message::uid_expunge(input)?,
    };
    input.end()?;
    Ok(body)
}

#[cfg(test)]
mod tests;
