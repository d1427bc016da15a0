//! The embedded default store: SQLite in WAL mode, written by one thread with group commit
//! (`writer`), whose triggers write the change stream in the item's own transaction
//! (`db`), read by the pipeline as its stream (`store`), with a TTL sweeper (`sweeper`).
//! [`start`] runs the whole pipeline over it with the processor in-process, and the console
//! over its read model (`store::read_model`).

pub mod db;
mod secret;
pub mod store;
mod sweeper;
mod writer;

use std::sync::Arc;

use storefirst_domain::Processor;
use storefirst_pipeline::{
    Config, Runtime, StartError, console::Console, ports::InProcess, runtime::check,
};
use storefirst_webhooks::{Notifier, Sender, SystemLookup};

pub use secret::{SecretError, SecretOrigin, webhook_secret};
pub use store::SqliteStore;

/// Webhook attempts under way at once, at most: each is bounded by its timeout, so a
/// receiver that hangs holds one of them for that long.
pub const WEBHOOK_CONCURRENCY: usize = 64;
/// Of those, to one receiver (scheme, host and port) at once, at most: a receiver that
/// hangs holds this many, and the rest stay free for the others.
pub const WEBHOOK_PER_RECEIVER: usize = 8;

/// The embedded default: SQLite, its own stream, the processor in-process.
pub async fn start<P: Processor>(
    config: Config,
    processor: Arc<P>,
) -> Result<Runtime<SqliteStore>, StartError> {
    check(&config)?;
    let store = SqliteStore::open(&config.db).map_err(|source| StartError::Database {
        path: config.db.clone(),
        source: source.into(),
    })?;
    store.limit_backlog(config.max_backlog, config.admission_wait);
    let (secret, _) = webhook_secret(&config.db, config.webhook_secret.as_deref())
        .map_err(|e| StartError::Config(e.to_string()))?;
    let notifier = Notifier {
        outbox: store.clone(),
        sender: Sender::new(secret, config.receivers, Arc::new(SystemLookup))
            .map_err(|e| StartError::Config(format!("cannot build the webhook client: {e}")))?,
        policy: config.webhook_retry,
        concurrency: WEBHOOK_CONCURRENCY,
        per_receiver: WEBHOOK_PER_RECEIVER,
    };
    let console = Console {
        read: store.clone(),
        stuck: store.clone(),
        processor: processor.clone(),
        settings: config.stream.clone(),
    };
    let invoker = InProcess {
        processor,
        store: Arc::new(store.clone()),
    };
    let mut runtime = Runtime::launch_with(&config, store.clone(), store.clone(), invoker, |key| {
        console.routes(key)
    })
    .await?;
    runtime.spawn(move |stopping| notifier.run(stopping));
    let interval = config.sweep_interval;
    runtime.spawn(move |stopping| sweeper::run(store, interval, stopping));
    Ok(runtime)
}
