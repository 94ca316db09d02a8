//! `sealpost`: the mail server binary and its management commands (CONTRACT.md).
#![forbid(unsafe_code)]

mod check;
mod cli;
mod dkim_keys;
mod dmarc_reports;
mod dns_records;
mod exit;
mod manage;
mod queue_cli;
mod reports;
mod serve;
mod setup;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::CliError;

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = error.print();
            return std::process::ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sealpost: {}", error.message());
            std::process::ExitCode::from(error.code())
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            CliError::runtime(anyhow::anyhow!("cannot start the async runtime: {error}"))
        })?;
    let config_path = cli.config_path();
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve::serve(&config_path).await,
            Command::Check => check::check(&config_path),
            Command::Demo { dir } => setup::demo(&dir).await,
            Command::Quickstart {
                domain,
                hostname,
                dir,
            } => setup::quickstart(&domain, hostname.as_deref(), &dir).await,
            Command::Domain(command) => manage::domain(&config_path, command).await,
            Command::User(command) => manage::user(&config_path, command).await,
            Command::Alias(command) => manage::alias(&config_path, command).await,
            Command::Queue(command) => queue_cli::queue(&config_path, command).await,
            Command::Dmarc(command) => dmarc_reports::command(&config_path, command).await,
        }
    })
}
