//! The function's configuration, from the environment the stack sets.

use storefirst_domain::Receivers;
use storefirst_lambda::{TABLE_VAR, WARM_UP_VAR};

/// The SQS queue deliveries wait in: the stream path sends to it, the queue path consumes it.
pub const DELIVERY_QUEUE_VAR: &str = "DELIVERY_QUEUE_URL";
/// The SQS queue given-up deliveries go to, for `cargo xtask redrive`.
pub const DEAD_LETTER_QUEUE_VAR: &str = "DEAD_LETTER_QUEUE_URL";
/// The Secrets Manager secret (ARN or name) webhooks are signed with, read once at init.
pub const SECRET_VAR: &str = "WEBHOOK_SECRET_ARN";
/// `1` delivers also to receivers on this machine: only the local Lambda mode sets it.
pub const LOOPBACK_VAR: &str = "STOREFIRST_ALLOW_LOOPBACK_WEBHOOKS";

/// The function's configuration, read from its environment at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table_name: String,
    /// Whether init opens the DynamoDB connection, as the stream processor's does.
    pub warm_up: bool,
    pub delivery_queue_url: String,
    pub dead_letter_queue_url: String,
    pub secret_id: String,
    pub receivers: Receivers,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The variables the stream processor reads too (the table, the warm-up).
    #[error(transparent)]
    Shared(#[from] storefirst_lambda::ConfigError),
    #[error("{0} is not set: set it to {1}")]
    Missing(&'static str, &'static str),
    #[error(
        "{LOOPBACK_VAR}={0:?} is neither 1 nor 0: set it to 1 (local development only) or unset it"
    )]
    BadLoopback(String),
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the process
    /// environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let shared = storefirst_lambda::Config::from_lookup(|name| {
            // Only these two: the retention is the processor's business.
            [TABLE_VAR, WARM_UP_VAR]
                .contains(&name)
                .then(|| lookup(name))
                .flatten()
        })?;
        let required = |name: &'static str, what: &'static str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
                .ok_or(ConfigError::Missing(name, what))
        };
        let receivers = match lookup(LOOPBACK_VAR).as_deref().map(str::trim) {
            None | Some("" | "0" | "false") => Receivers::Public,
            Some("1" | "true") => Receivers::AlsoLoopback,
            Some(other) => return Err(ConfigError::BadLoopback(other.to_owned())),
        };
        Ok(Self {
            table_name: shared.table_name,
            warm_up: shared.warm_up,
            delivery_queue_url: required(
                DELIVERY_QUEUE_VAR,
                "the URL of the webhook delivery queue (stack output WebhookQueueUrl)",
            )?,
            dead_letter_queue_url: required(
                DEAD_LETTER_QUEUE_VAR,
                "the URL of the webhook dead-letter queue (stack output WebhookDeadLettersUrl)",
            )?,
            secret_id: required(
                SECRET_VAR,
                "the ARN or name of the webhook signing secret (stack output WebhookSecretArn)",
            )?,
            receivers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: [(&str, &str); 4] = [
        ("TABLE_NAME", "requests"),
        ("DELIVERY_QUEUE_URL", "https://sqs.example/1/deliveries"),
        ("DEAD_LETTER_QUEUE_URL", "https://sqs.example/1/dead"),
        ("WEBHOOK_SECRET_ARN", "webhook-secret"),
    ];

    fn config(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            env.iter()
                .rev()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        FULL.iter().chain(extra).copied().collect()
    }

    #[test]
    fn from_environment() {
        let config = config(&FULL).unwrap();
        assert_eq!(
            config,
            Config {
                table_name: "requests".into(),
                warm_up: true,
                delivery_queue_url: "https://sqs.example/1/deliveries".into(),
                dead_letter_queue_url: "https://sqs.example/1/dead".into(),
                secret_id: "webhook-secret".into(),
                receivers: Receivers::Public,
            }
        );
        let local = self::config(&with(&[
            ("STOREFIRST_ALLOW_LOOPBACK_WEBHOOKS", "1"),
            ("STOREFIRST_WARM_UP", "off"),
        ]))
        .unwrap();
        assert_eq!(
            (local.receivers, local.warm_up),
            (Receivers::AlsoLoopback, false)
        );
    }

    #[test]
    fn what_is_missing_or_wrong_is_named_with_what_to_set() {
        for (name, output) in [
            ("DELIVERY_QUEUE_URL", "WebhookQueueUrl"),
            ("DEAD_LETTER_QUEUE_URL", "WebhookDeadLettersUrl"),
            ("WEBHOOK_SECRET_ARN", "WebhookSecretArn"),
        ] {
            let env: Vec<_> = FULL.into_iter().filter(|(key, _)| *key != name).collect();
            let error = config(&env).unwrap_err().to_string();
            assert!(
                error.contains(&format!("{name} is not set")) && error.contains(output),
                "{error}"
            );
        }
        let env: Vec<_> = FULL.into_iter().skip(1).collect();
        let error = config(&env).unwrap_err().to_string();
        assert!(error.contains("TABLE_NAME is not set"), "{error}");
        let error = config(&with(&[("STOREFIRST_ALLOW_LOOPBACK_WEBHOOKS", "yes")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("neither 1 nor 0"), "{error}");
    }
}
