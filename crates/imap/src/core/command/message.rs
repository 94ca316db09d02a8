//! Commands on the messages of the selected mailbox: SEARCH, FETCH, STORE, COPY, MOVE
//! and UID EXPUNGE.

use sealpost_types::MailboxName;

use super::{CommandBody, ParseContext, StoreMode, mailbox};
use crate::core::fetch_items::parse_fetch_atts;
use crate::core::flags::parse_store_flags;
use crate::core::parser::{Input, PResult, bad};
use crate::core::search::{SearchRules, parse_search};
use crate::core::sequence::{SequenceSet, SetRules, parse_sequence_set};

/// Sequence sets of these commands allow `*` and `$` (SEARCHRES, in IMAP4rev2).
const SETS: SetRules = SetRules {
    star: true,
    saved: true,
};

fn set(input: &mut Input) -> PResult<SequenceSet> {
    input.sp()?;
    parse_sequence_set(input, SETS)
}

/// `search` (see [`crate::core::search`]).
pub(super) fn search(input: &mut Input, ctx: &ParseContext, uid: bool) -> PResult<CommandBody> {
    let rules = SearchRules {
        max_depth: ctx.max_depth,
        searchres: true,
    };
    let program = parse_search(input, rules)?;
    Ok(CommandBody::Search { uid, program })
}

/// ```text
/// fetch           = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
///                   "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
/// fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"   ; RFC 4466 §2.4
/// fetch-modifier  = "CHANGEDSINCE" SP mod-sequence-value / "VANISHED" ; RFC 7162 §7
/// ```
pub(super) fn fetch(input: &mut Input, ctx: &ParseContext, uid: bool) -> PResult<CommandBody> {
    let set = set(input)?;
    input.sp()?;
    let attrs = parse_fetch_atts(input, ctx.binary)?;
    let mut changed_since = None;
    let mut vanished = false;
    if input.eat(b' ') {
        input.paren_list(false, 4, |input| {
            if input.eat_word("CHANGEDSINCE") && ctx.condstore && changed_since.is_none() {
                input.sp()?;
                changed_since = Some(input.nz_number64()?);
                Ok(())
            } else if input.eat_word("VANISHED") && !vanished {
                vanished = true;
                Ok(())
            } else {
                bad("unknown FETCH modifier")
            }
        })?;
    }
    // RFC 7162 §3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE, once QRESYNC is
    // enabled; otherwise BAD.
    if vanished && (!uid || changed_since.is_none() || !ctx.qresync_enabled) {
        return bad("VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC");
    }
    Ok(CommandBody::Fetch {
        uid,
        set,
        attrs,
        changed_since,
        vanished,
    })
}

/// ```text
/// store           = "STORE" SP sequence-set [store-modifiers] SP store-att-flags
/// store-modifiers = SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"  ; RFC 7162 §7
/// store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP
///                   (flag-list / (flag *(SP flag)))
/// ```
pub(super) fn store(input: &mut Input, ctx: &ParseContext, uid: bool) -> PResult<CommandBody> {
    let set = set(input)?;
    input.sp()?;
    let mut unchanged_since = None;
    if input.peek() == Some(b'(') {
        input.paren_list(false, 1, |input| {
            if input.eat_word("UNCHANGEDSINCE") && ctx.condstore {
                input.sp()?;
                // mod-sequence-valzer: 0 is allowed (RFC 7162 §3.1.3).
                unchanged_since = Some(input.number64()?);
                Ok(())
            } else {
                bad("unknown STORE modifier")
            }
        })?;
        input.sp()?;
    }
    let mode = if input.eat(b'+') {
        StoreMode::Add
    } else if input.eat(b'-') {
        StoreMode::Remove
    } else {
        StoreMode::Replace
    };
    let word = input.atom()?.to_ascii_uppercase();
    let silent = match word.as_str() {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return bad("expected FLAGS or FLAGS.SILENT"),
    };
    input.sp()?;
    let flags = parse_store_flags(input)?;
    Ok(CommandBody::Store {
        uid,
        set,
        unchanged_since,
        mode,
        silent,
        flags,
    })
}

/// `copy = "COPY" SP sequence-set SP mailbox`, also MOVE (RFC 6851 §3).
pub(super) fn set_and_mailbox(
    input: &mut Input,
    ctx: &ParseContext,
) -> PResult<(SequenceSet, MailboxName)> {
    let set = set(input)?;
    let mailbox = mailbox::arg(input, ctx)?;
    Ok((set, mailbox))
}

/// `uid-expunge = "EXPUNGE" SP sequence-set` (RFC 4315 §3).
pub(super) fn uid_expunge(input: &mut Input) -> PResult<CommandBody> {
    Ok(CommandBody::Expunge {
        uids: Some(set(input)?),
    })
}
