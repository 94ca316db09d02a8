//! SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH results (RFC 4731) and MODSEQ
//! (RFC 7162 §3.1.5).

use std::sync::Arc;

use sealpost_store::{MessageMeta, StoreError};
use sealpost_types::Uid;

use super::session::{Session, store_failure};
use crate::core::{
    Completion, ESearch, Response, SearchKey, SearchProgram, SearchReturn, SequenceSet, Tag,
};
use crate::mime::{MessageStructure, fold_case};

const SECONDS_PER_DAY: i64 = 86_400;

/// Whether evaluating `key` needs the message's bytes.
fn needs_raw(key: &SearchKey) -> bool {
    match key {
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_) => true,
        SearchKey::Not(inner) => needs_raw(inner),
        SearchKey::Or(a, b) => needs_raw(a) || needs_raw(b),
        SearchKey::And(keys) => keys.iter().any(needs_raw),
        _ => false,
    }
}

fn uses_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq { .. } => true,
        SearchKey::Not(inner) => uses_modseq(inner),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::And(keys) => keys.iter().any(uses_modseq),
        _ => false,
    }
}

/// One message as SEARCH sees it.
struct Candidate<'a> {
    seq: u32,
    exists: u32,
    largest_uid: u32,
    meta: &'a MessageMeta,
    /// The SEARCHRES result `$` stands for (RFC 5182 §2.1).
    saved: &'a [Uid],
    message: Option<(&'a [u8], &'a MessageStructure)>,
}

impl Candidate<'_> {
    fn has_flag(&self, flag: &str) -> bool {
        self.meta.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
    }

    /// RFC 9051 §6.4.4: string keys match substrings, case-insensitively.
    fn header_contains(&self, name: &str, needle: &str) -> bool {
        let Some((raw, structure)) = self.message else {
            return false;
        };
        let values = structure.header_values(raw, name);
        if needle.is_empty() {
            return !values.is_empty();
        }
        let needle = fold_case(needle);
        values.iter().any(|v| fold_case(v).contains(&needle))
    }

    fn internal_day(&self) -> i64 {
        self.meta.internal_date.div_euclid(SECONDS_PER_DAY)
    }

    fn sent_day(&self) -> Option<i64> {
        self.message.and_then(|(_, s)| s.sent_day())
    }

    /// Evaluates a key; recursion depth is bounded by the core's parser.
    fn matches(&self, key: &SearchKey) -> bool {
        match key {
            SearchKey::All => true,
            SearchKey::Answered => self.has_flag("\\Answered"),
            SearchKey::Deleted => self.has_flag("\\Deleted"),
            SearchKey::Draft => self.has_flag("\\Draft"),
            SearchKey::Flagged => self.has_flag("\\Flagged"),
            SearchKey::Seen => self.has_flag("\\Seen"),
            SearchKey::Unanswered => !self.has_flag("\\Answered"),
            SearchKey::Undeleted => !self.has_flag("\\Deleted"),
            SearchKey::Undraft => !self.has_flag("\\Draft"),
            SearchKey::Unflagged => !self.has_flag("\\Flagged"),
            SearchKey::Unseen => !self.has_flag("\\Seen"),
            SearchKey::Keyword(k) => self.has_flag(k),
            SearchKey::Unkeyword(k) => !self.has_flag(k),
            // RFC 3501 §6.4.4: no message is \Recent in this server's sessions.
            SearchKey::New | SearchKey::Recent => false,
            SearchKey::Old => true,
            SearchKey::Before(d) => self.internal_day() < d.days_since_epoch(),
            SearchKey::On(d) => self.internal_day() == d.days_since_epoch(),
            SearchKey::Since(d) => self.internal_day() >= d.days_since_epoch(),
            SearchKey::SentBefore(d) => self.sent_day().is_some_and(|s| s < d.days_since_epoch()),
            SearchKey::SentOn(d) => self.sent_day() == Some(d.days_since_epoch()),
            SearchKey::SentSince(d) => self.sent_day().is_some_and(|s| s >= d.days_since_epoch()),
            SearchKey::Larger(n) => self.meta.size > *n,
            SearchKey::Smaller(n) => self.meta.size < *n,
            SearchKey::Bcc(s) => self.header_contains("Bcc", s),
            SearchKey::Cc(s) => self.header_contains("Cc", s),
            SearchKey::From(s) => self.header_contains("From", s),
            SearchKey::To(s) => self.header_contains("To", s),
            SearchKey::Subject(s) => self.header_contains("Subject", s),
            SearchKey::Header(name, s) => self.header_contains(name, s),
            SearchKey::Body(s) => self
                .message
                .is_some_and(|(raw, st)| st.body_contains(raw, s)),
            SearchKey::Text(s) => self
                .message
                .is_some_and(|(raw, st)| st.text_contains(raw, s)),
            SearchKey::Uid(set) | SearchKey::SequenceSet(set)
                if set.saved && self.saved.contains(&self.meta.uid) =>
            {
                true
            }
            SearchKey::Uid(set) => set.contains(self.meta.uid.0, self.largest_uid),
            SearchKey::SequenceSet(set) => set.contains(self.seq, self.exists),
            SearchKey::ModSeq { modseq, .. } => self.meta.modseq.0 >= *modseq,
            SearchKey::Not(inner) => !self.matches(inner),
            SearchKey::Or(a, b) => self.matches(a) || self.matches(b),
            SearchKey::And(keys) => keys.iter().all(|k| self.matches(k)),
        }
    }
}

