//! `cargo xtask screenshot`: the README's picture of the example page after an order.

use anyhow::Context;
use clap::Args;
use xshell::{Shell, cmd};

use crate::tools;

/// Where the picture goes, from the workspace root.
const PICTURE: &str = "docs/example-page.png";

/// Regenerates docs/example-page.png: the browser test's run against the SQLite runtime,
/// which saves the example page after its first order has succeeded.
#[derive(Args)]
pub struct Screenshot {}

impl Screenshot {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let _browser = tools::browser_env(sh, "cargo xtask screenshot")?;
        let picture = crate::project_root().join(PICTURE);
        if let Some(dir) = picture.parent() {
            sh.create_dir(dir)?;
        }
        let _picture = sh.push_env("STOREFIRST_SCREENSHOT", &picture);
        crate::step("cargo test --test browser (SQLite)");
        cmd!(
            sh,
            "cargo test --package storefirst-local --test browser -- sqlite"
        )
        .run()
        .context("the browser test failed: see the output above")?;
        crate::step(format!("wrote {}", picture.display()));
        Ok(())
    }
}
