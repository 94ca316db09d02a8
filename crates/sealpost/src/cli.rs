//! Command-line syntax (CONTRACT.md "The binary").

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sealpost",
    version,
    about = "A mail server that is private and authentic by default"
)]
pub struct Cli {
    /// Configuration file (default: ./sealpost.toml if present, else /etc/sealpost/sealpost.toml).
    #[arg(long, global = true, env = "SEALPOST_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    pub fn config_path(&self) -> PathBuf {
        if let Some(path) = &self.config {
            return path.clone();
        }
        let local = PathBuf::from("sealpost.toml");
        if local.exists() {
            local
        } else {
            PathBuf::from("/etc/sealpost/sealpost.toml")
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every configured listener until SIGTERM/SIGINT; SIGHUP reloads certificates.
    Serve,
    /// Validate the configuration and the certificate/key pairs.
    Check,
    /// Run a complete server on 127.0.0.1 with no set-up (self-signed certificate).
    Demo {
        /// Folder for the demo's configuration, certificate and store (reused if present).
        #[arg(long, default_value = "sealpost-demo")]
        dir: PathBuf,
    },
    /// Write a production configuration for a domain and print the DNS records to publish.
    Quickstart {
        /// The mail domain (addresses will be user@DOMAIN).
        #[arg(long)]
        domain: String,
        /// The server's host name (default: mail.DOMAIN).
        #[arg(long)]
        hostname: Option<String>,
        /// Folder for the configuration, certificate and store.
        #[arg(long, default_value = "sealpost")]
        dir: PathBuf,
    },
    /// Domains served.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Aliases (`@domain` is a catch-all).
    #[command(subcommand)]
    Alias(AliasCommand),
    /// The outbound queue: what waits for delivery to other domains.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// DMARC aggregate reports (RFC 7489 §7.2) about the mail received on port 25.
    #[command(subcommand)]
    Dmarc(DmarcCommand),
}

#[derive(Debug, Subcommand)]
pub enum DmarcCommand {
    /// Print the aggregate reports (XML) of one UTC day gathered so far, one per domain.
    Report {
        /// YYYY-MM-DD (default: today, UTC).
        day: Option<String>,
    },
    /// Queue the reports now, to the `rua` addresses of each domain's DMARC record: those of
    /// DAY, or of every finished day (`serve` does this by itself once an hour).
    Send {
        /// YYYY-MM-DD (default: every day before today, UTC).
        day: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Serve a domain; creates its DKIM keys (Ed25519 and RSA-2048).
    Add { domain: String },
    /// Stop serving a domain (refused while accounts or aliases use it).
    Del { domain: String },
    /// List served domains.
    List,
    /// Print the DNS records to publish for a domain, in zone-file syntax.
    Records { domain: String },
}

#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from standard input instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (its domain must be served).
    Add {
        email: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Delete an account and all its mail.
    Del { email: String },
    /// List accounts, optionally of one domain.
    List { domain: Option<String> },
    /// Set a new password.
    Passwd {
        email: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Show the storage quota and usage, or set the quota: SIZE in octets, with an optional
    /// K, M or G suffix (powers of 1024), or `none` for no limit (IMAP QUOTA, RFC 9208).
    Quota { email: String, size: Option<String> },
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Deliver mail for ALIAS to TARGET[,TARGET...]; `@domain` as ALIAS is a catch-all.
    Add { alias: String, targets: String },
    /// Remove an alias.
    Del { alias: String },
    /// List aliases.
    List,
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// One line per waiting recipient: ID RECIPIENT attempts=N next=WHEN error=TEXT.
    List,
    /// Make every waiting recipient due now; prints how many.
    Flush,
    /// Remove a queued message; its sender gets a bounce for the recipients still waiting.
    Drop {
        /// The queue id, as `queue list` shows it.
        id: String,
    },
    /// The TLS-RPT reports (RFC 8460, JSON) of one UTC day's delivery sessions, one per
    /// destination domain.
    TlsReport {
        /// YYYY-MM-DD (default: today, UTC).
        day: Option<String>,
    },
}
