//! RFC 7208 §4.6, §5, §6, §7.1, §12: what is a syntax error (permerror before anything is
//! evaluated) and what is not. Many cases come from mail-auth's parser accepting them.

use super::*;

#[tokio::test]
async fn syntax_errors_anywhere_are_permerror_without_further_queries() {
    for record in [
        // ip4 and ip6 networks and CIDR lengths (RFC 7208 §5.6).
        "v=spf1 ip4:999.1.1.1 -all",
        "v=spf1 ip4:1.2.3 -all",
        "v=spf1 ip4:01.2.3.4 -all",
        "v=spf1 ip4:1.2.3.4:8080",
        "v=spf1 ip4:1.2.3.4/33",
        "v=spf1 ip4:1.2.3.4/",
        "v=spf1 ip4:1.2.3.4/032",
        "v=spf1 ip4:1.2.3.4//32",
        "v=spf1 ip4",
        "v=spf1 ip4:",
        "v=spf1 -all ip6",
        "v=spf1 ip6:::1.1.1.1/129",
        "v=spf1 ip6:::1.1.1.1//33",
        "v=spf1 ip6::CAFE::BABE",
        "v=spf1 ip6:2001:db8::/",
        // Dual CIDR lengths of a and mx (RFC 7208 §5.3, §5.4).
        "v=spf1 a/33 -all",
        "v=spf1 a//129 -all",
        "v=spf1 a/24/64 -all",
        "v=spf1 mx/33 -all",
        "v=spf1 mx//129 -all",
        "v=spf1 a/ -all",
        "v=spf1 a:ext.test/ -all",
        // Mechanisms and their arguments (RFC 7208 §5).
        "v=spf1 foo:bar -all",
        "v=spf1 foo -all",
        "v=spf1 -all ip:10.0.0.1",
        "v=spf1 -all.",
        "v=spf1 -all:foobar",
        "v=spf1 -all/8",
        "v=spf1 ptr/0 -all",
        "v=spf1 ptr:",
        "v=spf1 a:",
        "v=spf1 mx: -all",
        "v=spf1 include",
        "v=spf1 include: -all",
        "v=spf1 include:ip5.ext.test/24 -all",
        "v=spf1 exists",
        "v=spf1 exists:",
        "v=spf1 exists:mail.ext.test/24",
        "v=spf1 ++all",
        "v=spf1 +",
        // Domain-specs must end in a macro or a valid top label (RFC 7208 §7.1).
        "v=spf1 a:foo-bar -all",
        "v=spf1 a:museum",
        "v=spf1 a:museum.",
        "v=spf1 a:abc.123",
        "v=spf1 a:111.222.33.44",
        "v=spf1 a:example.-com",
        "v=spf1 mx:example.com:8080",
        // Modifiers (RFC 7208 §6, §12).
        "v=spf1 ip4:1.2.3.4 redirect:t2.ext.test",
        "v=spf1 +redirect=t2.ext.test",
        "v=spf1 redirect=",
        "v=spf1 ?all redirect=",
        "v=spf1 exp= -all",
        "v=spf1 exp=-all",
        "v=spf1 redirect=-all ?all",
        "v=spf1 redirect=a.ext.test -all redirect=a.ext.test",
        "v=spf1 exp=a.ext.test -all exp=b.ext.test",
        "v=spf1 1up=foo",
        "v=spf1 =all",
        "v=spf1 -all foo=%abc",
        "v=spf1 moo.cow/far_out=man:dog/cat ip4:1.2.3.4 -all",
        "v=spf1 moo.cow:far_out=man:dog/cat ip4:1.2.3.4 -all",
        "v=spf1 ip4:1.2.3.4 -all moo",
        // Macros (RFC 7208 §7.1, §7.2, §7.3).
        "v=spf1 exists:%{d0}.x.ext.test -all",
        "v=spf1 exists:%{l00}.x.ext.test -all",
        "v=spf1 exists:%{d",
        "v=spf1 exists:%{d -all",
        "v=spf1 exists:%{rd}.x.ext.test",
        "v=spf1 exists:%{d1r2}.x.ext.test",
        "v=spf1 exists:%{d*}.x.ext.test",
        "v=spf1 exists:%{}.x.ext.test",
        "v=spf1 -all exp=%{r}.ext.test",
        "v=spf1 exists:%{c}.x.ext.test",
        "v=spf1 exists:%{t}.x.ext.test",
        "v=spf1 a:%{a}.ext.test -all",
        "v=spf1 -exists:%(ir).sbl.ext.test ?all",
        "v=spf1 exists:foo%(ir).sbl.ext.test ?all",
        "v=spf1 exists:foo%.sbl.ext.test ?all",
        "v=spf1 exists:foo.sbl.ext.test%",
        // Separators and characters (RFC 7208 §3.1, §4.6.1).
        "v=spf1 a:ctrl.ext.test\rptr -all",
        "v=spf1 -all\t",
        "v=spf1 \u{80}a:ext.test -all",
        "v=spf1 a:\u{feff}garbage.ext.test -all",
        "v=spf1 a:ext.test \u{96}all",
        "v=spf1 a:foo.ext.test\0",
    ] {
        let zone = MemoryZone::new().txt("t.ext.test", record);
        let verdict = check_mail_from(&zone, CLIENT, "u@t.ext.test").await;
        assert_eq!(verdict.result, SpfResult::PermError, "{record:?}");
        assert!(
            verdict
                .reason
                .starts_with("invalid SPF record at t.ext.test: "),
            "{record:?}: {}",
            verdict.reason
        );
        assert_eq!(zone.asked(), questions(&["TXT t.ext.test"]), "{record:?}");
    }
}

