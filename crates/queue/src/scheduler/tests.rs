use super::outgoing::parse_notify;
use super::reports::{describe, failed_recipient};
use super::*;

#[test]
fn backoff_doubles_from_five_minutes_to_four_hours() {
    let policy = RetryPolicy::default();
    let minutes: Vec<u64> = (1..=9)
        .map(|attempt| policy.retry_delay(attempt).as_secs() / 60)
        .collect();
    assert_eq!(minutes, [5, 10, 20, 40, 80, 160, 240, 240, 240]);
    assert_eq!(policy.retry_delay(0).as_secs(), 300);
    assert_eq!(policy.retry_delay(u32::MAX).as_secs(), 4 * 3600);
}

#[test]
fn destinations_are_case_insensitive_domains() {
    assert_eq!(destination_of("Bob@Example.ORG"), "example.org");
    assert_eq!(destination_of("bob@example.org."), "example.org");
    assert_eq!(destination_of("a@[127.0.0.1]"), "[127.0.0.1]");
    assert_eq!(destination_of("\"a@b\"@c.example"), "c.example");
}

#[test]
fn only_a_leading_return_path_is_stripped() {
    assert_eq!(
        strip_return_path(b"Return-Path: <a@b.example>\r\nReceived: x\r\n\r\nbody"),
        b"Received: x\r\n\r\nbody"
    );
    assert_eq!(
        strip_return_path(b"return-path: <>\r\nX: y\r\n\r\n"),
        b"X: y\r\n\r\n"
    );
    let later = b"Received: x\r\nReturn-Path: <a@b.example>\r\n\r\nbody";
    assert_eq!(strip_return_path(later), later);
    assert_eq!(strip_return_path(b"Return-Path: <x>"), b"Return-Path: <x>");
}

#[test]
fn kept_errors_read_back_for_reports() {
    let reply = Reply {
        code: 550,
        enhanced: "5.1.1".to_string(),
        lines: vec!["<bob@remote.example>: no such user".to_string()],
    };
    let kept = remote_error(Some("mx.remote.example"), &reply);
    assert_eq!(
        kept,
        "mx.remote.example said: 550 5.1.1 <bob@remote.example>: no such user"
    );
    assert_eq!(
        describe(&kept, '5'),
        (
            "5.1.1".to_string(),
            Some("mx.remote.example".to_string()),
            Diagnostic::Smtp("550 5.1.1 <bob@remote.example>: no such user".to_string())
        )
    );
    let no_enhanced = Reply {
        code: 451,
        enhanced: String::new(),
        lines: vec!["try later".to_string()],
    };
    let (status, _, _) = describe(&remote_error(Some("mx"), &no_enhanced), '5');
    assert_eq!(status, "4.0.0", "the reply's class decides");
    assert_eq!(
        describe("5.1.10 the domain x accepts no mail", '5'),
        (
            "5.1.10".to_string(),
            None,
            Diagnostic::Local("the domain x accepts no mail".to_string())
        )
    );
    let (status, remote, diagnostic) = describe("something odd", '4');
    assert_eq!((status.as_str(), remote), ("4.0.0", None));
    assert_eq!(diagnostic, Diagnostic::Local("something odd".to_string()));
}

#[test]
fn failed_reports_are_permanent() {
    let recipient = EntryRecipient {
        address: "bob@remote.example".into(),
        notify: None,
        orcpt: Some("rfc822;bob@remote.example".into()),
        status: RecipientStatus::Failed,
        attempts: 40,
        next_attempt: 0,
        last_error: Some("5.4.7 delivery time expired after 5 days; last error: 4.4.1 connect to 192.0.2.1:25 failed".into()),
    };
    let report = failed_recipient(&recipient, 100);
    assert_eq!(report.status, "5.4.7");
    assert_eq!(report.action, Action::Failed);
    assert_eq!(report.orcpt.as_deref(), Some("rfc822;bob@remote.example"));
    let timed_out = EntryRecipient {
        last_error: Some("mx said: 421 4.4.2 closing".into()),
        ..recipient
    };
    assert_eq!(failed_recipient(&timed_out, 100).status, "5.4.2");
}

#[test]
fn notify_keywords() {
    let notify = parse_notify("SUCCESS,delay");
    assert!(notify.success && notify.delay && !notify.failure && !notify.never);
    assert!(parse_notify("NEVER").never);
}

#[test]
fn envelopes_carry_dsn_parameters_and_smtputf8_when_needed() {
    let entry = QueueEntry {
        queue_id: QueueId(1),
        blob: sealpost_types::BlobId([0; 32]),
        from: Some("alice@example.org".into()),
        ret: Some("HDRS".into()),
        envid: Some("E1".into()),
        submitted_by: None,
        created: 0,
        size: 10,
        delay_reported: false,
        require_tls: false,
    };
    let recipient = EntryRecipient {
        address: "bob@remote.example".into(),
        notify: Some("FAILURE,DELAY".into()),
        orcpt: Some("rfc822;bob@remote.example".into()),
        status: RecipientStatus::Queued,
        attempts: 0,
        next_attempt: 0,
        last_error: None,
    };
    let ascii = MessageBody::from("Subject: hi\r\n\r\nbody \u{e9}\r\n");
    let built = envelope(&entry, std::slice::from_ref(&recipient), &ascii);
    assert_eq!(built.ret, Some(DsnRet::Headers));
    assert_eq!(built.envid.as_deref(), Some("E1"));
    assert!(!built.smtputf8, "8-bit body only: 8BITMIME, not SMTPUTF8");
    let rcpt = &built.recipients[0];
    assert!(
        rcpt.notify
            .is_some_and(|n| n.failure && n.delay && !n.success)
    );
    assert_eq!(
        rcpt.orcpt,
        Some(("rfc822".to_string(), "bob@remote.example".to_string()))
    );
    let utf8 = MessageBody::from("Subject: gr\u{fc}\u{df}e\r\n\r\nbody\r\n");
    assert!(envelope(&entry, std::slice::from_ref(&recipient), &utf8).smtputf8);
}
