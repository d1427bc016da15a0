//! `cargo xtask deploy | diff | destroy | logs | test-e2e | deploy-ci-role`: builds what the
//! command needs, then runs `storefirst-deploy` (crates/deploy) with the flags passed
//! through. The AWS SDK lives in that crate, so xtask stays light; `cargo xtask deploy
//! --help` lists the flags.

use anyhow::Context;
use clap::Args;
use xshell::{Shell, cmd};

/// The flags of the storefirst-deploy command, passed through.
#[derive(Args)]
pub struct Deploy {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "FLAGS"
    )]
    args: Vec<String>,
}

impl Deploy {
    /// `command` is storefirst-deploy's subcommand: deploy, diff, destroy, logs, test-e2e
    /// or deploy-ci-role.
    pub fn run(self, sh: &Shell, command: &str) -> anyhow::Result<()> {
        run(sh, command, &self.args)
    }
}

pub fn run(sh: &Shell, command: &str, args: &[String]) -> anyhow::Result<()> {
    let has = |flag: &str| args.iter().any(|arg| arg == flag);
    if !has("--help") && !has("-h") {
        match command {
            // Both upload (or compare) the zips by content hash: they must be current. The
            // security section alone reads only the templates.
            "deploy" | "diff" if !has("--security-only") => crate::build::build_lambdas(sh)?,
            // storefirst-deploy starts the storefirst-local built next to it.
            "test-e2e" if has("--local") => {
                cmd!(sh, "cargo build --quiet --package storefirst-local")
                    .run()
                    .context("storefirst-local does not build: fix the error above")?;
            }
            _ => {}
        }
    }
    crate::step(format!("storefirst-deploy {command} {}", args.join(" ")));
    // The dev profile: the release profile's LTO would take minutes on the AWS SDK, for a
    // tool that waits on the network.
    cmd!(
        sh,
        "cargo run --quiet --package storefirst-deploy -- {command} {args...}"
    )
    .run()
    .with_context(|| format!("cargo xtask {command} failed: see the message above"))
}
