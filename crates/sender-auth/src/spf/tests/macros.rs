//! Macro expansion (RFC 7208 §7), including DA-06.

use std::net::Ipv4Addr;

use super::*;
use crate::spf::macros::query_name;

fn v4(text: &str) -> Ipv4Addr {
    text.parse().expect("a test IPv4 address")
}

/// The questions asked when `sender` (from `client`) is checked against `record`, published
/// at the domain of `sender`, and the result.
async fn expansion(record: &str, client: &str, sender: &str) -> (SpfResult, Vec<String>) {
    let domain = sender.rsplit_once('@').map_or(sender, |(_, domain)| domain);
    let zone = MemoryZone::new().txt(domain, record);
    let verdict = check_mail_from(&zone, client, sender).await;
    let mut asked = zone.asked();
    asked.remove(0);
    (verdict.result, asked)
}

#[tokio::test]
async fn a_64_character_label_after_expansion_is_never_asked() {
    // DA-06: %{l} of 64 characters, five times: the expansion is truncated on the left to
    // 253 characters, and what remains still has 64-character labels.
    let record = "v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.%{d} -all";
    let sender = format!("{}@macro.ext.test", "a".repeat(64));
    let (result, asked) = expansion(record, CLIENT, &sender).await;
    assert_eq!(result, SpfResult::Fail);
    assert_eq!(asked, Vec::<String>::new());

    // With 63 characters the truncated name (3 labels of the 5 remain) is asked.
    let local = "b".repeat(63);
    let truncated = format!("{local}.{local}.{local}.macro.ext.test");
    assert_eq!(truncated.len(), 206);
    let zone = MemoryZone::new()
        .txt("macro.ext.test", &record.replace("exists", "+exists"))
        .a(&truncated, v4("127.0.0.2"));
    let verdict = check_mail_from(&zone, CLIENT, &format!("{local}@macro.ext.test")).await;
    assert_eq!(verdict.result, SpfResult::Pass);
    assert_eq!(
        zone.asked(),
        vec!["TXT macro.ext.test".to_string(), format!("A {truncated}")]
    );
}

#[test]
fn expanded_names_are_truncated_on_the_left_by_whole_labels() {
    // RFC 7208 §7.3: at most 253 characters, without the final dot.
    let label = "c".repeat(50);
    let exactly_253 = format!("{label}.{label}.{label}.{label}.{}", "d".repeat(49));
    assert_eq!(exactly_253.len(), 253);
    assert_eq!(
        query_name(&exactly_253).as_deref(),
        Some(exactly_253.as_str())
    );
    assert_eq!(
        query_name(&format!("{exactly_253}.")).as_deref(),
        Some(exactly_253.as_str())
    );
    let longer = format!("x.{exactly_253}");
    assert_eq!(query_name(&longer).as_deref(), Some(exactly_253.as_str()));
    let one_more = format!("e{exactly_253}");
    assert_eq!(
        query_name(&one_more).as_deref(),
        Some(format!("{label}.{label}.{label}.{}", "d".repeat(49)).as_str())
    );
    // Names that cannot be asked: empty labels, a label over 63, no label left.
    for name in ["", ".", "a..b", ".a.b", &"f".repeat(64), &"g".repeat(300)] {
        assert_eq!(query_name(name), None, "{name}");
    }
}

#[tokio::test]
async fn reversed_ip_version_and_parts_of_the_domain() {
    // DA-06: %{ir}.%{v}._spf.%{d2}, for both families.
    let record = "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all";
    let (_, asked) = expansion(record, "192.0.2.3", "u@mail.macro.ext.test").await;
    assert_eq!(asked, questions(&["A 3.2.0.192.in-addr._spf.ext.test"]));
    let (_, asked) = expansion(record, "2001:db8::cb01", "u@mail.macro.ext.test").await;
    assert_eq!(
        asked,
        questions(&[concat!(
            "A 1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2",
            ".ip6._spf.ext.test"
        )])
    );
    // An IPv4-mapped client expands as IPv4.
    let (_, asked) = expansion(record, "::ffff:192.0.2.3", "u@mail.macro.ext.test").await;
    assert_eq!(asked, questions(&["A 3.2.0.192.in-addr._spf.ext.test"]));
}

