//! The mechanisms (RFC 7208 §5), redirect (§6.1), exp (§6.2) and DNS failures (§2.6.6).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;

fn v4(text: &str) -> Ipv4Addr {
    text.parse().expect("a test IPv4 address")
}

fn v6(text: &str) -> Ipv6Addr {
    text.parse().expect("a test IPv6 address")
}

#[tokio::test]
async fn include_maps_the_included_result() {
    let zone = || {
        MemoryZone::new()
            .txt("pass.ext.test", "v=spf1 +all")
            .txt("fail.ext.test", "v=spf1 -all")
            .txt("softfail.ext.test", "v=spf1 ~all")
            .txt("neutral.ext.test", "v=spf1 ?all")
            .txt("permerror.ext.test", "v=spf1 foo")
            .txt("notspf.ext.test", "v=spfl am not an SPF record")
            .failing("temperror.ext.test")
    };
    for (target, expected) in [
        // RFC 7208 §5.2: pass matches (and the include's own qualifier decides).
        ("pass", SpfResult::SoftFail),
        ("fail", SpfResult::Fail),
        ("softfail", SpfResult::Fail),
        ("neutral", SpfResult::Fail),
        ("temperror", SpfResult::TempError),
        ("permerror", SpfResult::PermError),
        ("none", SpfResult::PermError),
        ("notspf", SpfResult::PermError),
    ] {
        let record = format!("v=spf1 ~include:{target}.ext.test -all");
        assert_eq!(
            result_of_record(zone(), &record).await,
            expected,
            "{record}"
        );
    }
    let zone = zone().txt("t.ext.test", "v=spf1 include:none.ext.test -all");
    let verdict = check_mail_from(&zone, CLIENT, "u@t.ext.test").await;
    assert_eq!(
        verdict.reason,
        "include:none.ext.test: no SPF record at none.ext.test"
    );
}

#[tokio::test]
async fn include_uses_the_target_as_the_current_domain() {
    let zone = MemoryZone::new()
        .txt("t.ext.test", "v=spf1 include:_spf.ext.test -all")
        .txt("_spf.ext.test", "v=spf1 a mx:%{d} -all")
        .mx("_spf.ext.test", "mx.ext.test")
        .a("mx.ext.test", v4(CLIENT));
    let verdict = check_mail_from(&zone, CLIENT, "u@t.ext.test").await;
    assert_eq!(verdict.result, SpfResult::Pass);
    assert_eq!(verdict.reason, "matched include:_spf.ext.test");
    assert_eq!(
        zone.asked(),
        questions(&[
            "TXT t.ext.test",
            "TXT _spf.ext.test",
            "A _spf.ext.test",
            "MX _spf.ext.test",
            "A mx.ext.test",
        ])
    );
}

#[tokio::test]
async fn a_and_mx_ask_only_the_client_family() {
    let zone = || {
        MemoryZone::new()
            .txt("t.ext.test", "v=spf1 a mx -all")
            .a("t.ext.test", v4("192.0.2.10"))
            .aaaa("t.ext.test", v6("2001:db8::10"))
            .mx("t.ext.test", "mx.ext.test")
            .a("mx.ext.test", v4("192.0.2.20"))
            .aaaa("mx.ext.test", v6("2001:db8::20"))
    };
    for (client, expected, asked) in [
        (
            "192.0.2.10",
            SpfResult::Pass,
            &["TXT t.ext.test", "A t.ext.test"][..],
        ),
        (
            "192.0.2.20",
            SpfResult::Pass,
            &[
                "TXT t.ext.test",
                "A t.ext.test",
                "MX t.ext.test",
                "A mx.ext.test",
            ][..],
        ),
        (
            "2001:db8::10",
            SpfResult::Pass,
            &["TXT t.ext.test", "AAAA t.ext.test"][..],
        ),
        (
            "2001:db8::20",
            SpfResult::Pass,
            &[
                "TXT t.ext.test",
                "AAAA t.ext.test",
                "MX t.ext.test",
                "AAAA mx.ext.test",
            ][..],
        ),
        // RFC 7208 §5: an IPv4-mapped IPv6 client is an IPv4 client.
        (
            "::ffff:192.0.2.20",
            SpfResult::Pass,
            &[
                "TXT t.ext.test",
                "A t.ext.test",
                "MX t.ext.test",
                "A mx.ext.test",
            ][..],
        ),
        (
            "192.0.2.30",
            SpfResult::Fail,
            &[
                "TXT t.ext.test",
                "A t.ext.test",
                "MX t.ext.test",
                "A mx.ext.test",
            ][..],
        ),
    ] {
        let zone = zone();
        let verdict = check_mail_from(&zone, client, "u@t.ext.test").await;
        assert_eq!(verdict.result, expected, "{client}");
        assert_eq!(zone.asked(), questions(asked), "{client}");
    }
}

