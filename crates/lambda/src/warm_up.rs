//! Opening the DynamoDB connection during init, so the first batch after a cold start
//! does not pay the TLS handshake (and the SDK's first-call setup) inside its first write.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::{Client, config::retry::RetryConfig, error::DisplayErrorContext};

/// The longest init waits for the warm-up: a slow or unreachable endpoint delays a cold
/// start by this much at most, and the first write then connects as it would have.
pub const WARM_UP_TIMEOUT: Duration = Duration::from_secs(2);

/// A key no request can have (ids are `[A-Za-z0-9._-]`), so the warm-up's condition
/// never holds and it writes nothing.
pub const WARM_UP_KEY: &str = "#connection-warm-up";

/// What the warm-up call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarmUp {
    /// DynamoDB answered as expected: the connection is open and pooled.
    Warmed {
        elapsed: Duration,
    },
    /// DynamoDB answered something else (a missing permission, an unknown table): the
    /// connection is open, but the first batch will likely fail the same way.
    Refused {
        elapsed: Duration,
        error: String,
    },
    /// No answer: the connection could not be made.
    Failed {
        elapsed: Duration,
        error: String,
    },
    TimedOut,
}

/// One UpdateItem the function's role allows (it writes outcomes with UpdateItem), on a key
/// that cannot exist, under `attribute_exists(id)`: DynamoDB answers
/// ConditionalCheckFailedException and changes nothing. No retries, at most
/// [`WARM_UP_TIMEOUT`].
pub async fn warm_up(client: &Client, table: &str) -> WarmUp {
    let started = Instant::now();
    let call = client
        .update_item()
        .table_name(table)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(WARM_UP_KEY.to_owned()),
        )
        .update_expression("REMOVE #warm_up")
        .expression_attribute_names("#warm_up", "warm_up")
        .condition_expression("attribute_exists(id)")
        .customize()
        .config_override(aws_sdk_dynamodb::Config::builder().retry_config(RetryConfig::disabled()))
        .send();
    let Ok(answer) = tokio::time::timeout(WARM_UP_TIMEOUT, call).await else {
        return WarmUp::TimedOut;
    };
    let elapsed = started.elapsed();
    match answer {
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            WarmUp::Warmed { elapsed }
        }
        // The condition cannot hold, but an answer is an answer.
        Ok(_) => WarmUp::Warmed { elapsed },
        Err(error) if error.raw_response().is_some() => WarmUp::Refused {
            elapsed,
            error: DisplayErrorContext(&error).to_string(),
        },
        Err(error) => WarmUp::Failed {
            elapsed,
            error: DisplayErrorContext(&error).to_string(),
        },
    }
}

impl WarmUp {
    /// One JSON log line (the function's log format) that says what happened.
    pub fn log(&self, table: &str) {
        match self {
            WarmUp::Warmed { elapsed } => tracing::info!(
                table,
                elapsed_ms = storefirst_domain::millis(*elapsed),
                "warm-up: the DynamoDB connection is open"
            ),
            WarmUp::Refused { elapsed, error } => tracing::warn!(
                table,
                elapsed_ms = storefirst_domain::millis(*elapsed),
                error,
                "warm-up: DynamoDB refused the warm-up call; the first batch may fail the same way"
            ),
            WarmUp::Failed { elapsed, error } => tracing::warn!(
                table,
                elapsed_ms = storefirst_domain::millis(*elapsed),
                error,
                "warm-up: could not reach DynamoDB; the first batch will connect itself"
            ),
            WarmUp::TimedOut => tracing::warn!(
                table,
                timeout_ms = storefirst_domain::millis(WARM_UP_TIMEOUT),
                "warm-up: no answer from DynamoDB in time; the first batch will connect itself"
            ),
        }
    }
}
