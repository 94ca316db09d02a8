//! Unit tests of the report builder, one file per part: the XML, the message, the
//! destinations. The helpers here build rows and read the XML back.

mod destinations;
mod message;
mod xml;

use super::*;

const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// 2024-03-01T00:00:00Z and one second before the next midnight.
const MARCH_1_BEGIN: u64 = 1_709_251_200;
const MARCH_1_END: u64 = 1_709_337_599;

fn reporter() -> Reporter {
    Reporter {
        org_name: "mail.example.org".to_string(),
        email: "dmarc-reports@mail.example.org".to_string(),
        hostname: "mail.example.org".to_string(),
    }
}

fn row() -> DmarcReportRow {
    DmarcReportRow {
        day: "2024-03-01".to_string(),
        policy_domain: "example.com".to_string(),
        policy_published: "adkim=s;aspf=r;p=reject;sp=quarantine;pct=50;\
                           rua=mailto:dmarc@example.com"
            .to_string(),
        source_ip: "192.0.2.1".to_string(),
        header_from: "example.com".to_string(),
        envelope_from: "bounces.example.com".to_string(),
        envelope_to: "example.org".to_string(),
        disposition: "reject".to_string(),
        dkim_aligned: "fail".to_string(),
        spf_aligned: "fail".to_string(),
        override_reason: String::new(),
        dkim_results: "example.com sel1 fail; other.example s2 pass".to_string(),
        spf_result: "bounces.example.com mfrom fail".to_string(),
        count: 3,
    }
}

fn second_row() -> DmarcReportRow {
    DmarcReportRow {
        source_ip: "2001:db8::1".to_string(),
        header_from: "news.example.com".to_string(),
        envelope_from: String::new(),
        envelope_to: String::new(),
        disposition: "none".to_string(),
        dkim_aligned: "pass".to_string(),
        spf_aligned: "fail".to_string(),
        override_reason: "mailing_list".to_string(),
        dkim_results: String::new(),
        spf_result: "mx.example.net helo pass".to_string(),
        count: 1,
        ..row()
    }
}

/// The leaf elements of `xml` as (path, unescaped text), in document order: a tiny reader
/// that also checks the document is well formed (declaration first, tags balanced, no text
/// outside leaves, no markup character or unknown entity inside text).
fn leaves(xml: &str) -> Vec<(String, String)> {
    let mut rest = xml
        .strip_prefix(DECLARATION)
        .expect("XML declaration first");
    let mut path: Vec<String> = Vec::new();
    let mut in_leaf = false;
    let mut found = Vec::new();
    while let Some(start) = rest.find('<') {
        let text = &rest[..start];
        let end = start + rest[start..].find('>').expect("tag closed");
        let tag = &rest[start + 1..end];
        assert!(!text.contains('>'), "raw > in {text:?}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                path.last().map(String::as_str),
                Some(name),
                "unbalanced </{name}>"
            );
            if in_leaf {
                found.push((path.join("/"), unescape(text)));
            } else {
                assert!(text.trim().is_empty(), "text {text:?} around elements");
            }
            path.pop();
            in_leaf = false;
        } else {
            assert!(text.trim().is_empty(), "text {text:?} before <{tag}>");
            assert!(
                tag.bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte == b'_'),
                "odd tag <{tag}>"
            );
            path.push(tag.to_string());
            in_leaf = true;
        }
        rest = &rest[end + 1..];
    }
    assert!(path.is_empty(), "unclosed {path:?}");
    assert!(rest.trim().is_empty(), "trailing {rest:?}");
    found
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(position) = rest.find('&') {
        out.push_str(&rest[..position]);
        let entity_end = position + rest[position..].find(';').expect("entity ends with ;");
        out.push(match &rest[position + 1..entity_end] {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            "#xD" => '\r',
            other => panic!("unknown entity &{other};"),
        });
        rest = &rest[entity_end + 1..];
    }
    out.push_str(rest);
    out
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(path, text)| (path.to_string(), text.to_string()))
        .collect()
}

/// The text of the one leaf at `path`.
fn leaf(xml: &str, path: &str) -> String {
    let matching: Vec<String> = leaves(xml)
        .into_iter()
        .filter(|(found, _)| found == path)
        .map(|(_, text)| text)
        .collect();
    assert_eq!(matching.len(), 1, "{path} in {xml}");
    matching[0].clone()
}

fn report(rows: &[DmarcReportRow]) -> Result<String, ReportError> {
    aggregate_xml(&reporter(), "example.com", "2024-03-01", "20240301.1", rows)
}
