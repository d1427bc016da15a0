//! storefirst on one machine, no AWS account, no docker: the HTTP API of the contract, a
//! SQLite store whose triggers write a change stream in the same transaction, a poller
//! with the event source mapping's semantics, a TTL sweeper and a dead-letter table.

pub mod api;
mod db;
pub mod poller;
mod redrive;
pub mod runtime;
pub mod server;
pub mod store;
mod sweeper;
mod writer;

pub use redrive::{RedriveReport, redrive};
pub use runtime::{Config, Runtime, StartError};
pub use writer::StoreFault;
