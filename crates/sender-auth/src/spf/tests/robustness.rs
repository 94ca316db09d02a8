//! No input panics, and no record makes more DNS questions than RFC 7208 §4.6.4 allows.

use std::net::Ipv4Addr;

use super::*;
use crate::spf::check_host;

/// Pieces that records and senders are made of, chosen to hit the parser's edges.
const PIECES: &[&str] = &[
    "v=spf1",
    " ",
    " ",
    " ",
    "a",
    "mx",
    "ptr",
    "ip4:",
    "ip6:",
    "include:",
    "exists:",
    "redirect=",
    "exp=",
    "all",
    "-",
    "+",
    "~",
    "?",
    "/",
    "//",
    ":",
    "=",
    "%{",
    "}",
    "%",
    "%%",
    "%_",
    "%-",
    "l",
    "d",
    "i",
    "p",
    "h",
    "r",
    "s",
    "o",
    "v",
    "c",
    "t",
    "0",
    "1",
    "9",
    "33",
    "129",
    ".",
    "..",
    "t.ext.test",
    "x.ext.test",
    "%{l}",
    "%{d2r}",
    "%{p}",
    "%{ir}",
    "%{L200r-}",
    "%{o1}",
    "\u{e9}",
    "\t",
    "\0",
    "999",
    "::",
    "ffff",
    "1.2.3.4",
    "@",
    "\"",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// A small deterministic generator (xorshift64), so that failures can be replayed.
struct Pieces(u64);

impl Pieces {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn text(&mut self, count: u64) -> String {
        let length = self.next() % count;
        (0..length)
            .map(|_| {
                let index = usize::try_from(self.next()).unwrap_or_default() % PIECES.len();
                PIECES[index]
            })
            .collect()
    }
}

fn zone_for(pieces: &mut Pieces) -> MemoryZone {
    let client: Ipv4Addr = CLIENT.parse().expect("address");
    MemoryZone::new()
        .txt("t.ext.test", &format!("v=spf1 {}", pieces.text(24)))
        .txt("x.ext.test", &format!("v=spf1 {}", pieces.text(24)))
        .txt("t.ext.test.x.ext.test", &pieces.text(12))
        .a("t.ext.test", client)
        .a("x.ext.test", "192.0.2.1".parse().expect("address"))
        .mx("t.ext.test", "x.ext.test")
        .mx("x.ext.test", "t.ext.test")
        .ptr(client.into(), "t.ext.test")
        .ptr(client.into(), &pieces.text(6))
}

#[tokio::test]
async fn random_records_and_senders_never_panic_nor_ask_too_much() {
    let mut pieces = Pieces(0x5eed_5bf0_0000_0001);
    for round in 0..3000 {
        let zone = zone_for(&mut pieces);
        let local = pieces.text(6);
        let sender = format!("{local}@t.ext.test");
        let helo = pieces.text(4);
        let client = if round % 3 == 0 {
            "2001:db8::3"
        } else {
            CLIENT
        };
        let verdict = verify(
            &zone,
            &SpfLimits::default(),
            ip(client),
            &helo,
            Some(&sender),
            RECEIVER,
        )
        .await;
        // The first TXT lookup, 10 terms of at most 11 questions (mx), the p macro (11) and
        // the explanation (1).
        assert!(
            zone.asked_count() <= 123,
            "round {round}: {} questions for {:?}",
            zone.asked_count(),
            zone.asked()
        );
        if let Some(explanation) = &verdict.explanation {
            assert!(explanation.len() <= 256);
        }
    }
}

#[tokio::test]
async fn odd_identities_never_panic() {
    let zone = MemoryZone::new().txt("t.ext.test", "v=spf1 exists:%{l}.%{o}.%{h}.%{d} -all");
    for (domain, sender, helo) in [
        ("", "", ""),
        (".", "@", "."),
        ("..", "@@", "%%%"),
        ("t.ext.test", "no-at-sign", "\u{0}"),
        ("t.ext.test", "\"a@b\"@t.ext.test", "[192.0.2.1]"),
        ("t.ext.test", "...@t.ext.test", "..."),
        ("t.ext.test", "\u{1F600}@t.ext.test", "\u{1F600}.test"),
        ("T.EXT.TEST.", "u@T.EXT.TEST.", "CLIENT.EXT.TEST"),
    ] {
        let outcome = check_host(
            &zone,
            &SpfLimits::default(),
            ip(CLIENT),
            domain,
            sender,
            helo,
            RECEIVER,
        )
        .await;
        assert!(
            matches!(outcome.result, SpfResult::Fail | SpfResult::None),
            "{domain:?} {sender:?}: {outcome:?}"
        );
    }
}
