//! storefirst on AWS: the `stream-processor` Lambda function that DynamoDB Streams invokes,
//! and the DynamoDB [`OutcomeStore`](storefirst_domain::OutcomeStore).
//!
//! The function decodes the stream batch and hands it to the same
//! [`process_batch`](storefirst_domain::process_batch) the local poller calls; only the
//! event shape and the store are AWS's.

mod config;
mod decode;
pub mod filter;
mod handler;
pub mod item;
pub mod logging;
pub mod metrics;
mod store;
#[cfg(feature = "streams-sdk")]
pub mod stream_record;
pub mod warm_up;

pub use config::{Config, ConfigError, RETENTION_VAR, TABLE_VAR, WARM_UP_VAR};
pub use decode::{DecodeError, decode};
pub use handler::{StreamHandler, batch_response};
pub use store::{DynamoStore, update_if};
