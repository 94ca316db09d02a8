//! The aggregate report itself: RFC 7489 Appendix C XML, written by hand.
//!
//! Element names are `&'static str` constants of this file; every text value, whatever its
//! origin, goes through [`XmlWriter::element`], which escapes it. That is the only way text
//! enters the document.

use std::net::IpAddr;

use super::syntax::is_domain;
use super::{PublishedPolicy, ReportError, Reporter, date_range};
use sealpost_store::DmarcReportRow;

/// RFC 7489 Appendix C: one report for one day and one policy domain. `rows` are the
/// store's rows of that day and domain, already aggregated: each becomes one `<record>`
/// whose `<count>` is the row's count. The published policy is the first row's.
pub fn aggregate_xml(
    reporter: &Reporter,
    policy_domain: &str,
    day: &str,
    report_id: &str,
    rows: &[DmarcReportRow],
) -> Result<String, ReportError> {
    if !is_domain(policy_domain) {
        return Err(ReportError::InvalidDomain {
            field: "policy domain",
            value: policy_domain.to_string(),
        });
    }
    let range = date_range(day)?;
    let first = rows.first().ok_or(ReportError::NoRecords)?;
    let records = rows
        .iter()
        .enumerate()
        .map(|(index, row)| Record::read(index, row, policy_domain, day))
        .collect::<Result<Vec<_>, _>>()?;
    let policy = PublishedPolicy::parse(&first.policy_published);

    let mut xml = XmlWriter::new();
    xml.open("feedback");
    // RFC 7489 Appendix C: the schema's `version` element (xs:decimal) comes first.
    xml.element("version", "1.0");
    xml.open("report_metadata");
    xml.element("org_name", &reporter.org_name);
    xml.element("email", &reporter.email);
    xml.element("report_id", report_id);
    xml.open("date_range");
    xml.element("begin", &range.begin.to_string());
    xml.element("end", &range.end.to_string());
    xml.close("date_range");
    xml.close("report_metadata");

    xml.open("policy_published");
    xml.element("domain", &policy_domain.to_ascii_lowercase());
    xml.element("adkim", &policy.adkim);
    xml.element("aspf", &policy.aspf);
    xml.element("p", &policy.p);
    xml.element("sp", &policy.sp);
    xml.element("pct", &policy.pct.to_string());
    xml.close("policy_published");

    for record in &records {
        record.write(&mut xml);
    }
    xml.close("feedback");
    Ok(xml.finish())
}

/// One row, checked against the enumerations of the Appendix C schema.
struct Record<'a> {
    row: &'a DmarcReportRow,
    source_ip: IpAddr,
    disposition: &'static str,
    dkim_aligned: &'static str,
    spf_aligned: &'static str,
    override_reason: Option<&'static str>,
    dkim: Vec<DkimResult<'a>>,
    spf: SpfResult<'a>,
}

struct DkimResult<'a> {
    domain: &'a str,
    selector: Option<&'a str>,
    result: &'static str,
}

struct SpfResult<'a> {
    domain: &'a str,
    scope: &'static str,
    result: &'static str,
}

/// RFC 7489 Appendix C `DispositionType`.
const DISPOSITIONS: [&str; 3] = ["none", "quarantine", "reject"];
/// RFC 7489 Appendix C `DMARCResultType`.
const ALIGNED_RESULTS: [&str; 2] = ["pass", "fail"];
/// RFC 7489 Appendix C `PolicyOverrideType`.
const OVERRIDE_REASONS: [&str; 6] = [
    "forwarded",
    "sampled_out",
    "trusted_forwarder",
    "mailing_list",
    "local_policy",
    "other",
];
/// RFC 7489 Appendix C `DKIMResultType`.
const DKIM_RESULTS: [&str; 7] = [
    "none",
    "pass",
    "fail",
    "policy",
    "neutral",
    "temperror",
    "permerror",
];
/// RFC 7489 Appendix C `SPFDomainScope`.
const SPF_SCOPES: [&str; 2] = ["helo", "mfrom"];
/// RFC 7489 Appendix C `SPFResultType`.
const SPF_RESULTS: [&str; 7] = [
    "none",
    "neutral",
    "pass",
    "fail",
    "softfail",
    "temperror",
    "permerror",
];

