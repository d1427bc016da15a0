//! The core of storefirst: what a stored request is, what processing it means, and the
//! batch algorithm that both the Lambda function and the local poller run.
//!
//! Nothing here does IO: storage is behind [`OutcomeStore`], business logic behind
//! [`Processor`], and the runtimes (AWS, local) plug in their own. The sample processor
//! lives in `storefirst-app`, the user's crate; an in-memory store for tests in
//! `storefirst-testkit`. `tests/no_io.rs` keeps IO crates out.

mod batch;
mod body;
mod callback;
mod id;
pub mod metrics;
mod processor;
mod record;
mod settings;
mod store;

pub use batch::{BatchReport, process_batch};
pub use body::{BodyError, DEFAULT_BODY_LIMIT, LARGEST_NUMBER, RequestBody};
pub use callback::{
    Answer, CALLBACK_URL_LIMIT, Callback, CallbackStatus, CallbackUrl, InvalidCallback, Receivers,
    RetryPolicy, UnknownCallbackStatus, is_public, retry_after_seconds,
};
pub use id::{InvalidRequestId, RequestId};
pub use processor::{PendingRequest, ProcessError, Processor};
pub use record::{
    ChangeEvent, ChangeRecord, Correlation, Status, UnknownStatus, millis, now_millis,
};
pub use settings::{SettingsError, StreamSettings};
pub use store::{Outcome, OutcomeStore, StoreError, Written};
