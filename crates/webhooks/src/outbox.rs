//! The notifier's port: where deliveries wait, are claimed and are settled.

use std::{collections::HashMap, future::Future};

use storefirst_domain::RequestId;
use storefirst_pipeline::StoreFault;
use tokio::sync::watch;

/// A delivery that is due, claimed for one attempt.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: RequestId,
    pub url: String,
    /// The receiver: the URL's scheme, host and port (up to the path's `/`).
    pub receiver: String,
    /// Stable across the attempts of one delivery, so receivers can deduplicate.
    pub webhook_id: String,
    /// Attempts including this one.
    pub attempts: u32,
    /// When the first attempt was due (epoch ms): the age bound counts from it.
    pub first_due_at: i64,
    /// The JSON document GET answers for the request.
    pub document: Vec<u8>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Delivered,
    /// Tried again at `at` (epoch ms).
    Retry {
        at: i64,
        error: String,
    },
    /// Given up on: recorded on the item and in the dead letters.
    GaveUp {
        error: String,
    },
}

/// Deliveries kept by a store.
pub trait Outbox: Clone + Send + Sync + 'static {
    /// Claims up to `limit` deliveries due by `now` (epoch ms), oldest first, counting an
    /// attempt for each and leasing it until `lease_until`: one that is not settled by then
    /// (the process died mid-delivery) is due again. At most `per_receiver` attempts to one
    /// receiver are under way at once: `in_flight` counts those already running, by
    /// [`Due::receiver`].
    fn claim(
        &self,
        now: i64,
        lease_until: i64,
        limit: usize,
        per_receiver: usize,
        in_flight: &HashMap<String, usize>,
    ) -> impl Future<Output = Result<Vec<Due>, StoreFault>> + Send;

    /// Records how the attempt `due` ended.
    fn settle(
        &self,
        due: &Due,
        settled: Settled,
    ) -> impl Future<Output = Result<(), StoreFault>> + Send;

    /// When the next delivery is due (epoch ms), if any is scheduled.
    fn next_due(&self) -> impl Future<Output = Result<Option<i64>, StoreFault>> + Send;

    /// Changes when the store commits: a finished request may have made a delivery due.
    fn commits(&self) -> watch::Receiver<u64>;
}
