//! The `notifier` Lambda function: DynamoDB stream batches and SQS batches in,
//! `batchItemFailures` out.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use storefirst_lambda::logging;
use storefirst_notifier::{Config, Notifier};
use tracing_subscriber::{EnvFilter, util::SubscriberInitExt};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The stream processor's JSON lines, with the Lambda request id in each.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    logging::json_lines(filter, std::io::stdout).init();
    let config = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    // Once per execution environment: the secret is read here, never per invocation.
    let notifier = Notifier::init(&aws, &config).await?;
    let notifier = &notifier;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        notifier
            .handle(event.payload)
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await
    .map_err(anyhow::Error::from_boxed)
}