#[tokio::test]
async fn cidr_lengths_of_a_and_mx_apply_per_family() {
    let zone = || {
        MemoryZone::new()
            .a("h.ext.test", v4("192.0.2.5"))
            .aaaa("h.ext.test", v6("2001:db8:1234::beef"))
            .mx("m.ext.test", "h.ext.test")
    };
    for (record, client, expected) in [
        (
            "v=spf1 a:h.ext.test/24 -all",
            "192.0.2.200",
            SpfResult::Pass,
        ),
        (
            "v=spf1 a:h.ext.test/24 -all",
            "2001:db8:1234::1",
            SpfResult::Fail,
        ),
        (
            "v=spf1 a:h.ext.test//64 -all",
            "2001:db8:1234::1",
            SpfResult::Pass,
        ),
        (
            "v=spf1 a:h.ext.test//64 -all",
            "192.0.2.200",
            SpfResult::Fail,
        ),
        (
            "v=spf1 a:h.ext.test/24//64 -all",
            "2001:db8:1234::1",
            SpfResult::Pass,
        ),
        (
            "v=spf1 mx:m.ext.test/24//64 -all",
            "192.0.2.200",
            SpfResult::Pass,
        ),
        ("v=spf1 mx:m.ext.test/0 -all", "10.0.0.1", SpfResult::Pass),
        // An IPv4 client never matches an AAAA record, even with //0.
        (
            "v=spf1 a:h.ext.test//0 -all",
            "::ffff:10.0.0.1",
            SpfResult::Fail,
        ),
        (
            "v=spf1 a:h.ext.test//0 -all",
            "2001:db9::1",
            SpfResult::Pass,
        ),
        // An ip6 network never matches an IPv4 (or IPv4-mapped) client.
        (
            "v=spf1 ip6:::ffff:192.0.2.5 -all",
            "::ffff:192.0.2.5",
            SpfResult::Fail,
        ),
        (
            "v=spf1 ip4:192.0.2.5 -all",
            "::ffff:192.0.2.5",
            SpfResult::Pass,
        ),
    ] {
        let zone = zone().txt("t.ext.test", record);
        let result = check_mail_from(&zone, client, "u@t.ext.test").await.result;
        assert_eq!(result, expected, "{record} from {client}");
    }
}

#[tokio::test]
async fn mx_without_records_matches_nothing_and_does_not_fall_back_to_a() {
    // RFC 7208 §5.4: no implicit MX; a null MX gives no exchanges either.
    let zone = MemoryZone::new()
        .txt("t.ext.test", "v=spf1 mx")
        .a("t.ext.test", v4(CLIENT));
    let verdict = check_mail_from(&zone, CLIENT, "u@t.ext.test").await;
    assert_eq!(verdict.result, SpfResult::Neutral);
    assert_eq!(
        zone.asked(),
        questions(&["TXT t.ext.test", "MX t.ext.test"])
    );
}

#[tokio::test]
async fn exists_asks_for_a_records_whatever_the_client_family() {
    let zone = || {
        MemoryZone::new()
            .txt("t.ext.test", "v=spf1 exists:%{d}.ok.ext.test -all")
            .a("t.ext.test.ok.ext.test", v4("127.0.0.2"))
    };
    for client in [CLIENT, "2001:db8::1"] {
        let zone = zone();
        assert_eq!(
            check_mail_from(&zone, client, "u@t.ext.test").await.result,
            SpfResult::Pass
        );
        assert_eq!(
            zone.asked(),
            questions(&["TXT t.ext.test", "A t.ext.test.ok.ext.test"])
        );
    }
}

