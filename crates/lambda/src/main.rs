//! The `stream-processor` Lambda function: DynamoDB stream batches in,
//! `batchItemFailures` out.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};
use storefirst_lambda::{Config, DynamoStore, StreamHandler, logging, warm_up};
use tracing_subscriber::{EnvFilter, util::SubscriberInitExt};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // JSON lines that carry the span's fields: the Lambda request id, and within a record
    // the API's request and trace ids.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    logging::json_lines(filter, std::io::stdout).init();
    let config = Config::from_env()?;
    // Built once per execution environment, as the local runtime builds it once.
    let processor = storefirst_app::start().await?;
    let aws = aws_config::load_from_env().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    // The clone shares the connection pool, so the first batch finds the connection open.
    if config.warm_up {
        warm_up::warm_up(&client, &config.table_name)
            .await
            .log(&config.table_name);
    }
    let store = DynamoStore::new(client, config.table_name);
    let mut handler = StreamHandler::new(Arc::new(processor), Arc::new(store), config.settings);
    // Set by Lambda: each batch's metrics go to CloudWatch as EMF log lines.
    if let Ok(name) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
        handler = handler.with_metrics(name);
    }
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, std::convert::Infallible>(handler.handle(event.payload).await)
    }))
    .await
    .map_err(anyhow::Error::from_boxed)
}
