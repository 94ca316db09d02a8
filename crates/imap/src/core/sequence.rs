//! Sequence sets: message sequence numbers and UIDs (RFC 9051 §9), with the SEARCHRES
//! `$` marker (RFC 5182, part of IMAP4rev2).

use std::fmt;
use std::num::NonZeroU32;

use super::parser::{Input, PResult, ParseError, bad};

/// `seq-number = nz-number / "*"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqNum {
    Value(NonZeroU32),
    /// `*`: the largest number in use (RFC 9051 §9).
    Last,
}

impl SeqNum {
    /// The number, with `*` standing for `largest` (0 in an empty mailbox).
    pub fn resolve(self, largest: u32) -> u32 {
        match self {
            SeqNum::Value(value) => value.get(),
            SeqNum::Last => largest,
        }
    }
}

/// `seq-range = seq-number ":" seq-number`; a single number is a range of one. The two
/// ends may come in either order (RFC 9051 §9: "2:4 and 4:2 are equivalent").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    pub start: SeqNum,
    pub end: SeqNum,
}

impl SeqRange {
    /// The range as `(low, high)` with `*` resolved.
    pub fn resolve(self, largest: u32) -> (u32, u32) {
        let a = self.start.resolve(largest);
        let b = self.end.resolve(largest);
        (a.min(b), a.max(b))
    }
}

/// A sequence set as sent: its ranges in order, plus `$` (the saved search result,
/// RFC 5182 §2.1) when it appeared. Nothing here is proportional to the numbers named:
/// `1:4294967295` is one range (SECURITY-TESTS IM-06).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SequenceSet {
    pub ranges: Vec<SeqRange>,
    /// `$` was part of the set: the service adds the saved result.
    pub saved: bool,
}

impl SequenceSet {
    /// A set of one number.
    pub fn single(value: NonZeroU32) -> Self {
        let number = SeqNum::Value(value);
        SequenceSet {
            ranges: vec![SeqRange {
                start: number,
                end: number,
            }],
            saved: false,
        }
    }

    /// The compact form of a list of numbers for responses (`1:3,7,9:10`); zeros are
    /// skipped, the input need not be sorted.
    pub fn from_numbers(numbers: impl IntoIterator<Item = u32>) -> Self {
        let mut sorted: Vec<u32> = numbers.into_iter().filter(|&n| n != 0).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut ranges = Vec::new();
        let mut iter = sorted.into_iter();
        let Some(first) = iter.next() else {
            return SequenceSet::default();
        };
        let (mut low, mut high) = (first, first);
        for n in iter {
            if Some(n) == high.checked_add(1) {
                high = n;
            } else {
                ranges.push(range(low, high));
                (low, high) = (n, n);
            }
        }
        ranges.push(range(low, high));
        SequenceSet {
            ranges,
            saved: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && !self.saved
    }

    /// Uses `*` anywhere.
    pub fn has_last(&self) -> bool {
        self.ranges
            .iter()
            .any(|r| r.start == SeqNum::Last || r.end == SeqNum::Last)
    }

    /// The ranges with `*` resolved, sorted and merged: at most as many as were sent.
    /// `$` is not included (the service holds the saved result).
    pub fn normalized(&self, largest: u32) -> Vec<(u32, u32)> {
        let mut resolved: Vec<(u32, u32)> =
            self.ranges.iter().map(|r| r.resolve(largest)).collect();
        resolved.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(resolved.len());
        for (low, high) in resolved {
            match merged.last_mut() {
                Some(last) if low <= last.1.saturating_add(1) => last.1 = last.1.max(high),
                _ => merged.push((low, high)),
            }
        }
        merged
    }

    /// Whether `n` is in the set (`$` not included).
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.ranges.iter().any(|r| {
            let (low, high) = r.resolve(largest);
            (low..=high).contains(&n)
        })
    }

    /// Every number of the set that is at most `largest`, ascending and without repeats:
    /// use for message sequence numbers, where only `1..=largest` exist. (For UIDs,
    /// iterate the mailbox's UIDs and test [`SequenceSet::contains`] instead.)
    pub fn iter_existing(&self, largest: u32) -> impl Iterator<Item = u32> + use<> {
        self.normalized(largest)
            .into_iter()
            .filter_map(move |(low, high)| {
                let high = high.min(largest);
                (low <= high).then_some(low..=high)
            })
            .flatten()
    }

    /// The largest number named (with `*` as `largest`): a message-number set naming a
    /// number above the mailbox size is invalid (RFC 9051 §6.4).
    pub fn max_value(&self, largest: u32) -> u32 {
        self.ranges
            .iter()
            .map(|r| r.resolve(largest).1)
            .max()
            .unwrap_or(0)
    }
}

fn range(low: u32, high: u32) -> SeqRange {
    let number = |n: u32| SeqNum::Value(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
    SeqRange {
        start: number(low),
        end: number(high),
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqNum::Value(value) => write!(f, "{value}"),
            SeqNum::Last => f.write_str("*"),
        }
    }
}