#[tokio::test]
async fn ptr_matches_validated_names_in_the_target_domain() {
    let zone = || {
        MemoryZone::new()
            .ptr(ip(CLIENT), "other.example.net")
            .ptr(ip(CLIENT), "fake.t.ext.test")
            .ptr(ip(CLIENT), "MAIL.T.ext.test.")
            .a("other.example.net", v4(CLIENT))
            .a("fake.t.ext.test", v4("192.0.2.99"))
            .a("mail.t.ext.test", v4(CLIENT))
    };
    let checked = zone().txt("t.ext.test", "v=spf1 ptr -all");
    assert_eq!(
        check_mail_from(&checked, CLIENT, "u@t.ext.test")
            .await
            .result,
        SpfResult::Pass
    );
    // Names outside the target are not validated at all; a name that does not validate does
    // not match.
    assert_eq!(
        checked.asked(),
        questions(&[
            "TXT t.ext.test",
            "PTR 127.0.0.3",
            "A fake.t.ext.test",
            "A mail.t.ext.test",
        ])
    );
    for (record, expected) in [
        ("v=spf1 ptr:ext.test -all", SpfResult::Pass),
        ("v=spf1 ptr:EXT.Test -all", SpfResult::Pass),
        ("v=spf1 ptr:example.net -all", SpfResult::Pass),
        ("v=spf1 ptr:xt.test -all", SpfResult::Fail),
        ("v=spf1 ptr:fake.t.ext.test -all", SpfResult::Fail),
    ] {
        assert_eq!(result_of_record(zone(), record).await, expected, "{record}");
    }
    // RFC 7208 §5.5: a DNS error on the PTR lookup is no match, not a temperror.
    let failing = MemoryZone::new()
        .txt("t.ext.test", "v=spf1 ptr ~all")
        .failing(CLIENT);
    assert_eq!(
        check_mail_from(&failing, CLIENT, "u@t.ext.test")
            .await
            .result,
        SpfResult::SoftFail
    );
}

#[tokio::test]
async fn dns_failures_inside_mechanisms_are_temperror() {
    let zone = || {
        MemoryZone::new()
            .failing("down.ext.test")
            .mx("mx.ext.test", "down.ext.test")
    };
    for record in [
        "v=spf1 a:down.ext.test +all",
        "v=spf1 mx:down.ext.test +all",
        "v=spf1 mx:mx.ext.test +all",
        "v=spf1 exists:down.ext.test +all",
        "v=spf1 include:down.ext.test +all",
        "v=spf1 redirect=down.ext.test",
    ] {
        assert_eq!(
            result_of_record(zone(), record).await,
            SpfResult::TempError,
            "{record}"
        );
    }
}

#[tokio::test]
async fn redirect_is_followed_only_when_nothing_matched() {
    let redirect_zone = || {
        MemoryZone::new()
            .txt("r.ext.test", "v=spf1 a -all")
            .a("r.ext.test", v4("192.0.2.1"))
            .txt("loose.ext.test", "v=spf1 ?all")
    };
    // RFC 7208 §6.1: a match before it (or "all" anywhere) means redirect is not used.
    for record in [
        "v=spf1 ip4:127.0.0.3 redirect=r.ext.test",
        "v=spf1 redirect=r.ext.test +all",
    ] {
        let zone = redirect_zone().txt("t.ext.test", record);
        let verdict = check_mail_from(&zone, CLIENT, "u@t.ext.test").await;
        assert_eq!(verdict.result, SpfResult::Pass, "{record}");
        assert_eq!(zone.asked(), questions(&["TXT t.ext.test"]), "{record}");
    }
    // The target's result is the result, and the target is the current domain (its "a").
    let zone = redirect_zone().txt("t.ext.test", "v=spf1 ip4:10.0.0.1 redirect=r.ext.test");
    let verdict = check_mail_from(&zone, "192.0.2.1", "u@t.ext.test").await;
    assert_eq!(verdict.result, SpfResult::Pass);
    assert_eq!(verdict.reason, "redirect=r.ext.test: matched a");
    let zone = redirect_zone().txt("t.ext.test", "v=spf1 redirect=loose.ext.test");
    assert_eq!(
        check_mail_from(&zone, CLIENT, "u@t.ext.test").await.result,
        SpfResult::Neutral
    );
    // RFC 7208 §6.1: a target without a record, or not a domain, is a permerror.
    for target in ["nothing.ext.test", "%{l}%{l}%{l}.%{d}"] {
        let zone = redirect_zone().txt("t.ext.test", &format!("v=spf1 redirect={target}"));
        let address = format!("{}@t.ext.test", "x".repeat(30));
        let verdict = check_mail_from(&zone, CLIENT, &address).await;
        assert_eq!(verdict.result, SpfResult::PermError, "{target}");
    }
}

