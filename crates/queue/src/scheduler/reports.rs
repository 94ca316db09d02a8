//! What the sender is told (RFC 3464, RFC 3461): recording each attempt's outcomes and the
//! bounce, delay and relayed reports they call for; the queue's kept error texts read back
//! into report fields.

use super::*;

impl Shared {
    /// Commits one attempt's outcomes for `job`, then sends the reports they call for.
    pub(super) async fn record(&self, job: &Job, results: Vec<(String, RecipientResult)>) {
        let entry = &job.message.entry;
        let now = unix_now();
        let outcome = match self.store.record_attempt(entry.queue_id, &results).await {
            Ok(outcome) => outcome,
            Err(error) => {
                // NotFound: dropped meanwhile (`sealpost queue drop`). Otherwise the
                // recipients stay queued and are tried again.
                tracing::warn!(queue_id = %entry.queue_id, %error, "cannot record the delivery attempt");
                return;
            }
        };
        self.report_delay(job, &results, &outcome, now).await;
        if let Some(finished) = outcome.finished {
            let failed: Vec<DsnRecipient> = finished
                .recipients
                .iter()
                .filter(|r| r.status == RecipientStatus::Failed)
                .filter(|r| dsn::wants_report(r.notify.as_deref(), Action::Failed))
                .map(|r| failed_recipient(r, now))
                .collect();
            if failed.is_empty() {
                return;
            }
            let original = finished.raw.as_deref().unwrap_or_default();
            self.notify(&finished.entry, &failed, original, now, "bounce")
                .await;
        }
    }

    /// The message as stored, for a report; empty when it cannot be read any more.
    pub(super) async fn original(&self, message: &Message) -> Arc<[u8]> {
        match self.prepare(message).await {
            Ok(prepared) => Arc::clone(&prepared.original),
            Err(_) => Arc::from(Vec::new()),
        }
    }

    /// Sends the sender of `entry` a report (`what`, for the log) on `recipients`, with the
    /// original without our Return-Path.
    pub(super) async fn notify(
        &self,
        entry: &QueueEntry,
        recipients: &[DsnRecipient],
        original: &[u8],
        now: i64,
        what: &str,
    ) {
        let original = strip_return_path(original);
        let hostname = &self.settings.hostname;
        match notify_sender(
            self.store.as_ref(),
            hostname,
            entry,
            recipients,
            original,
            now,
        )
        .await
        {
            Ok(notified) => tracing::info!(queue_id = %entry.queue_id, "{what}: {notified}"),
            Err(error) => {
                tracing::error!(queue_id = %entry.queue_id, %error, "cannot send the {what}")
            }
        }
    }

    /// RFC 3461 §6.2.1: a recipient that asked for SUCCESS, accepted by a server that does
    /// not offer DSN, gets a `relayed` report from us: no other will come.
    pub(super) async fn report_relayed(&self, job: &Job, report: &DeliveryReport, now: i64) {
        let relayed: Vec<DsnRecipient> = job
            .recipients
            .iter()
            .zip(&report.recipients)
            .filter_map(|(recipient, outcome)| {
                let DeliveryOutcome::Replied(RecipientOutcome::Accepted(reply)) = outcome else {
                    return None;
                };
                if recipient.notify.is_none()
                    || !dsn::wants_report(recipient.notify.as_deref(), Action::Relayed)
                {
                    return None;
                }
                let remote = remote_error(report.host.as_deref(), reply);
                let (_, remote_mta, diagnostic) = describe(&remote, '2');
                Some(DsnRecipient {
                    address: recipient.address.clone(),
                    orcpt: recipient.orcpt.clone(),
                    action: Action::Relayed,
                    // RFC 3463 §3.1: 2.0.0, success.
                    status: "2.0.0".to_string(),
                    remote_mta,
                    diagnostic: Some(diagnostic),
                    last_attempt: Some(now),
                    will_retry_until: None,
                })
            })
            .collect();
        if relayed.is_empty() {
            return;
        }
        let original = self.original(&job.message).await;
        self.notify(
            &job.message.entry,
            &relayed,
            &original,
            now,
            "relayed report",
        )
        .await;
    }