#[tokio::test]
async fn valid_but_unusual_records_are_evaluated() {
    let zone = || {
        MemoryZone::new()
            .a("foo:bar/baz.ext.test", ip4("127.0.0.3"))
            .a("foo.ext.xn--zckzah", ip4("127.0.0.3"))
            .a("123-456.ext.test-1", ip4("127.0.0.3"))
    };
    for (record, expected) in [
        // RFC 7208 §4.6.1: unknown modifiers are ignored, even empty or repeated ones.
        (
            "v=spf1 moo.cow-far_out=man:dog/cat ip4:127.0.0.3 -all",
            SpfResult::Pass,
        ),
        (
            "v=spf1 foo= bar=%{c}%{r}%{t} foo=x ip4:127.0.0.3 -all",
            SpfResult::Pass,
        ),
        ("v=spf1 default=pass", SpfResult::Neutral),
        ("v=spf1 default=+", SpfResult::Neutral),
        ("v=spf1 a=b -all", SpfResult::Fail),
        // Several spaces between terms, trailing spaces, names in any case.
        ("v=spf1  ip4:127.0.0.3   -all  ", SpfResult::Pass),
        ("v=spf1 ", SpfResult::Neutral),
        ("V=SPF1 IP4:127.0.0.3 -ALL", SpfResult::Pass),
        ("v=spf1 ip4:127.0.0.3 REDIRECT=x.ext.test", SpfResult::Pass),
        // CIDR lengths at their bounds.
        ("v=spf1 ip4:1.1.1.1/0 -all", SpfResult::Pass),
        ("v=spf1 ip4:127.0.0.3/32 -all", SpfResult::Pass),
        ("v=spf1 ip4:127.0.0.0/24 -all", SpfResult::Pass),
        ("v=spf1 ip4:127.0.1.0/24 -all", SpfResult::Fail),
        ("v=spf1 ip6:::1.1.1.1/0", SpfResult::Neutral),
        ("v=spf1 ip6:::/0 ip6:2001:db8::/128 -all", SpfResult::Fail),
        // RFC 7208 §7.1: a domain-spec may hold ":" and "/" before a valid top label.
        ("v=spf1 a:foo:bar/baz.ext.test -all", SpfResult::Pass),
        ("v=spf1 a:foo.ext.xn--zckzah -all", SpfResult::Pass),
        ("v=spf1 a:123-456.ext.test-1/24//64 -all", SpfResult::Pass),
        ("v=spf1 a:%{d}.:x.ext.test. -all", SpfResult::Fail),
        ("v=spf1 exists:%{l}%{d}%% -all", SpfResult::Fail),
        // "all" ends the evaluation: what follows is not evaluated, but still parsed.
        ("v=spf1 -all a:never.ext.test", SpfResult::Fail),
        ("v=spf1 all -all", SpfResult::Pass),
    ] {
        assert_eq!(result_of_record(zone(), record).await, expected, "{record}");
    }
}

fn ip4(text: &str) -> std::net::Ipv4Addr {
    text.parse().expect("a test IPv4 address")
}
