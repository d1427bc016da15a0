//! The command line: flags and environment variables, and the configuration they make.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use clap::Parser;
use storefirst_domain::{Receivers, RetryPolicy, StreamSettings};
use storefirst_pipeline::{Config, cors::AllowedOrigins};

/// Runs the storage-first API locally: HTTP API, SQLite store, change stream, processor.
#[derive(Parser)]
#[command(version)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Port of the HTTP API; 0 picks a free one.
    #[arg(long, env = "STOREFIRST_PORT", default_value_t = 3000)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "STOREFIRST_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// SQLite database file; created when missing.
    #[arg(
        long,
        env = "STOREFIRST_DB",
        default_value = "storefirst.db",
        global = true
    )]
    pub db: PathBuf,
    /// API key clients must send in `x-api-key`; the default is for a loopback address only.
    #[arg(long, env = "STOREFIRST_API_KEY", default_value = DEFAULT_API_KEY)]
    pub api_key: String,
    /// Retries of a failing batch before it goes to the dead letters.
    #[arg(long, env = "STOREFIRST_MAX_RETRIES", default_value_t = StreamSettings::DEFAULT.maximum_retry_attempts)]
    pub max_retries: u32,
    /// Most records per batch.
    #[arg(long, env = "STOREFIRST_BATCH_SIZE", default_value_t = StreamSettings::DEFAULT.batch_size)]
    pub batch_size: u32,
    /// Records of one batch processed at the same time.
    #[arg(long, env = "STOREFIRST_CONCURRENCY", default_value_t = StreamSettings::DEFAULT.concurrency)]
    pub concurrency: usize,
    /// Seconds a succeeded item is kept before it expires.
    #[arg(long, env = "STOREFIRST_RETENTION_SECS", default_value_t = StreamSettings::DEFAULT.succeeded_retention.as_secs())]
    pub retention_secs: u64,
    /// Stream records the processor may fall behind before new requests wait for it, and
    /// get 503 with Retry-After when it does not catch up within a second (SQLite only).
    #[arg(long, env = "STOREFIRST_MAX_BACKLOG", default_value_t = storefirst_pipeline::DEFAULT_MAX_BACKLOG)]
    pub max_backlog: i64,
    /// Milliseconds between expiry sweeps.
    #[arg(long, env = "STOREFIRST_SWEEP_MS", default_value_t = 1000)]
    pub sweep_ms: u64,
    /// Use this DynamoDB table and its stream instead of SQLite (the default AWS
    /// configuration chain: AWS_ENDPOINT_URL, AWS_REGION, credentials). `--db` then keeps
    /// the place in the stream and the dead letters.
    #[arg(long, env = "STOREFIRST_DYNAMODB_TABLE", global = true)]
    pub dynamodb_table: Option<String>,
    /// Create the DynamoDB table (with its stream) when it does not exist.
    #[arg(long, requires = "dynamodb_table")]
    pub create_table: bool,
    /// Run the batches through this Lambda zip's `bootstrap` behind a local Runtime API
    /// (needs --dynamodb-table: the function writes to DynamoDB).
    #[arg(long, env = "STOREFIRST_LAMBDA_ZIP", requires = "dynamodb_table")]
    pub lambda: Option<PathBuf>,
    /// A native build of stream-processor, used when the zip is arm64 and qemu-user is
    /// not installed.
    #[arg(long, env = "STOREFIRST_NATIVE_BOOTSTRAP", requires = "lambda")]
    pub native_bootstrap: Option<PathBuf>,
    /// Run the webhook notifier too: this Lambda zip's `bootstrap` (e.g.
    /// target/lambda/notifier/bootstrap.zip), fed by the table's stream and by the delivery
    /// queue, which is created beside the table with its dead letters and the signing
    /// secret (needs --lambda). Without it the API refuses x-callback-url.
    #[arg(long, env = "STOREFIRST_NOTIFIER_ZIP", requires = "lambda")]
    pub notifier_zip: Option<PathBuf>,
    /// A native build of the notifier, used when the zip is arm64 and qemu-user is not
    /// installed.
    #[arg(long, env = "STOREFIRST_NATIVE_NOTIFIER", requires = "notifier_zip")]
    pub native_notifier: Option<PathBuf>,
    /// Seconds a delivery the notifier received stays hidden (the delivery queue's
    /// visibility timeout): after a failed invocation or a crash it comes back after this.
    /// By default the stack's.
    #[arg(
        long,
        env = "STOREFIRST_WEBHOOK_VISIBILITY_TIMEOUT_SECS",
        default_value_t = 180
    )]
    pub webhook_visibility_timeout_secs: u64,
    /// The stream processor's timeout in seconds; by default the stack's.
    #[arg(long, env = "STOREFIRST_FUNCTION_TIMEOUT_SECS")]
    pub function_timeout_secs: Option<u64>,
    /// An origin a browser may call the API from (CORS), e.g. `https://app.example.com`
    /// or `http://127.0.0.1:8081`; repeat it for more, or `*` alone for any. None by
    /// default: same-origin only.
    #[arg(
        long = "cors-origin",
        value_name = "ORIGIN",
        env = "STOREFIRST_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Deliver webhooks also to receivers on this machine (`http://127.0.0.1`, `localhost`,
    /// `[::1]`), for development and tests; off by default: public https receivers only.
    #[arg(long, env = "STOREFIRST_ALLOW_LOOPBACK_WEBHOOKS")]
    pub allow_loopback_webhooks: bool,
    /// The `whsec_` secret webhooks are signed with; by default one generated at the first
    /// start and kept in the database (`storefirst-local webhook-secret` prints it).
    #[arg(long, env = "STOREFIRST_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Attempts of a webhook delivery, the first included, before it is given up on.
    #[arg(long, env = "STOREFIRST_WEBHOOK_MAX_ATTEMPTS", default_value_t = RetryPolicy::DEFAULT.max_attempts)]
    pub webhook_max_attempts: u32,
    /// Milliseconds before the first retry of a webhook; each further one waits twice as long.
    #[arg(long, env = "STOREFIRST_WEBHOOK_RETRY_MS", default_value_t = RetryPolicy::DEFAULT.base.as_millis() as u64)]
    pub webhook_retry_ms: u64,
    /// Serve the console (`/console`) also when --host is not a loopback address: whoever
    /// reaches the API reaches it, behind the same API key. Off by default.
    #[arg(long, env = "STOREFIRST_CONSOLE_REMOTE")]
    pub console_remote: bool,
    /// Log filter, e.g. `info` or `storefirst_local=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub log: String,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Reprocess dead-lettered and stuck pending requests (after fixing the processor), and
    /// make given-up webhooks due again (a running storefirst-local delivers them), then exit.
    /// With a DynamoDB table, the given-up webhooks in its dead-letter queue go back to its
    /// delivery queue: the queues of the Lambda mode, or those given here (a stack's).
    Redrive {
        /// The delivery queue's URL (a stack's `WebhookQueueUrl` output).
        #[arg(long, requires = "webhook_dead_letters_url")]
        webhook_queue_url: Option<String>,
        /// The dead-letter queue's URL (a stack's `WebhookDeadLettersUrl` output).
        #[arg(long, requires = "webhook_queue_url")]
        webhook_dead_letters_url: Option<String>,
    },
    /// Print the secret webhooks are signed with (kept in the database, or with a DynamoDB
    /// table in Secrets Manager), then exit.
    WebhookSecret,
}

