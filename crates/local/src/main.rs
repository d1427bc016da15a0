//! `storefirst-local`: the whole storage-first pipeline in one process. The command line
//! (`cli.rs`) picks a mode; the embedded default, SQLite with the processor in-process, is
//! assembled here, the DynamoDB and Lambda modes in `aws.rs` (the `aws` feature, which
//! `cargo xtask dev --lambda` builds; the default build has no AWS SDK).

#[cfg(feature = "aws")]
mod aws;
mod cli;
#[cfg(feature = "aws")]
mod notifier;

use std::{
    io::{IsTerminal, Write},
    sync::Arc,
};

use anyhow::Context;
use clap::Parser;
use cli::{Args, Command};
use storefirst_domain::Receivers;
use storefirst_pipeline::{
    RedriveReport, Runtime, listening::listening_line, ports::Ingest, redrive,
};
use storefirst_sqlite::{SecretOrigin, SqliteStore, webhook_secret};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if args.command.is_none() {
        args.check_exposure()?;
    }
    let config = args.config()?;
    // The user's processor, built once (storefirst-app); in the Lambda mode the zip runs
    // its own, and redrive runs this one.
    let processor = Arc::new(storefirst_app::start().await?);

    if let Some(table) = &args.dynamodb_table {
        #[cfg(feature = "aws")]
        return aws::run(&args, table, config, processor).await;
        #[cfg(not(feature = "aws"))]
        anyhow::bail!(
            "--dynamodb-table {table}: this storefirst-local was built without the DynamoDB \
             and Lambda modes; build it with `cargo build --release -p storefirst-local \
             --features aws` (`cargo xtask dev --lambda` does)"
        );
    }
    match args.command {
        Some(Command::Redrive { .. }) => {
            let store = SqliteStore::open(&config.db)
                .with_context(|| format!("cannot open the database {}", config.db.display()))?;
            // First: redrive drops the dead letters of finished items, these among them.
            let webhooks = store.redeliver_failed_webhooks().await?;
            println!(
                "redrive: {webhooks} given-up webhooks are due again; a running storefirst-local \
                 delivers them"
            );
            reported(redrive(&store, processor, &config.stream).await?)
        }
        Some(Command::WebhookSecret) => {
            let (secret, _) = webhook_secret(&config.db, config.webhook_secret.as_deref())?;
            println!("{}", secret.as_str());
            Ok(())
        }
        None => {
            let mut config = config;
            let (secret, origin) = webhook_secret(&config.db, config.webhook_secret.as_deref())?;
            config.webhook_secret = Some(secret.as_str().to_owned());
            let mut about = vec![format!("database {}", args.db.display())];
            let again = format!(
                "`storefirst-local webhook-secret --db {}` prints it again",
                args.db.display()
            );
            about.push(match origin {
                SecretOrigin::Generated => format!(
                    "webhooks are signed with the secret {} (generated and kept in the \
                     database; {again})",
                    secret.as_str()
                ),
                SecretOrigin::Kept => {
                    format!("webhooks are signed with the secret kept in the database; {again}")
                }
                SecretOrigin::Given => "webhooks are signed with the given secret".to_owned(),
            });
            if config.receivers == Receivers::AlsoLoopback {
                about.push(
                    "webhooks may go to receivers on this machine (--allow-loopback-webhooks)"
                        .to_owned(),
                );
            }
            let runtime = storefirst_sqlite::start(config, processor).await?;
            serve(runtime, &about).await
        }
    }
}

/// Prints what a redrive did; fails when requests still fail.
fn reported(report: RedriveReport) -> anyhow::Result<()> {
    println!(
        "redrive: {} stuck requests, {} succeeded, {} rejected, {} still failing",
        report.found, report.succeeded, report.rejected, report.still_failing
    );
    if report.still_failing > 0 {
        anyhow::bail!(
            "{} requests still fail; see their `error` with GET",
            report.still_failing
        );
    }
    Ok(())
}

/// Prints where it listens (first line of stdout, for scripts and tests) and what it runs
/// on (one line each), then runs until SIGINT or SIGTERM.
async fn serve<S: Ingest>(runtime: Runtime<S>, about: &[String]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", listening_line(runtime.addr()))?;
    for line in about {
        writeln!(stdout, "storefirst-local: {line}")?;
    }
    stdout.flush()?;
    tracing::info!("ready");

    shutdown_signal()
        .await
        .context("cannot listen for shutdown signals")?;
    tracing::info!("shutting down: finishing in-flight requests and the current batch");
    runtime.shutdown().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = term.recv() => Ok(()),
    }
}
