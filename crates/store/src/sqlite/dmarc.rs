//! DMARC aggregate report data (RFC 7489 §7.2): messages counted per day, policy domain,
//! source and outcome, until the day's report is sent.

use rusqlite::{Connection, params};

use super::rows;
use crate::{DmarcReportRow, StoreResult};

/// At most this many rows per day and policy domain: the rows a domain owner's own mail can
/// add (each new selector or address is a row) stop growing there, and so does its report.
/// Messages that would need a new row past it are not counted.
pub(crate) const MAX_ROWS_PER_DOMAIN_AND_DAY: i64 = 5000;

/// Adds to the counts; the published policy is the latest seen.
pub(crate) fn record(conn: &Connection, report_rows: &[DmarcReportRow]) -> StoreResult<()> {
    let mut update = conn.prepare_cached(
        "UPDATE dmarc_rows SET count = count + ?13, policy_published = ?14 \
         WHERE day = ?1 AND policy_domain = ?2 AND source_ip = ?3 AND header_from = ?4 \
         AND envelope_from = ?5 AND envelope_to = ?6 AND disposition = ?7 \
         AND dkim_aligned = ?8 AND spf_aligned = ?9 AND override_reason = ?10 \
         AND dkim_results = ?11 AND spf_result = ?12",
    )?;
    let mut rows_of_domain = conn
        .prepare_cached("SELECT count(*) FROM dmarc_rows WHERE day = ?1 AND policy_domain = ?2")?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO dmarc_rows (day, policy_domain, source_ip, header_from, envelope_from, \
         envelope_to, disposition, dkim_aligned, spf_aligned, override_reason, dkim_results, \
         spf_result, count, policy_published) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    for row in report_rows {
        let count = i64::try_from(row.count).unwrap_or(i64::MAX);
        let values = params![
            row.day,
            row.policy_domain,
            row.source_ip,
            row.header_from,
            row.envelope_from,
            row.envelope_to,
            row.disposition,
            row.dkim_aligned,
            row.spf_aligned,
            row.override_reason,
            row.dkim_results,
            row.spf_result,
            count,
            row.policy_published,
        ];
        if update.execute(values)? > 0 {
            continue;
        }
        let existing: i64 = rows_of_domain
            .query_row(params![row.day, row.policy_domain], |result| result.get(0))?;
        if existing < MAX_ROWS_PER_DOMAIN_AND_DAY {
            insert.execute(values)?;
        }
    }
    Ok(())
}

pub(crate) fn day_rows(conn: &Connection, day: &str) -> StoreResult<Vec<DmarcReportRow>> {
    rows::collect(
        conn,
        "SELECT day, policy_domain, policy_published, source_ip, header_from, envelope_from, \
         envelope_to, disposition, dkim_aligned, spf_aligned, override_reason, dkim_results, \
         spf_result, count FROM dmarc_rows WHERE day = ?1 \
         ORDER BY policy_domain, source_ip, header_from, envelope_from, envelope_to, \
         disposition, dkim_aligned, spf_aligned, override_reason, dkim_results, spf_result",
        [day],
        |row| {
            let count: i64 = rows::get(row, 13)?;
            Ok(DmarcReportRow {
                day: rows::get(row, 0)?,
                policy_domain: rows::get(row, 1)?,
                policy_published: rows::get(row, 2)?,
                source_ip: rows::get(row, 3)?,
                header_from: rows::get(row, 4)?,
                envelope_from: rows::get(row, 5)?,
                envelope_to: rows::get(row, 6)?,
                disposition: rows::get(row, 7)?,
                dkim_aligned: rows::get(row, 8)?,
                spf_aligned: rows::get(row, 9)?,
                override_reason: rows::get(row, 10)?,
                dkim_results: rows::get(row, 11)?,
                spf_result: rows::get(row, 12)?,
                count: u64::try_from(count).map_err(|_| rows::corrupt("count", count))?,
            })
        },
    )
}

pub(crate) fn days_before(conn: &Connection, day: &str) -> StoreResult<Vec<String>> {
    rows::collect(
        conn,
        "SELECT DISTINCT day FROM dmarc_rows WHERE day < ?1 ORDER BY day",
        [day],
        |row| rows::get(row, 0),
    )
}

pub(crate) fn delete(conn: &Connection, day: &str, policy_domain: &str) -> StoreResult<()> {
    conn.execute(
        "DELETE FROM dmarc_rows WHERE day = ?1 AND policy_domain = ?2",
        params![day, policy_domain],
    )?;
    Ok(())
}
