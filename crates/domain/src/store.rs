//! Where outcomes are written, and what a write did.

use std::future::Future;

use serde_json::Value;

use crate::RequestId;

/// What one processor run leaves on the item. Every outcome also counts one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `pending -> succeeded`, with the result and the TTL (epoch seconds).
    Succeeded { result: Value, expires_at: i64 },
    /// `pending -> failed`, with the reason. Permanent.
    Rejected { error: String },
    /// Stays `pending` with the error of this attempt; the stream retries it.
    Transient { error: String },
}

/// Whether an outcome write changed the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Applied,
    /// The item was no longer pending (or is gone): a duplicate delivery. Not an error.
    AlreadyDone,
}

#[derive(Debug, thiserror::Error)]
#[error("the request store failed: {0}")]
pub struct StoreError(pub String);

/// Where outcomes are written: DynamoDB on AWS, SQLite locally.
pub trait OutcomeStore: Send + Sync + 'static {
    /// Writes `outcome` only if the item is still `pending`, and counts the attempt.
    fn record_outcome(
        &self,
        id: &RequestId,
        outcome: &Outcome,
    ) -> impl Future<Output = Result<Written, StoreError>> + Send;
}
