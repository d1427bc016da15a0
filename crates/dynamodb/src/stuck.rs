//! Redrive over a DynamoDB table: what is stuck there.

use std::{collections::HashSet, sync::Arc, time::Duration};

use storefirst_domain::{OutcomeStore, RequestId, millis, now_millis};
use storefirst_pipeline::{StoreFault, Stuck};

use crate::{DynamoRequests, ShardLedger};

/// A DynamoDB table's stuck items: pending with `attempts > 0` or older than
/// `maximum_record_age` (a Scan), and those named by the dead letters of the local
/// checkpoint file, when there is one.
pub struct DynamoStuck<S> {
    pub requests: DynamoRequests,
    pub outcomes: Arc<S>,
    pub ledger: Option<ShardLedger>,
    /// The stream's `maximum_record_age`: a pending item older than it is not coming.
    pub maximum_record_age: Duration,
}

impl<S> DynamoStuck<S> {
    async fn dead_lettered_pending(&self) -> Result<Vec<(RequestId, String)>, StoreFault> {
        let Some(ledger) = &self.ledger else {
            return Ok(Vec::new());
        };
        let mut seen = HashSet::new();
        let mut pending = Vec::new();
        for letter in ledger.dead_letters().await? {
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

impl<S: OutcomeStore> Stuck for DynamoStuck<S> {
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
        let Some(ledger) = &self.ledger else {
            return Ok(0);
        };
        let pending = self.dead_lettered_pending().await?;
        let still_pending = pending.into_iter().map(|(id, _)| id.to_string()).collect();
        ledger.clear_dead_letters(still_pending).await
    }
}
