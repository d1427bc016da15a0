//! The notifier's tests, one binary with a module per area. They need moto server: run
//! them with `cargo xtask test`, which starts it.

mod function;
mod moto;
mod support;
