//! Webhooks: when a request with a callback URL finishes, its GET document is POSTed to
//! that URL, signed per Standard Webhooks, at least once.
//!
//! The store keeps the deliveries (an outbox: [`Outbox`]), scheduled in the outcome's own
//! transaction and retried by time, so a delivery survives a restart and never holds up
//! the stream. The [`Notifier`] claims due deliveries and runs each in its own task, at
//! most [`Notifier::concurrency`] at once, each bounded by the [`Sender`]'s timeout: a
//! receiver that hangs holds one slot for that long, never another receiver's delivery.
//! The [`Sender`] resolves the receiver's name, refuses it when an address is not public
//! (loopback only with the local runtime's opt-in), and connects to the checked address.

mod notifier;
mod outbox;
mod secret;
mod send;

pub use notifier::{Notifier, settle};
pub use outbox::{Due, Outbox, Settled};
pub use secret::{InvalidSecret, Secret, generate_secret};
pub use send::{Lookup, Refused, Sender, SystemLookup, TIMEOUT};
