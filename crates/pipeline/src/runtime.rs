//! Starts and stops the pipeline over any store and stream: the API's server and the
//! poller, plus whatever tasks an adapter adds (SQLite's sweeper).

use std::{future::Future, net::SocketAddr, path::PathBuf, time::Duration};

use axum::Router;
use storefirst_domain::{DEFAULT_BODY_LIMIT, Receivers, RetryPolicy, StreamSettings};
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    api,
    cors::AllowedOrigins,
    poller::Poller,
    ports::{ChangeStream, Ingest, Invoker},
    server,
};

/// Stream records the poller may fall behind the newest accepted one before new requests
/// wait for it (back pressure), unless configured otherwise.
pub const DEFAULT_MAX_BACKLOG: i64 = 50_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub db: PathBuf,
    pub listen: SocketAddr,
    pub api_key: String,
    pub body_limit: usize,
    pub stream: StreamSettings,
    pub sweep_interval: Duration,
    pub retry_backoff: Duration,
    pub limits: server::Limits,
    /// A request body must arrive within this time (408 otherwise).
    pub body_timeout: Duration,
    /// Stream records the poller may trail the newest accepted request by; past it a new
    /// request waits up to `admission_wait` for the poller, then gets 503.
    pub max_backlog: i64,
    pub admission_wait: Duration,
    /// Origins a browser may call the API from (CORS); none by default.
    pub cors: AllowedOrigins,
    /// Whether `/console` is served; by default only on a loopback address.
    pub console: bool,
    /// Which webhook receivers `x-callback-url` may name and deliveries may reach.
    pub receivers: Receivers,
    /// The `whsec_` secret webhooks are signed with; when `None`, the store keeps one.
    pub webhook_secret: Option<String>,
    pub webhook_retry: RetryPolicy,
}

impl Config {
    pub fn new(db: PathBuf, listen: SocketAddr, api_key: String) -> Self {
        Self {
            db,
            listen,
            api_key,
            body_limit: DEFAULT_BODY_LIMIT,
            stream: StreamSettings::DEFAULT,
            sweep_interval: Duration::from_secs(1),
            retry_backoff: Duration::from_millis(100),
            limits: server::Limits::default(),
            body_timeout: Duration::from_secs(10),
            max_backlog: DEFAULT_MAX_BACKLOG,
            admission_wait: Duration::from_secs(1),
            cors: AllowedOrigins::None,
            console: listen.ip().is_loopback(),
            receivers: Receivers::Public,
            webhook_secret: None,
            webhook_retry: RetryPolicy::DEFAULT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(
        "cannot open the database {path}: {source}; check that its directory exists and is writable"
    )]
    Database {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot listen on {addr}: {source}; pick another port with --port")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running pipeline over the store `S`. Dropping it without [`Runtime::shutdown`] leaves
/// the tasks running.
pub struct Runtime<S> {
    addr: SocketAddr,
    store: S,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// What every backend needs before it starts.
pub fn check(config: &Config) -> Result<(), StartError> {
    config
        .stream
        .validate()
        .map_err(|e| StartError::Config(e.to_string()))?;
    if config.api_key.is_empty() {
        return Err(StartError::Config(
            "the API key is empty: set --api-key".into(),
        ));
    }
    Ok(())
}

impl<S: Ingest> Runtime<S> {
    /// Serves the HTTP API over `store` and runs the poller over `stream`, delivering
    /// batches with `invoker`.
    pub async fn launch<T, I>(
        config: &Config,
        store: S,
        stream: T,
        invoker: I,
    ) -> Result<Self, StartError>
    where
        T: ChangeStream,
        I: Invoker<T::Cursor, T::Source>,
    {
        Self::launch_with(config, store, stream, invoker, |_| Router::new()).await
    }

    /// [`Runtime::launch`] with the routes `console` makes (given the API's state, for its
    /// key check) beside the API's, when `config.console` says so.
    pub async fn launch_with<T, I>(
        config: &Config,
        store: S,
        stream: T,
        invoker: I,
        console: impl FnOnce(api::AppState<S>) -> Router,
    ) -> Result<Self, StartError>
    where
        T: ChangeStream,
        I: Invoker<T::Cursor, T::Source>,
    {
        check(config)?;
        let listener = server::listen(config.listen).map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let (shutdown, stopping) = watch::channel(false);

        let state = api::AppState::new(
            store.clone(),
            &config.api_key,
            config.body_limit,
            config.body_timeout,
        )
        .with_cors(config.cors.clone())
        .with_receivers(config.receivers);
        let mut app = api::app(state.clone());
        if config.console {
            app = app.merge(console(state));
        }
        let server = tokio::spawn(server::serve(
            listener,
            app,
            config.limits.clone(),
            stopping.clone(),
        ));
        let poller = Poller {
            stream,
            invoker,
            settings: config.stream.clone(),
            retry_backoff: config.retry_backoff,
            shutdown: stopping,
        };
        Ok(Self {
            addr,
            store,
            shutdown,
            tasks: vec![server, tokio::spawn(poller.run())],
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Runs `task` beside the server and the poller until shutdown, which it is handed.
    pub fn spawn<F, T>(&mut self, task: F)
    where
        F: FnOnce(watch::Receiver<bool>) -> T,
        T: Future<Output = ()> + Send + 'static,
    {
        let stopping = self.shutdown.subscribe();
        self.tasks.push(tokio::spawn(task(stopping)));
    }

    /// Stops accepting, lets in-flight requests and the in-flight batch finish, and
    /// checkpoints.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
