//! The local runtime's pipeline, whatever the store: the HTTP API of the contract
//! (`api`), its CORS (`cors`) and its OpenAPI document (`openapi`), the console's page and
//! read-only API (`console`), the accept loop (`server`), the poller with the event
//! source mapping's semantics (`poller`), redrive, and the assembly that starts and stops
//! them (`runtime`), all over the ports in `ports`, and the line that says where it
//! listens (`listening`).
//! The adapters are crates of their own: `storefirst-sqlite` (the embedded default) and
//! `storefirst-dynamodb`.

pub mod api;
pub mod console;
pub mod cors;
pub mod listening;
pub mod openapi;
pub mod poller;
pub mod ports;
mod redrive;
pub mod runtime;
pub mod server;

pub use ports::{Accepted, Behind, Item, StoreFault};
pub use redrive::{RedriveReport, Stuck, redrive};
pub use runtime::{Config, DEFAULT_MAX_BACKLOG, Runtime, StartError};