    /// RFC 3464 `Action: delayed`, once per message (the store decides who sends it), when
    /// a recipient that asked for it (RFC 3461 §4.1) still waits after the warning time.
    pub(super) async fn report_delay(
        &self,
        job: &Job,
        results: &[(String, RecipientResult)],
        outcome: &AttemptOutcome,
        now: i64,
    ) {
        let entry = &job.message.entry;
        let Some(warning) = self.settings.retry.delay_warning else {
            return;
        };
        if entry.delay_reported
            || outcome.still_queued == 0
            || now < entry.created.saturating_add(seconds(warning))
        {
            return;
        }
        let until = entry
            .created
            .saturating_add(seconds(self.settings.retry.lifetime));
        let delayed: Vec<DsnRecipient> = results
            .iter()
            .filter_map(|(address, result)| {
                let RecipientResult::Deferred { error, .. } = result else {
                    return None;
                };
                let recipient = job.recipients.iter().find(|r| &r.address == address)?;
                if !dsn::wants_report(recipient.notify.as_deref(), Action::Delayed) {
                    return None;
                }
                let (status, remote_mta, diagnostic) = describe(error, '4');
                Some(DsnRecipient {
                    address: address.clone(),
                    orcpt: recipient.orcpt.clone(),
                    action: Action::Delayed,
                    status,
                    remote_mta,
                    diagnostic: Some(diagnostic),
                    last_attempt: Some(now),
                    will_retry_until: Some(until),
                })
            })
            .collect();
        if delayed.is_empty() {
            return;
        }
        match self.store.claim_delay_report(entry.queue_id).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(queue_id = %entry.queue_id, %error, "cannot note the delay report");
                return;
            }
        }
        let original = self.original(&job.message).await;
        self.notify(entry, &delayed, &original, now, "delay report")
            .await;
    }
}

/// A remote reply as kept in the queue: `HOST said: CODE ENHANCED TEXT` (what `queue list`
/// shows and [`describe`] reads back for a report).
pub(super) fn remote_error(host: Option<&str>, reply: &Reply) -> String {
    format!("{} said: {}", host.unwrap_or("the server"), show(reply))
}

/// What a kept error says for a report: the RFC 3463 status, the remote MTA and the
/// diagnostic (RFC 3464 §2.3.4-§2.3.6). `class` is the status class when the error has
/// none ('5' for failures, '4' for delays).
pub(super) fn describe(error: &str, class: char) -> (String, Option<String>, Diagnostic) {
    if let Some((word, rest)) = error.split_once(' ')
        && is_status(word)
    {
        return (word.to_string(), None, Diagnostic::Local(rest.to_string()));
    }
    if let Some((host, reply)) = error.split_once(" said: ") {
        let mut words = reply.split_whitespace();
        let code = words.next().unwrap_or_default();
        let status = words
            .next()
            .filter(|word| is_status(word))
            .map(str::to_string)
            .unwrap_or_else(|| {
                let first = code.chars().next().filter(|c| matches!(c, '4' | '5'));
                format!("{}.0.0", first.unwrap_or(class))
            });
        return (
            status,
            Some(host.to_string()),
            Diagnostic::Smtp(reply.to_string()),
        );
    }
    (
        format!("{class}.0.0"),
        None,
        Diagnostic::Local(error.to_string()),
    )
}

/// `class.subject.detail` (RFC 3463 §2).
pub(super) fn is_status(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && matches!(parts.first(), Some(&"2" | &"4" | &"5"))
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn failed_recipient(recipient: &EntryRecipient, now: i64) -> DsnRecipient {
    let error = recipient.last_error.as_deref().unwrap_or("5.0.0 failed");
    let (mut status, remote_mta, diagnostic) = describe(error, '5');
    // A failed recipient's status is permanent (RFC 3464 §2.3.4), even after temporary
    // replies until the lifetime ran out.
    if status.starts_with('4') {
        status.replace_range(..1, "5");
    }
    DsnRecipient {
        address: recipient.address.clone(),
        orcpt: recipient.orcpt.clone(),
        action: Action::Failed,
        status,
        remote_mta,
        diagnostic: Some(diagnostic),
        last_attempt: Some(now),
        will_retry_until: None,
    }
}
