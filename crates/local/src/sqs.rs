//! The Lambda mode's SQS event source mapping: long-polls a queue, hands up to ten
//! messages at a time to the function as Lambda's poller does, and deletes those the
//! response does not name in `batchItemFailures`. A failed invocation deletes nothing:
//! its messages come back after the queue's visibility timeout, as on AWS. Batches run at
//! once in execution environments of their own, up to a limit, as Lambda scales a queue's
//! concurrent invocations with its backlog: a batch that waits on a slow receiver holds
//! one environment, never the queue.

use std::{collections::HashSet, sync::Arc};

use aws_sdk_sqs::{
    error::DisplayErrorContext,
    types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName},
};
use serde_json::{Value, json};
use storefirst_lambda_env::LambdaFunction;
use tokio::sync::{mpsc, watch};

use crate::lambda::failures;

/// Messages handed to one invocation (the mapping's `BatchSize`).
pub const BATCH_SIZE: i32 = 10;
/// ReceiveMessage's longest wait, which Lambda's poller uses.
const WAIT_SECONDS: i32 = 20;
/// Pause after a failed SQS call before the next.
const FAULT_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// A queue's mapping: its poller, and the execution environments its batches run in.
pub struct SqsSource {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    /// The queue's ARN, as the records' `eventSourceARN`.
    pub queue_arn: String,
    pub region: String,
    /// One per concurrent invocation; each starts at its first batch.
    pub environments: Vec<Arc<LambdaFunction>>,
}

impl SqsSource {
    /// Polls until `shutdown`, while an environment is free; invocations under way then
    /// are abandoned, and their messages come back after the visibility timeout.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let (free, mut next) = mpsc::unbounded_channel();
        for environment in &self.environments {
            let _ = free.send(environment.clone());
        }
        let source = Arc::new(self);
        while !*shutdown.borrow() {
            let polled = async {
                let environment = next.recv().await?;
                let messages = source.receive().await;
                Some((environment, messages))
            };
            let (environment, messages) = tokio::select! {
                polled = polled => match polled {
                    Some(polled) => polled,
                    None => return,
                },
                changed = shutdown.changed() => if changed.is_err() {
                    return;
                } else {
                    continue;
                },
            };
            if messages.is_empty() {
                let _ = free.send(environment);
                continue;
            }
            let (source, free) = (source.clone(), free.clone());
            tokio::spawn(async move {
                source.invoke(&environment, messages).await;
                let _ = free.send(environment);
            });
        }
    }

    /// Up to a batch of messages, after a long poll; none after a failed call.
    async fn receive(&self) -> Vec<Message> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(BATCH_SIZE)
            .wait_time_seconds(WAIT_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await;
        match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(error) => {
                tracing::error!(queue = self.queue_url, error = %DisplayErrorContext(&error), "ReceiveMessage failed");
                tokio::time::sleep(FAULT_PAUSE).await;
                Vec::new()
            }
        }
    }

    /// One invocation with `messages`, and the deletion of those it handled.
    async fn invoke(&self, function: &LambdaFunction, messages: Vec<Message>) {
        let records: Vec<Value> = messages.iter().map(|m| self.record(m)).collect();
        let ids: HashSet<String> = messages
            .iter()
            .filter_map(|m| m.message_id.clone())
            .collect();
        let failed = match function.invoke(json!({ "Records": records })).await {
            Ok(body) => match failures(&body, &ids) {
                Some(failed) => failed,
                None => {
                    tracing::warn!(
                        body,
                        "the response is no valid batchItemFailures: the messages come back after the visibility timeout"
                    );
                    return;
                }
            },
            Err(error) => {
                tracing::warn!(%error, messages = messages.len(), "the invocation failed: the messages come back after the visibility timeout");
                return;
            }
        };
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| m.message_id.as_ref().is_some_and(|id| !failed.contains(id)))
            .filter_map(|m| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(m.message_id.clone()?)
                    .receipt_handle(m.receipt_handle.clone()?)
                    .build()
                    .ok()
            })
            .collect();
        if done.is_empty() {
            return;
        }
        let deleted = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(done))
            .send()
            .await;
        match deleted {
            Ok(out) if out.failed.is_empty() => {}
            Ok(out) => {
                tracing::warn!(failed = ?out.failed, "some handled messages could not be deleted: they come again")
            }
            Err(error) => {
                tracing::error!(error = %DisplayErrorContext(&error), "DeleteMessageBatch failed: the handled messages come again")
            }
        }
    }

    /// A message as the SQS event's record.
    fn record(&self, message: &Message) -> Value {
        let attributes: serde_json::Map<String, Value> = message
            .attributes
            .iter()
            .flatten()
            .map(|(name, value)| (name.as_str().to_owned(), Value::String(value.clone())))
            .collect();
        let message_attributes: serde_json::Map<String, Value> = message
            .message_attributes
            .iter()
            .flatten()
            .map(|(name, value)| {
                (
                    name.clone(),
                    json!({
                        "stringValue": value.string_value,
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.data_type,
                    }),
                )
            })
            .collect();
        json!({
            "messageId": message.message_id,
            "receiptHandle": message.receipt_handle,
            "body": message.body,
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": message.md5_of_body,
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        })
    }
}
