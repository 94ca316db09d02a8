//! `sealpost queue list|flush|drop ID`: the outbound queue as an administrator sees it,
//! against the same store as a running server.
//!
//! Output (CONTRACT.md, README "Commands"):
//! - `list`: `queue is empty`, or a header `N recipient(s) waiting in M message(s)` and then
//!   one line per waiting recipient, oldest message first:
//!   `ID RECIPIENT attempts=N next=WHEN error=TEXT` — WHEN is `now` when due, else an RFC 3339
//!   UTC time (`2026-01-01T12:00:00Z`); TEXT is the last error, `-` when none (the rest of the
//!   line, spaces included).
//! - `flush`: `N recipient(s) due now`.
//! - `drop ID`: `dropped queue entry ID (N recipient(s) still waiting)`, then what became of
//!   the bounce: `bounce delivered to ADDRESS`, `bounce queued to ADDRESS as queue entry ID`,
//!   or `no bounce: REASON`.

use std::path::Path;

use anyhow::anyhow;
use sealpost_config::Config;
use sealpost_queue::dsn::{self, Action, Diagnostic, DsnRecipient};
use sealpost_queue::notify::notify_sender;
use sealpost_store::{
    DroppedMessage, EntryRecipient, QueueId, QueuedRecipient, Store, TlsSessions,
};
use sealpost_types::date::{UtcDateTime, unix_now};

use crate::cli::QueueCommand;
use crate::exit::CliError;
use crate::manage::open_store;

/// What the bounce of a dropped message says about each recipient (RFC 3463 §3.1: 5.0.0,
/// other or undefined status).
const DROPPED_STATUS: &str = "5.0.0";
const DROPPED_REASON: &str = "removed from the queue by the administrator";

pub async fn queue(config_path: &Path, command: QueueCommand) -> Result<(), CliError> {
    let config = Config::load(config_path)?;
    let store = open_store(&config).await?;
    match command {
        QueueCommand::List => list(store.as_ref()).await,
        QueueCommand::Flush => {
            let due = store.flush(unix_now()).await?;
            println!("{} due now", plural(due, "recipient"));
            Ok(())
        }
        QueueCommand::Drop { id } => {
            let id = parse_id(&id)?;
            drop_entry(store.as_ref(), config.hostname.as_str(), id).await
        }
        QueueCommand::TlsReport { day } => {
            let day = match day {
                Some(day) => parse_day(&day)?,
                None => UtcDateTime::from_unix(unix_now()).to_day(),
            };
            let sessions = store.tls_sessions(&day).await?;
            let reports = tls_reports(config.hostname.as_str(), &day, &sessions);
            let text = serde_json::to_string_pretty(&reports)
                .map_err(|error| CliError::runtime(anyhow!("cannot write JSON: {error}")))?;
            println!("{text}");
            Ok(())
        }
    }
}

async fn list(store: &dyn Store) -> Result<(), CliError> {
    let queue = store.queued().await?;
    if queue.is_empty() {
        println!("queue is empty");
        return Ok(());
    }
    let mut ids: Vec<QueueId> = queue.iter().map(|q| q.queue_id).collect();
    ids.sort_unstable();
    ids.dedup();
    println!(
        "{} waiting in {}",
        plural(queue.len(), "recipient"),
        plural(ids.len(), "message")
    );
    let now = unix_now();
    for entry in &queue {
        println!("{}", list_line(entry, now));
    }
    Ok(())
}

/// `ID RECIPIENT attempts=N next=WHEN error=TEXT`.
fn list_line(entry: &QueuedRecipient, now: i64) -> String {
    let next = if entry.next_attempt <= now {
        "now".to_string()
    } else {
        rfc3339(entry.next_attempt)
    };
    let error = entry
        .last_error
        .as_deref()
        .map(one_line)
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "-".to_string());
    format!(
        "{} {} attempts={} next={next} error={error}",
        entry.queue_id,
        one_line(&entry.recipient),
        entry.attempts
    )
}

