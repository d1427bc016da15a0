//! The pipeline's ports: what the HTTP API needs from a store ([`Ingest`]), what the
//! poller needs from a change stream ([`ChangeStream`]) and what delivers a batch
//! ([`Invoker`]), with the types they speak in. `storefirst-sqlite` implements the first
//! two (the embedded default), `storefirst-dynamodb` a table and its stream; a batch is
//! delivered in-process ([`InProcess`]) or to a Lambda `bootstrap` (`storefirst-local`'s
//! Lambda mode). The poller's semantics are one piece of code for all of them.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use serde::Serialize;
use storefirst_domain::{
    Callback, CallbackUrl, ChangeEvent, ChangeRecord, OutcomeStore, Processor, RequestBody,
    RequestId, Status, StreamSettings, now_millis, process_batch,
};
use tokio::sync::watch;

/// What an accept did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Created,
    /// Same id, same body: an idempotent retry; nothing written. The answer carries the
    /// stored status, so a retry after the outcome says so.
    Duplicate(Status),
    /// Same id, another body or another callback URL.
    Conflict,
    /// The id names a request past its TTL that is not deleted yet. GET already answers
    /// 404 for it, but API Gateway cannot replace such an item and keep a same-body retry
    /// unchanged in one DynamoDB call, so neither runtime reuses the id until it is gone.
    Expired,
}

/// Ingest: where the HTTP API stores requests (PUT, POST) and reads them back (GET).
pub trait Ingest: Clone + Send + Sync + 'static {
    /// Waits until a new request may be written; refuses it when processing is too far
    /// behind. Backends that keep no backlog of their own admit everything.
    fn admit(&self) -> impl Future<Output = Result<(), Behind>> + Send {
        std::future::ready(Ok(()))
    }

    /// Stores a new request, with the URL its outcome is delivered to; never overwrites
    /// one. The callback is part of the request: a retry with another one is a conflict.
    fn accept(
        &self,
        id: RequestId,
        body: RequestBody,
        callback: Option<CallbackUrl>,
    ) -> impl Future<Output = Result<Accepted, StoreFault>> + Send;

    /// Stores a request under an id the server just chose (POST). The same as
    /// [`Ingest::accept`] unless the backend writes new items another way.
    fn accept_new(
        &self,
        id: RequestId,
        body: RequestBody,
        callback: Option<CallbackUrl>,
    ) -> impl Future<Output = Result<Accepted, StoreFault>> + Send {
        self.accept(id, body, callback)
    }

    /// Whether something delivers the webhooks of this store's requests; when not, the API
    /// refuses `x-callback-url` rather than store a callback nobody delivers.
    fn delivers_webhooks(&self) -> bool {
        true
    }

    /// The item, unless it is unknown or its TTL has passed.
    fn get(&self, id: RequestId) -> impl Future<Output = Result<Option<Item>, StoreFault>> + Send;
}

/// A change-stream record: where it is (`cursor`), when it was written, what processing
/// reads, and `source`, the record as the backend has it (the Lambda event record for
/// DynamoDB Streams).
#[derive(Debug, Clone)]
pub struct StreamRow<C, S = ()> {
    pub cursor: C,
    pub created_at: i64,
    pub record: ChangeRecord,
    pub source: S,
}

/// Records read from the stream, and how far the read looked: the checkpoint may move to
/// `horizon` once the rows are done, since everything in between was filtered out.
#[derive(Debug, Clone)]
pub struct StreamBatch<C, S = ()> {
    pub rows: Vec<StreamRow<C, S>>,
    pub horizon: C,
}

/// A stretch of the stream given up on, as the on-failure destination would get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter<C = i64> {
    pub reason: String,
    pub first_seq: C,
    pub last_seq: C,
    pub request_ids: Vec<String>,
}

/// How the poller learns that there may be new records.
pub enum Wakeup {
    /// Every commit of the local store bumps the counter.
    Commits(watch::Receiver<u64>),
    /// A stream read over the network is polled, as Lambda's poller does.
    Every(Duration),
}

impl Wakeup {
    /// Called before a read: commits up to here are covered by it.
    pub fn mark_seen(&mut self) {
        if let Wakeup::Commits(commits) = self {
            commits.borrow_and_update();
        }
    }

    /// Waits until a read may find something new.
    pub async fn wait(&mut self) {
        match self {
            Wakeup::Commits(commits) => {
                if commits.changed().await.is_err() {
                    // The writer is gone: nothing will ever commit again.
                    std::future::pending::<()>().await;
                }
            }
            Wakeup::Every(period) => tokio::time::sleep(*period).await,
        }
    }
}

