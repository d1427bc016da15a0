//! `cargo xtask <task>`: the project's automation. `main` only dispatches; each task is a
//! module with one entry point.

mod bench;
mod build;
mod dev;
mod redrive;
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
    Dev(dev::Dev),
    Redrive(redrive::Redrive),
    Synth(synth::Synth),
    Test(test::Test),
}

fn main() -> anyhow::Result<()> {
    let sh = xshell::Shell::new()?;
    sh.change_dir(project_root());
    match Cli::parse().task {
        Task::Bench(task) => task.run(&sh),
        Task::Build(task) => task.run(&sh),
        Task::Dev(task) => task.run(&sh),
        Task::Redrive(task) => task.run(&sh),
        Task::Synth(task) => task.run(&sh),
        Task::Test(task) => task.run(&sh),
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
