//! `sealpost check`: is this configuration ready to serve?

use std::path::Path;
use std::time::SystemTime;

use anyhow::anyhow;
use sealpost_config::Config;

use crate::exit::CliError;
use crate::serve::cert_paths;

pub fn check(config_path: &Path) -> Result<(), CliError> {
    let config = Config::load(config_path)?;
    let (default, additional) = cert_paths(&config);
    let now = SystemTime::now();
    let report = sealpost_net::inspect_certificate(&default, config.hostname.as_str(), now)
        .map_err(CliError::usage)?;
    println!(
        "ok: certificate {} covers {} (names: {}; valid until {})",
        default.cert.display(),
        config.hostname,
        report.subject_names.join(", "),
        report.not_after_text
    );
    for paths in &additional {
        let report =
            sealpost_net::inspect_certificate(paths, None, now).map_err(CliError::usage)?;
        println!(
            "ok: certificate {} (names: {}; valid until {})",
            paths.cert.display(),
            report.subject_names.join(", "),
            report.not_after_text
        );
    }
    check_data_dir(&config)?;
    println!(
        "ok: {} is valid; {} listener(s) configured",
        config.source.display(),
        config.listen.len()
    );
    Ok(())
}

/// The data folder must exist as a folder, or be creatable in an existing folder.
fn check_data_dir(config: &Config) -> Result<(), CliError> {
    let dir = &config.data_dir;
    if dir.exists() {
        if !dir.is_dir() {
            return Err(CliError::usage(anyhow!(
                "{}: data_dir {} is not a folder",
                config.source.display(),
                dir.display()
            )));
        }
        return Ok(());
    }
    match dir.parent() {
        Some(parent) if parent.is_dir() => Ok(()),
        _ => Err(CliError::usage(anyhow!(
            "{}: data_dir {} does not exist and its parent folder is missing",
            config.source.display(),
            dir.display()
        ))),
    }
}
