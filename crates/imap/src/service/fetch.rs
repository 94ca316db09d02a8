//! FETCH and UID FETCH (RFC 9051 §6.4.5, §6.4.9), with BINARY (RFC 3516) and
//! CONDSTORE/QRESYNC modifiers (RFC 7162 §3.1.4, §3.2.6).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use sealpost_store::{FlagOp, MessageMeta, StoreError};
use sealpost_types::{ModSeq, Uid};

use super::selected::flags_of;
use super::session::{Session, store_failure};
use crate::core::{
    Code, Completion, DateTime, FetchAttr, FetchItem, Response, Section, SectionText, SequenceSet,
};
use crate::mime::{Dialect, MessageStructure, SectionKind, SectionSpec};

/// The FETCH data that needs the message's bytes.
fn needs_raw(attr: &FetchAttr) -> bool {
    !matches!(
        attr,
        FetchAttr::Flags
            | FetchAttr::InternalDate
            | FetchAttr::Rfc822Size
            | FetchAttr::Uid
            | FetchAttr::ModSeq
            | FetchAttr::Envelope
            | FetchAttr::Body
            | FetchAttr::BodyStructure
    )
}

/// The FETCH data that needs the MIME structure (kept by the store beside the blob, so
/// ENVELOPE and BODYSTRUCTURE of a large mailbox never read the messages themselves).
fn needs_structure(attr: &FetchAttr) -> bool {
    !matches!(
        attr,
        FetchAttr::Flags
            | FetchAttr::InternalDate
            | FetchAttr::Rfc822Size
            | FetchAttr::Uid
            | FetchAttr::ModSeq
            | FetchAttr::Rfc822
    )
}

/// A core section as the mime module's section.
fn section_spec(section: &Section) -> SectionSpec {
    let kind = match &section.text {
        None => SectionKind::Full,
        Some(SectionText::Header) => SectionKind::Header,
        Some(SectionText::HeaderFields { not, fields }) => SectionKind::HeaderFields {
            names: fields.clone(),
            not: *not,
        },
        Some(SectionText::Text) => SectionKind::Text,
        Some(SectionText::Mime) => SectionKind::Mime,
    };
    SectionSpec {
        path: section.part.iter().map(|n| n.get()).collect(),
        kind,
    }
}

/// Why one message's FETCH data could not be built.
enum ItemError {
    /// RFC 3516 §4.3: the part's transfer encoding is unknown.
    UnknownCte,
}