/// The change stream the poller reads, with its persisted checkpoint.
pub trait ChangeStream: Send + Sync + 'static {
    type Cursor: Clone + PartialEq + fmt::Debug + fmt::Display + Send + Sync + 'static;
    type Source: Clone + Send + Sync + 'static;

    /// Where the last run stopped: the stream is read after it.
    fn checkpoint(&self) -> impl Future<Output = Result<Self::Cursor, StoreFault>> + Send;

    /// Up to `limit` records of `events` after `after`, oldest first.
    fn read(
        &self,
        after: &Self::Cursor,
        limit: u32,
        events: &'static [ChangeEvent],
    ) -> impl Future<Output = Result<StreamBatch<Self::Cursor, Self::Source>, StoreFault>> + Send;

    /// Persists the checkpoint at `to`, recording `dead_letter` with it.
    fn advance(
        &self,
        to: Self::Cursor,
        dead_letter: Option<DeadLetter<Self::Cursor>>,
    ) -> impl Future<Output = Result<(), StoreFault>> + Send;

    fn wakeup(&self) -> Wakeup;
}

/// Delivers one batch and names the sequence numbers to deliver again
/// (ReportBatchItemFailures). A failed invocation as a whole names every record.
pub trait Invoker<C, S>: Send + Sync + 'static {
    fn invoke(
        &self,
        rows: &[StreamRow<C, S>],
        settings: &StreamSettings,
    ) -> impl Future<Output = Vec<String>> + Send;
}

/// The handler in this process: [`process_batch`] with the given store, as the Lambda
/// function runs it.
pub struct InProcess<P, S> {
    pub processor: Arc<P>,
    pub store: Arc<S>,
}

impl<P: Processor, S: OutcomeStore, C: Sync, X: Sync> Invoker<C, X> for InProcess<P, S> {
    async fn invoke(&self, rows: &[StreamRow<C, X>], settings: &StreamSettings) -> Vec<String> {
        let records = rows.iter().map(|row| row.record.clone()).collect();
        let report = process_batch(
            records,
            self.processor.clone(),
            self.store.clone(),
            settings,
            now_millis(),
        )
        .await;
        tracing::debug!(
            records = rows.len(),
            runs = report.processor_runs,
            succeeded = report.succeeded,
            rejected = report.rejected,
            transient = report.transient,
            duplicates = report.duplicates,
            "batch processed"
        );
        report.failures
    }
}

/// The source of a [`StoreFault`]: the backend's error, of whatever type.
pub type BoxedError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A store could not read or write: the operation that failed and the backend's error as
/// its source (a `rusqlite::Error`, an SDK error), so a caller can tell a full disk from a
/// throttled table. A write that fails stores nothing.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {source}; {}", self.access.advice())]
pub struct StoreFault {
    /// What the store was doing, e.g. "UpdateItem on table requests".
    pub operation: String,
    pub access: Access,
    // In the message too: the API answers a 503 with it, and logs print it with `%`.
    #[source]
    pub source: BoxedError,
}

/// Whether a failed operation read or wrote: a client needs to know that a failed write
/// stored nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    fn advice(self) -> &'static str {
        match self {
            Access::Read => "retry later",
            Access::Write => "nothing was stored, retry later",
        }
    }
}

impl StoreFault {
    /// A failed read; `source` may be an error or a message.
    pub fn read(operation: impl Into<String>, source: impl Into<BoxedError>) -> Self {
        Self::new(Access::Read, operation.into(), source.into())
    }

    /// A failed write: nothing was stored.
    pub fn write(operation: impl Into<String>, source: impl Into<BoxedError>) -> Self {
        Self::new(Access::Write, operation.into(), source.into())
    }

    fn new(access: Access, operation: String, source: BoxedError) -> Self {
        Self {
            operation,
            access,
            source,
        }
    }
}

/// The poller is too far behind: the request was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the processor is {behind} stream records behind (the limit is {limit}); nothing was \
     stored, retry in a second"
)]
pub struct Behind {
    pub behind: i64,
    pub limit: i64,
}

/// An item as GET shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub id: String,
    pub status: String,
    pub request: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The webhook named with `x-callback-url`, and where its delivery is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<Callback>,
}

