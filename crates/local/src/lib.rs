//! storefirst on one machine, no AWS account, no docker: the HTTP API of the contract, a
//! SQLite store whose triggers write a change stream in the same transaction, a poller
//! with the event source mapping's semantics, a TTL sweeper and a dead-letter table.

pub mod api;
pub mod backend;
mod db;
pub mod dynamo;
pub mod lambda;
pub mod poller;
mod redrive;
pub mod runtime;
pub mod server;
pub mod store;
mod sweeper;
mod writer;

pub use redrive::{DynamoStuck, RedriveReport, Stuck, redrive};
pub use runtime::{Config, Runtime, StartError};
pub use store::{Behind, DEFAULT_MAX_BACKLOG};
pub use writer::StoreFault;
