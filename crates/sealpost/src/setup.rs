//! `sealpost demo` and `sealpost quickstart`: a working server without reading a manual.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use sealpost_config::Config;
use sealpost_store::Store;
use sealpost_types::{Address, Domain, Secret};
use tokio_util::sync::CancellationToken;

use crate::exit::CliError;
use crate::manage::{add_domain, generate_password, hash, open_store};
use crate::{dkim_keys, dns_records, serve};

const DEMO_PORTS: [(&str, u16); 7] = [
    ("smtp", 2525),
    ("submission", 5870),
    ("submissions", 4650),
    ("imap", 1430),
    ("imaps", 9930),
    ("pop3", 1100),
    ("pop3s", 9950),
];
const STANDARD_PORTS: [(&str, u16); 7] = [
    ("smtp", 25),
    ("submission", 587),
    ("submissions", 465),
    ("imap", 143),
    ("imaps", 993),
    ("pop3", 110),
    ("pop3s", 995),
];

fn config_text(hostname: &str, ip: &str, ports: &[(&str, u16)]) -> String {
    let mut text = format!(
        "# sealpost configuration; every key is described in the README's configuration reference.\n\
         hostname = \"{hostname}\"\n\
         data_dir = \"data\"\n\
         \n\
         [tls]\n\
         # Self-signed until you point these at a real certificate (e.g. from Let's Encrypt).\n\
         cert = \"cert.pem\"\n\
         key = \"key.pem\"\n\
         \n\
         [listen]\n"
    );
    for (service, port) in ports {
        text.push_str(&format!("{service:<11} = [\"{ip}:{port}\"]\n"));
    }
    text
}

/// Writes a file that only the owner may read (keys, passwords): created with mode 0600.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
        .map_err(CliError::runtime)?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(CliError::runtime)
}

fn write_public(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    fs::write(path, contents)
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(CliError::runtime)
}

/// Years a generated self-signed certificate stays valid: long enough that a test machine
/// does not break, short enough that it is visibly not a real one.
const SELF_SIGNED_YEARS: i64 = 3;

/// A self-signed certificate (ECDSA P-256) for `names` (the first is the CN), written as
/// cert.pem/key.pem in `dir`.
fn write_self_signed(dir: &Path, names: Vec<String>) -> Result<(), CliError> {
    let failed = |error: rcgen::Error| {
        CliError::runtime(anyhow!(
            "cannot generate a self-signed certificate: {error}"
        ))
    };
    let common_name = names.first().cloned().unwrap_or_default();
    let mut params = rcgen::CertificateParams::new(names).map_err(failed)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "sealpost self-signed");
    let (year, month, day) = dkim_keys::today();
    let day = day.min(28) as u8;
    let (Ok(this_year), Ok(last_year)) =
        (i32::try_from(year), i32::try_from(year + SELF_SIGNED_YEARS))
    else {
        return Err(CliError::runtime(anyhow!(
            "the system clock is out of range"
        )));
    };
    params.not_before = rcgen::date_time_ymd(this_year, month as u8, day);
    params.not_after = rcgen::date_time_ymd(last_year, month as u8, day);
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    write_public(&dir.join("cert.pem"), cert.pem().as_bytes())?;
    write_private(&dir.join("key.pem"), key.serialize_pem().as_bytes())
}

fn create_dir(dir: &Path) -> Result<(), CliError> {
    fs::create_dir_all(dir)
        .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(0o700)))
        .with_context(|| format!("cannot create the folder {}", dir.display()))
        .map_err(CliError::runtime)
}

async fn ensure_domain(store: &dyn Store, domain: &Domain) -> Result<(), CliError> {
    if store.domain(domain).await?.is_none() {
        add_domain(store, domain).await?;
    }
    Ok(())
}

/// Creates the account if missing; returns the new password when one was made.
async fn ensure_user(
    store: &dyn Store,
    address: &Address,
) -> Result<Option<Secret<String>>, CliError> {
    if store.account(address).await?.is_some() {
        return Ok(None);
    }
    let password = Secret::new(generate_password());
    store.add_account(address, &hash(&password).await?).await?;
    Ok(Some(password))
}

