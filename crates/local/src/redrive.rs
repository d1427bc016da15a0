//! Reprocesses what the stream gave up on: items still `pending` that were dead-lettered or
//! have failed before. Run it after fixing the processor (`cargo xtask redrive`), against
//! the SQLite store or a DynamoDB table.

use std::{collections::HashSet, future::Future, sync::Arc, time::Duration};

use storefirst_domain::{
    ChangeEvent, ChangeRecord, Processor, RequestId, RequestStore, StreamSettings, millis,
    now_millis, process_batch,
};

use crate::{
    dynamo::{Checkpoints, DynamoRequests},
    store::SqliteStore,
    writer::StoreFault,
};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RedriveReport {
    pub found: usize,
    pub succeeded: usize,
    pub rejected: usize,
    pub still_failing: usize,
}

/// A store whose stuck items can be redriven.
pub trait Stuck: Send + Sync {
    type Outcomes: RequestStore;

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

impl Stuck for SqliteStore {
    type Outcomes = SqliteStore;

    fn outcomes(&self) -> Arc<SqliteStore> {
        Arc::new(self.clone())
    }

    async fn stuck_pending(&self) -> Result<Vec<(RequestId, String)>, StoreFault> {
        SqliteStore::stuck_pending(self).await
    }

    async fn clear_finished_dead_letters(&self) -> Result<usize, StoreFault> {
        SqliteStore::clear_finished_dead_letters(self).await
    }
}

/// A DynamoDB table's stuck items: pending with `attempts > 0` or older than
/// `maximum_record_age` (a Scan), and those named by the dead letters of the local
/// checkpoint file, when there is one.
pub struct DynamoStuck<S> {
    pub requests: DynamoRequests,
    pub outcomes: Arc<S>,
    pub checkpoints: Option<Checkpoints>,
    /// The stream's `maximum_record_age`: a pending item older than it is not coming.
    pub maximum_record_age: Duration,
}

impl<S> DynamoStuck<S> {
    async fn dead_lettered_pending(&self) -> Result<Vec<(RequestId, String)>, StoreFault> {
        let Some(checkpoints) = &self.checkpoints else {
            return Ok(Vec::new());
        };
        let mut seen = HashSet::new();
        let mut pending = Vec::new();
        for letter in checkpoints.dead_letters().await? {
            for id in letter.request_ids {
                if !seen.insert(id.clone()) {
                    continue;
                }
                if let (Some(body), Ok(id)) = (
                    self.requests.pending_body(&id).await?,
                    RequestId::parse(&id),
                ) {
                    pending.push((id, body));
                }
            }
        }
        Ok(pending)
    }
}

impl<S: RequestStore> Stuck for DynamoStuck<S> {
    type Outcomes = S;

    fn outcomes(&self) -> Arc<S> {
        self.outcomes.clone()
    }

    async fn stuck_pending(&self) -> Result<Vec<(RequestId, String)>, StoreFault> {
        let too_old = now_millis().saturating_sub(millis(self.maximum_record_age));
        let mut stuck = self.requests.failed_pending(too_old).await?;
        let known: HashSet<RequestId> = stuck.iter().map(|(id, _)| id.clone()).collect();
        for (id, body) in self.dead_lettered_pending().await? {
            if !known.contains(&id) {
                stuck.push((id, body));
            }
        }
        Ok(stuck)
    }

    async fn clear_finished_dead_letters(&self) -> Result<usize, StoreFault> {
        let Some(checkpoints) = &self.checkpoints else {
            return Ok(0);
        };
        let pending = self.dead_lettered_pending().await?;
        let still_pending = pending.into_iter().map(|(id, _)| id.to_string()).collect();
        checkpoints.clear_dead_letters(still_pending).await
    }
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
