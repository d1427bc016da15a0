//! The stack's tests: the committed template is fresh and keeps the invariants of the
//! design; its mapping templates, rendered by a real VTL engine against moto server's
//! DynamoDB, answer as the local runtime does. That it deploys and deletes on moto server
//! is the deploy crate's test (`crates/deploy/tests/deploy/moto.rs`).

mod ci_role;
mod dashboard;
mod fresh;
mod invariants;
mod item_schema;
mod mapping;
mod request_model;
mod support;
