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
use storefirst_app::function;
use storefirst_domain::StreamSettings;
use storefirst_lambda_env::{
    Bootstrap, FunctionConfig, Identity, LambdaFunction, inherited_environment,
};
use storefirst_local::{
    Config, DynamoStuck, Runtime,
    backend::{InProcess, Requests},
    dynamo::DynamoTable,
    lambda::LambdaInvoker,
    redrive,
    store::SqliteStore,
};

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
    /// Stream records the processor may fall behind before new requests wait for it, and
    /// get 503 with Retry-After when it does not catch up within a second (SQLite only).
    #[arg(long, env = "STOREFIRST_MAX_BACKLOG", default_value_t = storefirst_local::DEFAULT_MAX_BACKLOG)]
    max_backlog: i64,
    /// Milliseconds between expiry sweeps.
    #[arg(long, env = "STOREFIRST_SWEEP_MS", default_value_t = 1000)]
    sweep_ms: u64,
    /// Use this DynamoDB table and its stream instead of SQLite (the default AWS
    /// configuration chain: AWS_ENDPOINT_URL, AWS_REGION, credentials). `--db` then keeps
    /// the place in the stream and the dead letters.
    #[arg(long, env = "STOREFIRST_DYNAMODB_TABLE", global = true)]
    dynamodb_table: Option<String>,
    /// Create the DynamoDB table (with its stream) when it does not exist.
    #[arg(long, requires = "dynamodb_table")]
    create_table: bool,
    /// Run the batches through this Lambda zip's `bootstrap` behind a local Runtime API
    /// (needs --dynamodb-table: the function writes to DynamoDB).
    #[arg(long, env = "STOREFIRST_LAMBDA_ZIP", requires = "dynamodb_table")]
    lambda: Option<PathBuf>,
    /// A native build of stream-processor, used when the zip is arm64 and qemu-user is
    /// not installed.
    #[arg(long, env = "STOREFIRST_NATIVE_BOOTSTRAP", requires = "lambda")]
    native_bootstrap: Option<PathBuf>,
    /// The function's timeout in seconds; by default the stack's.
    #[arg(long, env = "STOREFIRST_FUNCTION_TIMEOUT_SECS")]
    function_timeout_secs: Option<u64>,
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
    config.max_backlog = args.max_backlog;

    let table = match &args.dynamodb_table {
        Some(name) => {
            let aws = aws_config::load_from_env().await;
            let region = aws
                .region()
                .map_or("us-east-1".to_owned(), ToString::to_string);
            Some((
                DynamoTable::connect(&aws, name, args.create_table).await?,
                region,
            ))
        }
        None => None,
    };

    // The user's processor, built once (storefirst-app); in the Lambda mode the zip runs
    // its own, and redrive runs this one.
    let processor = Arc::new(storefirst_app::start().await?);
    if let Some(Command::Redrive) = args.command {
        let report = match &table {
            None => {
                let store = SqliteStore::open(&config.db)
                    .with_context(|| format!("cannot open the database {}", config.db.display()))?;
                redrive(&store, processor, &config.stream).await?
            }
            Some((table, _)) => {
                // The dead letters of a local run against this table, if there was one.
                let checkpoints = config
                    .db
                    .exists()
                    .then(|| table.checkpoints(&config.db))
                    .transpose()?;
                let stuck = DynamoStuck {
                    requests: table.requests(),
                    outcomes: Arc::new(table.outcomes()),
                    checkpoints,
                    maximum_record_age: config.stream.maximum_record_age,
                };
                redrive(&stuck, processor, &config.stream).await?
            }
        };
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

    let Some((table, region)) = table else {
        let runtime = Runtime::start(config, processor).await?;
        return serve(runtime, &[format!("database {}", args.db.display())]).await;
    };
    let stream = table.stream(&config.db)?;
    let backend = format!(
        "DynamoDB table {} (checkpoints in {})",
        table.name,
        args.db.display()
    );
    let Some(zip) = &args.lambda else {
        let invoker = InProcess {
            processor,
            store: Arc::new(table.outcomes()),
        };
        let runtime = Runtime::launch(&config, table.requests(), stream, invoker).await?;
        return serve(runtime, &[backend, "processor in-process".into()]).await;
    };
    let dir = args
        .db
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("lambda");
    let bootstrap = Bootstrap::from_zip(zip, &dir, args.native_bootstrap.as_deref())?;
    let how = format!("Lambda function: {}", bootstrap.how);
    let timeout = args
        .function_timeout_secs
        .map_or_else(|| function::timeout(&config.stream), Duration::from_secs);
    let mut env = inherited_environment();
    env.extend([
        (storefirst_lambda::TABLE_VAR.to_owned(), table.name.clone()),
        (
            storefirst_lambda::RETENTION_VAR.to_owned(),
            config.stream.succeeded_retention.as_secs().to_string(),
        ),
    ]);
    let function = LambdaFunction::new(FunctionConfig {
        bootstrap,
        identity: Identity {
            name: "stream-processor".into(),
            region,
            memory_mb: function::MEMORY_MB,
        },
        timeout,
        env,
    });
    let invoker = LambdaInvoker {
        function: Arc::new(function),
    };
    let runtime = Runtime::launch(&config, table.requests(), stream, invoker).await?;
    serve(runtime, &[backend, how]).await
}

/// Prints where it listens (first line of stdout, for scripts and tests) and what it runs
/// on (one line each), then runs until SIGINT or SIGTERM.
async fn serve<S: Requests>(runtime: Runtime<S>, about: &[String]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "storefirst-local listening on http://{}",
        runtime.addr()
    )?;
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
