//! Redrive: every given-up delivery back to the delivery queue, its attempts counted anew.

use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use storefirst_domain::now_millis;

use crate::{
    delivery::Delivery,
    queue::{RecordError, send},
    state::{DeliveryState, Recorded, StateError},
};

/// How long a received dead letter stays hidden from other readers: past the moves of one
/// batch. One that could not be moved is visible again after it.
const VISIBILITY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(
        "cannot {call} on the queue {queue}: {reason}; check the queue URL (stack output \
         WebhookDeadLettersUrl or WebhookQueueUrl) and that you may {call} on it"
    )]
    Queue {
        call: &'static str,
        queue: String,
        reason: String,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<RecordError> for RedriveError {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::State(error) => RedriveError::State(error),
            RecordError::Queue { queue, reason } => RedriveError::Queue {
                call: "SendMessage",
                queue,
                reason,
            },
        }
    }
}

/// Moves every dead-lettered delivery back to the delivery queue with its attempts reset
/// (its webhook id and document kept) and sets its item's callback_status back to pending;
/// answers how many it moved. A delivery whose item is gone (expired) is deleted; a
/// message that is no delivery is left where it is.
pub async fn redrive_dead_letters(
    sqs: &aws_sdk_sqs::Client,
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    dead_letter_url: &str,
    delivery_url: &str,
) -> Result<usize, RedriveError> {
    let state = DeliveryState::new(dynamodb.clone(), table);
    let queue_error = |call, reason: String| RedriveError::Queue {
        call,
        queue: dead_letter_url.to_owned(),
        reason,
    };
    let mut moved = 0;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(dead_letter_url)
            .max_number_of_messages(10)
            .visibility_timeout(VISIBILITY.as_secs() as i32)
            // Long polling asks every SQS server: an empty answer means an empty queue.
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| queue_error("ReceiveMessage", DisplayErrorContext(&e).to_string()))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(moved);
        }
        for message in messages {
            let delivery = match Delivery::parse(message.body().unwrap_or_default()) {
                Ok(delivery) => delivery,
                Err(error) => {
                    tracing::warn!(message_id = message.message_id, %error, "leaving a dead letter that is no webhook delivery");
                    continue;
                }
            };
            if state.redriven(&delivery.id).await? == Recorded::Applied {
                let again = Delivery {
                    attempts: 0,
                    first_due_at: now_millis(),
                    not_before: None,
                    error: None,
                    ..delivery
                };
                send(sqs, delivery_url, &again, Duration::ZERO).await?;
                moved += 1;
            } else {
                tracing::info!(
                    id = delivery.id,
                    "dropping the dead letter of an expired item"
                );
            }
            sqs.delete_message()
                .queue_url(dead_letter_url)
                .set_receipt_handle(message.receipt_handle)
                .send()
                .await
                .map_err(|e| queue_error("DeleteMessage", DisplayErrorContext(&e).to_string()))?;
        }
    }
}
