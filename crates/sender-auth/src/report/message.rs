//! The mail that carries one aggregate report (RFC 7489 §7.2.1.1): a MIME message with a
//! short text part and the gzip-compressed XML attached.

use std::io::Write;

use base64::Engine;
use flate2::Compression;
use flate2::write::GzEncoder;

use super::syntax::{is_address, is_domain, is_report_id, is_single_line_text};
use super::{ReportError, Reporter, date_range};

/// RFC 7489 §7.2.1.1: "The aggregate data MUST be an XML file that SHOULD be subjected to
/// GZIP compression" when sent by mail; this is that compression of [`super::aggregate_xml`].
pub fn gzip(xml: &str) -> Result<Vec<u8>, ReportError> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(xml.as_bytes())?;
    Ok(encoder.finish()?)
}

/// No part of the message can contain a line starting with `--=_`: the text part is ours
/// and base64 lines have no `-` or `_` (RFC 2045 §6.8), so a fixed boundary is safe
/// (RFC 2046 §5.1.1).
const BOUNDARY: &str = "=_sealpost_dmarc_aggregate_report";

/// RFC 5322 §2.1.1: lines SHOULD stay within 78 characters, so header fields are folded at
/// the spaces where the grammar allows FWS.
const FOLD_AT: usize = 78;

/// RFC 2045 §6.8: base64 lines are at most 76 characters.
const BASE64_LINE: usize = 76;

/// The whole RFC 5322 message (CRLF line ends) carrying the report `gz` (from [`gzip`]) about
/// `policy_domain` for `day` to the addresses `to`. `date` is the Date field's value, already
/// formatted per RFC 5322 §3.3. Every value that reaches a header field is checked first
/// (domains LDH only, addresses dot-atom@LDH), so nothing can inject a field.
pub fn report_message(
    reporter: &Reporter,
    policy_domain: &str,
    day: &str,
    report_id: &str,
    date: &str,
    to: &[String],
    gz: &[u8],
) -> Result<Vec<u8>, ReportError> {
    let domain = |field: &'static str, value: &str| {
        if is_domain(value) {
            Ok(())
        } else {
            Err(ReportError::InvalidDomain {
                field,
                value: value.to_string(),
            })
        }
    };
    let address = |field: &'static str, value: &str| {
        if is_address(value) {
            Ok(())
        } else {
            Err(ReportError::InvalidAddress {
                field,
                value: value.to_string(),
            })
        }
    };
    domain("policy domain", policy_domain)?;
    domain("org_name", &reporter.org_name)?;
    domain("hostname", &reporter.hostname)?;
    address("reporter email", &reporter.email)?;
    if to.is_empty() {
        return Err(ReportError::NoRecipients);
    }
    for recipient in to {
        address("recipient", recipient)?;
    }
    if !is_report_id(report_id) {
        return Err(ReportError::InvalidReportId(report_id.to_string()));
    }
    if !is_single_line_text(date) {
        return Err(ReportError::InvalidDate(date.to_string()));
    }
    let range = date_range(day)?;
    let policy_domain = policy_domain.to_ascii_lowercase();

    let mut message = Vec::with_capacity(gz.len() * 4 / 3 + 2048);
    push_field(&mut message, "From", &[reporter.email.as_str()]);
    // RFC 5322 §3.4: address-list = address *("," address).
    let mut recipients: Vec<String> = to.iter().map(|recipient| format!("{recipient},")).collect();
    if let Some(last) = recipients.last_mut() {
        last.pop();
    }
    let recipients: Vec<&str> = recipients.iter().map(String::as_str).collect();
    push_field(&mut message, "To", &recipients);
    push_field(&mut message, "Date", &[date.trim()]);
    // RFC 7489 §7.2.1.1: dmarc-subject = "Report" "Domain:" domain-name "Submitter:"
    // domain-name "Report-ID:" msg-id, written with the angle brackets of the RFC's example.
    let bracketed_id = format!("<{report_id}>");
    push_field(
        &mut message,
        "Subject",
        &[
            "Report",
            "Domain:",
            &policy_domain,
            "Submitter:",
            &reporter.org_name,
            "Report-ID:",
            &bracketed_id,
        ],
    );
    let message_id = format!("<{report_id}@{}>", reporter.hostname);
    push_field(&mut message, "Message-ID", &[&message_id]);
    push_field(&mut message, "MIME-Version", &["1.0"]);
    let boundary_parameter = format!("boundary=\"{BOUNDARY}\"");
    push_field(
        &mut message,
        "Content-Type",
        &["multipart/mixed;", &boundary_parameter],
    );
    // RFC 3834 §5: a report is generated automatically; auto-responders must not answer it.
    push_field(&mut message, "Auto-Submitted", &["auto-generated"]);
    // RFC 5322 §2.1: one empty line ends the header.
    message.extend_from_slice(b"\r\n");

    message.extend_from_slice(b"This is a multipart message in MIME format.\r\n");
    push_line(&mut message, &format!("--{BOUNDARY}"));
    push_line(&mut message, "Content-Type: text/plain; charset=us-ascii");
    push_line(&mut message, "Content-Transfer-Encoding: 7bit");
    push_line(&mut message, "");
    push_line(
        &mut message,
        &format!(
            "This is a DMARC aggregate report from {}",
            reporter.org_name
        ),
    );
    push_line(
        &mut message,
        &format!("for {policy_domain}, covering {day} (UTC)."),
    );
    push_line(&mut message, "");

    // RFC 7489 §7.2.1.1: filename = receiver "!" policy-domain "!" begin-timestamp "!"
    // end-timestamp "." extension, where the extension of gzipped XML is "xml.gz".
    let filename = format!(
        "{}!{policy_domain}!{}!{}.xml.gz",
        reporter.org_name, range.begin, range.end
    );
    push_line(&mut message, &format!("--{BOUNDARY}"));
    // RFC 7489 §7.2.1.1: compressed aggregate data SHOULD be sent as application/gzip.
    push_line(&mut message, "Content-Type: application/gzip");
    push_line(&mut message, "Content-Transfer-Encoding: base64");
    push_line(&mut message, "Content-Disposition: attachment;");
    push_line(&mut message, &format!(" filename=\"{filename}\""));
    push_line(&mut message, "");
    let encoded = base64::engine::general_purpose::STANDARD.encode(gz);
    for line in encoded.as_bytes().chunks(BASE64_LINE) {
        message.extend_from_slice(line);
        message.extend_from_slice(b"\r\n");
    }
    push_line(&mut message, &format!("--{BOUNDARY}--"));
    Ok(message)
}

fn push_line(message: &mut Vec<u8>, line: &str) {
    message.extend_from_slice(line.as_bytes());
    message.extend_from_slice(b"\r\n");
}

/// `Name: word word ...`, folded (CRLF before the space) wherever the next word would pass
/// [`FOLD_AT`]. Words longer than a line stay whole: a line may reach 998 characters
/// (RFC 5322 §2.1.1), which checked domains and addresses cannot exceed.
fn push_field(message: &mut Vec<u8>, name: &str, words: &[&str]) {
    let mut line_length = name.len() + 1;
    message.extend_from_slice(name.as_bytes());
    message.push(b':');
    for word in words {
        if line_length + 1 + word.len() > FOLD_AT && line_length > name.len() + 1 {
            message.extend_from_slice(b"\r\n");
            line_length = 0;
        }
        message.push(b' ');
        message.extend_from_slice(word.as_bytes());
        line_length += 1 + word.len();
    }
    message.extend_from_slice(b"\r\n");
}
