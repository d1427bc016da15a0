//! The Lambda Runtime API (version 2018-06-01) of one execution environment, served on
//! 127.0.0.1: it hands queued invocations out with Lambda's headers and reports every call
//! the runtime makes, with when it came.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::Value;
use tokio::{
    net::TcpListener,
    sync::{Mutex, mpsc},
    task::JoinHandle,
};

use crate::Identity;

/// A call the runtime made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// It asked for the next invocation: init is over when it first does.
    Next,
    /// Its `next` got invocation `id`.
    Delivered {
        id: String,
    },
    Response {
        id: String,
        body: String,
    },
    Error {
        id: String,
        body: String,
    },
    InitError {
        body: String,
    },
}

/// How the runtime answered an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Response(String),
    Error(String),
    /// The init failed before the invocation could run.
    InitError(String),
}

/// The reply to one invocation and its timing.
#[derive(Debug)]
pub struct Answer {
    pub reply: Reply,
    /// When the runtime's `next` got the invocation; `None` after an init error.
    pub delivered: Option<Instant>,
    /// When the reply came.
    pub at: Instant,
}

/// The Runtime API already holds an invocation that no `next` has taken.
#[derive(Debug, thiserror::Error)]
#[error("the Runtime API holds an invocation nobody took")]
pub struct Pending;

struct Invocation {
    id: String,
    event: Value,
    deadline_ms: u128,
}

#[derive(Clone)]
struct Shared {
    invocations: Arc<Mutex<mpsc::Receiver<Invocation>>>,
    calls: mpsc::UnboundedSender<(Instant, Call)>,
    function_arn: Arc<str>,
}

/// The Runtime API of one execution environment; it stops serving when dropped.
pub struct RuntimeApi {
    address: SocketAddr,
    server: JoinHandle<()>,
    invocations: mpsc::Sender<Invocation>,
    calls: mpsc::UnboundedReceiver<(Instant, Call)>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Serves the Runtime API of `function` on a free 127.0.0.1 port.
    pub async fn serve(function: &Identity) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        // One at a time, as Lambda hands an execution environment one invocation at a time.
        let (invocations, waiting) = mpsc::channel(1);
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let shared = Shared {
            invocations: Arc::new(Mutex::new(waiting)),
            calls: calls_tx,
            function_arn: function.arn().into(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(
                    |State(shared): State<Shared>, Path(id): Path<String>, body: String| async move {
                        record(&shared, Call::Response { id, body })
                    },
                ),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(
                    |State(shared): State<Shared>, Path(id): Path<String>, body: String| async move {
                        record(&shared, Call::Error { id, body })
                    },
                ),
            )
            .route(
                "/2018-06-01/runtime/init/error",
                post(|State(shared): State<Shared>, body: String| async move {
                    record(&shared, Call::InitError { body })
                }),
            )
            .with_state(shared);
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the Lambda Runtime API stopped");
            }
        });
        Ok(Self {
            address,
            server,
            invocations,
            calls,
        })
    }

    /// Where it listens: the runtime's `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Queues `event` for the runtime's next `next`, with a deadline `timeout` from now,
    /// and returns its request id.
    pub fn invoke(&self, event: Value, timeout: Duration) -> Result<String, Pending> {
        let id = uuid::Uuid::new_v4().to_string();
        let deadline_ms = (SystemTime::now() + timeout)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        self.invocations
            .try_send(Invocation {
                id: id.clone(),
                event,
                deadline_ms,
            })
            .map_err(|_| Pending)?;
        Ok(id)
    }

    /// The next call the runtime makes, and when it came.
    pub async fn call(&mut self) -> Option<(Instant, Call)> {
        self.calls.recv().await
    }

    /// The reply to invocation `id`, or the init error; replies to other invocations (one
    /// that timed out) are dropped.
    pub async fn answer(&mut self, id: &str) -> Option<Answer> {
        let mut delivered = None;
        while let Some((at, call)) = self.call().await {
            let reply = match call {
                Call::Delivered { id: of } if of == id => {
                    delivered = Some(at);
                    continue;
                }
                Call::Response { id: of, body } if of == id => Reply::Response(body),
                Call::Error { id: of, body } if of == id => Reply::Error(body),
                Call::InitError { body } => Reply::InitError(body),
                other => {
                    tracing::debug!(?other, "not the reply to invocation {id}");
                    continue;
                }
            };
            return Some(Answer {
                reply,
                delivered,
                at,
            });
        }
        None
    }
}

/// `GET .../invocation/next`: waits for the next invocation, as Lambda's does.
async fn next(State(shared): State<Shared>) -> Response {
    let _ = shared.calls.send((Instant::now(), Call::Next));
    let Some(invocation) = shared.invocations.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let _ = shared.calls.send((
        Instant::now(),
        Call::Delivered {
            id: invocation.id.clone(),
        },
    ));
    let epoch_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let trace = format!(
        "Root=1-{epoch_secs:08x}-{};Sampled=0",
        &invocation.id.replace('-', "")[..24]
    );
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", invocation.id),
        (
            "lambda-runtime-deadline-ms",
            invocation.deadline_ms.to_string(),
        ),
        (
            "lambda-runtime-invoked-function-arn",
            shared.function_arn.to_string(),
        ),
        ("lambda-runtime-trace-id", trace),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (headers, axum::Json(invocation.event)).into_response()
}

fn record(shared: &Shared, call: Call) -> StatusCode {
    let _ = shared.calls.send((Instant::now(), call));
    StatusCode::ACCEPTED
}
