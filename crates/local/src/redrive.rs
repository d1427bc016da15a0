//! Reprocesses what the stream gave up on: items still `pending` that were dead-lettered or
//! have failed before. Run it after fixing the processor (`cargo xtask redrive`).

use std::sync::Arc;

use storefirst_domain::{ChangeEvent, ChangeRecord, Processor, StreamSettings, process_batch};

use crate::{store::SqliteStore, writer::StoreFault};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RedriveReport {
    pub found: usize,
    pub succeeded: usize,
    pub rejected: usize,
    pub still_failing: usize,
}

/// Runs every stuck item through the same batch algorithm as the poller, in batches of the
/// configured size, then drops the dead letters whose items are all done.
pub async fn redrive<P: Processor>(
    store: &SqliteStore,
    processor: Arc<P>,
    settings: &StreamSettings,
) -> Result<RedriveReport, StoreFault> {
    let stuck = store.stuck_pending().await?;
    let mut report = RedriveReport {
        found: stuck.len(),
        ..RedriveReport::default()
    };
    let store_arc = Arc::new(store.clone());
    for chunk in stuck.chunks(settings.batch_size as usize) {
        let records = chunk
            .iter()
            .map(|(id, body)| ChangeRecord {
                sequence_number: format!("redrive-{id}"),
                event: ChangeEvent::Insert,
                id: id.clone(),
                body: Some(body.clone()),
            })
            .collect();
        let batch = process_batch(records, processor.clone(), store_arc.clone(), settings).await;
        report.succeeded += batch.succeeded;
        report.rejected += batch.rejected;
        report.still_failing += batch.failures.len();
    }
    store.clear_finished_dead_letters().await?;
    Ok(report)
}
