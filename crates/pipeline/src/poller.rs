//! Reads the change stream from a persisted checkpoint and drives the processor with the
//! semantics of a Lambda event source mapping: batch size and window, the event filter,
//! ReportBatchItemFailures, bisect on error, bounded retries, maximum record age, and an
//! on-failure destination (the dead-letter table).

use std::{collections::VecDeque, time::Duration};

use storefirst_domain::{StreamSettings, millis, now_millis};
use tokio::sync::watch;

use crate::ports::{ChangeStream, DeadLetter, Invoker, StoreFault, StreamBatch, StreamRow};

/// How long to wait before reading again after the store failed.
const FAULT_PAUSE: Duration = Duration::from_millis(500);

pub struct Poller<T, I> {
    pub stream: T,
    pub invoker: I,
    pub settings: StreamSettings,
    /// Pause before the first retry of a failed batch; doubles per retry, up to 5 s.
    pub retry_backoff: Duration,
    pub shutdown: watch::Receiver<bool>,
}

type Row<T> = StreamRow<<T as ChangeStream>::Cursor, <T as ChangeStream>::Source>;

impl<T: ChangeStream, I: Invoker<T::Cursor, T::Source>> Poller<T, I> {
    /// Runs until shutdown; the in-flight batch finishes and is checkpointed first.
    pub async fn run(mut self) {
        let mut wakeup = self.stream.wakeup();
        let mut checkpoint = loop {
            match self.stream.checkpoint().await {
                Ok(seq) => break seq,
                Err(fault) => {
                    tracing::error!(%fault, "cannot read the stream checkpoint");
                    if self.pause(FAULT_PAUSE).await {
                        return;
                    }
                }
            }
        };
        tracing::info!(%checkpoint, "stream poller started");
        while !*self.shutdown.borrow() {
            wakeup.mark_seen();
            let batch = match self.read(&checkpoint).await {
                Ok(batch) => batch,
                Err(fault) => {
                    tracing::error!(%fault, "cannot read the stream");
                    self.pause(FAULT_PAUSE).await;
                    continue;
                }
            };
            if batch.rows.is_empty() {
                if batch.horizon != checkpoint {
                    // Only filtered-out records: move past them.
                    match self.stream.advance(batch.horizon.clone(), None).await {
                        Ok(()) => checkpoint = batch.horizon,
                        Err(fault) => tracing::error!(%fault, "cannot checkpoint the stream"),
                    }
                    continue;
                }
                tokio::select! {
                    _ = wakeup.wait() => {}
                    _ = self.shutdown.changed() => {}
                }
                continue;
            }
            match self.deliver(batch, checkpoint.clone()).await {
                Ok(seq) => checkpoint = seq,
                Err(fault) => {
                    // Not checkpointed: the same records come again, as with Lambda.
                    tracing::error!(%fault, "cannot checkpoint the stream");
                    self.pause(FAULT_PAUSE).await;
                }
            }
        }
        tracing::info!(%checkpoint, "stream poller stopped");
    }

    /// A batch: up to `batch_size` records, after waiting up to the batching window to fill.
    async fn read(
        &mut self,
        after: &T::Cursor,
    ) -> Result<StreamBatch<T::Cursor, T::Source>, StoreFault> {
        let (size, events) = (self.settings.batch_size, self.settings.events);
        let batch = self.stream.read(after, size, events).await?;
        let window = self.settings.batching_window;
        if batch.rows.is_empty() || window.is_zero() || batch.rows.len() >= size as usize {
            return Ok(batch);
        }
        self.pause(window).await;
        self.stream.read(after, size, events).await
    }

    /// Delivers one batch with retries and returns the new checkpoint, which starts at
    /// `checkpoint`.
    async fn deliver(
        &mut self,
        batch: StreamBatch<T::Cursor, T::Source>,
        mut checkpoint: T::Cursor,
    ) -> Result<T::Cursor, StoreFault> {
        let StreamBatch { rows, horizon } = batch;
        let oldest_allowed = now_millis() - millis(self.settings.maximum_record_age);
        let (too_old, wanted): (Vec<Row<T>>, Vec<Row<T>>) = rows
            .into_iter()
            .partition(|row| row.created_at < oldest_allowed);
        if !too_old.is_empty() {
            let reason = format!(
                "older than the maximum record age of {} s",
                self.settings.maximum_record_age.as_secs()
            );
            let letter = dead_letter(reason, &too_old);
            checkpoint = letter.last_seq.clone();
            self.stream
                .advance(checkpoint.clone(), Some(letter))
                .await?;
        }

        let mut queue = VecDeque::from([(wanted, 0u32)]);
        while let Some((mut batch, retries)) = queue.pop_front() {
            let Some(batch_last) = batch.last().map(|row| row.cursor.clone()) else {
                continue;
            };
            let failures = self.invoker.invoke(&batch, &self.settings).await;
            let first_failed = failures.first().and_then(|seq| {
                batch
                    .iter()
                    .position(|row| row.record.sequence_number == *seq)
            });
            let Some(index) = first_failed else {
                // The last stretch is checkpointed below, with the horizon.
                if !queue.is_empty() {
                    self.stream.advance(batch_last.clone(), None).await?;
                    checkpoint = batch_last;
                }
                continue;
            };
            // As with ReportBatchItemFailures: everything before the first failure is done.
            let rest = batch.split_off(index);
            if let Some(done) = batch.last() {
                self.stream.advance(done.cursor.clone(), None).await?;
                checkpoint = done.cursor.clone();
            }
            if retries >= self.settings.maximum_retry_attempts {
                let reason = format!(
                    "retries exhausted after {retries} retries: {} of {} records still failing",
                    failures.len(),
                    rest.len()
                );
                tracing::warn!(
                    reason,
                    first_seq = %rest[0].cursor,
                    "batch sent to the dead letters"
                );
                self.stream
                    .advance(batch_last.clone(), Some(dead_letter(reason, &rest)))
                    .await?;
                checkpoint = batch_last;
                continue;
            }
            let backoff = self
                .retry_backoff
                .saturating_mul(1 << retries.min(16))
                .min(Duration::from_secs(5));
            if self.pause(backoff).await {
                // Shutting down: the checkpoint stays before `rest`, which comes again.
                return Ok(checkpoint);
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
        self.stream.advance(horizon.clone(), None).await?;
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

/// The dead letter of `rows`, which is never empty.
fn dead_letter<C: Clone, S>(reason: String, rows: &[StreamRow<C, S>]) -> DeadLetter<C> {
    DeadLetter {
        reason,
        first_seq: rows[0].cursor.clone(),
        last_seq: rows[rows.len() - 1].cursor.clone(),
        request_ids: rows.iter().map(|row| row.record.id.to_string()).collect(),
    }
}

#[cfg(test)]
mod tests;
