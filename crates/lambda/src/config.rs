//! The function's configuration, from the environment the stack sets.

use std::time::Duration;

use storefirst_domain::{SettingsError, StreamSettings};

/// The table the function writes outcomes to.
pub const TABLE_VAR: &str = "TABLE_NAME";
/// How long a succeeded item is kept, in seconds; defaults to the stream settings'.
pub const RETENTION_VAR: &str = "SUCCEEDED_RETENTION_SECONDS";
/// `off` skips opening the DynamoDB connection during init (to measure what it saves);
/// `on`, the default, opens it.
pub const WARM_UP_VAR: &str = "STOREFIRST_WARM_UP";

/// The function's configuration, read from its environment at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table_name: String,
    pub settings: StreamSettings,
    /// Whether init opens the DynamoDB connection ([`crate::warm_up`]).
    pub warm_up: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{TABLE_VAR} is not set: set it to the name of the requests table")]
    MissingTable,
    #[error(
        "{RETENTION_VAR}={0:?} is not a whole number of seconds: set it to, say, 86400 or unset it"
    )]
    BadRetention(String),
    #[error("{WARM_UP_VAR}={0:?} is neither on nor off: set it to one of them or unset it")]
    BadWarmUp(String),
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
        let warm_up = match lookup(WARM_UP_VAR) {
            None => true,
            Some(value) => match value.trim() {
                "on" => true,
                "off" => false,
                _ => return Err(ConfigError::BadWarmUp(value)),
            },
        };
        Ok(Self {
            table_name,
            settings,
            warm_up,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(env: &[(&str, &str)], expected: Result<(&str, u64, bool), &str>) {
        let got = Config::from_lookup(|name| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        });
        match (got, expected) {
            (Ok(config), Ok((table, retention, warm_up))) => {
                assert_eq!(config.table_name, table);
                assert_eq!(config.settings.succeeded_retention.as_secs(), retention);
                assert_eq!(config.warm_up, warm_up);
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
        check(&[("TABLE_NAME", "requests")], Ok(("requests", day, true)));
        check(
            &[
                ("TABLE_NAME", "requests"),
                ("SUCCEEDED_RETENTION_SECONDS", "60"),
            ],
            Ok(("requests", 60, true)),
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
        check(
            &[("TABLE_NAME", "requests"), ("STOREFIRST_WARM_UP", "off")],
            Ok(("requests", day, false)),
        );
        check(
            &[("TABLE_NAME", "requests"), ("STOREFIRST_WARM_UP", "on")],
            Ok(("requests", day, true)),
        );
        check(
            &[("TABLE_NAME", "requests"), ("STOREFIRST_WARM_UP", "no")],
            Err("neither on nor off"),
        );
    }
}
