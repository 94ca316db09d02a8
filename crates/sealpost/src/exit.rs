//! Exit statuses of CONTRACT.md: 0 success, 1 runtime failure, 2 usage or configuration error.

use sealpost_config::ConfigError;
use sealpost_store::StoreError;

#[derive(Debug)]
pub struct CliError {
    code: u8,
    error: anyhow::Error,
}

impl CliError {
    /// Bad arguments or configuration: exit status 2.
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 2,
            error: error.into(),
        }
    }

    /// The command was well-formed but could not be carried out: exit status 1.
    pub fn runtime(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 1,
            error: error.into(),
        }
    }

    pub fn code(&self) -> u8 {
        self.code
    }

    /// The error and its causes on one line.
    pub fn message(&self) -> String {
        let mut text = self.error.to_string();
        for cause in self.error.chain().skip(1) {
            let cause = cause.to_string();
            if !text.contains(&cause) {
                text.push_str(": ");
                text.push_str(&cause);
            }
        }
        text
    }
}

impl From<ConfigError> for CliError {
    fn from(error: ConfigError) -> Self {
        CliError::usage(error)
    }
}

impl From<StoreError> for CliError {
    fn from(error: StoreError) -> Self {
        CliError::runtime(error)
    }
}
