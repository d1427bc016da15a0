//! `cargo xtask screenshot`: the README's pictures of the example page after an order and
//! of the console with a few requests.

use anyhow::Context;
use clap::Args;
use xshell::{Shell, cmd};

use crate::tools;

/// Where the pictures go, from the workspace root.
const PICTURE: &str = "docs/example-page.png";
const CONSOLE_PICTURE: &str = "docs/console.png";

/// Regenerates docs/example-page.png and docs/console.png: the browser tests' runs against
/// the SQLite runtime, which save the example page after its first order has succeeded and
/// the console once it shows a few requests and a dead letter.
#[derive(Args)]
pub struct Screenshot {}

impl Screenshot {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let _browser = tools::browser_env(sh, "cargo xtask screenshot")?;
        let picture = crate::project_root().join(PICTURE);
        if let Some(dir) = picture.parent() {
            sh.create_dir(dir)?;
        }
        let console = crate::project_root().join(CONSOLE_PICTURE);
        let _picture = sh.push_env("STOREFIRST_SCREENSHOT", &picture);
        let _console = sh.push_env("STOREFIRST_CONSOLE_SCREENSHOT", &console);
        crate::step("cargo test --test browser (SQLite, and the console)");
        cmd!(
            sh,
            "cargo test --package storefirst-local --test browser -- sqlite console"
        )
        .run()
        .context("the browser test failed: see the output above")?;
        crate::step(format!(
            "wrote {} and {}",
            picture.display(),
            console.display()
        ));
        Ok(())
    }
}
