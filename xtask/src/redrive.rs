use anyhow::Context;
use clap::Args;
use xshell::{Shell, cmd};

/// Reprocesses dead-lettered and stuck pending requests, after the processor is fixed.
#[derive(Args)]
pub struct Redrive {
    /// SQLite database of the local runtime (relative to the workspace root).
    #[arg(
        long,
        env = "STOREFIRST_DB",
        default_value = "target/storefirst/dev.db"
    )]
    db: String,
}

impl Redrive {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        crate::step("building storefirst-local");
        cmd!(sh, "cargo build --release --package storefirst-local")
            .run()
            .context("could not build storefirst-local; fix the build error above and retry")?;
        let db = self.db;
        crate::step(format!("redriving the stuck requests of {db}"));
        cmd!(
            sh,
            "target/release/storefirst-local redrive --log warn --db {db}"
        )
        .run()
        .context("redrive did not finish cleanly; the message above says what still fails")?;
        Ok(())
    }
}
