//! Unit tests of a processor without a database or a stream: [`process`] runs request
//! bodies through `process_batch`, the algorithm the Lambda function and the local poller
//! run, over a [`MemoryStore`], and returns what each item holds afterwards.
//!
//! ```
//! use serde_json::{Value, json};
//! use storefirst_domain::{PendingRequest, ProcessError, Processor, Status};
//!
//! struct Echo;
//!
//! impl Processor for Echo {
//!     async fn process(&self, request: &PendingRequest) -> Result<Value, ProcessError> {
//!         match request.body.as_str() {
//!             "{}" => Err(ProcessError::Rejected("nothing to echo".into())),
//!             body => Ok(json!({ "echo": body })),
//!         }
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let items = storefirst_testkit::process(Echo, &["{}", r#"{"a":1}"#]).await;
//! assert_eq!(items[0].status, Status::Failed);
//! assert_eq!(items[1].result, Some(json!({ "echo": r#"{"a":1}"# })));
//! # });
//! ```

mod memory;

use std::sync::Arc;

pub use memory::{MemoryItem, MemoryStore};
use storefirst_domain::{
    ChangeEvent, ChangeRecord, Processor, RequestId, StreamSettings, now_millis, process_batch,
};

/// Runs `processor` on `bodies` as one batch of newly stored requests (ids `r0`, `r1`,
/// ...) with the stream's default settings, and returns each item afterwards, in order.
pub async fn process<P: Processor>(processor: P, bodies: &[&str]) -> Vec<MemoryItem> {
    let store = Arc::new(MemoryStore::default());
    let records: Vec<ChangeRecord> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| ChangeRecord {
            sequence_number: (i + 1).to_string(),
            event: ChangeEvent::Insert,
            id: id(i),
            body: Some((*body).to_owned()),
            correlation: Default::default(),
        })
        .collect();
    process_batch(
        records,
        Arc::new(processor),
        store.clone(),
        &StreamSettings::DEFAULT,
        now_millis(),
    )
    .await;
    (0..bodies.len()).map(|i| store.item(&id(i))).collect()
}

fn id(index: usize) -> RequestId {
    RequestId::parse(&format!("r{index}")).expect("r<N> is a valid id")
}
