//! `storefirst-local`: the whole storage-first pipeline in one process.

use std::{
    io::{IsTerminal, Write},
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use clap::Parser;
use storefirst_domain::{StreamSettings, restaurant::RestaurantOrders};
use storefirst_local::{Config, Runtime, redrive, store::SqliteStore};

/// Runs the storage-first API locally: HTTP API, SQLite store, change stream, processor.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Port of the HTTP API; 0 picks a free one.
    #[arg(long, env = "STOREFIRST_PORT", default_value_t = 3000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = "STOREFIRST_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// SQLite database file; created when missing.
    #[arg(
        long,
        env = "STOREFIRST_DB",
        default_value = "storefirst.db",
        global = true
    )]
    db: PathBuf,
    /// API key clients must send in `x-api-key`.
    #[arg(long, env = "STOREFIRST_API_KEY", default_value = "dev-key")]
    api_key: String,
    /// Retries of a failing batch before it goes to the dead letters.
    #[arg(long, env = "STOREFIRST_MAX_RETRIES", default_value_t = StreamSettings::DEFAULT.maximum_retry_attempts)]
    max_retries: u32,
    /// Most records per batch.
    #[arg(long, env = "STOREFIRST_BATCH_SIZE", default_value_t = StreamSettings::DEFAULT.batch_size)]
    batch_size: u32,
    /// Records of one batch processed at the same time.
    #[arg(long, env = "STOREFIRST_CONCURRENCY", default_value_t = StreamSettings::DEFAULT.concurrency)]
    concurrency: usize,
    /// Seconds a succeeded item is kept before it expires.
    #[arg(long, env = "STOREFIRST_RETENTION_SECS", default_value_t = StreamSettings::DEFAULT.succeeded_retention.as_secs())]
    retention_secs: u64,
    /// Milliseconds between expiry sweeps.
    #[arg(long, env = "STOREFIRST_SWEEP_MS", default_value_t = 1000)]
    sweep_ms: u64,
    /// Log filter, e.g. `info` or `storefirst_local=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    log: String,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Reprocess dead-lettered and stuck pending requests (after fixing the processor), then exit.
    Redrive,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let mut config = Config::new(
        args.db.clone(),
        SocketAddr::new(args.host, args.port),
        args.api_key,
    );
    config.stream.maximum_retry_attempts = args.max_retries;
    config.stream.batch_size = args.batch_size;
    config.stream.concurrency = args.concurrency;
    config.stream.succeeded_retention = Duration::from_secs(args.retention_secs);
    config.sweep_interval = Duration::from_millis(args.sweep_ms.max(1));

    if let Some(Command::Redrive) = args.command {
        let store = SqliteStore::open(&config.db)
            .with_context(|| format!("cannot open the database {}", config.db.display()))?;
        let report = redrive(&store, Arc::new(RestaurantOrders), &config.stream).await?;
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
        return Ok(());
    }

    let runtime = Runtime::start(config, RestaurantOrders).await?;
    // One line on stdout, so scripts and tests can find the port when it was 0.
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "storefirst-local listening on http://{}",
        runtime.addr()
    )?;
    stdout.flush()?;
    tracing::info!(db = %args.db.display(), "ready");

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
