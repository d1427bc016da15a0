//! Reads the change stream from a persisted checkpoint and drives the processor with the
//! semantics of a Lambda event source mapping: batch size and window, the event filter,
//! ReportBatchItemFailures, bisect on error, bounded retries, maximum record age, and an
//! on-failure destination (the dead-letter table).

use std::{collections::VecDeque, sync::Arc, time::Duration};

use storefirst_domain::{Processor, StreamSettings, now_millis, process_batch};
use tokio::sync::watch;

use crate::{
    store::{DeadLetter, SqliteStore, StreamBatch, StreamRow},
    writer::StoreFault,
};

/// The checkpoint's name in the `checkpoints` table.
pub const CONSUMER: &str = "processor";

/// How long to wait before reading again after the store failed.
const FAULT_PAUSE: Duration = Duration::from_millis(500);

pub struct Poller<P> {
    pub store: SqliteStore,
    pub processor: Arc<P>,
    pub settings: StreamSettings,
    /// Pause before the first retry of a failed batch; doubles per retry, up to 5 s.
    pub retry_backoff: Duration,
    pub shutdown: watch::Receiver<bool>,
}

impl<P: Processor> Poller<P> {
    /// Runs until shutdown; the in-flight batch finishes and is checkpointed first.
    pub async fn run(mut self) {
        let mut commits = self.store.writer().commits();
        let mut checkpoint = loop {
            match self.store.checkpoint(CONSUMER).await {
                Ok(seq) => break seq,
                Err(fault) => {
                    tracing::error!(%fault, "cannot read the stream checkpoint");
                    if self.pause(FAULT_PAUSE).await {
                        return;
                    }
                }
            }
        };
        tracing::info!(checkpoint, "stream poller started");
        while !*self.shutdown.borrow() {
            commits.borrow_and_update();
            let batch = match self.read(checkpoint).await {
                Ok(batch) => batch,
                Err(fault) => {
                    tracing::error!(%fault, "cannot read the stream");
                    self.pause(FAULT_PAUSE).await;
                    continue;
                }
            };
            if batch.rows.is_empty() {
                if batch.horizon > checkpoint {
                    // Only filtered-out records: move past them.
                    match self.store.advance(CONSUMER, batch.horizon, None).await {
                        Ok(()) => checkpoint = batch.horizon,
                        Err(fault) => tracing::error!(%fault, "cannot checkpoint the stream"),
                    }
                    continue;
                }
                tokio::select! {
                    _ = commits.changed() => {}
                    _ = self.shutdown.changed() => {}
                }
                continue;
            }
            match self.deliver(batch).await {
                Ok(seq) => checkpoint = seq,
                Err(fault) => {
                    // Not checkpointed: the same records come again, as with Lambda.
                    tracing::error!(%fault, "cannot checkpoint the stream");
                    self.pause(FAULT_PAUSE).await;
                }
            }
        }
        tracing::info!(checkpoint, "stream poller stopped");
    }

    /// A batch: up to `batch_size` records, after waiting up to the batching window to fill.
    async fn read(&mut self, after: i64) -> Result<StreamBatch, StoreFault> {
        let (size, events) = (self.settings.batch_size, self.settings.events);
        let batch = self.store.read_stream(after, size, events).await?;
        let window = self.settings.batching_window;
        if batch.rows.is_empty() || window.is_zero() || batch.rows.len() >= size as usize {
            return Ok(batch);
        }
        self.pause(window).await;
        self.store.read_stream(after, size, events).await
    }

    /// Delivers one batch with retries and returns the new checkpoint.
    async fn deliver(&mut self, batch: StreamBatch) -> Result<i64, StoreFault> {
        let StreamBatch { rows, horizon } = batch;
        let oldest_allowed = now_millis() - millis(self.settings.maximum_record_age);
        let (too_old, wanted): (Vec<StreamRow>, Vec<StreamRow>) = rows
            .into_iter()
            .partition(|row| row.created_at < oldest_allowed);
        if !too_old.is_empty() {
            let reason = format!(
                "older than the maximum record age of {} s",
                self.settings.maximum_record_age.as_secs()
            );
            let seq = too_old.last().map_or(0, |row| row.seq);
            self.store
                .advance(CONSUMER, seq, Some(dead_letter(reason, &too_old)))
                .await?;
        }

        let mut queue = VecDeque::from([(wanted, 0u32)]);
        while let Some((mut batch, retries)) = queue.pop_front() {
            let Some(batch_last) = batch.last().map(|row| row.seq) else {
                continue;
            };
            let records = batch.iter().map(|row| row.record.clone()).collect();
            let store = Arc::new(self.store.clone());
            let report =
                process_batch(records, self.processor.clone(), store, &self.settings).await;
            tracing::debug!(
                records = batch.len(),
                retries,
                runs = report.processor_runs,
                succeeded = report.succeeded,
                rejected = report.rejected,
                transient = report.transient,
                duplicates = report.duplicates,
                "batch processed"
            );
            let first_failed = report.failures.first().and_then(|seq| {
                batch
                    .iter()
                    .position(|row| row.record.sequence_number == *seq)
            });
            let Some(index) = first_failed else {
                // The last stretch is checkpointed below, with the horizon.
                if !queue.is_empty() {
                    self.store.advance(CONSUMER, batch_last, None).await?;
                }
                continue;
            };
            // As with ReportBatchItemFailures: everything before the first failure is done.
            let rest = batch.split_off(index);
            if let Some(done) = batch.last() {
                self.store.advance(CONSUMER, done.seq, None).await?;
            }
            if retries >= self.settings.maximum_retry_attempts {
                let reason = format!(
                    "retries exhausted after {retries} retries: {} of {} records still failing",
                    report.failures.len(),
                    rest.len()
                );
                tracing::warn!(
                    reason,
                    first_seq = rest[0].seq,
                    "batch sent to the dead letters"
                );
                self.store
                    .advance(CONSUMER, batch_last, Some(dead_letter(reason, &rest)))
                    .await?;
                continue;
            }
            let backoff = self
                .retry_backoff
                .saturating_mul(1 << retries.min(16))
                .min(Duration::from_secs(5));
            if self.pause(backoff).await {
                // Shutting down: the checkpoint stays before `rest`, which comes again.
                return Ok(rest[0].seq - 1);
            }
            if self.settings.bisect_batch_on_function_error && rest.len() > 1 {
                let mut left = rest;
                let right = left.split_off(left.len() / 2);
                queue.push_front((right, retries + 1));
                queue.push_front((left, retries + 1));
            } else {
                queue.push_front((rest, retries + 1));
            }
        }
        self.store.advance(CONSUMER, horizon, None).await?;
        Ok(horizon)
    }

    /// Sleeps, waking early on shutdown; returns whether shutdown was requested.
    async fn pause(&mut self, duration: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(duration) => {}
            _ = self.shutdown.changed() => {}
        }
        *self.shutdown.borrow()
    }
}

fn dead_letter(reason: String, rows: &[StreamRow]) -> DeadLetter {
    DeadLetter {
        reason,
        first_seq: rows.first().map_or(0, |row| row.seq),
        last_seq: rows.last().map_or(0, |row| row.seq),
        request_ids: rows.iter().map(|row| row.record.id.to_string()).collect(),
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
