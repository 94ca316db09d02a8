//! Mailbox arguments and the commands on whole mailboxes: SELECT/EXAMINE, STATUS, APPEND
//! and the QUOTA commands (CREATE, DELETE, RENAME, SUBSCRIBE are one mailbox argument
//! each and are built in the dispatcher).

use std::num::NonZeroU32;

use sealpost_types::MailboxName;

use super::{AppendMessage, CommandBody, ParseContext, parse_head};
use crate::core::datetime::{DateTime, parse_date_time};
use crate::core::flags::{Flag, parse_flag_list};
use crate::core::mutf7;
use crate::core::parser::{Input, PResult, ParseError, Part, bad};
use crate::core::sequence::{SequenceSet, SetRules, parse_sequence_set};

/// STATUS data items (RFC 9051 §6.3.11 and the extensions named).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    Messages,
    /// IMAP4rev1 only.
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    /// RFC 8438 STATUS=SIZE (in IMAP4rev2).
    Size,
    /// RFC 7162 §3.1.6.
    HighestModSeq,
    /// RFC 7889 §3.
    AppendLimit,
    /// RFC 9208 §4.2.
    DeletedStorage,
}

impl StatusItem {
    pub fn name(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::Recent => "RECENT",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::Deleted => "DELETED",
            StatusItem::Size => "SIZE",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
            StatusItem::AppendLimit => "APPENDLIMIT",
            StatusItem::DeletedStorage => "DELETED-STORAGE",
        }
    }

    fn from_word(word: &str) -> Option<StatusItem> {
        [
            StatusItem::Messages,
            StatusItem::Recent,
            StatusItem::UidNext,
            StatusItem::UidValidity,
            StatusItem::Unseen,
            StatusItem::Deleted,
            StatusItem::Size,
            StatusItem::HighestModSeq,
            StatusItem::AppendLimit,
            StatusItem::DeletedStorage,
        ]
        .into_iter()
        .find(|item| item.name().eq_ignore_ascii_case(word))
    }
}

/// The QRESYNC parameter of SELECT/EXAMINE (RFC 7162 §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QResync {
    pub uid_validity: NonZeroU32,
    pub modseq: u64,
    pub known_uids: Option<SequenceSet>,
    /// (known message numbers, their UIDs)
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// Decodes a mailbox name sent by the client: UTF-8 for IMAP4rev2/UTF8=ACCEPT sessions,
/// strict modified UTF-7 otherwise (RFC 3501 §5.1.3); then the sealpost name rules
/// (`MailboxName`: no `..`, no controls, no leading `/`, at most 255 characters; INBOX
/// in any case is the inbox). The check runs on the decoded name, so `&AC4ALgAv-` cannot
/// smuggle `../` (SECURITY-TESTS IM-08, IM-09).
pub fn decode_mailbox(raw: &[u8], utf8_names: bool) -> Option<MailboxName> {
    let text = decode_name(raw, utf8_names)?;
    MailboxName::parse(&text).ok()
}

/// The text of a name or LIST pattern sent by the client (decoding only).
pub(crate) fn decode_name(raw: &[u8], utf8_names: bool) -> Option<String> {
    if utf8_names {
        String::from_utf8(raw.to_vec()).ok()
    } else {
        mutf7::decode(raw).ok()
    }
}

/// `SP mailbox`, with `mailbox = "INBOX" / astring`.
pub(super) fn arg(input: &mut Input, ctx: &ParseContext) -> PResult<MailboxName> {
    input.sp()?;
    let raw = input.astring()?;
    decode_mailbox(&raw, ctx.utf8_names).ok_or(ParseError::Cannot("invalid mailbox name"))
}

/// CREATE's mailbox: RFC 9051 §6.3.4 lets the name end with the hierarchy separator
/// ("the client intends to create mailbox names under this name"); the separator is
/// dropped before the name rules apply.
pub(super) fn create_arg(input: &mut Input, ctx: &ParseContext) -> PResult<MailboxName> {
    input.sp()?;
    let raw = input.astring()?;
    let text =
        decode_name(&raw, ctx.utf8_names).ok_or(ParseError::Cannot("invalid mailbox name"))?;
    let text = text.strip_suffix(MailboxName::SEPARATOR).unwrap_or(&text);
    let name = MailboxName::parse(text).map_err(|_| ParseError::Cannot("invalid mailbox name"))?;
    // RFC 5198 §2 (NFC on the wire): no new name that merely looks like an existing one.
    refuse_decomposed(name)
}

/// RENAME's new name: a mailbox argument that names a mailbox about to exist, so it gets
/// CREATE's normalisation check.
pub(super) fn new_name_arg(input: &mut Input, ctx: &ParseContext) -> PResult<MailboxName> {
    refuse_decomposed(arg(input, ctx)?)
}

