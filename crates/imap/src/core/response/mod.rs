//! Server responses (RFC 9051 §7): status responses with their codes, the completion the
//! service gives each command, untagged data ([`data`]) and the encoding primitives
//! ([`encode`]).

pub mod data;
pub mod encode;

use std::fmt::Write as _;

use super::command::Tag;
use super::flags::Flag;
use super::sequence::SequenceSet;
use super::state::Transition;
use encode::{Encoding, clean_text, write_flags};

/// The condition of a status response (RFC 9051 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    /// Untagged only.
    Bye,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Bye => "BYE",
        }
    }
}

/// Response codes (RFC 9051 §7.1, RFC 5530, and the extensions named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Alert,
    AlreadyExists,
    /// RFC 4315 §3 (UIDPLUS).
    AppendUid {
        uid_validity: u32,
        uids: SequenceSet,
    },
    AuthenticationFailed,
    AuthorizationFailed,
    /// `BADCHARSET (US-ASCII UTF-8)`.
    BadCharset,
    Cannot,
    /// `CAPABILITY ...`: the core writes the capabilities of the session's state after
    /// the completion's transition (RFC 9051 §6.2.2: send them after login).
    Capability,
    ClientBug,
    /// RFC 7162 §3.2.11.
    Closed,
    ContactAdmin,
    /// RFC 4315 §3 (UIDPLUS).
    CopyUid {
        uid_validity: u32,
        source: SequenceSet,
        destination: SequenceSet,
    },
    Corruption,
    Expired,
    ExpungeIssued,
    HasChildren,
    /// RFC 7162 §3.1.2.1.
    HighestModSeq(u64),
    InUse,
    Limit,
    /// RFC 7162 §3.1.3.
    Modified(SequenceSet),
    /// RFC 7162 §3.1.2.2.
    NoModSeq,
    NonExistent,
    NoPerm,
    OverQuota,
    Parse,
    /// `PERMANENTFLAGS (...)`, with `\*` when `new_keywords`.
    PermanentFlags {
        flags: Vec<Flag>,
        new_keywords: bool,
    },
    PrivacyRequired,
    ReadOnly,
    ReadWrite,
    ServerBug,
    /// RFC 7889 §4 / RFC 9051 §7.1.
    TooBig,
    TryCreate,
    UidNext(u32),
    UidNotSticky,
    UidValidity(u32),
    Unavailable,
    /// RFC 3516 §4.3.
    UnknownCte,
    /// IMAP4rev1 only.
    Unseen(u32),
}

impl Code {
    /// Writes `[CODE ...]` (without the trailing space). `capabilities` is the
    /// CAPABILITY list of the session, for [`Code::Capability`].
    pub(crate) fn write(&self, out: &mut String, capabilities: &str) {
        out.push('[');
        let simple = match self {
            Code::Alert => "ALERT",
            Code::AlreadyExists => "ALREADYEXISTS",
            Code::AuthenticationFailed => "AUTHENTICATIONFAILED",
            Code::AuthorizationFailed => "AUTHORIZATIONFAILED",
            Code::BadCharset => "BADCHARSET (US-ASCII UTF-8)",
            Code::Cannot => "CANNOT",
            Code::ClientBug => "CLIENTBUG",
            Code::Closed => "CLOSED",
            Code::ContactAdmin => "CONTACTADMIN",
            Code::Corruption => "CORRUPTION",
            Code::Expired => "EXPIRED",
            Code::ExpungeIssued => "EXPUNGEISSUED",
            Code::HasChildren => "HASCHILDREN",
            Code::InUse => "INUSE",
            Code::Limit => "LIMIT",
            Code::NoModSeq => "NOMODSEQ",
            Code::NonExistent => "NONEXISTENT",
            Code::NoPerm => "NOPERM",
            Code::OverQuota => "OVERQUOTA",
            Code::Parse => "PARSE",
            Code::PrivacyRequired => "PRIVACYREQUIRED",
            Code::ReadOnly => "READ-ONLY",
            Code::ReadWrite => "READ-WRITE",
            Code::ServerBug => "SERVERBUG",
            Code::TooBig => "TOOBIG",
            Code::TryCreate => "TRYCREATE",
            Code::UidNotSticky => "UIDNOTSTICKY",
            Code::Unavailable => "UNAVAILABLE",
            Code::UnknownCte => "UNKNOWN-CTE",
            _ => "",
        };
        out.push_str(simple);
        // `write!` to a String cannot fail.
        let _ = match self {
            Code::AppendUid { uid_validity, uids } => {
                write!(out, "APPENDUID {uid_validity} {uids}")
            }
            Code::Capability => write!(out, "CAPABILITY {capabilities}"),
            Code::CopyUid {
                uid_validity,
                source,
                destination,
            } => {
                write!(out, "COPYUID {uid_validity} {source} {destination}")
            }
            Code::HighestModSeq(modseq) => write!(out, "HIGHESTMODSEQ {modseq}"),
            Code::Modified(set) => write!(out, "MODIFIED {set}"),
            Code::PermanentFlags {
                flags,
                new_keywords,
            } => {
                let mut list = Vec::new();
                let mut flags = flags.clone();
                flags.retain(|flag| *flag != Flag::Recent);
                write_flags(&mut list, &flags);
                let mut text = String::from_utf8_lossy(&list).into_owned();
                if *new_keywords {
                    text.insert_str(
                        text.len() - 1,
                        if flags.is_empty() { "\\*" } else { " \\*" },
                    );
                }
                write!(out, "PERMANENTFLAGS {text}")
            }
            Code::UidNext(uid) => write!(out, "UIDNEXT {uid}"),
            Code::UidValidity(value) => write!(out, "UIDVALIDITY {value}"),
            Code::Unseen(seq) => write!(out, "UNSEEN {seq}"),
            _ => Ok(()),
        };
        out.push(']');
    }
}

