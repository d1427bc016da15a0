//! Reprocesses what the stream gave up on: items still `pending` that were dead-lettered or
//! have failed before. Run it after fixing the processor (`cargo xtask redrive`); each
//! store says what is stuck ([`Stuck`], in its adapter crate).

use std::{future::Future, sync::Arc};

use storefirst_domain::{
    ChangeEvent, ChangeRecord, OutcomeStore, Processor, RequestId, StreamSettings, now_millis,
    process_batch,
};

use crate::ports::StoreFault;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RedriveReport {
    pub found: usize,
    pub succeeded: usize,
    pub rejected: usize,
    pub still_failing: usize,
}

/// A store whose stuck items can be redriven.
pub trait Stuck: Send + Sync {
    type Outcomes: OutcomeStore;

    /// Where the outcomes are written.
    fn outcomes(&self) -> Arc<Self::Outcomes>;

    /// Pending items that failed before or were dead-lettered, with their bodies, oldest
    /// first.
    fn stuck_pending(
        &self,
    ) -> impl Future<Output = Result<Vec<(RequestId, String)>, StoreFault>> + Send;

    /// Drops the dead letters none of whose items is still pending.
    fn clear_finished_dead_letters(&self)
    -> impl Future<Output = Result<usize, StoreFault>> + Send;
}

/// Runs every stuck item through the same batch algorithm as the poller, in batches of the
/// configured size, then drops the dead letters whose items are all done.
pub async fn redrive<P: Processor, S: Stuck>(
    store: &S,
    processor: Arc<P>,
    settings: &StreamSettings,
) -> Result<RedriveReport, StoreFault> {
    let stuck = store.stuck_pending().await?;
    let mut report = RedriveReport {
        found: stuck.len(),
        ..RedriveReport::default()
    };
    let outcomes = store.outcomes();
    for chunk in stuck.chunks(settings.batch_size as usize) {
        let records = chunk
            .iter()
            .map(|(id, body)| ChangeRecord {
                sequence_number: format!("redrive-{id}"),
                event: ChangeEvent::Insert,
                id: id.clone(),
                body: Some(body.clone()),
                correlation: Default::default(),
            })
            .collect();
        let batch = process_batch(
            records,
            processor.clone(),
            outcomes.clone(),
            settings,
            now_millis(),
        )
        .await;
        report.succeeded += batch.succeeded;
        report.rejected += batch.rejected;
        report.still_failing += batch.failures.len();
    }
    store.clear_finished_dead_letters().await?;
    Ok(report)
}
