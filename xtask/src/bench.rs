use anyhow::Context;
use clap::Args;
use xshell::{Shell, cmd};

/// Measures ingest, processing latency, memory and the Lambda handler (batch time, cold
/// start beside Node.js) of the release builds, side by side.
#[derive(Args)]
pub struct Bench {
    /// Seconds measured per load level.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent clients, one load level each.
    #[arg(long, default_value = "1,8,32,128")]
    clients: String,
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
        let Bench { seconds, clients } = self;
        let seconds = seconds.to_string();
        crate::step("running the benchmarks (the machine should be otherwise idle)");
        cmd!(
            sh,
            "target/release/storefirst-bench --local target/release/storefirst-local --stream-processor target/release/stream-processor --out target/storefirst/bench --seconds {seconds} --clients {clients}"
        )
        .run()
        .context("the benchmark failed")?;
        Ok(())
    }
}
