//! DMARC aggregate reports (RFC 7489 §7.2, XML schema in Appendix C): what we send, once a
//! day, to the Domain Owners whose policies we applied.
//!
//! The store aggregates what DMARC evaluation saw into [`DmarcReportRow`]s, one per
//! (day, policy domain, source, identifiers, results). For one day and one policy domain:
//! - [`destinations`] picks the `rua` addresses that may receive the report (RFC 7489 §7.1),
//! - [`aggregate_xml`] writes the report, [`gzip`] compresses it (RFC 7489 §7.2.1.1),
//! - [`report_message`] wraps it in the mail that carries it.
//!
//! Everything here is built by hand from strings: every value that came from the network
//! (domains, addresses, identifiers) is either checked against a strict syntax before it
//! enters a header field, or escaped before it enters the XML.

mod destinations;
mod message;
mod syntax;
mod xml;

#[cfg(test)]
mod tests;

pub use destinations::{Destination, checked_destinations, destinations};
pub use message::{gzip, report_message};
pub use xml::aggregate_xml;

pub use sealpost_store::DmarcReportRow;

/// Who sends the reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    /// RFC 7489 Appendix C `org_name`; also the `receiver` of the attachment's filename and
    /// the `Submitter` of the Subject (RFC 7489 §7.2.1.1), so it must be a domain name: our
    /// hostname.
    pub org_name: String,
    /// The report's From address and the XML `email`, e.g. `dmarc-reports@mail.example.org`.
    pub email: String,
    /// Our hostname, the right-hand side of the Message-ID.
    pub hostname: String,
}

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("invalid report day {0:?}: expected YYYY-MM-DD, from 1970-01-01 on")]
    InvalidDay(String),
    #[error("invalid {field} {value:?}: only letters, digits, hyphens and dots are accepted")]
    InvalidDomain { field: &'static str, value: String },
    #[error("invalid {field} {value:?}: expected a plain local-part@domain address")]
    InvalidAddress { field: &'static str, value: String },
    #[error("invalid report id {0:?}: expected 1 to 64 letters, digits, '-', '_' or inner dots")]
    InvalidReportId(String),
    #[error("invalid Date field {0:?}: expected printable ASCII on one line")]
    InvalidDate(String),
    #[error("a report needs at least one recipient")]
    NoRecipients,
    #[error("a report needs at least one record")]
    NoRecords,
    #[error("row {index}: invalid {field} {value:?}")]
    InvalidRow {
        index: usize,
        field: &'static str,
        value: String,
    },
    #[error("gzip compression failed: {0}")]
    Compression(#[from] std::io::Error),
}

/// The `policy_published` text of a [`DmarcReportRow`], with the RFC 7489 §6.3 default of
/// every tag that is missing or not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPolicy {
    /// `r` or `s`.
    pub adkim: String,
    /// `r` or `s`.
    pub aspf: String,
    /// `none`, `quarantine` or `reject`.
    pub p: String,
    /// `none`, `quarantine` or `reject`.
    pub sp: String,
    /// 0..=100.
    pub pct: u8,
    /// The `rua` URIs as published, size suffix included (`mailto:a@example.org!10m`).
    pub rua: Vec<String>,
}

impl PublishedPolicy {
    /// Reads `tag=value` pairs separated by `;` (our own writing of the record). For a tag
    /// given twice the first wins, as for the record itself; never fails.
    pub fn parse(text: &str) -> PublishedPolicy {
        let mut adkim = None;
        let mut aspf = None;
        let mut p = None;
        let mut sp = None;
        let mut pct = None;
        let mut rua = None;
        for tag in text.split(';') {
            let Some((name, value)) = tag.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "adkim" => adkim = adkim.or_else(|| alignment(value)),
                "aspf" => aspf = aspf.or_else(|| alignment(value)),
                "p" => p = p.or_else(|| disposition(value)),
                "sp" => sp = sp.or_else(|| disposition(value)),
                "pct" => pct = pct.or_else(|| percent(value)),
                "rua" => {
                    rua = rua.or_else(|| {
                        Some(
                            value
                                .split(',')
                                .map(str::trim)
                                .filter(|uri| !uri.is_empty())
                                .map(str::to_string)
                                .collect::<Vec<_>>(),
                        )
                    })
                }
                _ => {}
            }
        }
        // RFC 7489 §6.6.3 step 6: a record without a valid p (kept for its rua) is p=none.
        let p = p.unwrap_or("none");
        PublishedPolicy {
            // RFC 7489 §6.3: adkim and aspf default to relaxed.
            adkim: adkim.unwrap_or("r").to_string(),
            aspf: aspf.unwrap_or("r").to_string(),
            p: p.to_string(),
            // RFC 7489 §6.3: when sp is absent, p applies to subdomains too.
            sp: sp.unwrap_or(p).to_string(),
            // RFC 7489 §6.3: pct defaults to 100.
            pct: pct.unwrap_or(100),
            rua: rua.unwrap_or_default(),
        }
    }
}

fn alignment(value: &str) -> Option<&'static str> {
    ["r", "s"]
        .into_iter()
        .find(|known| value.eq_ignore_ascii_case(known))
}

fn disposition(value: &str) -> Option<&'static str> {
    ["none", "quarantine", "reject"]
        .into_iter()
        .find(|known| value.eq_ignore_ascii_case(known))
}

fn percent(value: &str) -> Option<u8> {
    // RFC 7489 §6.4: pct is 1*3DIGIT, of which only 0..=100 makes sense.
    if value.is_empty() || value.len() > 3 || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    value.parse::<u8>().ok().filter(|pct| *pct <= 100)
}

/// The time a report covers, in seconds since the Unix epoch (RFC 7489 Appendix C
/// `date_range`: both ends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub begin: u64,
    pub end: u64,
}

const SECONDS_PER_DAY: u64 = 86_400;

/// The UTC day `YYYY-MM-DD` as a [`DateRange`]: its midnight to one second before the next.
pub fn date_range(day: &str) -> Result<DateRange, ReportError> {
    let invalid = || ReportError::InvalidDay(day.to_string());
    let bytes = day.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !shaped {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| {
        day.get(range)
            .and_then(|digits| digits.parse::<u64>().ok())
            .ok_or_else(invalid)
    };
    let (year, month, day_of_month) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if year < 1970 || !(1..=12).contains(&month) {
        return Err(invalid());
    }
    if day_of_month < 1 || day_of_month > days_in_month(year, month) {
        return Err(invalid());
    }
    let begin = days_since_epoch(year, month, day_of_month) * SECONDS_PER_DAY;
    Ok(DateRange {
        begin,
        end: begin + SECONDS_PER_DAY - 1,
    })
}

fn is_leap_year(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian calendar), for a valid date
/// from 1970 on.
fn days_since_epoch(year: u64, month: u64, day_of_month: u64) -> u64 {
    let days_before_year: u64 = (1970..year)
        .map(|earlier| if is_leap_year(earlier) { 366 } else { 365 })
        .sum();
    let days_before_month: u64 = (1..month).map(|earlier| days_in_month(year, earlier)).sum();
    days_before_year + days_before_month + day_of_month - 1
}
