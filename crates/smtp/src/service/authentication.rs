//! Sender authentication of mail arriving on port 25 (SPF, DKIM, DMARC, ARC, iprev): SPF
//! starts when MAIL FROM arrives, the rest runs at the end of DATA; the receiving domains'
//! policies then decide between delivering, filing as junk, refusing and deferring, and the
//! verdicts go into an Authentication-Results field (RFC 8601).
//! Submission (587/465) is never checked: its users have authenticated.

use std::collections::BTreeSet;
use std::sync::Arc;

use sealpost_sender_auth::dmarc::Alignment;
use sealpost_sender_auth::spf::SpfIdentity;
use sealpost_sender_auth::{
    Assessment, AuthRules, Client, Disposition, DmarcResult, SenderAuth, SenderAuthConfig,
    SpfVerdict, policy, results,
};
use sealpost_store::DmarcReportRow;
use sealpost_types::AccountId;
use sealpost_types::date::UtcDateTime;
use tokio::task::JoinHandle;

use super::recipients::Transaction;
use super::session::Session;
use crate::core::Reply;

/// What the service is given to check inbound mail with.
pub struct InboundAuth {
    pub checker: Arc<SenderAuth>,
    /// `[sender_auth]`: the rules of each receiving domain.
    pub rules: SenderAuthConfig,
}

/// The SPF check of a transaction, running while the client sends RCPT and DATA. Dropping
/// it (a new MAIL, the end of DATA or of the session) stops the check; after RSET it runs
/// on until then, within its budget.
#[derive(Debug)]
pub(super) struct PendingSpf {
    task: JoinHandle<SpfVerdict>,
    client: Client,
}

impl Drop for PendingSpf {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The outcome at the end of DATA.
pub(super) enum Verdict {
    /// Store the message with this Authentication-Results field first, the accounts in
    /// `junk` getting it in their Junk mailbox; `body` replaces the received one when forged
    /// Authentication-Results fields had to go.
    Accept {
        header: String,
        body: Option<Vec<u8>>,
        junk: BTreeSet<AccountId>,
        /// The DMARC report data, recorded once the message is stored.
        report: Option<Box<DmarcReportRow>>,
    },
    Refuse(Reply),
}

impl Session<'_> {
    /// RFC 7208 §2.4: the check of the MAIL FROM identity (HELO for a null reverse-path),
    /// once per transaction (SECURITY-TESTS DA-07), started now so that its DNS lookups
    /// overlap the rest of the transaction.
    pub(super) fn start_spf(&self, from: Option<&str>) -> Option<PendingSpf> {
        let auth = self.service.inbound_auth.as_ref()?;
        let client = Client {
            ip: self.conn.peer().ip(),
            helo: self.core.session().helo.clone().unwrap_or_default(),
            mail_from: from.map(str::to_string),
        };
        let checker = Arc::clone(&auth.checker);
        let receiver = self.service.hostname.clone();
        let for_task = client.clone();
        let task = tokio::spawn(async move { checker.spf(&for_task, &receiver).await });
        Some(PendingSpf { task, client })
    }

    /// Adds a message to the DMARC aggregate report data. Statistics: a failure to count is
    /// logged, never a reason to refuse mail.
    pub(super) async fn record_dmarc(&mut self, row: Option<Box<DmarcReportRow>>) {
        let Some(row) = row else {
            return;
        };
        if let Err(error) = self.service.store.record_dmarc(vec![*row]).await {
            tracing::warn!(%error, "could not record DMARC report data");
        }
    }

    /// RFC 7505 §4.2: mail from a domain that publishes a null MX is refused with
    /// 550 5.7.27: it could never be answered (SECURITY-TESTS DA-15).
    pub(super) async fn refuse_null_mx_sender(&mut self, from: Option<&str>) -> Option<Reply> {
        let auth = self.service.inbound_auth.as_ref()?;
        let from = from?;
        if !auth.checker.sender_has_null_mx(from).await {
            return None;
        }
        let domain = from.rsplit_once('@').map_or("", |(_, domain)| domain);
        Some(Reply::new(
            550,
            "5.7.27",
            format!(
                "Sender address rejected: {} accepts no mail (null MX)",
                ascii(domain)
            ),
        ))
    }

