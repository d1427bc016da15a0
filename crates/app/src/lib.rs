//! Your crate: the business logic storefirst runs behind the change stream, the one place
//! to edit for your own. Both runtimes call [`start`] once (Lambda's init, and
//! `storefirst-local` at start-up) and run the processor it returns on every stored
//! request; [`function`] sizes the Lambda function that runs it.
//!
//! The sample, [`RestaurantOrders`], prices a restaurant order. To make it yours: replace
//! it with a type that implements [`Processor`], build whatever it holds (an HTTP client
//! for a downstream service, say) in [`start`] from the environment, which the local
//! runtime passes on to its function as Lambda does, and run `cargo xtask test`.
//! `storefirst-testkit` runs a processor through the real batch algorithm in a few lines.

pub mod function;
mod restaurant;

pub use restaurant::RestaurantOrders;
pub use storefirst_domain::{PendingRequest, ProcessError, Processor};

/// The processor both runtimes run.
pub type App = RestaurantOrders;

/// The processor could not be built: a setting is missing or a client failed to start.
#[derive(Debug, thiserror::Error)]
#[error("the processor could not start: {0}")]
pub struct StartError(pub String);

/// Builds the processor, once per process. The sample needs nothing; yours may read its
/// settings from the environment here and fail with a message that says what to set.
pub async fn start() -> Result<App, StartError> {
    Ok(RestaurantOrders)
}
