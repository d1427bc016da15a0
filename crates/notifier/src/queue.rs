//! The queue path: each message is one attempt, all of a batch at once, each bounded by
//! the sender's timeout, so a receiver that hangs never delays another. A retry is the
//! same delivery sent again with a delay; a give-up goes to the dead-letter queue.

use std::time::Duration;

use aws_lambda_events::{
    event::sqs::{SqsEvent, SqsMessage},
    sqs::{BatchItemFailure, SqsBatchResponse},
};
use aws_sdk_sqs::error::DisplayErrorContext;
use storefirst_domain::now_millis;
use storefirst_webhooks::{Settled, settle};

use crate::{
    Notifier,
    delivery::Delivery,
    state::{Recorded, StateError},
};

/// SQS's longest message delay; a longer wait is served in several.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// An outcome that could not be recorded: the message is delivered again.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("SendMessage to {queue} failed: {reason}")]
    Queue { queue: String, reason: String },
}

impl Notifier {
    /// Makes one attempt per message, concurrently; answers the messages whose outcome
    /// could not be recorded.
    pub(crate) async fn deliver(&self, event: SqsEvent) -> SqsBatchResponse {
        let outcomes = futures::future::join_all(
            event
                .records
                .iter()
                .map(|message| async move { (message, self.deliver_one(message).await) }),
        )
        .await;
        let mut response = SqsBatchResponse::default();
        for (message, outcome) in outcomes {
            if let Err(error) = outcome {
                let message_id = message.message_id.clone().unwrap_or_default();
                tracing::warn!(message_id, %error, "recording a webhook attempt failed; the message is delivered again");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message_id;
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    async fn deliver_one(&self, message: &SqsMessage) -> Result<(), RecordError> {
        let delivery = match Delivery::parse(message.body.as_deref().unwrap_or_default()) {
            Ok(delivery) => delivery,
            Err(error) => {
                // Another try reads the same body.
                tracing::error!(message_id = message.message_id, %error, "dropping a message that is no webhook delivery");
                return Ok(());
            }
        };
        if let Some(at) = delivery.not_before
            && at > now_millis()
        {
            // Not due yet: waited for in another delay, without an attempt.
            return self.retry_at(delivery, at).await;
        }
        let due = delivery.due();
        let answer = self.sender.send(&due).await;
        let (id, attempts) = (delivery.id.as_str(), due.attempts);
        match settle(&self.policy, &due, answer, now_millis()) {
            Settled::Delivered => {
                let recorded = self.state.delivered(id, attempts).await?;
                tracing::info!(id, attempts, ?recorded, "webhook delivered");
            }
            Settled::Retry { at, error } => {
                if self.state.retried(id, attempts, &error).await? == Recorded::Skipped {
                    tracing::info!(id, %error, "webhook not retried: its item is gone or delivered");
                    return Ok(());
                }
                tracing::info!(id, %error, retry_at = at, attempts, "webhook retried later");
                let next = Delivery {
                    attempts,
                    ..delivery
                };
                self.retry_at(next, at).await?;
            }
            Settled::GaveUp { error } => {
                if self.state.failed(id, attempts, &error).await? == Recorded::Skipped {
                    tracing::info!(id, %error, "webhook not given up on: its item is gone or delivered");
                    return Ok(());
                }
                tracing::warn!(id, url = delivery.url, %error, attempts, "webhook given up on");
                let dead = Delivery {
                    attempts,
                    not_before: None,
                    error: Some(error),
                    ..delivery
                };
                send(
                    &self.sqs,
                    &self.dead_letter_queue_url,
                    &dead,
                    Duration::ZERO,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Sends `delivery` again, to be received at `at` (epoch ms), or after SQS's longest
    /// delay with `at` as its not-before time.
    async fn retry_at(&self, delivery: Delivery, at: i64) -> Result<(), RecordError> {
        let wait = Duration::from_millis(u64::try_from(at - now_millis()).unwrap_or(0));
        let delivery = Delivery {
            not_before: (wait > MAX_DELAY).then_some(at),
            ..delivery
        };
        send(
            &self.sqs,
            &self.delivery_queue_url,
            &delivery,
            wait.min(MAX_DELAY),
        )
        .await
    }
}

/// SendMessage with a delay in whole seconds, rounded up: never earlier than asked.
pub(crate) async fn send(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    delivery: &Delivery,
    delay: Duration,
) -> Result<(), RecordError> {
    let seconds = delay.as_millis().div_ceil(1000);
    sqs.send_message()
        .queue_url(queue)
        .message_body(delivery.body())
        .delay_seconds(i32::try_from(seconds).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|error| RecordError::Queue {
            queue: queue.to_owned(),
            reason: DisplayErrorContext(&error).to_string(),
        })?;
    Ok(())
}
