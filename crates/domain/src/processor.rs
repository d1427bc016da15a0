//! The business logic's interface: a pending request in, a result or a reason out.

use std::future::Future;

use serde_json::Value;

use crate::RequestId;

/// A stored request waiting for its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    pub id: RequestId,
    /// The body exactly as the client sent it.
    pub body: String,
}

/// Why processing did not succeed; decides whether it is tried again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// Permanent: the request itself is wrong. Recorded as `failed`, never retried.
    #[error("{0}")]
    Rejected(String),
    /// Transient: something it depends on is down. Retried by the stream.
    #[error("{0}")]
    Unavailable(String),
}

/// The business logic. Users replace the sample `RestaurantOrders` in `storefirst-app`
/// with their own. Panics and calls that run past the record timeout count as
/// [`ProcessError::Unavailable`].
pub trait Processor: Send + Sync + 'static {
    fn process(
        &self,
        request: &PendingRequest,
    ) -> impl Future<Output = Result<Value, ProcessError>> + Send;
}