/// RFC 5182 §2.4: with SAVE and only MIN and/or MAX, those messages are saved;
/// otherwise every match.
fn saved_result(found: &[(u32, u32, u64)], options: &[SearchReturn]) -> Vec<Uid> {
    let min_max_only = !options.contains(&SearchReturn::All)
        && !options.contains(&SearchReturn::Count)
        && options
            .iter()
            .any(|o| matches!(o, SearchReturn::Min | SearchReturn::Max));
    if !min_max_only {
        return found.iter().map(|f| Uid(f.1)).collect();
    }
    let mut saved = Vec::new();
    if options.contains(&SearchReturn::Min)
        && let Some(first) = found.first()
    {
        saved.push(Uid(first.1));
    }
    if options.contains(&SearchReturn::Max)
        && let Some(last) = found.last()
        && !saved.contains(&Uid(last.1))
    {
        saved.push(Uid(last.1));
    }
    saved
}

impl Session<'_> {
    pub(super) async fn search(
        &mut self,
        tag: &Tag,
        uid: bool,
        program: &SearchProgram,
    ) -> Completion {
        let Some(selected) = self.selected.as_ref() else {
            return Completion::bad("No mailbox selected");
        };
        let messages = selected.messages.clone();
        let exists = selected.exists();
        let largest_uid = selected.largest_uid();
        let raw_needed = program.keys.iter().any(needs_raw);
        let saved = self.saved_search.clone().unwrap_or_default();
        let mut found: Vec<(u32, u32, u64)> = Vec::new();
        for (index, meta) in messages.iter().enumerate() {
            let seq = u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1);
            let loaded: Option<(Vec<u8>, Arc<MessageStructure>)> = if raw_needed {
                match self.service.store.read_blob(&meta.blob).await {
                    Ok(raw) => match self.structure(meta.blob, Some(&raw)).await {
                        Ok(structure) => Some((raw, structure)),
                        Err(StoreError::NotFound(_)) => None,
                        Err(error) => return store_failure(&error),
                    },
                    // Expunged elsewhere since our snapshot: it matches nothing textual.
                    Err(StoreError::NotFound(_)) => None,
                    Err(error) => return store_failure(&error),
                }
            } else {
                None
            };
            let candidate = Candidate {
                seq,
                exists,
                largest_uid,
                meta,
                saved: &saved,
                message: loaded.as_ref().map(|(r, s)| (r.as_slice(), s.as_ref())),
            };
            if program.keys.iter().all(|k| candidate.matches(k)) {
                found.push((seq, meta.uid.0, meta.modseq.0));
            }
        }
        let numbers: Vec<u32> = found
            .iter()
            .map(|&(seq, uid_value, _)| if uid { uid_value } else { seq })
            .collect();
        // RFC 7162 §3.1.5: with a MODSEQ key, the highest MODSEQ of the matches.
        let modseq = program
            .keys
            .iter()
            .any(uses_modseq)
            .then(|| found.iter().map(|f| f.2).max())
            .flatten();
        let rev2 = self.core.session().enabled.imap4rev2;
        if let Some(options) = &program.returns
            && options.contains(&SearchReturn::Save)
        {
            self.saved_search = Some(saved_result(&found, options));
            // RFC 5182 §2.4: SAVE alone returns no ESEARCH response.
            if options.iter().all(|o| *o == SearchReturn::Save) {
                return Completion::ok("SEARCH completed, result saved");
            }
        }
        match &program.returns {
            // RFC 3501 §7.2.5: `* SEARCH` for IMAP4rev1 without RETURN.
            None if !rev2 => self.core.send(&Response::Search { numbers, modseq }),
            returns => {
                // RFC 9051 §7.3.4 / RFC 4731 §3.1: ESEARCH; no RETURN means ALL.
                let options = returns.clone().unwrap_or_else(|| vec![SearchReturn::All]);
                let wants = |o: SearchReturn| options.contains(&o);
                let empty = numbers.is_empty();
                let result = ESearch {
                    tag: Some(tag.clone()),
                    uid,
                    min: (wants(SearchReturn::Min) && !empty)
                        .then(|| numbers.iter().min().copied())
                        .flatten(),
                    max: (wants(SearchReturn::Max) && !empty)
                        .then(|| numbers.iter().max().copied())
                        .flatten(),
                    all: (wants(SearchReturn::All) && !empty)
                        .then(|| SequenceSet::from_numbers(numbers.iter().copied())),
                    count: wants(SearchReturn::Count)
                        .then(|| u32::try_from(numbers.len()).unwrap_or(u32::MAX)),
                    modseq: modseq.filter(|_| !empty),
                };
                self.core.send(&Response::ESearch(result));
            }
        }
        Completion::ok("SEARCH completed")
    }
}