/// Builds the FETCH items of one message, in the order asked.
fn build_items(
    meta: &MessageMeta,
    attrs: &[FetchAttr],
    raw: Option<&[u8]>,
    structure: Option<&MessageStructure>,
    dialect: Dialect,
) -> Result<Vec<FetchItem>, ItemError> {
    let mut items = Vec::with_capacity(attrs.len());
    for attr in attrs {
        let item = match (attr, raw.zip(structure)) {
            (FetchAttr::Uid, _) => FetchItem::Uid(meta.uid.0),
            (FetchAttr::Flags, _) => FetchItem::Flags(flags_of(meta)),
            (FetchAttr::Rfc822Size, _) => FetchItem::Rfc822Size(meta.size),
            (FetchAttr::ModSeq, _) => FetchItem::ModSeq(meta.modseq.0),
            (FetchAttr::InternalDate, _) => match DateTime::from_unix(meta.internal_date, 0) {
                Some(date) => FetchItem::InternalDate(date),
                None => continue,
            },
            (FetchAttr::Envelope, _) => match structure {
                Some(s) => FetchItem::Envelope(s.envelope(dialect).into_bytes()),
                None => continue,
            },
            (FetchAttr::Body, _) => match structure {
                Some(s) => FetchItem::Body(s.bodystructure(false, dialect).into_bytes()),
                None => continue,
            },
            (FetchAttr::BodyStructure, _) => match structure {
                Some(s) => FetchItem::BodyStructure(s.bodystructure(true, dialect).into_bytes()),
                None => continue,
            },
            (FetchAttr::Rfc822, _) => match raw {
                Some(raw) => FetchItem::Rfc822(Some(raw.to_vec())),
                None => continue,
            },
            (_, None) => continue,
            (FetchAttr::Rfc822Header, Some((raw, s))) => {
                FetchItem::Rfc822Header(Some(s.message.header.slice(raw).to_vec()))
            }
            (FetchAttr::Rfc822Text, Some((raw, s))) => {
                FetchItem::Rfc822Text(Some(s.message.body.slice(raw).to_vec()))
            }
            (
                FetchAttr::BodySection {
                    section, partial, ..
                },
                Some((raw, s)),
            ) => {
                let data = s.section(raw, &section_spec(section));
                // RFC 9051 §6.4.5: `<origin.octets>` cuts the section; the response
                // names the origin only.
                let data = match partial {
                    Some(partial) => partial.apply(&data).to_vec(),
                    None => data.into_owned(),
                };
                FetchItem::BodySection {
                    section: section.clone(),
                    origin: partial.map(|p| p.offset),
                    data: Some(data),
                }
            }
            (FetchAttr::Binary { part, partial, .. }, Some((raw, s))) => {
                let path: Vec<u32> = part.iter().map(|n| n.get()).collect();
                let decoded: Cow<'_, [u8]> =
                    s.binary(raw, &path).map_err(|_| ItemError::UnknownCte)?;
                let data = match partial {
                    Some(partial) => partial.apply(&decoded).to_vec(),
                    None => decoded.into_owned(),
                };
                FetchItem::Binary {
                    part: part.clone(),
                    origin: partial.map(|p| p.offset),
                    data: Some(data),
                }
            }
            (FetchAttr::BinarySize { part }, Some((raw, s))) => {
                let path: Vec<u32> = part.iter().map(|n| n.get()).collect();
                let size = s
                    .binary_size(raw, &path)
                    .map_err(|_| ItemError::UnknownCte)?;
                FetchItem::BinarySize {
                    part: part.clone(),
                    size,
                }
            }
        };
        items.push(item);
    }
    Ok(items)
}

