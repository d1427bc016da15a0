use anyhow::Context;
use clap::Args;
use xshell::{Shell, cmd};

/// Checks formatting and lints, then runs every test of the workspace.
#[derive(Args)]
pub struct Test {}

impl Test {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        crate::step("cargo fmt --check");
        cmd!(sh, "cargo fmt --all --check")
            .run()
            .context("formatting differs: run `cargo fmt --all` and commit the result")?;
        crate::step("cargo clippy --all-targets -- -D warnings");
        cmd!(
            sh,
            "cargo clippy --workspace --all-targets --locked -- -D warnings"
        )
        .run()
        .context("clippy found problems: fix the warnings above")?;
        crate::step("cargo test");
        cmd!(sh, "cargo test --workspace --locked")
            .run()
            .context("tests failed: see the output above")?;
        crate::step("all checks passed");
        Ok(())
    }
}
