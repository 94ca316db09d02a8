use std::path::Path;

use super::*;

const MINIMAL: &str = r#"
hostname = "mail.example.com"
data_dir = "data"
[tls]
cert = "cert.pem"
key = "key.pem"
"#;

/// The example of CONTRACT.md, verbatim.
const CONTRACT_EXAMPLE: &str = r#"
hostname = "mail.example.com"      # required: greeting/EHLO name, authserv-id, default TLS name
data_dir = "/var/lib/sealpost"     # required: embedded store, message blobs, queue, keys

[tls]
cert = "cert.pem"                  # PEM chain (leaf first)
key  = "key.pem"                   # PEM private key: ECDSA, Ed25519 or RSA

[listen]                           # each a list of "ip:port"; a service left out is off
smtp        = ["0.0.0.0:25"]       # MTA: mail for local domains; STARTTLS offered; no AUTH
submission  = ["0.0.0.0:587"]      # STARTTLS required before AUTH (RFC 6409)
submissions = ["0.0.0.0:465"]      # implicit TLS (RFC 8314)
imap        = ["0.0.0.0:143"]      # STARTTLS required before LOGIN/AUTHENTICATE
imaps       = ["0.0.0.0:993"]
pop3        = ["0.0.0.0:110"]      # STLS required before USER/PASS/AUTH
pop3s       = ["0.0.0.0:995"]

[store]
backend = "sqlite"                 # default, embedded in data_dir; "postgres" adds: url = "postgres://…"

[dns]
nameservers = ["127.0.0.1:53"]     # optional; default: the system resolver (/etc/resolv.conf)

[outbound]
remote_port = 25                   # TCP port used to reach remote MX hosts (set only in tests)
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/sealpost/sealpost.toml"))
}

fn error_of(text: &str) -> String {
    parse(text).expect_err("should fail").to_string()
}

#[test]
fn contract_example_parses() {
    let config = parse(CONTRACT_EXAMPLE).unwrap();
    assert_eq!(config.hostname.as_str(), "mail.example.com");
    assert_eq!(config.listen.len(), 7);
    assert_eq!(config.data_dir, Path::new("/var/lib/sealpost"));
    assert_eq!(config.tls.default.cert, Path::new("/etc/sealpost/cert.pem"));
    assert_eq!(config.dns_nameservers.len(), 1);
    assert_eq!(config.outbound_remote_port, 25);
}

#[test]
fn defaults_open_nothing() {
    let config = parse(MINIMAL).unwrap();
    assert!(config.listen.is_empty());
    assert_eq!(config.store, StoreConfig::Sqlite);
    assert_eq!(config.limits.max_connections_per_ip, 50);
    assert_eq!(config.limits.max_sessions_per_user_ip, 10);
    assert_eq!(config.log_level, "info");
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.data_dir, Path::new("/etc/sealpost/data"));
    assert_eq!(config.tls.default.key, Path::new("/etc/sealpost/key.pem"));
    let bare = Config::parse(MINIMAL, Path::new("sealpost.toml")).unwrap();
    assert!(bare.data_dir.is_absolute());
    assert_eq!(bare.data_dir, std::env::current_dir().unwrap().join("data"));
}

#[test]
fn unknown_keys_are_named_in_every_table() {
    let cases = [
        ("colour = 1\n", "[top level]"),
        ("[tls]\ncert = \"c\"\nkey = \"k\"\ncolour = 1\n", "[tls]"),
        ("[listen]\nsmtps = [\"0.0.0.0:465\"]\n", "[listen]"),
        ("[store]\ncolour = 1\n", "[store]"),
        ("[dns]\ncolour = 1\n", "[dns]"),
        ("[outbound]\ncolour = 1\n", "[outbound]"),
        ("[limits]\ncolour = 1\n", "[limits]"),
        ("[log]\ncolour = 1\n", "[log]"),
        ("[smtp]\ncolour = 1\n", "[smtp]"),
        (
            "[[tls.certificate]]\ncert = \"a\"\nkey = \"b\"\ncolour = 1\n",
            "[[tls.certificate]]",
        ),
        ("[nonsense]\n", "top"),
    ];
    for (extra, table) in cases {
        let text = if extra.starts_with("[tls]") {
            format!("hostname = \"h.example\"\ndata_dir = \"d\"\n{extra}")
        } else {
            format!("{MINIMAL}{extra}")
        };
        let text = if extra.starts_with("colour") {
            format!("colour = 1\n{MINIMAL}")
        } else {
            text
        };
        let error = error_of(&text);
        let key = if extra.contains("smtps") {
            "smtps"
        } else if extra.contains("nonsense") {
            "nonsense"
        } else {
            "colour"
        };
        assert!(error.contains(&format!("`{key}`")), "{table}: {error}");
        assert!(
            error.starts_with("/etc/sealpost/sealpost.toml: line "),
            "{table}: {error}"
        );
        if table.starts_with('[') && table != "[top level]" {
            assert!(error.contains(&format!("in {table}")), "{table}: {error}");
        }
    }
}

