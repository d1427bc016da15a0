//! The stream path: each finished item with a callback becomes a delivery message in the
//! delivery queue. No HTTP here, so a slow receiver never holds up the stream.

use aws_lambda_events::{event::dynamodb::Event, streams::DynamoDbEventResponse};
use aws_sdk_sqs::{error::DisplayErrorContext, types::SendMessageBatchRequestEntry};
use storefirst_domain::now_millis;
use storefirst_lambda::batch_response;

use crate::{Notifier, delivery::Delivery};

/// SendMessageBatch takes at most 10 messages.
const BATCH_ENTRIES: usize = 10;
/// ... and at most 256 KiB of them in all (SQS's long-standing limit; newer queues take
/// more, so this holds everywhere). A larger message goes alone.
const BATCH_BYTES: usize = 256 * 1024;

impl Notifier {
    /// Enqueues a delivery for each record; answers the records that could not be
    /// enqueued. A record that holds no delivery is logged and dropped: it would never
    /// hold one.
    pub(crate) async fn enqueue(&self, event: Event) -> DynamoDbEventResponse {
        let received = event.records.len();
        let now = now_millis();
        let mut messages = Vec::new();
        for record in &event.records {
            let Some(seq) = record.change.sequence_number.clone() else {
                tracing::error!(
                    event_id = record.event_id,
                    "dropping a stream record without a SequenceNumber"
                );
                continue;
            };
            match Delivery::of_record(record, now) {
                Ok(delivery) => messages.push((seq, delivery)),
                Err(error) => {
                    tracing::error!(seq, %error, "dropping a stream record that holds no webhook delivery")
                }
            }
        }
        let mut failed = Vec::new();
        for batch in batches(&messages) {
            failed.extend(self.send_batch(batch).await);
        }
        tracing::info!(
            received,
            enqueued = messages.len() - failed.len(),
            failed = failed.len(),
            "webhook deliveries enqueued"
        );
        batch_response(failed)
    }

    /// One SendMessageBatch; answers the sequence numbers of the messages it did not take.
    async fn send_batch(&self, batch: &[(String, Delivery)]) -> Vec<String> {
        let entries = batch
            .iter()
            .enumerate()
            .map(|(index, (_, delivery))| {
                SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(delivery.body())
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let sent = self
            .sqs
            .send_message_batch()
            .queue_url(&self.delivery_queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        match sent {
            Ok(answer) => answer
                .failed
                .iter()
                .filter_map(|entry| {
                    let (seq, delivery) = batch.get(entry.id.parse::<usize>().ok()?)?;
                    tracing::warn!(
                        seq,
                        id = delivery.id,
                        code = entry.code,
                        message = entry.message,
                        "SQS did not take a webhook delivery; the record is retried"
                    );
                    Some(seq.clone())
                })
                .collect(),
            Err(error) => {
                tracing::warn!(
                    queue = self.delivery_queue_url,
                    error = %DisplayErrorContext(&error),
                    "SendMessageBatch failed; its records are retried"
                );
                batch.iter().map(|(seq, _)| seq.clone()).collect()
            }
        }
    }
}

/// The messages in stream order, cut into SendMessageBatch calls.
fn batches(messages: &[(String, Delivery)]) -> Vec<&[(String, Delivery)]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, (_, delivery)) in messages.iter().enumerate() {
        let size = delivery.body().len();
        if index > start && (index - start == BATCH_ENTRIES || bytes + size > BATCH_BYTES) {
            batches.push(&messages[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes += size;
    }
    if start < messages.len() {
        batches.push(&messages[start..]);
    }
    batches
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;

    fn delivery(document_bytes: usize) -> (String, Delivery) {
        let document = format!("\"{}\"", "x".repeat(document_bytes));
        (
            "1".into(),
            Delivery {
                id: "r".into(),
                url: "https://hooks.example.com/".into(),
                webhook_id: "msg_1".into(),
                attempts: 0,
                first_due_at: 0,
                not_before: None,
                error: None,
                document: RawValue::from_string(document).unwrap(),
            },
        )
    }

    #[test]
    fn batches_hold_ten_messages_and_256_kib_at_most() {
        let small: Vec<_> = (0..23).map(|_| delivery(10)).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [10, 10, 3]);
        let large: Vec<_> = (0..5).map(|_| delivery(100 * 1024)).collect();
        let sizes: Vec<usize> = batches(&large).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        let huge = vec![delivery(300 * 1024), delivery(10)];
        let sizes: Vec<usize> = batches(&huge).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [1, 1]);
        assert!(batches(&[]).is_empty());
    }
}