#[tokio::test]
async fn exp_explains_a_fail_with_its_macros() {
    let zone = MemoryZone::new()
        .txt("t.ext.test", "v=spf1 -all exp=why.%{d}")
        .txt(
            "why.t.ext.test",
            "%{i} may not send for %{d} (%{l}, %{c}, %{r}, %{v}) %%%_%-",
        );
    let verdict = check_mail_from(&zone, CLIENT, "user@t.ext.test").await;
    assert_eq!(verdict.result, SpfResult::Fail);
    assert_eq!(
        verdict.explanation.as_deref(),
        Some(
            "127.0.0.3 may not send for t.ext.test (user, 127.0.0.3, mx.local.test, in-addr) % %20"
        )
    );
    assert_eq!(
        zone.asked(),
        questions(&["TXT t.ext.test", "TXT why.t.ext.test"])
    );
}

#[tokio::test]
async fn exp_is_only_for_fail_and_any_problem_with_it_is_ignored() {
    let zone = || {
        MemoryZone::new()
            .txt("one.ext.test", "Not allowed.")
            .txt("two.ext.test", "one")
            .txt("two.ext.test", "two")
            .txt("bad.ext.test", "The %{x}-files.")
            .txt("crlf.ext.test", "bad\r\nX-Injected: yes")
            .txt("utf8.ext.test", "\u{feff}Explanation")
            .failing("down.ext.test")
    };
    for (record, expected, explanation) in [
        ("v=spf1 ~all exp=one.ext.test", SpfResult::SoftFail, None),
        ("v=spf1 ?all exp=one.ext.test", SpfResult::Neutral, None),
        (
            "v=spf1 -all exp=one.ext.test",
            SpfResult::Fail,
            Some("Not allowed."),
        ),
        // RFC 7208 §6.2: several records, none, DNS failure, a syntax error: no explanation.
        ("v=spf1 -all exp=two.ext.test", SpfResult::Fail, None),
        ("v=spf1 -all exp=none.ext.test", SpfResult::Fail, None),
        ("v=spf1 -all exp=down.ext.test", SpfResult::Fail, None),
        ("v=spf1 -all exp=bad.ext.test", SpfResult::Fail, None),
        ("v=spf1 -all exp=crlf.ext.test", SpfResult::Fail, None),
        ("v=spf1 -all exp=utf8.ext.test", SpfResult::Fail, None),
    ] {
        let zone = zone().txt("t.ext.test", record);
        let verdict = check_mail_from(&zone, CLIENT, "u@t.ext.test").await;
        assert_eq!(verdict.result, expected, "{record}");
        assert_eq!(verdict.explanation.as_deref(), explanation, "{record}");
    }
}

#[tokio::test]
async fn exp_comes_from_the_deciding_record_and_is_bounded() {
    let zone = || {
        MemoryZone::new()
            .txt("exp1.ext.test", "No-see-um")
            .txt("exp2.ext.test", "See me.")
            .txt("inner.ext.test", "v=spf1 -all exp=exp1.ext.test")
            .txt("r.ext.test", "v=spf1 -all exp=exp2.ext.test")
            .txt("long.ext.test", &"%{s}".repeat(100))
    };
    for (record, explanation) in [
        // RFC 7208 §6.2: an include's exp is never used (nor even looked up); a redirect
        // target's replaces ours.
        (
            "v=spf1 include:inner.ext.test -all exp=exp2.ext.test",
            Some("See me."),
        ),
        (
            "v=spf1 exp=exp1.ext.test redirect=r.ext.test",
            Some("See me."),
        ),
    ] {
        let zone = zone().txt("t.ext.test", record);
        let verdict = check_mail_from(&zone, CLIENT, "u@t.ext.test").await;
        assert_eq!(verdict.result, SpfResult::Fail, "{record}");
        assert_eq!(verdict.explanation.as_deref(), explanation, "{record}");
        assert!(!zone.asked().contains(&"TXT exp1.ext.test".to_string()));
    }
    let zone = zone().txt("t.ext.test", "v=spf1 -all exp=long.ext.test");
    let sender = format!("{}\u{e9}@t.ext.test", "a".repeat(60));
    let verdict = check_mail_from(&zone, CLIENT, &sender).await;
    let explanation = verdict.explanation.expect("an explanation");
    assert_eq!(explanation.chars().count(), 256);
    assert!(
        explanation
            .bytes()
            .all(|byte| (b' '..=b'~').contains(&byte))
    );
    assert!(explanation.starts_with(&format!("{}?@t.ext.test", "a".repeat(60))));
}