    /// Judges the message of `transaction` (whose SPF check is under way).
    pub(super) async fn authenticate(
        &mut self,
        transaction: &mut Transaction,
        body: &[u8],
    ) -> Option<Verdict> {
        let auth = self.service.inbound_auth.as_ref()?;
        let mut pending = transaction.spf.take()?;
        let client = pending.client.clone();
        let checker = Arc::clone(&auth.checker);
        let hostname = self.service.hostname.clone();
        let spf = async move {
            match (&mut pending.task).await {
                Ok(verdict) => verdict,
                // The task cannot panic short of a bug; check again rather than skip SPF.
                Err(_) => checker.spf(&pending.client, &hostname).await,
            }
        };
        let assessment = auth.checker.assess_with(&client, spf, body).await;
        log(&assessment);
        let mut strictest = Disposition::Deliver;
        let mut strictest_domain = "";
        let mut junk = BTreeSet::new();
        for recipient in &transaction.local {
            let domain = recipient
                .address
                .rsplit_once('@')
                .map_or("", |(_, domain)| domain);
            let disposition = policy::decide(auth.rules.rules_for(domain), &assessment);
            if let Disposition::Junk { .. } = disposition {
                junk.extend(recipient.accounts.iter().copied());
            }
            if disposition.severity() > strictest.severity() || strictest_domain.is_empty() {
                strictest_domain = domain;
            }
            if disposition.severity() > strictest.severity() {
                strictest = disposition;
            }
        }
        let rules = auth.rules.rules_for(strictest_domain);
        let report =
            report_row(&assessment, &client, strictest_domain, rules, &strictest).map(Box::new);
        match &strictest {
            // RFC 7489 §10.3 and the issue: refused at the end of DATA, nothing stored.
            Disposition::Reject { reason } => {
                // Counted now: a refused message does not come back.
                self.record_dmarc(report).await;
                Some(Verdict::Refuse(Reply::new(550, "5.7.1", ascii(reason))))
            }
            // RFC 3463 §3.8: X.7.0, a security check that may pass when tried again.
            Disposition::Defer { reason } => Some(Verdict::Refuse(Reply::new(
                451,
                "4.7.0",
                format!("{}; try again later", ascii(reason)),
            ))),
            Disposition::Deliver | Disposition::Junk { .. } => Some(Verdict::Accept {
                header: results::header_field_applied(
                    &self.service.hostname,
                    &assessment,
                    &strictest,
                ),
                // RFC 8601 §5: fields claiming our authserv-id come from elsewhere.
                body: results::without_forged(body, &self.service.hostname),
                junk,
                report,
            }),
        }
    }
}

/// The aggregate report data of this message (RFC 7489 §7.2), when the sender's domain asks
/// for reports (`rua`) and the verdict is final (a deferred message is counted when it
/// comes back).
fn report_row(
    assessment: &Assessment,
    client: &Client,
    recipient_domain: &str,
    rules: &AuthRules,
    applied: &Disposition,
) -> Option<DmarcReportRow> {
    let verdict = &assessment.dmarc;
    let record = verdict.record.as_ref()?;
    if record.aggregate_uris.is_empty()
        || !matches!(verdict.result, DmarcResult::Pass | DmarcResult::Fail)
    {
        return None;
    }
    let disposition = match applied {
        Disposition::Deliver => "none",
        Disposition::Junk { .. } => "quarantine",
        Disposition::Reject { .. } => "reject",
        Disposition::Defer { .. } => return None,
    };
    let rua: Vec<String> = record
        .aggregate_uris
        .iter()
        .map(|uri| match uri.max_size {
            Some(size) => format!("{}!{size}", uri.uri),
            None => uri.uri.clone(),
        })
        .collect();
    let alignment = |mode: Alignment| match mode {
        Alignment::Relaxed => "r",
        Alignment::Strict => "s",
    };
    let policy_published = format!(
        "adkim={};aspf={};p={};sp={};pct={};rua={}",
        alignment(record.dkim_alignment),
        alignment(record.spf_alignment),
        record.policy.as_str(),
        record.subdomain_policy.unwrap_or(record.policy).as_str(),
        record.percent,
        rua.join(",")
    );
    let pass_or_fail = |passed: bool| if passed { "pass" } else { "fail" }.to_string();
    let spf = &assessment.spf;
    let scope = match spf.identity {
        SpfIdentity::MailFrom => "mfrom",
        SpfIdentity::Helo => "helo",
    };
    let dkim_results: Vec<String> = assessment
        .dkim
        .iter()
        .filter(|dkim| !dkim.domain.is_empty())
        .map(|dkim| format!("{} {} {}", dkim.domain, dkim.selector, dkim.result.as_str()))
        .collect();
    Some(DmarcReportRow {
        day: UtcDateTime::now().to_day(),
        policy_domain: verdict.record_domain.clone(),
        policy_published,
        source_ip: client.ip.to_canonical().to_string(),
        header_from: verdict.from_domain.clone(),
        envelope_from: client
            .mail_from
            .as_deref()
            .and_then(|address| address.rsplit_once('@'))
            .map(|(_, domain)| domain.to_ascii_lowercase())
            .unwrap_or_default(),
        envelope_to: recipient_domain.to_ascii_lowercase(),
        disposition: disposition.to_string(),
        dkim_aligned: pass_or_fail(verdict.dkim_aligned),
        spf_aligned: pass_or_fail(verdict.spf_aligned),
        override_reason: policy::override_reason(rules, assessment, applied)
            .unwrap_or_default()
            .to_string(),
        dkim_results: dkim_results.join(";"),
        spf_result: format!("{} {scope} {}", spf.domain, spf.result.as_str()),
        count: 1,
    })
}

/// RFC 5321 §4.2: reply text is US-ASCII; a domain in Unicode form is shown with `?`.
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn log(assessment: &Assessment) {
    let dkim: Vec<String> = assessment
        .dkim
        .iter()
        .map(|verdict| format!("{}:{}", verdict.domain, verdict.result.as_str()))
        .collect();
    tracing::info!(
        spf = assessment.spf.result.as_str(),
        spf_domain = %assessment.spf.domain,
        dkim = %dkim.join(","),
        dmarc = assessment.dmarc.result.as_str(),
        dmarc_domain = %assessment.dmarc.from_domain,
        disposition = assessment.dmarc.disposition.as_str(),
        arc = assessment.arc.result.as_str(),
        iprev = assessment.iprev.result.as_str(),
        "sender authentication"
    );
}