/// RFC 5198 §2 / RFC 6855 §3: names are exchanged in NFC. A new name in decomposed form would
/// be a second mailbox that looks exactly like an existing one (`Cafe\u{301}` next to
/// `Caf\u{e9}`), so it is refused with NO [CANNOT] (SECURITY-TESTS IM-10; mox refuses
/// non-NFC names). Only names being created are checked: existing mailboxes stay reachable.
fn refuse_decomposed(name: MailboxName) -> PResult<MailboxName> {
    if is_decomposed(name.as_str()) {
        return Err(ParseError::Cannot("mailbox name is not in Unicode NFC"));
    }
    Ok(name)
}

/// Whether `text` holds a sequence that NFC composes: a mark of the combining diacritics
/// blocks or a kana voicing mark (each of which composes with the letters that have
/// precomposed forms), or Hangul jamo that form a syllable (L+V, LV+T; the algorithmic
/// composition of Unicode §3.12). Without the Unicode composition tables the marks are
/// refused after any character, which also refuses the few NFC names that need one because
/// no precomposed letter exists; that errs on the side of never having two look-alike
/// mailboxes. Marks of other scripts (Indic nukta, Hebrew points) are left alone: their
/// precomposed forms are composition exclusions, so NFC keeps them decomposed.
fn is_decomposed(text: &str) -> bool {
    let mut previous = None;
    for c in text.chars() {
        let mark = matches!(
            c,
            '\u{0300}'..='\u{036F}'
                | '\u{1AB0}'..='\u{1AFF}'
                | '\u{1DC0}'..='\u{1DFF}'
                | '\u{20D0}'..='\u{20FF}'
                | '\u{FE20}'..='\u{FE2F}'
                | '\u{3099}'
                | '\u{309A}'
        );
        let jamo = match (previous, c) {
            (Some('\u{1100}'..='\u{1112}'), '\u{1161}'..='\u{1175}') => true,
            (Some(syllable @ '\u{AC00}'..='\u{D7A3}'), '\u{11A8}'..='\u{11C2}') => {
                (u32::from(syllable) - 0xAC00) % 28 == 0
            }
            _ => false,
        };
        if mark || jamo {
            return true;
        }
        previous = Some(c);
    }
    false
}

/// ```text
/// select         = "SELECT" SP mailbox [select-params]           ; RFC 4466 §2.1
/// select-params  = SP "(" select-param *(SP select-param) ")"
/// select-param   = "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
///                  [SP known-uids] [SP seq-match-data] ")"       ; RFC 7162 §7
/// known-uids     = sequence-set                                   ; no "*"
/// seq-match-data = "(" known-sequence-set SP known-uid-set ")"
/// ```
pub(super) fn select(
    input: &mut Input,
    ctx: &ParseContext,
    read_only: bool,
) -> PResult<CommandBody> {
    let mailbox = arg(input, ctx)?;
    let mut condstore = false;
    let mut qresync = None;
    if input.eat(b' ') {
        input.paren_list(false, 4, |input| {
            if input.eat_word("CONDSTORE") && ctx.condstore {
                condstore = true;
                return Ok(());
            }
            if input.eat_word("QRESYNC") {
                // RFC 7162 §3.2.5: BAD unless QRESYNC was enabled first.
                if !ctx.qresync_enabled {
                    return bad("QRESYNC is not enabled");
                }
                input.sp()?;
                qresync = Some(qresync_param(input)?);
                return Ok(());
            }
            bad("unknown SELECT parameter")
        })?;
    }
    Ok(CommandBody::Select {
        mailbox,
        read_only,
        condstore,
        qresync,
    })
}

/// ```text
/// "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"
/// uidvalidity = nz-number
/// ```
fn qresync_param(input: &mut Input) -> PResult<QResync> {
    let no_star = SetRules {
        star: false,
        saved: false,
    };
    input.expect(b'(', "expected \"(\"")?;
    let uid_validity = input.nz_number()?;
    input.sp()?;
    let modseq = input.nz_number64()?;
    let mut known_uids = None;
    let mut seq_match = None;
    if input.eat(b' ') {
        if input.peek() != Some(b'(') {
            known_uids = Some(parse_sequence_set(input, no_star)?);
            if input.eat(b' ') && input.peek() != Some(b'(') {
                return bad("expected \"(\"");
            }
        }
        if input.eat(b'(') {
            let sequence = parse_sequence_set(input, no_star)?;
            input.sp()?;
            let uids = parse_sequence_set(input, no_star)?;
            input.expect(b')', "expected \")\"")?;
            seq_match = Some((sequence, uids));
        }
    }
    input.expect(b')', "expected \")\"")?;
    Ok(QResync {
        uid_validity,
        modseq,
        known_uids,
        seq_match,
    })
}

/// ```text
/// status     = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"
/// status-att = "MESSAGES" / "UIDNEXT" / "UIDVALIDITY" / "UNSEEN" / "DELETED" / "SIZE" /
///              "RECENT" / "HIGHESTMODSEQ" / "APPENDLIMIT" / "DELETED-STORAGE"
/// ```
pub(super) fn status(input: &mut Input, ctx: &ParseContext) -> PResult<CommandBody> {
    let mailbox = arg(input, ctx)?;
    input.sp()?;
    let items = status_items(input, ctx)?;
    Ok(CommandBody::Status { mailbox, items })
}