/// The member of `allowed` equal to `value` ignoring case.
fn one_of(allowed: &[&'static str], value: &str) -> Option<&'static str> {
    allowed
        .iter()
        .copied()
        .find(|known| value.eq_ignore_ascii_case(known))
}

impl<'a> Record<'a> {
    /// A row the schema cannot express is refused: it is our own data, so a bad value is a
    /// bug to surface, not something to guess about in a report sent to someone else.
    fn read(
        index: usize,
        row: &'a DmarcReportRow,
        policy_domain: &str,
        day: &str,
    ) -> Result<Record<'a>, ReportError> {
        let invalid = |field: &'static str, value: &str| ReportError::InvalidRow {
            index,
            field,
            value: value.to_string(),
        };
        if row.day != day {
            return Err(invalid("day", &row.day));
        }
        if !row.policy_domain.eq_ignore_ascii_case(policy_domain) {
            return Err(invalid("policy_domain", &row.policy_domain));
        }
        let enumerated = |field: &'static str, allowed: &[&'static str], value: &str| {
            one_of(allowed, value).ok_or_else(|| invalid(field, value))
        };
        let override_reason = match row.override_reason.as_str() {
            "" => None,
            reason => Some(enumerated("override_reason", &OVERRIDE_REASONS, reason)?),
        };
        let dkim = row
            .dkim_results
            .split(';')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let words: Vec<&str> = entry.split_ascii_whitespace().collect();
                let (domain, selector, result) = match words.as_slice() {
                    [domain, selector, result] => (*domain, Some(*selector), *result),
                    // A signature whose selector was not recorded.
                    [domain, result] => (*domain, None, *result),
                    _ => return Err(invalid("dkim_results", &row.dkim_results)),
                };
                Ok(DkimResult {
                    domain,
                    selector,
                    result: enumerated("dkim_results", &DKIM_RESULTS, result)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let spf_words: Vec<&str> = row.spf_result.split_ascii_whitespace().collect();
        let spf = match spf_words.as_slice() {
            [domain, scope, result] => SpfResult {
                domain,
                scope: enumerated("spf_result", &SPF_SCOPES, scope)?,
                result: enumerated("spf_result", &SPF_RESULTS, result)?,
            },
            // RFC 7489 Appendix C: auth_results needs one spf element; SPF that was never
            // evaluated is reported as "none" for the MAIL FROM domain.
            [] => SpfResult {
                domain: &row.envelope_from,
                scope: "mfrom",
                result: "none",
            },
            _ => return Err(invalid("spf_result", &row.spf_result)),
        };
        Ok(Record {
            row,
            source_ip: row
                .source_ip
                .trim()
                .parse()
                .map_err(|_| invalid("source_ip", &row.source_ip))?,
            disposition: enumerated("disposition", &DISPOSITIONS, &row.disposition)?,
            dkim_aligned: enumerated("dkim_aligned", &ALIGNED_RESULTS, &row.dkim_aligned)?,
            spf_aligned: enumerated("spf_aligned", &ALIGNED_RESULTS, &row.spf_aligned)?,
            override_reason,
            dkim,
            spf,
        })
    }

    fn write(&self, xml: &mut XmlWriter) {
        xml.open("record");
        xml.open("row");
        xml.element("source_ip", &self.source_ip.to_string());
        xml.element("count", &self.row.count.to_string());
        xml.open("policy_evaluated");
        xml.element("disposition", self.disposition);
        xml.element("dkim", self.dkim_aligned);
        xml.element("spf", self.spf_aligned);
        if let Some(reason) = self.override_reason {
            xml.open("reason");
            xml.element("type", reason);
            xml.close("reason");
        }
        xml.close("policy_evaluated");
        xml.close("row");

        xml.open("identifiers");
        // RFC 7489 Appendix C: envelope_to is optional, envelope_from and header_from are
        // required (envelope_from stays empty for the null reverse-path).
        if !self.row.envelope_to.is_empty() {
            xml.element("envelope_to", &self.row.envelope_to);
        }
        xml.element("envelope_from", &self.row.envelope_from);
        xml.element("header_from", &self.row.header_from);
        xml.close("identifiers");

        xml.open("auth_results");
        for dkim in &self.dkim {
            xml.open("dkim");
            xml.element("domain", dkim.domain);
            // RFC 7489 Appendix C: the DKIM selector is optional.
            if let Some(selector) = dkim.selector {
                xml.element("selector", selector);
            }
            xml.element("result", dkim.result);
            xml.close("dkim");
        }
        xml.open("spf");
        xml.element("domain", self.spf.domain);
        xml.element("scope", self.spf.scope);
        xml.element("result", self.spf.result);
        xml.close("spf");
        xml.close("auth_results");
        xml.close("record");
    }
}

/// An indented XML document under construction.
struct XmlWriter {
    out: String,
    depth: usize,
}

impl XmlWriter {
    fn new() -> Self {
        XmlWriter {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            depth: 0,
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn open(&mut self, name: &'static str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    fn close(&mut self, name: &'static str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// `<name>text</name>` with `text` escaped.
    fn element(&mut self, name: &'static str, text: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        escape_into(&mut self.out, text);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn finish(self) -> String {
        self.out
    }
}

/// Appends `text` as XML character data: the five markup characters as entities (XML 1.0
/// §2.4), and the characters XML 1.0 §2.2 does not allow at all (control characters other
/// than tab, CR and LF; U+FFFE, U+FFFF) replaced by U+FFFD, since not even a character
/// reference may name them.
fn escape_into(out: &mut String, text: &str) {
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // A raw CR would come back as LF from any XML parser (XML 1.0 §2.11).
            '\r' => out.push_str("&#xD;"),
            '\t' | '\n' => out.push(character),
            '\u{0}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            _ => out.push(character),
        }
    }
}

#[cfg(test)]
pub(super) fn escape(text: &str) -> String {
    let mut out = String::new();
    escape_into(&mut out, text);
    out
}