/// The read model the console reads (`console`): counts, listings, what waits for the
/// processor, recent activity and the dead letters, whatever the backend. Read-only, and
/// like GET it leaves out items past their TTL.
pub trait ReadModel: Clone + Send + Sync + 'static {
    fn counts(&self) -> impl Future<Output = Result<StatusCounts, StoreFault>> + Send;

    /// Items newest first (by `created_at`, then id), after `query.after`.
    fn items(&self, query: ItemQuery)
    -> impl Future<Output = Result<Vec<Item>, StoreFault>> + Send;

    fn backlog(&self) -> impl Future<Output = Result<Waiting, StoreFault>> + Send;

    /// Requests accepted, and outcomes written, per second since `since` (epoch ms).
    fn activity(&self, since: i64) -> impl Future<Output = Result<Vec<Second>, StoreFault>> + Send;

    /// The dead letters, oldest first, their positions as text.
    fn dead_letters(
        &self,
    ) -> impl Future<Output = Result<Vec<DeadLetter<String>>, StoreFault>> + Send;
}

/// Items by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    pub pending: u64,
    pub succeeded: u64,
    pub failed: u64,
}

impl StatusCounts {
    /// Counts one item of `status`; an unknown status counts nowhere.
    pub fn add(&mut self, status: &str, n: u64) {
        match status.parse() {
            Ok(Status::Pending) => self.pending += n,
            Ok(Status::Succeeded) => self.succeeded += n,
            Ok(Status::Failed) => self.failed += n,
            Err(_) => {}
        }
    }
}

/// Which items a listing shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemQuery {
    pub status: Option<Status>,
    /// Only ids that start with it (empty: all).
    pub id_prefix: String,
    /// Only items after this one in the listing's order (the previous page's last).
    pub after: Option<ItemCursor>,
    pub limit: usize,
}

impl ItemQuery {
    /// Whether `item` passes the filters and comes after the cursor: for backends that
    /// filter in memory.
    pub fn admits(&self, status: &str, id: &str, created_at: i64) -> bool {
        self.status.is_none_or(|wanted| wanted.as_str() == status)
            && id.starts_with(&self.id_prefix)
            && self
                .after
                .as_ref()
                .is_none_or(|after| (created_at, id) < (after.created_at, after.id.as_str()))
    }
}

/// A place in a listing: the last item shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemCursor {
    pub created_at: i64,
    pub id: String,
}

/// What waits for the processor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waiting {
    /// Pending requests the processor has not attempted yet.
    pub requests: u64,
    /// When the oldest of them was accepted (epoch ms).
    pub oldest_created_at: Option<i64>,
    /// Change-stream records after the poller's checkpoint, where the backend can count
    /// them without reading the stream (SQLite; not DynamoDB Streams).
    pub stream_records: Option<u64>,
}

/// One second's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Second {
    /// Epoch seconds.
    pub at: i64,
    /// Requests created in that second.
    pub accepted: u64,
    /// Items whose latest outcome (success, failure or a failed attempt) was written then.
    pub processed: u64,
}

/// Per-second activity from `(created_at, updated_at, attempts)` of items, for backends
/// that count in memory: seconds with nothing are left out, the rest in order.
pub fn seconds(items: impl IntoIterator<Item = (i64, i64, i64)>, since: i64) -> Vec<Second> {
    let mut by_second = std::collections::BTreeMap::<i64, Second>::new();
    let mut bump = |at_ms: i64, accepted: u64, processed: u64| {
        if at_ms >= since {
            let at = at_ms.div_euclid(1000);
            let second = by_second.entry(at).or_insert(Second {
                at,
                accepted: 0,
                processed: 0,
            });
            second.accepted += accepted;
            second.processed += processed;
        }
    };
    for (created_at, updated_at, attempts) in items {
        bump(created_at, 1, 0);
        if attempts > 0 {
            bump(updated_at, 0, 1);
        }
    }
    by_second.into_values().collect()
}

#[cfg(test)]
mod tests {
    use std::{error::Error, io};

    use super::*;

    #[test]
    fn a_fault_names_its_operation_and_keeps_its_source() {
        let write = StoreFault::write("the group commit", io::Error::other("disk is full"));
        assert_eq!(
            write.to_string(),
            "the group commit failed: disk is full; nothing was stored, retry later"
        );
        let source = write.source().expect("the source is kept");
        assert!(source.downcast_ref::<io::Error>().is_some(), "{source:?}");

        let read = StoreFault::read("GetItem on table requests", "throttled");
        assert_eq!(
            read.to_string(),
            "GetItem on table requests failed: throttled; retry later"
        );
    }
}
