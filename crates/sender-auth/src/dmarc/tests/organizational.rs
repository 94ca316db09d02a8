//! Organizational domains (RFC 7489 §3.2) and alignment (§3.1).

use crate::dmarc::*;

#[test]
fn organizational_domains() {
    for (domain, organizational) in [
        ("example.com", "example.com"),
        ("a.b.example.com", "example.com"),
        ("example.co.uk", "example.co.uk"),
        ("a.b.example.co.uk", "example.co.uk"),
        ("Mail.Example.COM.", "example.com"),
        // Itself a public suffix.
        ("com", "com"),
        ("co.uk", "co.uk"),
        // A TLD the list does not know: its implicit "*" rule.
        ("unknowntld", "unknowntld"),
        ("example.unknowntld", "example.unknowntld"),
        ("a.b.example.unknowntld", "example.unknowntld"),
        ("a.b.c.d.e.f.g.h.i.j.k.l.m.ext.test", "ext.test"),
        // A-labels.
        ("www.xn--85x722f.xn--55qx5d.cn", "xn--85x722f.xn--55qx5d.cn"),
        // The private section of the list.
        ("alice.github.io", "alice.github.io"),
        // Degenerate input: no panic.
        ("", ""),
        (".", ""),
        ("..", ""),
    ] {
        assert_eq!(organizational_domain(domain), organizational, "{domain:?}");
    }
    for odd in [".com", "a..com", "...", "a.", "é.é", "-.-"] {
        let _ = organizational_domain(odd);
    }
}

#[test]
fn alignment_table() {
    use Alignment::{Relaxed, Strict};
    // (identifier, From domain, relaxed, strict)
    for (identifier, from, relaxed, strict) in [
        ("example.com", "example.com", true, true),
        ("mail.example.com", "example.com", true, false),
        ("example.com", "mail.example.com", true, false),
        ("a.example.com", "b.example.com", true, false),
        ("EXAMPLE.com.", "example.COM", true, true),
        ("example.net", "example.com", false, false),
        ("example.com", "example.com.evil.net", false, false),
        ("evilexample.com", "example.com", false, false),
        ("example.co.uk", "other.co.uk", false, false),
        ("a.example.co.uk", "example.co.uk", true, false),
        ("co.uk", "example.co.uk", false, false),
        ("com", "example.com", false, false),
        ("alice.github.io", "bob.github.io", false, false),
        ("", "example.com", false, false),
        ("example.com", "", false, false),
        ("", "", false, false),
    ] {
        assert_eq!(
            aligned(identifier, from, Relaxed),
            relaxed,
            "{identifier} ~ {from}"
        );
        assert_eq!(
            aligned(identifier, from, Strict),
            strict,
            "{identifier} == {from}"
        );
    }
}
