//! The embedded default store: SQLite in WAL mode, written by one thread with group commit
//! (`writer`), whose triggers write the change stream in the item's own transaction
//! (`db`), read by the pipeline as its stream (`store`), with a TTL sweeper (`sweeper`).
//! [`start`] runs the whole pipeline over it with the processor in-process, and the console
//! over its read model (`store::read_model`).

pub mod db;
pub mod store;
mod sweeper;
mod writer;

use std::sync::Arc;

use storefirst_domain::Processor;
use storefirst_pipeline::{
    Config, Runtime, StartError, console::Console, ports::InProcess, runtime::check,
};

pub use store::SqliteStore;

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
    let interval = config.sweep_interval;
    runtime.spawn(move |stopping| sweeper::run(store, interval, stopping));
    Ok(runtime)
}