/// How the service completes a command: the tagged response and the state change it
/// causes. The core writes `tag STATUS [CODE] text`, with the text cleaned of controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub status: Status,
    pub code: Option<Code>,
    pub text: String,
    pub transition: Option<Transition>,
}

impl Completion {
    fn new(status: Status, text: impl Into<String>) -> Self {
        Completion {
            status,
            code: None,
            text: text.into(),
            transition: None,
        }
    }

    pub fn ok(text: impl Into<String>) -> Self {
        Self::new(Status::Ok, text)
    }

    pub fn no(text: impl Into<String>) -> Self {
        Self::new(Status::No, text)
    }

    pub fn bad(text: impl Into<String>) -> Self {
        Self::new(Status::Bad, text)
    }

    pub fn with_code(mut self, code: Code) -> Self {
        self.code = Some(code);
        self
    }

    pub fn with_transition(mut self, transition: Transition) -> Self {
        self.transition = Some(transition);
        self
    }
}

/// Writes one status response line: `tag|* STATUS [CODE] text CRLF`.
pub(crate) fn write_status_line(
    out: &mut Vec<u8>,
    tag: Option<&Tag>,
    status: Status,
    code: Option<&Code>,
    text: &str,
    encoding: Encoding,
    capabilities: &str,
) {
    let mut line = String::new();
    line.push_str(tag.map_or("*", Tag::as_str));
    line.push(' ');
    line.push_str(status.as_str());
    line.push(' ');
    if let Some(code) = code {
        code.write(&mut line, capabilities);
        line.push(' ');
    }
    line.push_str(&clean_text(text, encoding));
    line.push_str("\r\n");
    out.extend_from_slice(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(code: Code) -> String {
        let mut out = Vec::new();
        write_status_line(
            &mut out,
            None,
            Status::Ok,
            Some(&code),
            "done",
            Encoding::default(),
            "IMAP4rev1",
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn codes() {
        assert_eq!(line(Code::TooBig), "* OK [TOOBIG] done\r\n");
        assert_eq!(
            line(Code::Capability),
            "* OK [CAPABILITY IMAP4rev1] done\r\n"
        );
        assert_eq!(
            line(Code::PermanentFlags {
                flags: vec![Flag::Seen, Flag::Recent],
                new_keywords: true
            }),
            "* OK [PERMANENTFLAGS (\\Seen \\*)] done\r\n"
        );
        assert_eq!(
            line(Code::PermanentFlags {
                flags: vec![],
                new_keywords: true
            }),
            "* OK [PERMANENTFLAGS (\\*)] done\r\n"
        );
        assert_eq!(
            line(Code::CopyUid {
                uid_validity: 38505,
                source: SequenceSet::from_numbers([304, 319, 320]),
                destination: SequenceSet::from_numbers([3956, 3957, 3958])
            }),
            "* OK [COPYUID 38505 304,319:320 3956:3958] done\r\n"
        );
        assert_eq!(
            line(Code::BadCharset),
            "* OK [BADCHARSET (US-ASCII UTF-8)] done\r\n"
        );
    }
}
