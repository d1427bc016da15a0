//! A Lambda execution environment on one machine, for running and timing a function's
//! `bootstrap` as Lambda runs it: [`RuntimeApi`] serves the Runtime API to a child the
//! caller starts, [`LambdaFunction`] starts the child itself and replaces it after a
//! timeout, a crash or an init error, and [`Bootstrap`] takes the `bootstrap` out of a
//! deployment zip (under qemu-user when it is arm64 and this machine is not).

mod bootstrap;
mod function;
mod identity;
mod qemu;
mod runtime_api;

pub use bootstrap::{Bootstrap, BootstrapError};
pub use function::{FunctionConfig, InvokeError, LambdaFunction, inherited_environment};
pub use identity::Identity;
pub use runtime_api::{Answer, Call, Pending, Reply, RuntimeApi};
