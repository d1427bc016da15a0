//! `cargo xtask <task>`: the project's automation. `main` only dispatches; each task is a
//! module with one entry point.

mod bench;
mod build;
mod deploy;
mod dev;
mod redrive;
mod screenshot;
mod synth;
mod test;
mod tools;
mod workflows;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "storefirst's tasks: run it locally, test it, build and deploy it")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    Bench(bench::Bench),
    Build(build::Build),
    /// Deploy the stack to AWS like `cdk deploy` (`cargo xtask deploy --help` lists the flags)
    #[command(disable_help_flag = true)]
    Deploy(deploy::Deploy),
    /// Deploy the CI role stack GitHub Actions deploys with (`--repo OWNER/NAME`; `--help`
    /// lists the flags)
    #[command(disable_help_flag = true)]
    DeployCiRole(deploy::Deploy),
    /// Destroy the stack; the table and the queue are retained
    #[command(disable_help_flag = true)]
    Destroy(deploy::Deploy),
    Dev(dev::Dev),
    /// Follow one request through the stack's logs, API to outcome (`--stack NAME --id ID`;
    /// `--help` lists the flags)
    #[command(disable_help_flag = true)]
    Logs(deploy::Deploy),
    /// Show what a deploy would change, without changing anything
    #[command(disable_help_flag = true)]
    Diff(deploy::Deploy),
    Redrive(redrive::Redrive),
    Screenshot(screenshot::Screenshot),
    Synth(synth::Synth),
    Test(test::Test),
    /// Run the HTTP contract suite against a deployed stack, a URL, or `--local`
    #[command(disable_help_flag = true)]
    TestE2e(deploy::Deploy),
}

fn main() -> anyhow::Result<()> {
    let sh = xshell::Shell::new()?;
    sh.change_dir(project_root());
    match Cli::parse().task {
        Task::Bench(task) => task.run(&sh),
        Task::Build(task) => task.run(&sh),
        Task::Deploy(task) => task.run(&sh, "deploy"),
        Task::DeployCiRole(task) => task.run(&sh, "deploy-ci-role"),
        Task::Destroy(task) => task.run(&sh, "destroy"),
        Task::Dev(task) => task.run(&sh),
        Task::Diff(task) => task.run(&sh, "diff"),
        Task::Logs(task) => task.run(&sh, "logs"),
        Task::Redrive(task) => task.run(&sh),
        Task::Screenshot(task) => task.run(&sh),
        Task::Synth(task) => task.run(&sh),
        Task::Test(task) => task.run(&sh),
        Task::TestE2e(task) => task.run(&sh, "test-e2e"),
    }
}

/// The workspace root, whatever directory cargo was called from.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// One line per step: readable in CI logs and at a terminal alike.
pub fn step(message: impl std::fmt::Display) {
    eprintln!("==> {message}");
}