/// `"(" status-att *(SP status-att) ")"`, also used by LIST-STATUS (RFC 5819).
pub(crate) fn status_items(
    input: &mut Input,
    ctx: &ParseContext,
) -> PResult<Vec<super::StatusItem>> {
    input.paren_list(false, 16, |input| {
        let word = input.atom()?;
        match StatusItem::from_word(&word) {
            Some(StatusItem::HighestModSeq) if !ctx.condstore => bad("CONDSTORE is not available"),
            Some(StatusItem::DeletedStorage) if !ctx.quota => bad("QUOTA is not available"),
            Some(item) => Ok(item),
            None => bad("unknown status item"),
        }
    })
}

/// ```text
/// append         = "APPEND" SP mailbox 1*append-message        ; RFC 3502 MULTIAPPEND
/// append-message = [SP flag-list] [SP date-time] SP append-data
/// append-data    = literal / literal8                          ; RFC 3516 §4.4
/// ```
///
/// More than one message only when MULTIAPPEND is offered.
pub(super) fn append(input: &mut Input, ctx: &ParseContext) -> PResult<CommandBody> {
    let mailbox = arg(input, ctx)?;
    let mut messages = Vec::new();
    loop {
        let (flags, date) = message_head(input)?;
        let Some((data, binary)) = input.take_literal() else {
            return bad("APPEND needs the message as a literal");
        };
        if binary && !ctx.binary {
            return bad("BINARY is not available");
        }
        messages.push(AppendMessage {
            flags,
            date,
            data,
            binary,
        });
        if input.at_end() {
            break;
        }
        if !ctx.multiappend {
            return bad("one message per APPEND");
        }
    }
    Ok(CommandBody::Append { mailbox, messages })
}

/// `SP [flag-list SP] [date-time SP]`: what precedes an `append-data` literal.
fn message_head(input: &mut Input) -> PResult<(Vec<Flag>, Option<DateTime>)> {
    input.sp()?;
    let mut flags = Vec::new();
    if input.peek() == Some(b'(') {
        flags = parse_flag_list(input)?;
        input.sp()?;
    }
    let mut date = None;
    if input.peek() == Some(b'"') {
        date = Some(parse_date_time(input)?);
        input.sp()?;
    }
    Ok((flags, date))
}

/// Checks an APPEND before the `+` for the synchronising literal announced at the end of
/// its last line (`lines`: the command's line parts so far, tag first, announcements cut
/// off; one literal between each two). RFC 9051 §2.2.1 lets the server answer with a
/// tagged response instead of the continuation, so a message that would be refused for its
/// mailbox name, flags or date is never uploaded (SECURITY-TESTS IM-18: `c APPEND INBOX
/// ({2000 flags}) {2}` and an invalid date get NO/BAD without `+`). The errors are the ones
/// [`append`] gives for the whole command. Nothing is checked when the literal is the
/// mailbox name itself (`APPEND {5}`).
pub(crate) fn check_append_prefix(lines: &[&[u8]], ctx: &ParseContext) -> PResult<()> {
    let Some((first, later)) = lines.split_first() else {
        return Ok(());
    };
    let mut input = Input::new(vec![Part::Line(first.to_vec())]);
    if parse_head(&mut input).is_err() {
        return Ok(()); // refused by the framer before this check
    }
    let mailbox_is_literal = input.peek() == Some(b' ') && input.peek_at(1).is_none();
    let message_line = match later {
        [] if mailbox_is_literal => return Ok(()),
        [] => {
            arg(&mut input, ctx)?;
            input
        }
        [last] if mailbox_is_literal => Input::new(vec![Part::Line(last.to_vec())]),
        // RFC 3502: a second message only with MULTIAPPEND.
        _ if !ctx.multiappend => return bad("one message per APPEND"),
        [.., last] => Input::new(vec![Part::Line(last.to_vec())]),
    };
    let mut input = message_line;
    message_head(&mut input)?;
    if input.at_end() {
        Ok(())
    } else {
        bad("APPEND needs the message as a literal")
    }
}

/// `getquota = "GETQUOTA" SP quota-root-name` (RFC 9208 §4.2); `quota-root-name = astring`.
pub(super) fn getquota(input: &mut Input) -> PResult<CommandBody> {
    input.sp()?;
    Ok(CommandBody::GetQuota {
        root: input.astring_utf8()?,
    })
}

/// ```text
/// setquota          = "SETQUOTA" SP quota-root-name SP setquota-list  ; RFC 9208 §4.3
/// setquota-list     = "(" [setquota-resource *(SP setquota-resource)] ")"
/// setquota-resource = resource-name SP resource-limit
/// resource-limit    = number64
/// ```
pub(super) fn setquota(input: &mut Input) -> PResult<CommandBody> {
    input.sp()?;
    let root = input.astring_utf8()?;
    input.sp()?;
    let limits = input.paren_list(true, 16, |input| {
        let name = input.atom()?.to_ascii_uppercase();
        input.sp()?;
        Ok((name, input.number64()?))
    })?;
    Ok(CommandBody::SetQuota { root, limits })
}
