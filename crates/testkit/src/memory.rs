//! An in-memory [`OutcomeStore`]: for unit tests of processing logic and for benchmarks of
//! the handler without a database. Not a runtime's store.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use serde_json::Value;

use storefirst_domain::{Outcome, OutcomeStore, RequestId, Status, StoreError, Written};

/// What an item holds after its outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryItem {
    pub status: Status,
    pub attempts: u32,
    pub error: Option<String>,
    pub result: Option<Value>,
    pub expires_at: Option<i64>,
}

/// Items are `pending` until their first outcome, as if the API had just written them.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<RequestId, MemoryItem>>,
    failing: AtomicBool,
}

impl MemoryItem {
    /// A request as the API has just written it.
    pub const PENDING: MemoryItem = MemoryItem {
        status: Status::Pending,
        attempts: 0,
        error: None,
        result: None,
        expires_at: None,
    };
}

impl MemoryStore {
    /// The item's state: pending until an outcome is written for it.
    pub fn item(&self, id: &RequestId) -> MemoryItem {
        self.lock().get(id).cloned().unwrap_or(MemoryItem::PENDING)
    }

    /// While set, every write fails as a broken database would.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, MemoryItem>> {
        self.items
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl OutcomeStore for MemoryStore {
    async fn record_outcome(
        &self,
        id: &RequestId,
        outcome: &Outcome,
    ) -> Result<Written, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError("the in-memory store is set to fail".into()));
        }
        let mut items = self.lock();
        let item = items.entry(id.clone()).or_insert(MemoryItem::PENDING);
        if item.status != Status::Pending {
            return Ok(Written::AlreadyDone);
        }
        item.attempts += 1;
        match outcome {
            Outcome::Succeeded { result, expires_at } => {
                item.status = Status::Succeeded;
                item.result = Some(result.clone());
                item.expires_at = Some(*expires_at);
                item.error = None;
            }
            Outcome::Rejected { error } => {
                item.status = Status::Failed;
                item.error = Some(error.clone());
            }
            Outcome::Transient { error } => item.error = Some(error.clone()),
        }
        Ok(Written::Applied)
    }
}