/// The well-known key of a laptop's runtime, refused on any other address.
pub const DEFAULT_API_KEY: &str = "dev-key";

impl Args {
    /// Refuses to serve beyond this machine with the well-known key, and warns that the
    /// API is plain HTTP there.
    pub fn check_exposure(&self) -> anyhow::Result<()> {
        if self.host.is_loopback() {
            return Ok(());
        }
        anyhow::ensure!(
            self.api_key != DEFAULT_API_KEY,
            "--host {} is reachable from other machines, and the API key is the well-known \
             default {DEFAULT_API_KEY:?}: set --api-key (or STOREFIRST_API_KEY) to a secret \
             of your own, or listen on 127.0.0.1",
            self.host
        );
        tracing::warn!(
            host = %self.host,
            "the API is plain HTTP on a non-loopback address: the key and the requests cross \
             the network unencrypted; put TLS in front of it"
        );
        Ok(())
    }

    /// The pipeline's configuration from the flags.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::new(
            self.db.clone(),
            SocketAddr::new(self.host, self.port),
            self.api_key.clone(),
        );
        config.stream.maximum_retry_attempts = self.max_retries;
        config.stream.batch_size = self.batch_size;
        config.stream.concurrency = self.concurrency;
        config.stream.succeeded_retention = Duration::from_secs(self.retention_secs);
        config.sweep_interval = Duration::from_millis(self.sweep_ms.max(1));
        config.max_backlog = self.max_backlog;
        config.cors = AllowedOrigins::parse(&self.cors_origins)?;
        if self.allow_loopback_webhooks {
            config.receivers = Receivers::AlsoLoopback;
        }
        config.webhook_secret = self.webhook_secret.clone();
        config.webhook_retry.max_attempts = self.webhook_max_attempts.max(1);
        config.webhook_retry.base = Duration::from_millis(self.webhook_retry_ms);
        config.console = self.host.is_loopback() || self.console_remote;
        Ok(config)
    }
}
