//! DMARC aggregate reports (RFC 7489 §7.2): `serve` sends each finished day's reports once
//! an hour; `sealpost dmarc report [DAY]` prints them, `sealpost dmarc send [DAY]` queues them
//! at once.
//!
//! A report goes to at most two `rua` addresses that pass the external-destination check
//! of RFC 7489 §7.1, from the report address of our first domain (so that the queue signs it
//! with that domain's DKIM keys), with the null reverse-path: nobody answers a report.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use sealpost_config::Config;
use sealpost_dns::Resolver;
use sealpost_sender_auth::DnsLookup;
use sealpost_sender_auth::report::{self, Reporter};
use sealpost_store::{DmarcReportRow, OutboundEnvelope, OutboundRecipient, Store};
use sealpost_types::date::{UtcDateTime, unix_now};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::cli::DmarcCommand;
use crate::exit::CliError;
use crate::manage::open_store;
use crate::queue_cli::parse_day;

/// How often `serve` looks for a finished day to report.
const REPORT_INTERVAL: Duration = Duration::from_secs(3600);

pub async fn command(config_path: &Path, command: DmarcCommand) -> Result<(), CliError> {
    let config = Config::load(config_path)?;
    let store = open_store(&config).await?;
    match command {
        DmarcCommand::Report { day } => {
            let day = match day {
                Some(day) => parse_day(&day)?,
                None => UtcDateTime::now().to_day(),
            };
            let reporter = reporter(&config, store.as_ref()).await?;
            let rows = store.dmarc_rows(&day).await?;
            if rows.is_empty() {
                println!("no DMARC report data for {day}");
            }
            for (domain, rows) in by_domain(rows) {
                let xml = report::aggregate_xml(&reporter, &domain, &day, &report_id(&day), &rows)
                    .map_err(|error| CliError::runtime(anyhow!("report for {domain}: {error}")))?;
                println!("{xml}");
            }
            Ok(())
        }
        DmarcCommand::Send { day } => {
            let days = match day {
                Some(day) => vec![parse_day(&day)?],
                None => {
                    store
                        .dmarc_days_before(&UtcDateTime::now().to_day())
                        .await?
                }
            };
            let resolver = Resolver::from_config(&config).map_err(CliError::usage)?;
            let reporter = reporter(&config, store.as_ref()).await?;
            let mut queued = 0;
            for day in days {
                queued += send_day(store.as_ref(), &resolver, &reporter, &day).await?;
            }
            println!("{queued} DMARC report(s) queued");
            Ok(())
        }
    }
}

/// Sends the reports of every finished day, now and then once an hour, until `shutdown`.
pub async fn run(
    config: Config,
    store: Arc<dyn Store>,
    resolver: Resolver,
    queue_waker: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        match send_finished_days(&config, store.as_ref(), &resolver).await {
            Ok(0) => {}
            Ok(queued) => {
                tracing::info!(queued, "DMARC aggregate reports queued");
                queue_waker.notify_one();
            }
            Err(error) => {
                tracing::warn!(error = %error.message(), "DMARC aggregate reports not sent")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(REPORT_INTERVAL) => {}
        }
    }
}

async fn send_finished_days(
    config: &Config,
    store: &dyn Store,
    resolver: &Resolver,
) -> Result<usize, CliError> {
    let days = store
        .dmarc_days_before(&UtcDateTime::now().to_day())
        .await?;
    if days.is_empty() {
        return Ok(0);
    }
    let reporter = reporter(config, store).await?;
    let mut queued = 0;
    for day in days {
        queued += send_day(store, resolver, &reporter, &day).await?;
    }
    Ok(queued)
}

/// The sender of the reports: `noreply-dmarc@` the domain we serve that the hostname
/// belongs to (else the first one), so that the queue DKIM-signs the report.
async fn reporter(config: &Config, store: &dyn Store) -> Result<Reporter, CliError> {
    let hostname = config.hostname.as_str().to_ascii_lowercase();
    let domains = store.list_domains().await?;
    let domain = domains
        .iter()
        .map(|domain| domain.as_str().to_ascii_lowercase())
        .find(|domain| hostname == *domain || hostname.ends_with(&format!(".{domain}")))
        .or_else(|| {
            domains
                .first()
                .map(|domain| domain.as_str().to_ascii_lowercase())
        })
        .unwrap_or_else(|| hostname.clone());
    Ok(Reporter {
        org_name: hostname.clone(),
        email: format!("noreply-dmarc@{domain}"),
        hostname,
    })
}

