//! `sealpost domain|user|alias ...`: management commands, run against the same store as a
//! running server (SQLite in WAL mode lets both work at once; the server reads the
//! directory on every lookup, so changes take effect without a restart).

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use anyhow::anyhow;
use rand::Rng;
use sealpost_config::{Config, StoreConfig};
use sealpost_store::{BackendConfig, Store};
use sealpost_types::{Address, AliasSource, Domain, Secret};

use crate::cli::{AliasCommand, DomainCommand, PasswordSource, UserCommand};
use crate::exit::CliError;
use crate::{dkim_keys, dns_records};

/// The store backend named by `[store]`, located in `data_dir`.
fn backend(config: &Config) -> BackendConfig {
    match config.store {
        StoreConfig::Sqlite => BackendConfig::Sqlite {
            data_dir: config.data_dir.clone(),
        },
    }
}

pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, CliError> {
    Ok(sealpost_store::open(&backend(config)).await?)
}

fn parse_domain(text: &str) -> Result<Domain, CliError> {
    Domain::parse(text)
        .map_err(|error| CliError::usage(anyhow!("{text:?} is not a valid domain: {error}")))
}

fn parse_address(text: &str) -> Result<Address, CliError> {
    Address::parse(text).map_err(CliError::usage)
}

pub async fn domain(config_path: &Path, command: DomainCommand) -> Result<(), CliError> {
    let config = Config::load(config_path)?;
    let store = open_store(&config).await?;
    match command {
        DomainCommand::Add { domain } => {
            let domain = parse_domain(&domain)?;
            add_domain(store.as_ref(), &domain).await?;
            let record = store.domain(&domain).await?.ok_or_else(|| {
                CliError::runtime(anyhow!("domain {domain} vanished while being added"))
            })?;
            let selectors: Vec<String> = record
                .dkim_keys
                .iter()
                .map(|key| format!("{} ({})", key.selector, key.algorithm.key_type()))
                .collect();
            println!(
                "added domain {domain}; DKIM selectors: {}",
                selectors.join(", ")
            );
            println!("publish its DNS records: sealpost domain records {domain}");
        }
        DomainCommand::Del { domain } => {
            let domain = parse_domain(&domain)?;
            store.delete_domain(&domain).await?;
            println!("removed domain {domain}");
        }
        DomainCommand::List => {
            for domain in store.list_domains().await? {
                println!("{domain}");
            }
        }
        DomainCommand::Records { domain } => {
            let domain = parse_domain(&domain)?;
            let record = store.domain(&domain).await?.ok_or_else(|| {
                CliError::runtime(anyhow!("the domain {domain} is not served here"))
            })?;
            for line in dns_records::records(&record, &config.hostname) {
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// Creates a domain with fresh DKIM keys (RSA key generation takes a moment: off the
/// async threads).
pub async fn add_domain(store: &dyn Store, domain: &Domain) -> Result<(), CliError> {
    let keys = tokio::task::spawn_blocking(dkim_keys::generate)
        .await
        .map_err(|error| CliError::runtime(anyhow!("DKIM key generation stopped: {error}")))?
        .map_err(|error| CliError::runtime(anyhow!("cannot generate DKIM keys: {error}")))?;
    store.add_domain(domain, keys).await?;
    Ok(())
}

/// A random password of 20 characters from an alphabet without look-alikes (~115 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn password_from(source: &PasswordSource) -> Result<(Secret<String>, bool), CliError> {
    if !source.password_stdin {
        return Ok((Secret::new(generate_password()), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| {
            CliError::runtime(anyhow!(
                "cannot read the password from standard input: {error}"
            ))
        })?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(CliError::usage(anyhow!(
            "the password read from standard input is empty"
        )));
    }
    if password.len() > 1024 {
        return Err(CliError::usage(anyhow!(
            "the password read from standard input is longer than 1024 bytes"
        )));
    }
    Ok((Secret::new(password), false))
}

pub async fn hash(password: &Secret<String>) -> Result<String, CliError> {
    let password = password.expose().clone();
    tokio::task::spawn_blocking(move || sealpost_sasl::hash_password(&password))
        .await
        .map_err(|error| CliError::runtime(anyhow!("password hashing stopped: {error}")))?
        .map_err(CliError::runtime)
}

pub async fn user(config_path: &Path, command: UserCommand) -> Result<(), CliError> {
    let config = Config::load(config_path)?;
    let store = open_store(&config).await?;
    match command {
        UserCommand::Add { email, password } => {
            let address = parse_address(&email)?;
            let (password, generated) = password_from(&password)?;
            store.add_account(&address, &hash(&password).await?).await?;
            println!("created user {address}");
            if generated {
                println!("password: {}", password.expose());
            }
        }
        UserCommand::Del { email } => {
            let address = parse_address(&email)?;
            store.delete_account(&address).await?;
            println!("deleted user {address} and all its mail");
        }
        UserCommand::List { domain } => {
            let domain = domain.as_deref().map(parse_domain).transpose()?;
            if let Some(domain) = &domain
                && store.domain(domain).await?.is_none()
            {
                return Err(CliError::runtime(anyhow!(
                    "the domain {domain} is not served here"
                )));
            }
            for account in store.list_accounts(domain.as_ref()).await? {
                println!("{}", account.address);
            }
        }
        UserCommand::Passwd { email, password } => {
            let address = parse_address(&email)?;
            let (password, generated) = password_from(&password)?;
            store
                .set_password(&address, &hash(&password).await?)
                .await?;
            println!("changed the password of {address}");
            if generated {
                println!("password: {}", password.expose());
            }
        }
        UserCommand::Quota { email, size } => {
            user_quota(store.as_ref(), &email, size.as_deref()).await?;
        }
    }
    Ok(())
}

/// `none`, or octets with an optional K/M/G suffix (powers of 1024).
fn parse_quota(text: &str) -> Result<Option<u64>, CliError> {
    let invalid = || {
        CliError::usage(anyhow!(
            "{text:?} is not a quota: give octets, optionally with K, M or G (e.g. 500M), \
             or none"
        ))
    };
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let (digits, unit) = match text.char_indices().last() {
        Some((at, 'k' | 'K')) => (&text[..at], 1u64 << 10),
        Some((at, 'm' | 'M')) => (&text[..at], 1u64 << 20),
        Some((at, 'g' | 'G')) => (&text[..at], 1u64 << 30),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let number: u64 = digits.parse().map_err(|_| invalid())?;
    let octets = number.checked_mul(unit).ok_or_else(invalid)?;
    // The store keeps quotas as signed 64-bit numbers.
    if octets > i64::MAX as u64 {
        return Err(invalid());
    }
    Ok(Some(octets))
}

async fn user_quota(store: &dyn Store, email: &str, size: Option<&str>) -> Result<(), CliError> {
    let address = parse_address(email)?;
    if let Some(size) = size {
        let quota = parse_quota(size)?;
        store.set_quota(&address, quota).await?;
        match quota {
            Some(octets) => println!("quota of {address}: {octets} octets"),
            None => println!("quota of {address}: none"),
        }
        return Ok(());
    }
    let account = store
        .account(&address)
        .await?
        .ok_or_else(|| CliError::runtime(anyhow!("no user {address}")))?;
    let usage = store.usage(account.id).await?;
    let quota = account
        .quota_bytes
        .map_or_else(|| "none".to_string(), |q| format!("{q} octets"));
    println!("quota of {address}: {quota}");
    println!(
        "in use: {} octets in {} messages",
        usage.bytes, usage.messages
    );
    Ok(())
}

pub async fn alias(config_path: &Path, command: AliasCommand) -> Result<(), CliError> {
    let config = Config::load(config_path)?;
    let store = open_store(&config).await?;
    match command {
        AliasCommand::Add { alias, targets } => {
            let source = AliasSource::parse(&alias).map_err(CliError::usage)?;
            let targets = targets
                .split(',')
                .map(str::trim)
                .filter(|target| !target.is_empty())
                .map(parse_address)
                .collect::<Result<Vec<_>, _>>()?;
            if targets.is_empty() {
                return Err(CliError::usage(anyhow!(
                    "alias {source} needs at least one target address"
                )));
            }
            store.add_alias(&source, &targets).await?;
            println!("{source} -> {}", join(&targets));
        }
        AliasCommand::Del { alias } => {
            let source = AliasSource::parse(&alias).map_err(CliError::usage)?;
            store.delete_alias(&source).await?;
            println!("removed alias {source}");
        }
        AliasCommand::List => {
            for alias in store.list_aliases().await? {
                println!("{} -> {}", alias.source, join(&alias.targets));
            }
        }
    }
    Ok(())
}

fn join(addresses: &[Address]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::parse_quota;

    #[test]
    fn quota_sizes() {
        assert_eq!(parse_quota("none").unwrap(), None);
        assert_eq!(parse_quota("NONE").unwrap(), None);
        assert_eq!(parse_quota("1000").unwrap(), Some(1000));
        assert_eq!(parse_quota("2K").unwrap(), Some(2048));
        assert_eq!(parse_quota("500m").unwrap(), Some(500 << 20));
        assert_eq!(parse_quota("1G").unwrap(), Some(1 << 30));
        for bad in [
            "",
            "G",
            "-1",
            "1.5G",
            "1T",
            "12 M",
            "99999999999999999999",
            "9999999999G",
        ] {
            assert!(parse_quota(bad).is_err(), "{bad:?}");
        }
    }
}
