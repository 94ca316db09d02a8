use super::*;

/// RFC 8461 §3.2's example policy.
const EXAMPLE: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n\
mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";

#[test]
fn the_rfc_example_policy() {
    let policy = Policy::parse(EXAMPLE, "20160831085700Z").unwrap();
    assert_eq!(policy.mode, Mode::Enforce);
    assert_eq!(policy.max_age, 604_800);
    assert_eq!(
        policy.mx,
        ["mail.example.com", "*.example.net", "backupmx.example.com"]
    );
    assert_eq!(policy.id, "20160831085700Z");
    // LF line ends, spaces after the colon, unknown fields and a final dot are fine.
    let lf = "version: STSv1\nmode:testing\nmx:  Mail.Example.COM.\nfoo: bar\nmax_age: 86400\n";
    let policy = Policy::parse(lf, "1").unwrap();
    assert_eq!(policy.mode, Mode::Testing);
    assert_eq!(policy.mx, ["mail.example.com"]);
}

#[test]
fn mx_patterns_match_one_label() {
    let policy = Policy::parse(EXAMPLE, "1").unwrap();
    for host in [
        "mail.example.com",
        "MAIL.example.com.",
        "a.example.net",
        "backupmx.example.com",
    ] {
        assert!(policy.matches(host), "{host}");
    }
    // RFC 8461 §4.1: the wildcard covers exactly the leftmost label.
    for host in [
        "example.net",
        "a.b.example.net",
        "mail.example.org",
        "xmail.example.com",
        ".example.net",
    ] {
        assert!(!policy.matches(host), "{host}");
    }
}

#[test]
fn bad_policies_are_refused() {
    for (text, why) in [
        ("mode: enforce\nmx: a.example\nmax_age: 1\n", "no version"),
        (
            "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
            "wrong version",
        ),
        (
            "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",
            "unknown mode",
        ),
        ("version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx"),
        (
            "version: STSv1\nmode: enforce\nmx: a.example\n",
            "no max_age",
        ),
        (
            "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
            "negative max_age",
        ),
        (
            "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n",
            "11 digits",
        ),
        (
            "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n",
            "empty label",
        ),
        (
            "version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1\n",
            "two wildcards",
        ),
        ("<html>not a policy</html>\n", "HTML"),
    ] {
        assert!(Policy::parse(text, "1").is_err(), "{why}");
    }
    // mode none needs no mx; max_age is capped at a year.
    let none = Policy::parse("version: STSv1\nmode: none\nmax_age: 99999999\n", "1").unwrap();
    assert_eq!(none.mode, Mode::None);
    assert_eq!(none.max_age, MAX_AGE_LIMIT);
}

#[test]
fn txt_records() {
    let one = |r: &str| txt_id(&[r.to_string()]);
    assert_eq!(
        one("v=STSv1; id=20160831085700Z;").as_deref(),
        Some("20160831085700Z")
    );
    assert_eq!(one("v=STSv1;id=abc").as_deref(), Some("abc"));
    assert_eq!(one("v=STSv1; id=abc; ext=1").as_deref(), Some("abc"));
    assert_eq!(one("v=STSv1"), None, "no id");
    assert_eq!(one("v=STSv1; id=a-b"), None, "id is letters and digits");
    assert_eq!(
        one(&format!("v=STSv1; id={}", "a".repeat(33))),
        None,
        "id too long"
    );
    assert_eq!(one("v=STSv10; id=abc"), None);
    assert_eq!(
        txt_id(&["v=spf1 -all".to_string(), "v=STSv1; id=x1".to_string()]).as_deref(),
        Some("x1"),
        "other TXT records are ignored"
    );
    assert_eq!(
        txt_id(&["v=STSv1; id=a".to_string(), "v=STSv1; id=b".to_string()]),
        None,
        "RFC 8461 §3.1: two records mean no policy"
    );
}

#[test]
fn http_responses() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(http_body(ok, false).unwrap().as_deref(), Some("hello"));
    assert_eq!(
        http_body(&ok[..ok.len() - 1], false).unwrap(),
        None,
        "more to come"
    );
    assert!(http_body(&ok[..ok.len() - 1], true).is_err(), "truncated");
    let chunked = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
    assert_eq!(
        http_body(chunked, false).unwrap().as_deref(),
        Some("hello world")
    );
    let until_close = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it";
    assert_eq!(http_body(until_close, false).unwrap(), None);
    assert_eq!(
        http_body(until_close, true).unwrap().as_deref(),
        Some("all of it")
    );
    let redirect =
        b"HTTP/1.1 301 Moved\r\nLocation: https://elsewhere/\r\nContent-Type: text/plain\r\n\r\n";
    assert!(http_body(redirect, true).unwrap_err().contains("301"));
    let html = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi";
    assert!(http_body(html, true).unwrap_err().contains("text/html"));
    let huge = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        MAX_POLICY_SIZE + 1
    );
    assert!(http_body(huge.as_bytes(), false).is_err());
    assert!(http_body(b"SSH-2.0-OpenSSH\r\n\r\n", true).is_err());
}
