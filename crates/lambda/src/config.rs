use std::time::Duration;

use storefirst_domain::{SettingsError, StreamSettings};

/// The table the function writes outcomes to.
pub const TABLE_VAR: &str = "TABLE_NAME";
/// How long a succeeded item is kept, in seconds; defaults to the stream settings'.
pub const RETENTION_VAR: &str = "SUCCEEDED_RETENTION_SECONDS";

/// The function's configuration, read from its environment at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table_name: String,
    pub settings: StreamSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{TABLE_VAR} is not set: set it to the name of the requests table")]
    MissingTable,
    #[error(
        "{RETENTION_VAR}={0:?} is not a whole number of seconds: set it to, say, 86400 or unset it"
    )]
    BadRetention(String),
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the process
    /// environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table_name = lookup(TABLE_VAR)
            .filter(|name| !name.trim().is_empty())
            .ok_or(ConfigError::MissingTable)?;
        let mut settings = StreamSettings::DEFAULT;
        if let Some(retention) = lookup(RETENTION_VAR) {
            let seconds: u64 = retention
                .trim()
                .parse()
                .map_err(|_| ConfigError::BadRetention(retention.clone()))?;
            settings.succeeded_retention = Duration::from_secs(seconds);
        }
        settings.validate()?;
        Ok(Self {
            table_name,
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(env: &[(&str, &str)], expected: Result<(&str, u64), &str>) {
        let got = Config::from_lookup(|name| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        });
        match (got, expected) {
            (Ok(config), Ok((table, retention))) => {
                assert_eq!(config.table_name, table);
                assert_eq!(config.settings.succeeded_retention.as_secs(), retention);
            }
            (Err(error), Err(fragment)) => {
                assert!(error.to_string().contains(fragment), "{error}")
            }
            (got, expected) => panic!("{env:?}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn from_environment() {
        let day = StreamSettings::DEFAULT.succeeded_retention.as_secs();
        check(&[("TABLE_NAME", "requests")], Ok(("requests", day)));
        check(
            &[
                ("TABLE_NAME", "requests"),
                ("SUCCEEDED_RETENTION_SECONDS", "60"),
            ],
            Ok(("requests", 60)),
        );
        check(&[], Err("TABLE_NAME is not set"));
        check(&[("TABLE_NAME", " ")], Err("TABLE_NAME is not set"));
        check(
            &[
                ("TABLE_NAME", "requests"),
                ("SUCCEEDED_RETENTION_SECONDS", "1d"),
            ],
            Err("not a whole number of seconds"),
        );
    }
}