/// RFC 3339 §5.6 in UTC: `2026-01-01T12:00:00Z`.
fn rfc3339(seconds: i64) -> String {
    let t = UtcDateTime::from_unix(seconds);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// Store text for one output line: control characters (a remote reply's CR LF) and runs
/// of white space become one space.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `YYYY-MM-DD`.
pub(crate) fn parse_day(text: &str) -> Result<String, CliError> {
    let parts: Vec<&str> = text.trim().split('-').collect();
    let valid = matches!(parts.as_slice(), [y, m, d]
        if y.len() == 4 && m.len() == 2 && d.len() == 2
            && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
            && (1..=12).contains(&m.parse::<u32>().unwrap_or(0))
            && (1..=31).contains(&d.parse::<u32>().unwrap_or(0)));
    if valid {
        Ok(text.trim().to_string())
    } else {
        Err(CliError::usage(anyhow!(
            "{text:?} is not a day (YYYY-MM-DD, e.g. 2026-11-29)"
        )))
    }
}

/// RFC 8460 §4.4: one report per policy domain, each with its policies (one per policy
/// type), their summary counts and failure details.
fn tls_reports(hostname: &str, day: &str, sessions: &[TlsSessions]) -> serde_json::Value {
    use serde_json::json;
    let mut domains: Vec<&str> = sessions.iter().map(|s| s.policy_domain.as_str()).collect();
    domains.dedup();
    let reports: Vec<serde_json::Value> = domains
        .iter()
        .map(|domain| {
            let of_domain: Vec<&TlsSessions> = sessions
                .iter()
                .filter(|s| s.policy_domain == *domain)
                .collect();
            let mut types: Vec<&str> = of_domain.iter().map(|s| s.policy_type.as_str()).collect();
            types.sort_unstable();
            types.dedup();
            let policies: Vec<serde_json::Value> = types
                .iter()
                .map(|policy_type| {
                    let group: Vec<&&TlsSessions> = of_domain
                        .iter()
                        .filter(|s| s.policy_type == *policy_type)
                        .collect();
                    let successes: u64 = group
                        .iter()
                        .filter(|s| s.result == "success")
                        .map(|s| s.count)
                        .sum();
                    let failures: Vec<&&&TlsSessions> =
                        group.iter().filter(|s| s.result != "success").collect();
                    let mut mx_hosts: Vec<&str> =
                        group.iter().map(|s| s.mx_host.as_str()).collect();
                    mx_hosts.sort_unstable();
                    mx_hosts.dedup();
                    let policy_string = group
                        .iter()
                        .map(|s| &s.policy_string)
                        .find(|p| !p.is_empty())
                        .cloned()
                        .unwrap_or_default();
                    json!({
                        "policy": {
                            "policy-type": policy_type,
                            "policy-string": policy_string,
                            "policy-domain": domain,
                            "mx-host": mx_hosts,
                        },
                        "summary": {
                            "total-successful-session-count": successes,
                            "total-failure-session-count":
                                failures.iter().map(|s| s.count).sum::<u64>(),
                        },
                        "failure-details": failures.iter().map(|s| json!({
                            "result-type": s.result,
                            "receiving-mx-hostname": s.mx_host,
                            "receiving-ip": s.receiving_ip,
                            "failed-session-count": s.count,
                            "failure-reason-code": s.reason,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({
                "organization-name": hostname,
                "date-range": {
                    "start-datetime": format!("{day}T00:00:00Z"),
                    "end-datetime": format!("{day}T23:59:59Z"),
                },
                "contact-info": format!("postmaster@{hostname}"),
                "report-id": format!("{day}.{domain}@{hostname}"),
                "policies": policies,
            })
        })
        .collect();
    serde_json::Value::Array(reports)
}

fn parse_id(text: &str) -> Result<QueueId, CliError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(QueueId)
        .ok_or_else(|| {
            CliError::usage(anyhow!(
                "{text:?} is not a queue id (a positive number, as `sealpost queue list` shows)"
            ))
        })
}

async fn drop_entry(store: &dyn Store, hostname: &str, id: QueueId) -> Result<(), CliError> {
    let dropped = store.drop_entry(id).await?.ok_or_else(|| {
        CliError::runtime(anyhow!(
            "there is no queue entry {id} (see `sealpost queue list`)"
        ))
    })?;
    println!(
        "dropped queue entry {id} ({} still waiting)",
        plural(dropped.recipients.len(), "recipient")
    );
    // The entry is gone (one commit); the bounce is a second write. Should that fail, say
    // so: the message is removed either way, and the administrator can tell the sender.
    let outcome = bounce(store, hostname, &dropped).await.map_err(|error| {
        CliError::runtime(anyhow!(
            "dropped queue entry {id} but could not bounce it: {}",
            error.message()
        ))
    })?;
    println!("{outcome}");
    Ok(())
}

/// Sends the sender of a dropped message an RFC 3464 failure report for the recipients
/// still waiting; returns the line that says what became of it.
async fn bounce(
    store: &dyn Store,
    hostname: &str,
    dropped: &DroppedMessage,
) -> Result<String, CliError> {
    // RFC 3461 §4.1: NOTIFY=NEVER (or a list without FAILURE) asks for no failure report.
    let recipients: Vec<DsnRecipient> = dropped
        .recipients
        .iter()
        .filter(|r| dsn::wants_report(r.notify.as_deref(), Action::Failed))
        .map(dropped_recipient)
        .collect();
    let notified = notify_sender(
        store,
        hostname,
        &dropped.entry,
        &recipients,
        &dropped.raw,
        unix_now(),
    )
    .await
    .map_err(CliError::runtime)?;
    Ok(notified.to_string())
}

fn dropped_recipient(recipient: &EntryRecipient) -> DsnRecipient {
    DsnRecipient {
        address: recipient.address.clone(),
        orcpt: recipient.orcpt.clone(),
        action: Action::Failed,
        status: DROPPED_STATUS.to_string(),
        remote_mta: None,
        diagnostic: Some(Diagnostic::Local(DROPPED_REASON.to_string())),
        last_attempt: None,
        will_retry_until: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(next_attempt: i64, last_error: Option<&str>) -> QueuedRecipient {
        QueuedRecipient {
            queue_id: QueueId(7),
            recipient: "bob@remote.example".into(),
            from: Some("alice@example.org".into()),
            attempts: 2,
            next_attempt,
            last_error: last_error.map(str::to_string),
            created: 0,
            size: 10,
        }
    }

    #[test]
    fn list_lines() {
        let now = 1_767_225_600; // 2026-01-01T00:00:00Z
        assert_eq!(
            list_line(&waiting(now, None), now),
            "7 bob@remote.example attempts=2 next=now error=-"
        );
        assert_eq!(
            list_line(&waiting(now + 3661, Some("451 4.4.1\r\nno answer")), now),
            "7 bob@remote.example attempts=2 next=2026-01-01T01:01:01Z error=451 4.4.1 no answer"
        );
    }

    #[test]
    fn queue_ids() {
        assert_eq!(parse_id("42").unwrap(), QueueId(42));
        assert_eq!(parse_id(" 42 ").unwrap(), QueueId(42));
        for bad in ["", "0", "-1", "abc", "4 2", "99999999999999999999"] {
            assert!(parse_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn days() {
        assert_eq!(parse_day("2026-11-29").unwrap(), "2026-11-29");
        for bad in [
            "",
            "2026-11",
            "2026-13-01",
            "2026-11-32",
            "26-11-29",
            "2026-1-29",
            "x",
        ] {
            assert!(parse_day(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tls_reports_follow_rfc_8460() {
        let session = |policy_type: &str, result: &str, count: u64| TlsSessions {
            day: "2026-11-29".into(),
            policy_domain: "remote.example".into(),
            policy_type: policy_type.into(),
            policy_string: if policy_type == "sts" {
                vec!["version: STSv1".into(), "mode: enforce".into()]
            } else {
                Vec::new()
            },
            mx_host: "mx.remote.example".into(),
            result: result.into(),
            receiving_ip: if result == "success" {
                String::new()
            } else {
                "192.0.2.1".into()
            },
            reason: "why".into(),
            count,
        };
        let reports = tls_reports(
            "mail.example.org",
            "2026-11-29",
            &[
                session("no-policy-found", "success", 2),
                session("sts", "certificate-host-mismatch", 1),
                session("sts", "success", 4),
            ],
        );
        let report = &reports[0];
        assert_eq!(reports.as_array().unwrap().len(), 1);
        assert_eq!(report["organization-name"], "mail.example.org");
        assert_eq!(
            report["date-range"]["start-datetime"],
            "2026-11-29T00:00:00Z"
        );
        assert_eq!(report["contact-info"], "postmaster@mail.example.org");
        let policies = report["policies"].as_array().unwrap();
        assert_eq!(policies.len(), 2);
        let sts = &policies[1];
        assert_eq!(sts["policy"]["policy-type"], "sts");
        assert_eq!(sts["policy"]["policy-domain"], "remote.example");
        assert_eq!(sts["policy"]["policy-string"][1], "mode: enforce");
        assert_eq!(sts["summary"]["total-successful-session-count"], 4);
        assert_eq!(sts["summary"]["total-failure-session-count"], 1);
        let failure = &sts["failure-details"][0];
        assert_eq!(failure["result-type"], "certificate-host-mismatch");
        assert_eq!(failure["receiving-ip"], "192.0.2.1");
        assert_eq!(failure["receiving-mx-hostname"], "mx.remote.example");
        assert_eq!(policies[0]["summary"]["total-successful-session-count"], 2);
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(0, "recipient"), "0 recipients");
        assert_eq!(plural(1, "recipient"), "1 recipient");
        assert_eq!(plural(3, "message"), "3 messages");
    }
}
