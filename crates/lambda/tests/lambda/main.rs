//! The stream-processor's tests, one binary with a module per area. The moto tests need
//! moto server: run them with `cargo xtask test`, which starts it.

mod artifact;
mod contract;
mod fixtures;
mod moto;
mod runtime_api;
mod support;
