//! Integration tests of the local runtime: one binary, a module per area.

mod console;
mod contract;
mod cors;
mod durability;
#[cfg(feature = "aws")]
mod dynamo;
#[cfg(feature = "aws")]
mod dynamo_callbacks;
#[cfg(feature = "aws")]
mod dynamo_webhooks;
mod errors;
mod exposure;
mod faults;
mod hostile;
mod inprocess;
mod no_aws;
mod poison;
mod refused;
mod semantics;
mod slow_clients;
#[cfg(feature = "aws")]
mod sqs_mapping;
mod webhooks;

use std::{
    path::Path,
    process::{Command, Output, Stdio},
};

use storefirst_harness::Listening;
pub use storefirst_harness::eventually;

pub const API_KEY: &str = "test-key";

/// `storefirst-local` as a child process on port 0 with the given database.
pub fn spawn_local(db: &Path) -> Listening {
    spawn_local_logging(db, "warn", Stdio::inherit())
}

/// With the log filter `log`, written to `stderr`.
pub fn spawn_local_logging(db: &Path, log: &str, stderr: impl Into<Stdio>) -> Listening {
    spawn_local_with(db, log, stderr, &[], &[])
}

/// With more arguments and environment variables.
pub fn spawn_local_with(
    db: &Path,
    log: &str,
    stderr: impl Into<Stdio>,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Listening {
    Listening::spawn(
        Command::new(env!("CARGO_BIN_EXE_storefirst-local"))
            .args(["--port", "0", "--api-key", API_KEY, "--log", log, "--db"])
            .arg(db)
            .args(args)
            .envs(envs.iter().copied())
            .stderr(stderr),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The standard output of a command that succeeded; a failure shows both outputs.
pub fn stdout_of_success(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
