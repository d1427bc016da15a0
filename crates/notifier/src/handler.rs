//! The function: built once per execution environment, then one invocation per batch of
//! either event source, told apart by the records' `eventSource`.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_lambda_events::{
    event::{dynamodb, sqs::SqsEvent},
    sqs::SqsBatchResponse,
    streams::DynamoDbEventResponse,
};
use serde::Serialize;
use serde_json::Value;
use storefirst_domain::RetryPolicy;
use storefirst_webhooks::{Sender, SystemLookup};

use crate::{
    Config,
    secret::{self, SecretError},
    state::DeliveryState,
};

/// The notifier: the queues, the table, and the signing sender.
pub struct Notifier {
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) state: DeliveryState,
    pub(crate) sender: Sender,
    pub(crate) policy: RetryPolicy,
    pub(crate) delivery_queue_url: String,
    pub(crate) dead_letter_queue_url: String,
}

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(String),
}

/// An invocation that is neither a DynamoDB stream batch nor an SQS batch.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(
        "records from {0:?}: the notifier takes the requests table's stream (aws:dynamodb) \
         and its delivery queue (aws:sqs) only; check the function's event source mappings"
    )]
    UnknownSource(String),
    #[error("the {source_name} event does not parse: {error}")]
    Malformed {
        source_name: &'static str,
        error: serde_json::Error,
    },
}

/// Both event sources answer `batchItemFailures`, with a stream record's SequenceNumber or
/// a message's messageId.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Response {
    Stream(DynamoDbEventResponse),
    Queue(SqsBatchResponse),
}

impl Response {
    /// The identifiers of the records to deliver again.
    pub fn failures(&self) -> Vec<String> {
        match self {
            Response::Stream(response) => response
                .batch_item_failures
                .iter()
                .filter_map(|failure| failure.item_identifier.clone())
                .collect(),
            Response::Queue(response) => response
                .batch_item_failures
                .iter()
                .map(|failure| failure.item_identifier.clone())
                .collect(),
        }
    }
}

impl Notifier {
    /// Reads the signing secret (once: an execution environment keeps it until it ends;
    /// a rotated secret is read by the environments started after it) and, when the
    /// configuration says so, opens the DynamoDB connection.
    pub async fn init(aws: &SdkConfig, config: &Config) -> Result<Self, InitError> {
        let secret =
            secret::read(&aws_sdk_secretsmanager::Client::new(aws), &config.secret_id).await?;
        let sender = Sender::new(secret, config.receivers, Arc::new(SystemLookup))
            .map_err(|e| InitError::Client(e.to_string()))?;
        let dynamodb = aws_sdk_dynamodb::Client::new(aws);
        if config.warm_up {
            storefirst_lambda::warm_up::warm_up(&dynamodb, &config.table_name)
                .await
                .log(&config.table_name);
        }
        Ok(Self {
            sqs: aws_sdk_sqs::Client::new(aws),
            state: DeliveryState::new(dynamodb, &config.table_name),
            sender,
            // The local runtime's policy: 8 attempts within 24 hours.
            policy: RetryPolicy::DEFAULT,
            delivery_queue_url: config.delivery_queue_url.clone(),
            dead_letter_queue_url: config.dead_letter_queue_url.clone(),
        })
    }

    /// The same notifier with another retry policy.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// One invocation: a stream batch is enqueued, a queue batch delivered. Never fails for
    /// a record's sake (those are the batch item failures), only for an event of another
    /// source.
    pub async fn handle(&self, event: Value) -> Result<Response, EventError> {
        let source = event["Records"][0]["eventSource"].as_str().unwrap_or("");
        match source {
            "aws:dynamodb" => {
                let event: dynamodb::Event =
                    serde_json::from_value(event).map_err(|error| EventError::Malformed {
                        source_name: "DynamoDB stream",
                        error,
                    })?;
                Ok(Response::Stream(self.enqueue(event).await))
            }
            "aws:sqs" => {
                let event: SqsEvent =
                    serde_json::from_value(event).map_err(|error| EventError::Malformed {
                        source_name: "SQS",
                        error,
                    })?;
                Ok(Response::Queue(self.deliver(event).await))
            }
            // No records, nothing to do.
            "" if event["Records"].as_array().is_some_and(Vec::is_empty) => {
                Ok(Response::Queue(SqsBatchResponse::default()))
            }
            other => Err(EventError::UnknownSource(other.to_owned())),
        }
    }
}
