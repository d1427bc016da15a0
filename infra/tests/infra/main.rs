//! The stack's tests: the committed template is fresh and keeps the invariants of the
//! design; its mapping templates, rendered by a real VTL engine against moto server's
//! DynamoDB, answer as the local runtime does; it deploys and deletes on moto server.

mod ci_role;
mod deploy;
mod fresh;
mod invariants;
mod item_schema;
mod mapping;
mod request_model;
mod support;