impl Session<'_> {
    pub(super) async fn fetch(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        attrs: &[FetchAttr],
        changed_since: Option<u64>,
        vanished: bool,
    ) -> Completion {
        let Some(selected) = self.selected.as_ref() else {
            return Completion::bad("No mailbox selected");
        };
        let Some(numbers) = selected.resolve_with(set, uid, self.saved_search.as_deref()) else {
            return Completion::bad("Invalid message number");
        };
        let mailbox = selected.mailbox.id;
        let read_only = selected.read_only;
        let mut targets: Vec<(u32, MessageMeta)> = numbers
            .iter()
            .filter_map(|&seq| selected.get(seq).map(|m| (seq, m.clone())))
            .collect();
        let largest_uid = selected.largest_uid();
        // RFC 7162 §3.1.4.1: CHANGEDSINCE keeps messages with a higher MODSEQ.
        if let Some(since) = changed_since {
            targets.retain(|(_, meta)| meta.modseq.0 > since);
        }
        // RFC 7162 §3.2.6: VANISHED (EARLIER) for expunged UIDs of the set since then.
        if vanished && let Some(since) = changed_since {
            match self
                .service
                .store
                .expunged_since(mailbox, ModSeq(since))
                .await
            {
                Ok(gone) => {
                    let gone: Vec<u32> = gone
                        .into_iter()
                        .map(|u| u.0)
                        .filter(|&u| set.contains(u, largest_uid))
                        .collect();
                    if !gone.is_empty() {
                        self.core.send(&Response::Vanished {
                            earlier: true,
                            uids: SequenceSet::from_numbers(gone),
                        });
                    }
                }
                Err(error) => return store_failure(&error),
            }
        }
        let mut attrs: Vec<FetchAttr> = attrs.to_vec();
        // RFC 9051 §6.4.9: UID FETCH always returns UID.
        if uid && !attrs.contains(&FetchAttr::Uid) {
            attrs.insert(0, FetchAttr::Uid);
        }
        // RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ.
        if changed_since.is_some() && !attrs.contains(&FetchAttr::ModSeq) {
            attrs.push(FetchAttr::ModSeq);
        }
        // RFC 9051 §6.4.5: body fetches without .PEEK set \Seen (not in a read-only
        // mailbox); the new FLAGS are returned with the data.
        let mut seen_now: HashSet<Uid> = HashSet::new();
        if !read_only && attrs.iter().any(FetchAttr::sets_seen) {
            match self.mark_seen(mailbox, &mut targets).await {
                Ok(changed) => seen_now = changed,
                Err(error) => return store_failure(&error),
            }
        }
        let with_flags = {
            let mut with_flags = attrs.clone();
            if !with_flags.contains(&FetchAttr::Flags) {
                with_flags.push(FetchAttr::Flags);
            }
            with_flags
        };
        let wants_raw = attrs.iter().any(needs_raw);
        let wants_structure = attrs.iter().any(needs_structure);
        let dialect = self.dialect();
        let mut missing = false;
        for (seq, meta) in &targets {
            let (raw, structure) = match self
                .load_message(meta.blob, wants_raw, wants_structure)
                .await
            {
                Ok(loaded) => loaded,
                Err(StoreError::NotFound(_)) => {
                    // Expunged by another session since our snapshot.
                    missing = true;
                    continue;
                }
                Err(error) => return store_failure(&error),
            };
            let asked = if seen_now.contains(&meta.uid) {
                &with_flags
            } else {
                &attrs
            };
            let items =
                match build_items(meta, asked, raw.as_deref(), structure.as_deref(), dialect) {
                    Ok(items) => items,
                    Err(ItemError::UnknownCte) => {
                        return Completion::no("Unknown Content-Transfer-Encoding")
                            .with_code(Code::UnknownCte);
                    }
                };
            self.core.send(&Response::Fetch { seq: *seq, items });
            if self.flush_if_large().await.is_err() {
                return Completion::no("Connection failed");
            }
        }
        if missing {
            // RFC 5530 §3: some messages were expunged meanwhile.
            return Completion::no("Some messages were expunged").with_code(Code::ExpungeIssued);
        }
        Completion::ok("FETCH completed")
    }

    /// What one message's FETCH data needs: its bytes, its MIME structure, either or both.
    async fn load_message(
        &mut self,
        blob: sealpost_types::BlobId,
        wants_raw: bool,
        wants_structure: bool,
    ) -> Result<(Option<Vec<u8>>, Option<Arc<MessageStructure>>), StoreError> {
        let raw = if wants_raw {
            Some(self.service.store.read_blob(&blob).await?)
        } else {
            None
        };
        let structure = if wants_structure {
            Some(self.structure(blob, raw.as_deref()).await?)
        } else {
            None
        };
        Ok((raw, structure))
    }

    /// Sets \Seen on the targets that lack it; updates the snapshot and the targets;
    /// returns the UIDs that changed.
    async fn mark_seen(
        &mut self,
        mailbox: sealpost_types::MailboxId,
        targets: &mut [(u32, MessageMeta)],
    ) -> Result<HashSet<Uid>, StoreError> {
        let unseen: Vec<Uid> = targets
            .iter()
            .filter(|(_, m)| !m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen")))
            .map(|(_, m)| m.uid)
            .collect();
        if unseen.is_empty() {
            return Ok(HashSet::new());
        }
        let seen = vec!["\\Seen".to_string()];
        let changed = self
            .service
            .store
            .store_flags(mailbox, &unseen, FlagOp::Add, &seen, None)
            .await?;
        let mut uids = HashSet::new();
        for meta in changed {
            uids.insert(meta.uid);
            if let Some(target) = targets.iter_mut().find(|(_, t)| t.uid == meta.uid) {
                target.1 = meta.clone();
            }
            self.update_snapshot(&meta);
        }
        Ok(uids)
    }

    /// Records a message's new flags and MODSEQ in the snapshot (our own change: the
    /// client learns it from our response, not as an unsolicited update).
    pub(super) fn update_snapshot(&mut self, meta: &MessageMeta) {
        if let Some(selected) = self.selected.as_mut()
            && let Some(seq) = selected.seq_of(meta.uid)
            && let Some(index) = usize::try_from(seq).ok().and_then(|s| s.checked_sub(1))
            && let Some(slot) = selected.messages.get_mut(index)
        {
            *slot = meta.clone();
            selected.mailbox.highest_modseq = selected.mailbox.highest_modseq.max(meta.modseq);
        }
    }
}