#[tokio::test]
async fn transformers_and_delimiters() {
    for (record, sender, expected) in [
        // DA-06: %{l200r} asks for more parts than there are: all of them, reversed.
        (
            "exists:%{l200r}.x.ext.test",
            "first.middle.last@t.ext.test",
            "A last.middle.first.x.ext.test",
        ),
        (
            "exists:%{l99999999999999999999r}.x.ext.test",
            "a.b@t.ext.test",
            "A b.a.x.ext.test",
        ),
        (
            "exists:%{l1r-}.x.ext.test",
            "strong-bad@t.ext.test",
            "A strong.x.ext.test",
        ),
        (
            "exists:%{lr-}.x.ext.test",
            "strong-bad@t.ext.test",
            "A bad.strong.x.ext.test",
        ),
        (
            "exists:%{l2r+-}.user.%{d2}",
            "foo-bar+zip+quux@e12.ext.test",
            "A bar.foo.user.ext.test",
        ),
        (
            "exists:%{i}.%{l2r-}.user.%{d2}",
            "philip-gladstone-test@t.ext.test",
            "A 127.0.0.3.gladstone.philip.user.ext.test",
        ),
        (
            "exists:%{d1}.%{d3}.%{dr}.x.ext.test",
            "u@t.ext.test",
            "A test.t.ext.test.test.ext.t.x.ext.test",
        ),
        (
            "exists:%{o}.%{s}.x.ext.test",
            "u@t.ext.test",
            "A t.ext.test.u@t.ext.test.x.ext.test",
        ),
        (
            "exists:%{h}.%{v}.x.ext.test",
            "u@t.ext.test",
            "A client.ext.test.in-addr.x.ext.test",
        ),
        // Uppercase macros are URL-escaped (RFC 7208 §7.3).
        (
            "exists:%{L}.x.ext.test",
            "~jack&jill=up-a_b3.c@t.ext.test",
            "A ~jack%26jill%3dup-a_b3.c.x.ext.test",
        ),
        // %% %_ %- in a domain-spec (pyspf macro-mania-in-domain).
        (
            "a:macro%%percent%_%_space%-url-space.ext.test",
            "u@t.ext.test",
            "A macro%percent  space%20url-space.ext.test",
        ),
        // A final dot is ignored for names.
        (
            "exists:%{d}.x.ext.test.",
            "u@t.ext.test",
            "A t.ext.test.x.ext.test",
        ),
    ] {
        let (_, asked) = expansion(&format!("v=spf1 {record} -all"), CLIENT, sender).await;
        assert_eq!(asked, questions(&[expected]), "{record}");
    }
}

#[tokio::test]
async fn the_p_macro_uses_a_validated_name_and_counts_as_a_dns_term() {
    let zone = |record: &str| {
        MemoryZone::new()
            .txt("t.ext.test", record)
            .ptr(ip(CLIENT), "other.example.net")
            .ptr(ip(CLIENT), "host.t.ext.test")
            .a("other.example.net", v4(CLIENT))
            .a("host.t.ext.test", v4(CLIENT))
            .a("host.t.ext.test.allow.ext.test", v4("127.0.0.2"))
            .a("h.ext.test", v4("192.0.2.1"))
    };
    // RFC 7208 §7.3: a validated name below the domain is preferred.
    let checked = zone("v=spf1 exists:%{p}.allow.ext.test -all");
    assert_eq!(
        check_mail_from(&checked, CLIENT, "u@t.ext.test")
            .await
            .result,
        SpfResult::Pass
    );
    assert_eq!(
        checked.asked(),
        questions(&[
            "TXT t.ext.test",
            "PTR 127.0.0.3",
            "A other.example.net",
            "A host.t.ext.test",
            "A host.t.ext.test.allow.ext.test",
        ])
    );
    // 9 a terms, the exists term and its p macro: 11 DNS-querying terms.
    let record = format!(
        "v=spf1 {} exists:%{{p}}.allow.ext.test -all",
        "a:h.ext.test ".repeat(9)
    );
    let checked = zone(&record);
    let verdict = check_mail_from(&checked, CLIENT, "u@t.ext.test").await;
    assert_eq!(verdict.result, SpfResult::PermError);
    assert!(
        verdict
            .reason
            .starts_with("11th DNS-querying term (%{p} in exists:")
    );
    assert!(!checked.asked().contains(&"PTR 127.0.0.3".to_string()));
    // Without a validated name, p is "unknown"; a PTR failure too.
    let unvalidated = MemoryZone::new()
        .txt("t.ext.test", "v=spf1 exists:%{p}.allow.ext.test -all")
        .ptr(ip(CLIENT), "liar.t.ext.test")
        .a("unknown.allow.ext.test", v4("127.0.0.2"));
    assert_eq!(
        check_mail_from(&unvalidated, CLIENT, "u@t.ext.test")
            .await
            .result,
        SpfResult::Pass
    );
}

#[tokio::test]
async fn the_p_macro_in_an_explanation() {
    let zone = MemoryZone::new()
        .txt("t.ext.test", "v=spf1 -all exp=why.ext.test")
        .txt("why.ext.test", "connect from %{p}")
        .ptr(ip(CLIENT), "mx.example.net")
        .a("mx.example.net", v4(CLIENT));
    let verdict = check_mail_from(&zone, CLIENT, "u@t.ext.test").await;
    assert_eq!(
        verdict.explanation.as_deref(),
        Some("connect from mx.example.net")
    );
}
