//! LIST with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and SPECIAL-USE
//! (RFC 6154), and LSUB (RFC 3501 §6.3.9).

use super::mailbox::{decode_name, status_items};
use super::{CommandBody, ParseContext, StatusItem};
use crate::core::parser::{Input, PResult, ParseError, bad, is_list_char};

/// Selection options (RFC 5258 §3.1, RFC 6154 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListSelection {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

/// Return options (RFC 5258 §3.2, RFC 5819 §2, RFC 6154 §3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    /// `STATUS (...)`: answer each listed mailbox with a STATUS response too.
    pub status: Option<Vec<StatusItem>>,
}

/// A LIST command. `reference` and `patterns` are decoded to UTF-8 (from modified UTF-7
/// for IMAP4rev1 sessions) but not validated: match them with
/// [`crate::core::ListPattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCommand {
    pub selection: ListSelection,
    pub reference: String,
    pub patterns: Vec<String>,
    pub returns: ListReturn,
    /// Selection options, return options or a pattern list were given: an extended LIST
    /// (RFC 5258 §3), answered with its rules (CHILDINFO, `\NonExistent`, ...).
    pub extended: bool,
}

/// `list-mailbox = 1*list-char / string`, decoded.
fn list_mailbox(input: &mut Input, ctx: &ParseContext) -> PResult<String> {
    let raw = match input.peek() {
        Some(b'"') => input.quoted()?,
        None if input.literal_next() => input.string()?,
        _ => {
            let raw = input.take_while(is_list_char);
            if raw.is_empty() {
                return bad("expected a mailbox pattern");
            }
            raw
        }
    };
    decode_name(&raw, ctx.utf8_names).ok_or(ParseError::Cannot("invalid mailbox name"))
}

/// `mailbox` used as a LIST reference: an astring, decoded, not validated.
fn reference(input: &mut Input, ctx: &ParseContext) -> PResult<String> {
    let raw = input.astring()?;
    decode_name(&raw, ctx.utf8_names).ok_or(ParseError::Cannot("invalid mailbox name"))
}

/// ```text
/// list-select-opts = "(" [(*(list-select-mod-opt SP) list-select-base-opt
///                    *(SP list-select-opt)) / (list-select-independent-opt
///                    *(SP list-select-independent-opt))] ")"
/// list-select-opt  = "SUBSCRIBED" / "REMOTE" / "RECURSIVEMATCH" / "SPECIAL-USE"
/// ```
///
/// RFC 5258 §3.1: unknown options, and RECURSIVEMATCH without a base option, are BAD.
fn selection_opts(input: &mut Input) -> PResult<ListSelection> {
    let mut selection = ListSelection::default();
    input.paren_list(true, 8, |input| {
        let word = input.atom()?.to_ascii_uppercase();
        match word.as_str() {
            "SUBSCRIBED" => selection.subscribed = true,
            "REMOTE" => selection.remote = true,
            "RECURSIVEMATCH" => selection.recursive_match = true,
            "SPECIAL-USE" => selection.special_use = true,
            _ => return bad("unknown LIST selection option"),
        }
        Ok(())
    })?;
    if selection.recursive_match && !selection.subscribed && !selection.special_use {
        return bad("RECURSIVEMATCH needs another selection option");
    }
    Ok(selection)
}

/// ```text
/// list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
/// return-option    = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" /
///                    "STATUS" SP "(" status-att *(SP status-att) ")"
/// ```
fn return_opts(input: &mut Input, ctx: &ParseContext) -> PResult<ListReturn> {
    let mut returns = ListReturn::default();
    input.paren_list(true, 8, |input| {
        let word = input.atom()?.to_ascii_uppercase();
        match word.as_str() {
            "SUBSCRIBED" => returns.subscribed = true,
            "CHILDREN" => returns.children = true,
            "SPECIAL-USE" => returns.special_use = true,
            "STATUS" if returns.status.is_none() => {
                input.sp()?;
                returns.status = Some(status_items(input, ctx)?);
            }
            _ => return bad("unknown LIST return option"),
        }
        Ok(())
    })?;
    Ok(returns)
}

/// ```text
/// list        = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
///               [SP list-return-opts]
/// mbox-or-pat = list-mailbox / patterns
/// patterns    = "(" list-mailbox *(SP list-mailbox) ")"
/// ```
pub(super) fn list(input: &mut Input, ctx: &ParseContext) -> PResult<CommandBody> {
    input.sp()?;
    let mut extended = false;
    let mut selection = ListSelection::default();
    if input.peek() == Some(b'(') {
        selection = selection_opts(input)?;
        extended = true;
        input.sp()?;
    }
    let reference = reference(input, ctx)?;
    input.sp()?;
    let patterns = if input.peek() == Some(b'(') {
        extended = true;
        input.paren_list(false, 64, |input| list_mailbox(input, ctx))?
    } else {
        vec![list_mailbox(input, ctx)?]
    };
    let mut returns_opts = ListReturn::default();
    if input.eat(b' ') {
        if !input.eat_word("RETURN") {
            return bad("expected RETURN");
        }
        input.sp()?;
        returns_opts = return_opts(input, ctx)?;
        extended = true;
    }
    Ok(CommandBody::List(ListCommand {
        selection,
        reference,
        patterns,
        returns: returns_opts,
        extended,
    }))
}

/// `lsub = "LSUB" SP mailbox SP list-mailbox` (RFC 3501 §9).
pub(super) fn lsub(input: &mut Input, ctx: &ParseContext) -> PResult<CommandBody> {
    input.sp()?;
    let reference = reference(input, ctx)?;
    input.sp()?;
    let pattern = list_mailbox(input, ctx)?;
    Ok(CommandBody::Lsub { reference, pattern })
}
