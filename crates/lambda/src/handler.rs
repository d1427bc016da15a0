//! One invocation: decode the batch, run `process_batch`, answer `batchItemFailures`.

use std::sync::Arc;

use aws_lambda_events::{
    event::dynamodb::Event,
    streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse},
};
use serde_json::Value;
use storefirst_domain::{
    ChangeEvent, OutcomeStore, PendingRequest, ProcessError, Processor, RequestBody,
    StreamSettings, now_millis, process_batch,
};

use crate::{decode, item, metrics::BatchMetrics};

/// The function's logic, generic over the store and the business logic so that tests can
/// run it against any [`OutcomeStore`]; `main` plugs in DynamoDB and the sample processor.
pub struct StreamHandler<P, S> {
    processor: Arc<WithinContract<P>>,
    store: Arc<S>,
    settings: StreamSettings,
    /// The function's name, when each batch writes its metrics (EMF) to stdout.
    metrics: Option<String>,
}

impl<P: Processor, S: OutcomeStore> StreamHandler<P, S> {
    /// Shared handles, as [`process_batch`] takes them, so a caller can keep its own.
    pub fn new(processor: Arc<P>, store: Arc<S>, settings: StreamSettings) -> Self {
        Self {
            processor: Arc::new(WithinContract(processor)),
            store,
            settings,
            metrics: None,
        }
    }

    /// Writes each batch's metrics to stdout as Embedded Metric Format lines, for the
    /// function `name` (CloudWatch Logs extracts them).
    pub fn with_metrics(mut self, name: String) -> Self {
        self.metrics = Some(name);
        self
    }

    /// Processes one batch and names the records to deliver again (ReportBatchItemFailures),
    /// writing its metrics when [`StreamHandler::with_metrics`] asked for them. Never fails
    /// as a whole: a failed invocation would retry the records that succeeded.
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let (response, metrics) = self.handle_measured(event).await;
        if let Some(function) = &self.metrics {
            for line in metrics.emf(function, now_millis()) {
                println!("{line}");
            }
        }
        response
    }

    /// [`StreamHandler::handle`], and what the batch did.
    pub async fn handle_measured(&self, event: Event) -> (DynamoDbEventResponse, BatchMetrics) {
        let received = event.records.len();
        // When each new item was created: its outcome's latency is measured from there.
        let created: Vec<(String, i64)> = event
            .records
            .iter()
            .filter_map(|record| {
                let seq = record.change.sequence_number.clone()?;
                let at = record.change.new_image.get(item::CREATED_AT)?.clone();
                Some((seq, serde_dynamo::from_attribute_value(at).ok()?))
            })
            .collect();
        let records = event
            .records
            .into_iter()
            .filter_map(|record| {
                let seq = record.change.sequence_number.clone();
                decode(record)
                    .inspect_err(|error| {
                        tracing::error!(seq, %error, "dropping a stream record that cannot be decoded")
                    })
                    .ok()
            })
            .collect::<Vec<_>>();
        let undecodable = received - records.len();
        let inserted: Vec<String> = records
            .iter()
            .filter(|record| record.event == ChangeEvent::Insert)
            .map(|record| record.sequence_number.clone())
            .collect();
        let report = process_batch(
            records,
            self.processor.clone(),
            self.store.clone(),
            &self.settings,
            now_millis(),
        )
        .await;
        tracing::info!(
            received,
            undecodable,
            succeeded = report.succeeded,
            rejected = report.rejected,
            transient = report.transient,
            duplicates = report.duplicates,
            skipped = report.skipped,
            retry = report.failures.len(),
            "batch processed"
        );
        let done = now_millis();
        // Each processed INSERT not handed back got its outcome in this batch.
        let latencies = created
            .iter()
            .filter(|(seq, _)| inserted.contains(seq) && !report.failures.contains(seq))
            .map(|(_, created_at)| (done - created_at).max(0))
            .collect();
        let metrics = BatchMetrics {
            succeeded: report.succeeded,
            rejected: report.rejected,
            retried: report.failures.len(),
            undecodable,
            latencies,
        };
        (batch_response(report.failures), metrics)
    }
}

/// The answer to a stream batch that asks Lambda to deliver again the records of these
/// sequence numbers (partial batch responses: `ReportBatchItemFailures`).
pub fn batch_response(failures: impl IntoIterator<Item = String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|seq| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(seq);
            failure
        })
        .collect();
    response
}

/// The processor behind the HTTP contract's envelope check. API Gateway stores some
/// bodies the contract refuses (a duplicate member name: README, "The HTTP contract"), so
/// the function refuses them instead: the item ends `failed` with the reason, and the
/// processor never sees such a body. Permanent, like the body itself.
struct WithinContract<P>(Arc<P>);

impl<P: Processor> Processor for WithinContract<P> {
    async fn process(&self, request: &PendingRequest) -> Result<Value, ProcessError> {
        RequestBody::stored(&request.body).map_err(|error| {
            ProcessError::Rejected(format!(
                "the stored request is outside the HTTP contract (API Gateway could not \
                 refuse it): {error}"
            ))
        })?;
        self.0.process(request).await
    }
}