impl fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for r in &self.ranges {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if r.start == r.end {
                write!(f, "{}", r.start)?;
            } else {
                write!(f, "{}:{}", r.start, r.end)?;
            }
        }
        if self.saved {
            if !first {
                f.write_str(",")?;
            }
            f.write_str("$")?;
        }
        Ok(())
    }
}

/// What a sequence set may contain where it is parsed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SetRules {
    /// `*` allowed (not in QRESYNC known-uids, RFC 7162 §3.2.5).
    pub(crate) star: bool,
    /// `$` allowed (SEARCHRES offered, RFC 5182).
    pub(crate) saved: bool,
}

/// ```text
/// sequence-set     = (seq-number / seq-range) ["," sequence-set]
/// sequence-set     =/ seq-last-command        ; RFC 5182 §4, RFC 9051 §9
/// seq-last-command = "$"
/// seq-range        = seq-number ":" seq-number
/// seq-number       = nz-number / "*"
/// ```
///
/// Iterative, so a long comma list cannot grow the stack; its length is bounded by the
/// line limit.
pub(crate) fn parse_sequence_set(input: &mut Input, rules: SetRules) -> PResult<SequenceSet> {
    let mut set = SequenceSet::default();
    loop {
        if input.eat(b'$') {
            if !rules.saved {
                return bad("\"$\" is not allowed here");
            }
            set.saved = true;
        } else {
            let start = seq_number(input, rules)?;
            let end = if input.eat(b':') {
                seq_number(input, rules)?
            } else {
                start
            };
            set.ranges.push(SeqRange { start, end });
        }
        if !input.eat(b',') {
            return Ok(set);
        }
    }
}

fn seq_number(input: &mut Input, rules: SetRules) -> PResult<SeqNum> {
    if input.eat(b'*') {
        if !rules.star {
            return bad("\"*\" is not allowed here");
        }
        return Ok(SeqNum::Last);
    }
    match input.peek() {
        Some(b'0'..=b'9') => input.nz_number().map(SeqNum::Value),
        _ => Err(ParseError::Bad("invalid sequence set")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::parser::line;

    const ALL: SetRules = SetRules {
        star: true,
        saved: true,
    };

    fn parse(text: &str) -> PResult<SequenceSet> {
        let mut input = line(text.as_bytes());
        let set = parse_sequence_set(&mut input, ALL)?;
        input.end()?;
        Ok(set)
    }

    #[test]
    fn forms() {
        assert_eq!(parse("1:3,5,*").unwrap().to_string(), "1:3,5,*");
        assert_eq!(parse("4:2").unwrap().normalized(10), vec![(2, 4)]);
        assert_eq!(parse("$").unwrap().to_string(), "$");
        assert!(parse("$").unwrap().saved);
        assert_eq!(parse("1:*").unwrap().normalized(0), vec![(0, 1)]);
        assert_eq!(parse("5:*").unwrap().normalized(3), vec![(3, 5)]);
        assert_eq!(
            parse("1,2,3,7:9,8").unwrap().normalized(100),
            vec![(1, 3), (7, 9)]
        );
    }

    #[test]
    fn abuse_is_refused_or_cheap() {
        // SECURITY-TESTS IM-06.
        for bad_set in [
            "0",
            "4294967296",
            "1:*:2",
            "",
            ",",
            "1,",
            "1:",
            ":1",
            "-1",
            "1 2",
        ] {
            assert!(parse(bad_set).is_err(), "{bad_set:?}");
        }
        let huge = parse("1:4294967295").unwrap();
        assert_eq!(huge.ranges.len(), 1);
        assert_eq!(huge.iter_existing(3).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(huge.contains(4_294_967_295, 3));
        assert_eq!(
            parse("4294967295:1").unwrap().normalized(9),
            vec![(1, u32::MAX)]
        );
        let no_star = SetRules {
            star: false,
            saved: false,
        };
        assert!(parse_sequence_set(&mut line(b"1:*"), no_star).is_err());
        assert!(parse_sequence_set(&mut line(b"$"), no_star).is_err());
    }

    #[test]
    fn compression() {
        let set = SequenceSet::from_numbers([9, 1, 2, 3, 7, 10, 0, 2, u32::MAX]);
        assert_eq!(set.to_string(), "1:3,7,9:10,4294967295");
        assert!(SequenceSet::from_numbers([]).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(numbers in proptest::collection::vec(1u32..200, 0..40), star in proptest::bool::ANY) {
            let mut set = SequenceSet::from_numbers(numbers.iter().copied());
            if star {
                set.ranges.push(SeqRange { start: SeqNum::Value(NonZeroU32::MIN), end: SeqNum::Last });
            }
            if set.is_empty() {
                return Ok(());
            }
            let text = set.to_string();
            proptest::prop_assert_eq!(parse(&text).unwrap(), set);
        }

        #[test]
        fn from_numbers_contains_exactly(numbers in proptest::collection::vec(1u32..100, 0..40)) {
            let set = SequenceSet::from_numbers(numbers.iter().copied());
            for n in 1..100 {
                proptest::prop_assert_eq!(set.contains(n, 0), numbers.contains(&n));
            }
        }
    }
}
