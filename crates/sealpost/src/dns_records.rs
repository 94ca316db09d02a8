//! The DNS records a domain needs, in zone-file syntax (`NAME TTL IN TYPE DATA`).

use sealpost_store::DomainRecord;
use sealpost_types::Domain;

const TTL: u32 = 3600;

/// RFC 1035 §3.3.14: a TXT record is a list of character-strings of at most 255 octets each.
fn quoted_txt(text: &str) -> String {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(255);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = rest.split_at(cut);
        pieces.push(format!(
            "\"{}\"",
            piece.replace('\\', "\\\\").replace('"', "\\\"")
        ));
        rest = tail;
    }
    pieces.join(" ")
}

fn line(name: &str, kind: &str, data: &str) -> String {
    format!("{name} {TTL} IN {kind} {data}")
}

/// The records to publish for `domain`, whose mail is served by `hostname`.
pub fn records(domain: &DomainRecord, hostname: &Domain) -> Vec<String> {
    let name = format!("{}.", domain.name);
    let host = format!("{hostname}.");
    let postmaster = format!("postmaster@{}", domain.name);
    let mut out = vec![
        // RFC 5321 §5.1: mail for the domain goes to the MX host.
        line(&name, "MX", &format!("10 {host}")),
        // RFC 7208: only the MX hosts send for the domain; everything else fails.
        line(&name, "TXT", &quoted_txt("v=spf1 mx -all")),
    ];
    for key in &domain.dkim_keys {
        // RFC 6376 §3.6.2.2: the key lives at <selector>._domainkey.<domain>.
        out.push(line(
            &format!("{}._domainkey.{name}", key.selector),
            "TXT",
            &quoted_txt(&format!(
                "v=DKIM1; k={}; p={}",
                key.algorithm.key_type(),
                key.public_key_base64
            )),
        ));
    }
    // RFC 7489 §6.1: the policy at _dmarc.<domain>; reject what fails, reports to postmaster.
    out.push(line(
        &format!("_dmarc.{name}"),
        "TXT",
        &quoted_txt(&format!("v=DMARC1; p=reject; rua=mailto:{postmaster}")),
    ));
    // RFC 8461 §3.1: the policy's TXT record, whose id changes whenever the policy does, and
    // §3.2: the policy host mta-sts.<domain> (here the mail host, which must then serve the
    // policy below over HTTPS with a publicly trusted certificate).
    let policy = mta_sts_policy(hostname);
    out.push(line(
        &format!("_mta-sts.{name}"),
        "TXT",
        &quoted_txt(&format!("v=STSv1; id={}", policy_id(&policy))),
    ));
    out.push(line(&format!("mta-sts.{name}"), "CNAME", &host));
    out.push(format!(
        "; MTA-STS policy (RFC 8461 §3.2) to serve at https://mta-sts.{}/.well-known/mta-sts.txt \
         (text/plain); change mode to enforce once {hostname} has a publicly trusted certificate:",
        domain.name
    ));
    out.extend(policy.lines().map(|l| format!(";   {l}")));
    // RFC 8460 §3: where to send TLS reports about mail to this domain.
    out.push(line(
        &format!("_smtp._tls.{name}"),
        "TXT",
        &quoted_txt(&format!("v=TLSRPTv1; rua=mailto:{postmaster}")),
    ));
    // RFC 6186 §3 and RFC 8314 §5.1: clients find submission and access servers by SRV.
    for (service, priority, port) in [
        ("_submissions._tcp", 0, 465),
        ("_submission._tcp", 10, 587),
        ("_imaps._tcp", 0, 993),
        ("_imap._tcp", 10, 143),
        ("_pop3s._tcp", 0, 995),
        ("_pop3._tcp", 10, 110),
    ] {
        out.push(line(
            &format!("{service}.{name}"),
            "SRV",
            &format!("{priority} 1 {port} {host}"),
        ));
    }
    out
}

/// The MTA-STS policy file (RFC 8461 §3.2): mail for the domain goes to `hostname` only,
/// in testing mode (failures are reported, not enforced) and cached for a week.
fn mta_sts_policy(hostname: &Domain) -> String {
    format!("version: STSv1\nmode: testing\nmx: {hostname}\nmax_age: 604800\n")
}

/// RFC 8461 §3.1: `id` is 1-32 letters or digits that change with the policy: a hash of it
/// (FNV-1a, 64 bits, in hex).
fn policy_id(policy: &str) -> String {
    let hash = policy
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_txt_is_split_into_255_octet_strings() {
        let text = "a".repeat(600);
        let quoted = quoted_txt(&text);
        let pieces: Vec<&str> = quoted.split(' ').collect();
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[0].len(), 257);
        assert_eq!(pieces[2].len(), 92);
        assert_eq!(quoted_txt("say \"hi\""), "\"say \\\"hi\\\"\"");
    }

    #[test]
    fn records_cover_mx_spf_dkim_dmarc() {
        let keys = crate::dkim_keys::generate().unwrap();
        let domain = DomainRecord {
            name: Domain::parse("example.org").unwrap(),
            dkim_keys: keys,
        };
        let lines = records(&domain, &Domain::parse("mail.example.org").unwrap());
        assert_eq!(lines[0], "example.org. 3600 IN MX 10 mail.example.org.");
        assert!(lines[1].contains("v=spf1 mx -all"));
        assert!(
            lines.iter().any(
                |l| l.contains("._domainkey.example.org. 3600 IN TXT \"v=DKIM1; k=ed25519; p=")
            )
        );
        let rsa = lines.iter().find(|l| l.contains("k=rsa")).unwrap();
        assert!(rsa.matches('"').count() >= 4, "RSA key split: {rsa}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("_dmarc.example.org. 3600 IN TXT \"v=DMARC1; p=reject"))
        );
        let sts = lines
            .iter()
            .find(|l| l.starts_with("_mta-sts.example.org. 3600 IN TXT \"v=STSv1; id="))
            .unwrap();
        let id = sts.split("id=").nth(1).unwrap().trim_end_matches('"');
        assert!(
            id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{sts}"
        );
        assert!(
            lines.contains(&"mta-sts.example.org. 3600 IN CNAME mail.example.org.".to_string())
        );
        assert!(lines.contains(&";   mx: mail.example.org".to_string()));
        assert!(lines.contains(&";   version: STSv1".to_string()));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("_smtp._tls.example.org. 3600 IN TXT \"v=TLSRPTv1; rua="))
        );
    }
}
