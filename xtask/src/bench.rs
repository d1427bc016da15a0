//! `cargo xtask bench`: builds release binaries and runs the benchmark scenarios.

use anyhow::Context;
use clap::Args;
use xshell::{Shell, cmd};

use crate::tools;

/// Measures ingest, processing latency, memory, webhooks (202 to delivery at light load and
/// at the highest ingest rate, deliveries per second, a healthy receiver beside a hanging
/// one) and the Lambda handler (batch time in memory and against moto server's DynamoDB,
/// cold start beside Node.js, the first invocation with and without the init's connection
/// warm-up against moto server) of the release builds, side by side.
#[derive(Args)]
pub struct Bench {
    /// Seconds measured per load level.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent clients, one load level each.
    #[arg(long, default_value = "1,8,32,128")]
    clients: String,
    /// Which parts to run: ingest, webhooks, lambda, lambda-dynamodb, warm-up.
    #[arg(long, default_value = "ingest,webhooks,lambda,lambda-dynamodb,warm-up")]
    only: String,
    /// Extra arguments for `storefirst-local` in the ingest and webhooks parts, to compare settings,
    /// e.g. `--local-arg=--concurrency=32`.
    #[arg(long, allow_hyphen_values = true)]
    local_arg: Vec<String>,
}

impl Bench {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        crate::step("building the release binaries");
        cmd!(
            sh,
            "cargo build --release --package storefirst-local --package storefirst-bench --package storefirst-lambda"
        )
        .run()
        .context("the release build failed; fix it and run `cargo xtask bench` again")?;
        let Bench {
            seconds,
            clients,
            only,
            local_arg,
        } = self;
        // The DynamoDB endpoint of the parts that need one; it stops when `moto` is dropped.
        let moto = if only
            .split(',')
            .any(|part| part == "lambda-dynamodb" || part == "warm-up")
        {
            let moto = tools::MotoServer::start(&tools::MOTO.ensure(sh)?)?;
            crate::step(format!("moto server on {}", moto.url));
            Some(moto)
        } else {
            None
        };
        let moto_url: Vec<String> = moto
            .iter()
            .flat_map(|moto| ["--moto-url".to_owned(), moto.url.clone()])
            .collect();
        let local_args: Vec<String> = local_arg
            .iter()
            .map(|arg| format!("--local-arg={arg}"))
            .collect();
        let seconds = seconds.to_string();
        crate::step("running the benchmarks (the machine should be otherwise idle)");
        cmd!(
            sh,
            "target/release/storefirst-bench --local target/release/storefirst-local --stream-processor target/release/stream-processor --out target/storefirst/bench --seconds {seconds} --clients {clients} --only {only} {moto_url...} {local_args...}"
        )
        .run()
        .context("the benchmark failed")?;
        drop(moto);
        Ok(())
    }
}
