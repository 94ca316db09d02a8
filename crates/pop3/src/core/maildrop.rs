//! The maildrop as the session sees it (RFC 1939 §5): the messages present at login,
//! numbered from 1, with the deletion marks of DELE. Numbers never change during a session:
//! a deleted message keeps its number and only stops being listed.

use super::response;

/// One message of the maildrop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaildropEntry {
    /// The octets RETR sends for it (CRLF line ends, byte-stuffed, no terminating line).
    pub size: u64,
    unique_id: String,
}

impl MaildropEntry {
    /// `None` unless `unique_id` is 1 to 70 characters in 0x21..=0x7E (RFC 1939 §7).
    pub fn new(size: u64, unique_id: String) -> Option<MaildropEntry> {
        let valid = (1..=70).contains(&unique_id.len())
            && unique_id.bytes().all(|b| (0x21..=0x7e).contains(&b));
        valid.then_some(MaildropEntry { size, unique_id })
    }

    pub fn unique_id(&self) -> &str {
        &self.unique_id
    }
}

/// The messages of the session and which are marked deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maildrop {
    entries: Vec<MaildropEntry>,
    deleted: Vec<bool>,
}

/// Why a message number does not name a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    NoSuchMessage,
    Deleted,
}

impl Maildrop {
    pub fn new(entries: Vec<MaildropEntry>) -> Maildrop {
        let deleted = vec![false; entries.len()];
        Maildrop { entries, deleted }
    }

    /// Messages at login, deleted or not.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number and total size of the messages not marked deleted (STAT, RFC 1939 §5).
    pub fn stat(&self) -> (usize, u64) {
        self.live().fold((0, 0u64), |(n, size), (_, e)| {
            (n + 1, size.saturating_add(e.size))
        })
    }

    /// The 0-based indexes marked deleted, ascending.
    pub fn deleted(&self) -> Vec<usize> {
        (0..self.deleted.len())
            .filter(|&i| self.deleted.get(i) == Some(&true))
            .collect()
    }

    /// The 0-based index of message number `number` if it exists and is not deleted.
    pub(crate) fn lookup(&self, number: u64) -> Result<usize, Lookup> {
        let index = usize::try_from(number)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .filter(|&i| i < self.entries.len())
            .ok_or(Lookup::NoSuchMessage)?;
        if self.deleted.get(index) == Some(&true) {
            // RFC 1939 §5: a message marked as deleted may not be referred to.
            return Err(Lookup::Deleted);
        }
        Ok(index)
    }

    pub(crate) fn entry(&self, index: usize) -> Option<&MaildropEntry> {
        self.entries.get(index)
    }

    pub(crate) fn mark_deleted(&mut self, index: usize) {
        if let Some(mark) = self.deleted.get_mut(index) {
            *mark = true;
        }
    }

    /// RFC 1939 §5 RSET: every deletion mark is removed.
    pub(crate) fn unmark_all(&mut self) {
        self.deleted.iter_mut().for_each(|mark| *mark = false);
    }

    fn live(&self) -> impl Iterator<Item = (usize, &MaildropEntry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(i, _)| self.deleted.get(*i) != Some(&true))
    }

    /// RFC 1939 §5 LIST without argument: a scan listing of every message not deleted.
    pub(crate) fn write_list(&self, out: &mut Vec<u8>) {
        let (count, size) = self.stat();
        response::ok(out, &format!("{count} messages ({size} octets)"));
        for (index, entry) in self.live() {
            response::line(out, &format!("{} {}", index + 1, entry.size));
        }
        response::end(out);
    }

    /// RFC 1939 §7 UIDL without argument: the unique-id of every message not deleted.
    pub(crate) fn write_uidl(&self, out: &mut Vec<u8>) {
        response::ok(out, "");
        for (index, entry) in self.live() {
            response::line(out, &format!("{} {}", index + 1, entry.unique_id));
        }
        response::end(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop3() -> Maildrop {
        Maildrop::new(
            (1..=3u64)
                .map(|i| MaildropEntry::new(i * 100, format!("7.{i}")).unwrap())
                .collect(),
        )
    }

    #[test]
    fn unique_id_syntax() {
        assert!(MaildropEntry::new(1, String::new()).is_none());
        assert!(MaildropEntry::new(1, "a b".into()).is_none());
        assert!(MaildropEntry::new(1, "x".repeat(71)).is_none());
        assert!(MaildropEntry::new(1, "x".repeat(70)).is_some());
    }

    #[test]
    fn numbers_marks_and_listings() {
        let mut drop = drop3();
        assert_eq!(drop.stat(), (3, 600));
        assert_eq!(drop.lookup(0), Err(Lookup::NoSuchMessage));
        assert_eq!(drop.lookup(4), Err(Lookup::NoSuchMessage));
        assert_eq!(drop.lookup(u64::MAX), Err(Lookup::NoSuchMessage));
        assert_eq!(drop.lookup(2), Ok(1));
        drop.mark_deleted(1);
        assert_eq!(drop.lookup(2), Err(Lookup::Deleted));
        assert_eq!(drop.stat(), (2, 400));
        assert_eq!(drop.deleted(), [1]);
        let mut out = Vec::new();
        drop.write_list(&mut out);
        drop.write_uidl(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "+OK 2 messages (400 octets)\r\n1 100\r\n3 300\r\n.\r\n\
             +OK\r\n1 7.1\r\n3 7.3\r\n.\r\n"
        );
        drop.unmark_all();
        assert_eq!(drop.stat(), (3, 600));
        assert!(drop.deleted().is_empty());
    }
}