fn by_domain(rows: Vec<DmarcReportRow>) -> BTreeMap<String, Vec<DmarcReportRow>> {
    let mut domains: BTreeMap<String, Vec<DmarcReportRow>> = BTreeMap::new();
    for row in rows {
        domains
            .entry(row.policy_domain.clone())
            .or_default()
            .push(row);
    }
    domains
}

/// RFC 7489 §7.2.1.1: a report-id unique to this reporter.
fn report_id(day: &str) -> String {
    let random: u64 = rand::random();
    format!("{}.{random:016x}", day.replace('-', ""))
}

/// How long the data of a day whose report could not be sent for a temporary reason (DNS, the
/// store) is kept for another try.
const RETRY_DAYS: i64 = 3;

/// What became of one domain's report.
enum Sent {
    Queued,
    /// No destination may receive it (none in `rua`, none authorized, over every size
    /// limit): its data is of no use.
    Nowhere,
}

/// Queues the reports of one day, one per policy domain, and forgets their data once the
/// report is queued or has nowhere to go. A temporary failure keeps the data for the next
/// run, for [`RETRY_DAYS`] at most.
async fn send_day(
    store: &dyn Store,
    dns: &dyn DnsLookup,
    reporter: &Reporter,
    day: &str,
) -> Result<usize, CliError> {
    let mut queued = 0;
    for (domain, rows) in by_domain(store.dmarc_rows(day).await?) {
        let forget = match queue_report(store, dns, reporter, day, &domain, &rows).await {
            Ok(Sent::Queued) => {
                queued += 1;
                true
            }
            Ok(Sent::Nowhere) => true,
            Err(error) => {
                let give_up = days_ago(day) >= RETRY_DAYS;
                tracing::warn!(%error, domain, day, give_up, "DMARC report not sent");
                give_up
            }
        };
        if forget && let Err(error) = store.delete_dmarc_rows(day, &domain).await {
            tracing::warn!(%error, domain, day, "DMARC report data not forgotten");
        }
    }
    Ok(queued)
}

/// Whole days between `day` (YYYY-MM-DD) and today; 0 when it cannot be read.
fn days_ago(day: &str) -> i64 {
    match report::date_range(day) {
        Ok(range) => {
            (unix_now() - i64::try_from(range.begin).unwrap_or(i64::MAX)).div_euclid(86_400)
        }
        Err(_) => 0,
    }
}

async fn queue_report(
    store: &dyn Store,
    dns: &dyn DnsLookup,
    reporter: &Reporter,
    day: &str,
    domain: &str,
    rows: &[DmarcReportRow],
) -> Result<Sent, anyhow::Error> {
    // The policy the report says was published: the same row the XML takes it from.
    let published = rows
        .first()
        .map(|row| row.policy_published.as_str())
        .unwrap_or_default();
    let id = report_id(day);
    let xml = report::aggregate_xml(reporter, domain, day, &id, rows)?;
    let gz = report::gzip(&xml)?;
    // RFC 7489 §7.1: only destinations that accept reports for this domain; RFC 7489 §6.2:
    // not those whose size limit the report exceeds.
    let recipients: Vec<String> = report::checked_destinations(dns, domain, published)
        .await?
        .into_iter()
        .filter(|destination| {
            let fits = destination
                .max_size
                .is_none_or(|limit| gz.len() as u64 <= limit);
            if !fits {
                tracing::info!(address = %destination.address, domain, "DMARC report larger than its rua size limit; not sent there");
            }
            fits
        })
        .map(|destination| destination.address)
        .collect();
    if recipients.is_empty() {
        return Ok(Sent::Nowhere);
    }
    let date = UtcDateTime::now().to_rfc5322();
    let message = report::report_message(reporter, domain, day, &id, &date, &recipients, &gz)?;
    let envelope = OutboundEnvelope {
        from: None,
        recipients: recipients
            .iter()
            .map(|address| OutboundRecipient {
                address: address.clone(),
                notify: None,
                orcpt: None,
            })
            .collect(),
        ret: None,
        envid: None,
        submitted_by: None,
        require_tls: false,
    };
    store
        .accept_message(message.into(), unix_now(), &[], Some(envelope))
        .await?;
    tracing::info!(domain, day, to = %recipients.join(","), "DMARC aggregate report queued");
    Ok(Sent::Queued)
}
