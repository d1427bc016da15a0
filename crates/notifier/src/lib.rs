//! storefirst on AWS: the webhook `notifier` Lambda function, and the redrive of its dead
//! letters.
//!
//! One function, two event sources. The requests table's stream (filtered by
//! [`storefirst_lambda::item::notifier_filter_pattern`] to items that just finished with a
//! callback) only enqueues a delivery per record in the delivery queue, so no receiver
//! ever holds up the stream. The delivery queue then invokes it with up to 10 messages,
//! each one attempt made at once with the others: delivered, sent again with a delay
//! (a retry, as the local runtime's [`storefirst_domain::RetryPolicy`] says), or given up
//! on (the item's `callback_status` is `failed` and the delivery goes to the dead-letter
//! queue, where [`redrive_dead_letters`] takes it back). The attempt, the signature and
//! the refusal of non-public receivers are [`storefirst_webhooks::Sender`]'s, as locally.

mod config;
mod delivery;
mod handler;
mod queue;
mod redrive;
mod secret;
mod state;
mod stream;

pub use config::{
    Config, ConfigError, DEAD_LETTER_QUEUE_VAR, DELIVERY_QUEUE_VAR, LOOPBACK_VAR, SECRET_VAR,
};
pub use delivery::Delivery;
pub use handler::{EventError, InitError, Notifier, Response};
pub use queue::MAX_DELAY;
pub use redrive::{RedriveError, redrive_dead_letters};
pub use secret::SecretError;