#[test]
fn bad_values_are_named() {
    let bad_listen = format!("{MINIMAL}[listen]\nsmtp = [\"localhost:25\"]\n");
    assert!(error_of(&bad_listen).contains("listen.smtp: \"localhost:25\""));
    let twice =
        format!("{MINIMAL}[listen]\nsmtp = [\"127.0.0.1:25\"]\nimap = [\"127.0.0.1:25\"]\n");
    assert!(error_of(&twice).contains("already used by listen.smtp"));
    let bad_host = MINIMAL.replace("mail.example.com", "mail_example");
    assert!(error_of(&bad_host).contains("hostname \"mail_example\""));
    let postgres = format!("{MINIMAL}[store]\nbackend = \"postgres\"\nurl = \"postgres://x\"\n");
    assert!(error_of(&postgres).contains("store.backend"));
    let zero = format!("{MINIMAL}[limits]\nmax_connections = 0\n");
    assert!(error_of(&zero).contains("limits.max_connections"));
    let level = format!("{MINIMAL}[log]\nlevel = \"loud\"\n");
    assert!(error_of(&level).contains("log.level"));
    assert!(error_of("data_dir = \"d\"\n[tls]\ncert = \"c\"\nkey = \"k\"\n").contains("hostname"));
}

#[test]
fn missing_file_is_named() {
    let error = Config::load(Path::new("/nonexistent/sealpost.toml"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("/nonexistent/sealpost.toml"), "{error}");
}

#[test]
fn save_sent_is_on_unless_turned_off() {
    assert!(parse(MINIMAL).unwrap().smtp.save_sent);
    let off = format!("{MINIMAL}[smtp]\nsave_sent = false\n");
    assert!(!parse(&off).unwrap().smtp.save_sent);
    let on = format!("{MINIMAL}[smtp]\nsave_sent = true\n");
    assert!(parse(&on).unwrap().smtp.save_sent);
    let error = error_of(&format!("{MINIMAL}[smtp]\nsave_sent = \"no\"\n"));
    assert!(error.contains("in [smtp]"), "{error}");
    assert!(error.contains("expected a boolean"), "{error}");
}

#[test]
fn sender_auth_defaults_are_safe() {
    let config = parse(MINIMAL).unwrap();
    let auth = &config.sender_auth;
    assert!(auth.enabled);
    assert_eq!(auth.rules.dmarc_reject, FailureChoice::Reject);
    assert_eq!(auth.rules.dmarc_quarantine, FailureChoice::Junk);
    assert!(auth.rules.defer_on_temperror);
    assert!(auth.rules.reject_ambiguous_from);
    assert!(auth.rules.trusted_arc_sealers.is_empty());
    assert_eq!(auth.rules_for("example.com"), &auth.rules);
}

#[test]
fn sender_auth_domains_override_the_global_rules() {
    let config = parse(&format!(
        "{MINIMAL}\n[sender_auth]\ndmarc_quarantine = \"deliver\"\ntrusted_arc_sealers = [\"Lists.Example.org\"]\n\
         [sender_auth.domain.\"Example.COM\"]\ndmarc_reject = \"junk\"\n"
    ))
    .unwrap();
    let auth = &config.sender_auth;
    assert_eq!(auth.rules.dmarc_quarantine, FailureChoice::Deliver);
    assert_eq!(auth.rules.trusted_arc_sealers, ["lists.example.org"]);
    let example = auth.rules_for("example.com.");
    assert_eq!(example.dmarc_reject, FailureChoice::Junk);
    // Keys left out of the domain's table keep the global values.
    assert_eq!(example.dmarc_quarantine, FailureChoice::Deliver);
    assert_eq!(example.trusted_arc_sealers, ["lists.example.org"]);
    assert_eq!(
        auth.rules_for("other.org").dmarc_reject,
        FailureChoice::Reject
    );
}

#[test]
fn sender_auth_errors_name_the_key() {
    let error = error_of(&format!(
        "{MINIMAL}\n[sender_auth]\ndmarc_reject = \"drop\"\n"
    ));
    assert!(error.contains("sender_auth.dmarc_reject"), "{error}");
    let error = error_of(&format!(
        "{MINIMAL}\n[sender_auth.domain.\"example.com\"]\ndmarc_quarantine = \"maybe\"\n"
    ));
    assert!(
        error.contains("sender_auth.domain.\"example.com\".dmarc_quarantine"),
        "{error}"
    );
    let error = error_of(&format!("{MINIMAL}\n[sender_auth]\ncolour = 1\n"));
    assert!(error.contains("colour"), "{error}");
    let error = error_of(&format!(
        "{MINIMAL}\n[sender_auth]\ntrusted_arc_sealers = [\"not a domain\"]\n"
    ));
    assert!(error.contains("trusted_arc_sealers"), "{error}");
}