pub async fn demo(dir: &Path) -> Result<(), CliError> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let config_path = dir.join("sealpost.toml");
    if !config_path.exists() {
        create_dir(&dir)?;
        write_self_signed(&dir, vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
        write_public(
            &config_path,
            config_text("localhost", "127.0.0.1", &DEMO_PORTS).as_bytes(),
        )?;
    }
    let config = Config::load(&config_path)?;
    let store = open_store(&config).await?;
    let domain = Domain::parse("localhost").map_err(CliError::runtime)?;
    let user = Address::parse("demo@localhost").map_err(CliError::runtime)?;
    ensure_domain(store.as_ref(), &domain).await?;
    let password_path = dir.join("demo-password");
    let password = match ensure_user(store.as_ref(), &user).await? {
        Some(password) => {
            write_private(
                &password_path,
                format!("{}\n", password.expose()).as_bytes(),
            )?;
            password.expose().clone()
        }
        None => fs::read_to_string(&password_path)
            .map(|text| text.trim().to_string())
            .unwrap_or_else(|_| "(see sealpost user passwd demo@localhost)".to_string()),
    };
    drop(store);
    print_demo_banner(&dir, &password);
    serve::run(&config, CancellationToken::new()).await
}

fn print_demo_banner(dir: &Path, password: &str) {
    let ports: Vec<String> = DEMO_PORTS
        .iter()
        .map(|(service, port)| format!("{service} 127.0.0.1:{port}"))
        .collect();
    println!("sealpost demo in {}", dir.display());
    println!("  listening: {}", ports.join(", "));
    println!(
        "  user: demo@localhost   password: {password}   (also in {}/demo-password)",
        dir.display()
    );
    println!(
        "  certificate: self-signed for localhost ({}/cert.pem)",
        dir.display()
    );
    println!();
    println!(
        "Send yourself a message (SMTP submission, implicit TLS), then fetch it (POP3, IMAP):"
    );
    println!(r"  printf 'From: demo@localhost\r\nSubject: hello\r\n\r\nhi\r\n' > /tmp/hello.eml");
    println!(
        "  curl --ssl-reqd -k smtps://127.0.0.1:4650 --user 'demo@localhost:{password}' \\\n     --mail-from demo@localhost --mail-rcpt demo@localhost --upload-file /tmp/hello.eml"
    );
    println!("  curl -k pop3s://127.0.0.1:9950/1 --user 'demo@localhost:{password}'");
    println!("  curl -k 'imaps://127.0.0.1:9930/INBOX;UID=1' --user 'demo@localhost:{password}'");
    println!("Manage it from another terminal:");
    println!(
        "  sealpost --config {}/sealpost.toml user list",
        dir.display()
    );
    println!("Stop with Ctrl-C.");
}

pub async fn quickstart(domain: &str, hostname: Option<&str>, dir: &Path) -> Result<(), CliError> {
    let domain = Domain::parse(domain).map_err(|error| {
        CliError::usage(anyhow!(
            "--domain {domain:?} is not a valid domain: {error}"
        ))
    })?;
    let hostname = match hostname {
        Some(host) => Domain::parse(host).map_err(|error| {
            CliError::usage(anyhow!(
                "--hostname {host:?} is not a valid host name: {error}"
            ))
        })?,
        None => Domain::parse(&format!("mail.{domain}")).map_err(CliError::usage)?,
    };
    let dir: PathBuf = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let config_path = dir.join("sealpost.toml");
    if config_path.exists() {
        return Err(CliError::usage(anyhow!(
            "{} already exists; edit it, or choose another --dir",
            config_path.display()
        )));
    }
    create_dir(&dir)?;
    write_self_signed(&dir, vec![hostname.to_string()])?;
    write_public(
        &config_path,
        config_text(hostname.as_str(), "0.0.0.0", &STANDARD_PORTS).as_bytes(),
    )?;
    let config = Config::load(&config_path)?;
    let store = open_store(&config).await?;
    ensure_domain(store.as_ref(), &domain).await?;
    let postmaster = Address::parse(&format!("postmaster@{domain}")).map_err(CliError::runtime)?;
    let password = ensure_user(store.as_ref(), &postmaster).await?;
    let record = store
        .domain(&domain)
        .await?
        .ok_or_else(|| CliError::runtime(anyhow!("domain {domain} vanished while being set up")))?;

    println!("wrote {}", config_path.display());
    println!("created domain {domain} with DKIM keys, and the user {postmaster}");
    if let Some(password) = password {
        println!("password: {}", password.expose());
    }
    println!();
    println!("; DNS records to publish for {domain} (zone-file syntax):");
    for line in dns_records::records(&record, &hostname) {
        println!("{line}");
    }
    println!();
    println!("Next:");
    println!("  1. point {hostname} (A/AAAA) at this machine and publish the records above;");
    println!(
        "  2. replace {}/cert.pem and key.pem with a certificate for {hostname} (then: sealpost --config {} check);",
        dir.display(),
        config_path.display()
    );
    println!("  3. sealpost --config {} serve", config_path.display());
    Ok(())
}
