//! The batch algorithm both runtimes run: filter, process concurrently with a timeout and
//! panic isolation, write each outcome conditionally, report what to deliver again.

use std::{any::Any, sync::Arc};

use futures::StreamExt;
use tracing::Instrument;

use crate::{
    ChangeRecord, Outcome, OutcomeStore, PendingRequest, ProcessError, Processor, StreamSettings,
    Written,
};

/// What a batch did. `failures` is what ReportBatchItemFailures returns: the sequence
/// numbers to deliver again, in batch order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub failures: Vec<String>,
    pub succeeded: usize,
    pub rejected: usize,
    pub transient: usize,
    /// Outcomes not written because the item was no longer pending.
    pub duplicates: usize,
    /// Records the filter keeps from the processor (MODIFY, REMOVE).
    pub skipped: usize,
    /// Processor calls made; with `duplicates` this shows at-least-once delivery at work.
    pub processor_runs: usize,
}

enum Disposition {
    Skipped,
    Written(Outcome, Written, bool),
    StoreFailed { ran: bool },
}

/// Processes one batch of stream records: filters them, runs the processor on the rest
/// concurrently (bounded, each with a timeout, panics caught), writes each outcome
/// conditionally, and reports which records to deliver again. `now` (epoch milliseconds,
/// the batch's start) dates the outcomes: a success expires `succeeded_retention` after it.
pub async fn process_batch<P: Processor, S: OutcomeStore>(
    records: Vec<ChangeRecord>,
    processor: Arc<P>,
    store: Arc<S>,
    settings: &StreamSettings,
    now: i64,
) -> BatchReport {
    let dispositions: Vec<(String, Disposition)> = futures::stream::iter(records)
        .map(|record| {
            let (processor, store) = (processor.clone(), store.clone());
            // Every line about the record, the processor's own included, carries its ids.
            let span = tracing::info_span!(
                "record",
                id = %record.id,
                request_id = record.correlation.request_id.as_deref(),
                trace_id = record.correlation.trace_id.as_deref(),
            );
            async move {
                let seq = record.sequence_number.clone();
                (
                    seq,
                    handle_record(record, processor, store, settings, now).await,
                )
            }
            .instrument(span)
        })
        .buffered(settings.concurrency.max(1))
        .collect()
        .await;

    let mut report = BatchReport::default();
    for (seq, disposition) in dispositions {
        match disposition {
            Disposition::Skipped => report.skipped += 1,
            Disposition::StoreFailed { ran } => {
                report.processor_runs += usize::from(ran);
                report.failures.push(seq);
            }
            Disposition::Written(outcome, written, ran) => {
                report.processor_runs += usize::from(ran);
                match (outcome, written) {
                    (_, Written::AlreadyDone) => report.duplicates += 1,
                    (Outcome::Succeeded { .. }, Written::Applied) => report.succeeded += 1,
                    (Outcome::Rejected { .. }, Written::Applied) => report.rejected += 1,
                    (Outcome::Transient { .. }, Written::Applied) => {
                        report.transient += 1;
                        report.failures.push(seq);
                    }
                }
            }
        }
    }
    report
}

async fn handle_record<P: Processor, S: OutcomeStore>(
    record: ChangeRecord,
    processor: Arc<P>,
    store: Arc<S>,
    settings: &StreamSettings,
    now: i64,
) -> Disposition {
    if !settings.accepts(record.event) {
        return Disposition::Skipped;
    }
    let seq = record.sequence_number;
    let (outcome, ran) = match record.body {
        None => {
            let error = "the stream record carries no request body".to_owned();
            (Outcome::Rejected { error }, false)
        }
        Some(body) => {
            let request = PendingRequest {
                id: record.id.clone(),
                body,
            };
            (run_processor(processor, request, settings, now).await, true)
        }
    };
    match store.record_outcome(&record.id, &outcome).await {
        Ok(written) => {
            match &outcome {
                Outcome::Transient { error } => {
                    tracing::warn!(id = %record.id, seq, error, "transient failure, will retry")
                }
                Outcome::Rejected { error } => {
                    tracing::info!(id = %record.id, seq, error, ?written, "rejected")
                }
                Outcome::Succeeded { .. } => {
                    tracing::debug!(id = %record.id, seq, ?written, "succeeded")
                }
            }
            Disposition::Written(outcome, written, ran)
        }
        Err(error) => {
            tracing::warn!(id = %record.id, seq, %error, "could not write the outcome, will retry");
            Disposition::StoreFailed { ran }
        }
    }
}

/// Runs the processor in its own task so that a panic or a hang stays with that record.
async fn run_processor<P: Processor>(
    processor: Arc<P>,
    request: PendingRequest,
    settings: &StreamSettings,
    now: i64,
) -> Outcome {
    // The task runs in the record's span: the processor's log lines carry its ids too.
    let task = tokio::spawn(
        async move { processor.process(&request).await }.instrument(tracing::Span::current()),
    );
    let abort = task.abort_handle();
    match tokio::time::timeout(settings.record_timeout, task).await {
        Ok(Ok(Ok(result))) => {
            let retention =
                i64::try_from(settings.succeeded_retention.as_secs()).unwrap_or(i64::MAX);
            // Rounded up to the next whole second (the TTL's unit), so an item is kept at
            // least the retention; rounded down it could expire within a millisecond.
            let expires_at = (now.saturating_add(999) / 1000).saturating_add(retention);
            Outcome::Succeeded { result, expires_at }
        }
        Ok(Ok(Err(ProcessError::Rejected(error)))) => Outcome::Rejected { error },
        Ok(Ok(Err(ProcessError::Unavailable(error)))) => Outcome::Transient { error },
        Ok(Err(join_error)) => {
            let error = match join_error.try_into_panic() {
                Ok(payload) => format!(
                    "the processor panicked: {}",
                    panic_message(payload.as_ref())
                ),
                Err(other) => format!("the processor task failed: {other}"),
            };
            Outcome::Transient { error }
        }
        Err(_elapsed) => {
            abort.abort();
            let error = format!(
                "the processor ran past the record timeout of {:?}",
                settings.record_timeout
            );
            Outcome::Transient { error }
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
