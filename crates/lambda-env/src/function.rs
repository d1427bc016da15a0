//! The function run as Lambda runs it: one execution environment at a time (a bootstrap
//! child with its own Runtime API), started at the first invocation and replaced after a
//! timeout, a crash or an init error.

use std::{
    os::fd::AsFd,
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use serde_json::Value;
use tokio::{
    process::{Child, Command},
    sync::Mutex,
};

use crate::{Bootstrap, Identity, Reply, RuntimeApi};

/// Lambda's limit on a function's init phase.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the function is configured with, as the stack configures it.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    pub bootstrap: Bootstrap,
    pub identity: Identity,
    /// The function's timeout.
    pub timeout: Duration,
    /// The child's variables besides Lambda's own: the function's configuration and what
    /// passes through from this process (see [`inherited_environment`]).
    pub env: Vec<(String, String)>,
}

/// The AWS and logging variables of this process that a child needs to reach the same
/// endpoints with the same credentials.
pub fn inherited_environment() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, _)| {
            (name.starts_with("AWS_") && !name.starts_with("AWS_LAMBDA_"))
                || matches!(name.as_str(), "HOME" | "RUST_LOG")
        })
        .collect()
}

/// Why an invocation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("the function timed out after {0:?}")]
    Timeout(Duration),
    #[error("the function's process exited ({0}) during the invocation")]
    Crashed(String),
    #[error("the function failed to initialize: {0}")]
    Init(String),
    #[error("the function returned an error: {0}")]
    Function(String),
    #[error("cannot start the function ({program}): {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
}

impl InvokeError {
    /// Lambda throws the execution environment away after these.
    fn restarts(&self) -> bool {
        !matches!(self, InvokeError::Function(_))
    }
}

/// One execution environment: the child and its own Runtime API, so that nothing a killed
/// child left waiting can take the next child's invocation.
struct Environment {
    child: Child,
    api: RuntimeApi,
    /// Whether it has taken an invocation yet (the first one includes its init).
    warm: bool,
}

impl Drop for Environment {
    fn drop(&mut self) {
        // The child goes before its Runtime API: without it, it would report a failed request.
        let _ = self.child.start_kill();
    }
}

/// The function, one execution environment at a time.
pub struct LambdaFunction {
    config: FunctionConfig,
    environment: Mutex<Option<Environment>>,
    /// How many times an environment was started: the first start and every restart.
    starts: AtomicUsize,
}

impl LambdaFunction {
    pub fn new(config: FunctionConfig) -> Self {
        Self {
            config,
            environment: Mutex::new(None),
            starts: AtomicUsize::new(0),
        }
    }

    pub fn starts(&self) -> usize {
        self.starts.load(Ordering::SeqCst)
    }

    /// Serves a Runtime API and starts the bootstrap against it.
    async fn start_environment(&self) -> Result<Environment, InvokeError> {
        let api = RuntimeApi::serve(&self.config.identity)
            .await
            .map_err(|source| InvokeError::Spawn {
                program: "the Runtime API".into(),
                source,
            })?;
        let child = self.spawn(&api)?;
        Ok(Environment {
            child,
            api,
            warm: false,
        })
    }

    fn spawn(&self, api: &RuntimeApi) -> Result<Child, InvokeError> {
        let config = &self.config;
        let bootstrap = &config.bootstrap;
        let task_root = bootstrap
            .binary()
            .parent()
            .unwrap_or(Path::new("/"))
            .display()
            .to_string();
        // The function's stdout and stderr are its logs: they go to our stderr, never to
        // our stdout, which carries the one line scripts read.
        let logs = || {
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_or_else(|_| Stdio::inherit(), Stdio::from)
        };
        let child = Command::new(&bootstrap.program)
            .args(&bootstrap.args)
            .env_clear()
            .envs(config.env.iter().cloned())
            .envs(config.identity.environment(api.address()))
            .env("LAMBDA_TASK_ROOT", task_root)
            .stdin(Stdio::null())
            .stdout(logs())
            .stderr(logs())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| InvokeError::Spawn {
                program: bootstrap.program.clone(),
                source,
            })?;
        let starts = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(pid = child.id(), starts, runtime_api = %api.address(), "started the function: {}", bootstrap.how);
        Ok(child)
    }

    /// Runs one invocation: its response body, or why it failed. A timeout, a crash or an
    /// init error ends the execution environment; the next invocation starts a new one.
    pub async fn invoke(&self, event: Value) -> Result<String, InvokeError> {
        let mut slot = self.environment.lock().await;
        if slot.is_none() {
            *slot = Some(self.start_environment().await?);
        }
        let environment = slot.as_mut().expect("started above");
        let timeout = self.config.timeout;
        let limit = timeout
            + if environment.warm {
                Duration::ZERO
            } else {
                INIT_TIMEOUT
            };
        environment.warm = true;
        let outcome = match environment.api.invoke(event, timeout) {
            Err(pending) => Err(InvokeError::Crashed(pending.to_string())),
            Ok(id) => tokio::time::timeout(limit, async {
                tokio::select! {
                    exit = environment.child.wait() => Err(InvokeError::Crashed(match exit {
                        Ok(status) => status.to_string(),
                        Err(error) => error.to_string(),
                    })),
                    answer = environment.api.answer(&id) => match answer.map(|a| a.reply) {
                        Some(Reply::Response(body)) => Ok(body),
                        Some(Reply::Error(body)) => Err(InvokeError::Function(body)),
                        Some(Reply::InitError(body)) => Err(InvokeError::Init(body)),
                        // The server is gone only with the environment: wait for the child.
                        None => std::future::pending().await,
                    },
                }
            })
            .await
            .unwrap_or(Err(InvokeError::Timeout(timeout))),
        };
        if let Err(error) = &outcome
            && error.restarts()
            && let Some(mut gone) = slot.take()
        {
            tracing::warn!(%error, "ending the function's execution environment");
            let _ = gone.child.kill().await;
        }
        outcome
    }
}
