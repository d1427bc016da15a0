//! The deployable artifact, run here: the Lambda Runtime API served on 127.0.0.1, the
//! function's `bootstrap` as a child process with Lambda's environment, and an
//! [`Invoker`] that hands it DynamoDB-stream-shaped batches as the event source mapping
//! does. Timeouts, crashes and init errors fail the batch and restart the child, as Lambda
//! does; the poller then retries, bisects and dead-letters as with any failed batch.

use std::{
    collections::HashSet,
    ffi::OsString,
    net::SocketAddr,
    os::fd::AsFd,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use storefirst_domain::{StreamSettings, millis, now_millis};
use tokio::{
    net::TcpListener,
    process::{Child, Command},
    sync::{Mutex, mpsc},
    task::JoinHandle,
};

use crate::backend::{Invoker, StreamRow};

const FUNCTION_NAME: &str = "stream-processor";
/// Lambda's limit on a function's init phase.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error("cannot read the Lambda zip {path}: {reason}; build it with `cargo xtask build`")]
    Zip { path: PathBuf, reason: String },
    #[error(
        "{0} is an arm64 (aarch64) binary and {1}: install the Debian packages \
         qemu-user-static and libc6-arm64-cross (`cargo xtask dev --lambda` does it), or pass \
         --native-bootstrap with a native build of stream-processor"
    )]
    NoQemu(PathBuf, String),
}

/// How the bootstrap is started: the program, its arguments, and a description for the
/// output ("arm64 under qemu" or "native").
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub how: String,
}

/// Where the arm64 C library of `libc6-arm64-cross` lives, for qemu's `-L`.
pub const ARM64_SYSROOT: &str = "/usr/aarch64-linux-gnu";
pub const QEMU: &str = "qemu-aarch64-static";

impl Bootstrap {
    /// Unzips `bootstrap` from `zip` into `dir` and decides how to run it: directly when it
    /// is built for this machine, under qemu-user when it is arm64 and this machine is not,
    /// or else `native` (a build of the same code for this machine).
    pub fn from_zip(zip: &Path, dir: &Path, native: Option<&Path>) -> Result<Self, LambdaError> {
        let fail = |reason: String| LambdaError::Zip {
            path: zip.to_owned(),
            reason,
        };
        let file = std::fs::File::open(zip).map_err(|e| fail(e.to_string()))?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| fail(e.to_string()))?;
        let mut entry = archive
            .by_name("bootstrap")
            .map_err(|e| fail(format!("no `bootstrap` in it ({e})")))?;
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        let path = dir.join("bootstrap");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| fail(e.to_string()))?;
        std::fs::write(&path, &bytes).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        set_executable(&path).map_err(|e| fail(e.to_string()))?;
        let arm64 = elf_machine(&bytes) == Some(ELF_AARCH64);
        if !arm64 || cfg!(target_arch = "aarch64") {
            return Ok(Self {
                program: path,
                args: Vec::new(),
                how: "the zip's bootstrap, natively".into(),
            });
        }
        let qemu = find_qemu();
        let why_not = match &qemu {
            Some(qemu) => match probe(qemu, &path) {
                Ok(()) => {
                    return Ok(Self {
                        program: qemu.clone(),
                        args: qemu_args(&path),
                        how: format!("the zip's arm64 bootstrap under {QEMU}"),
                    });
                }
                Err(reason) => format!("{QEMU} could not run it: {reason}"),
            },
            None => format!("{QEMU} is not installed"),
        };
        match native {
            Some(native) => Ok(Self {
                program: native.to_owned(),
                args: Vec::new(),
                how: format!("the native build {} ({why_not})", native.display()),
            }),
            None => Err(LambdaError::NoQemu(zip.to_owned(), why_not)),
        }
    }
}

/// qemu's arguments to run `bootstrap`. The loader comes from the sysroot, and so must the
/// C library: left to the host's `/etc/ld.so.cache`, a machine with Debian's multiarch
/// `libc6:arm64` hands the loader that package's libc.so.6, a different build of glibc
/// whose private layout differs, and `pthread_create` then loops forever.
fn qemu_args(bootstrap: &Path) -> Vec<OsString> {
    vec![
        "-L".into(),
        ARM64_SYSROOT.into(),
        "-E".into(),
        format!("LD_LIBRARY_PATH={ARM64_SYSROOT}/lib").into(),
        bootstrap.into(),
    ]
}

const ELF_AARCH64: u16 = 0xB7;
/// How long the bootstrap may take under qemu to reach its configuration check.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the bootstrap under qemu without configuration: a working one soon exits saying
/// what it misses. Some qemu builds hang on some binaries; better to know at start.
fn probe(qemu: &Path, bootstrap: &Path) -> Result<(), String> {
    let mut child = std::process::Command::new(qemu)
        .args(qemu_args(bootstrap))
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    while started.elapsed() < PROBE_TIMEOUT {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "without configuration it did not exit within {PROBE_TIMEOUT:?} (it should stop at once, saying TABLE_NAME is not set)"
    ))
}

/// The `e_machine` of a little-endian ELF file.
fn elf_machine(bytes: &[u8]) -> Option<u16> {
    (bytes.get(..4)? == b"\x7fELF").then(|| u16::from_le_bytes([bytes[18], bytes[19]]))
}

fn set_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// qemu-user for arm64 with the arm64 C library beside it, if both are installed.
pub fn find_qemu() -> Option<PathBuf> {
    if !Path::new(ARM64_SYSROOT).is_dir() {
        return None;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(QEMU))
        .find(|path| path.is_file())
}

/// What the function is configured with, as the stack configures it.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    pub bootstrap: Bootstrap,
    pub table: String,
    pub region: String,
    /// The function's timeout; the stack's is derived from the stream settings.
    pub timeout: Duration,
    pub memory_mb: u32,
    pub retention: Duration,
    /// Variables passed through from this process (credentials, endpoint, log filter).
    pub passthrough: Vec<(String, String)>,
}

impl FunctionConfig {
    /// The AWS and logging variables of this process that the child needs to reach the
    /// same DynamoDB endpoint with the same credentials.
    pub fn inherited_environment() -> Vec<(String, String)> {
        std::env::vars()
            .filter(|(name, _)| {
                (name.starts_with("AWS_") && !name.starts_with("AWS_LAMBDA_"))
                    || matches!(name.as_str(), "HOME" | "RUST_LOG")
            })
            .collect()
    }
}

/// One invocation's answer from the runtime, or the init error.
#[derive(Debug)]
enum Reply {
    Response { id: String, body: String },
    Error { id: String, body: String },
    InitError(String),
}

struct Invocation {
    id: String,
    event: Value,
    deadline_ms: i64,
}

/// The Runtime API of one execution environment.
#[derive(Clone)]
struct Api {
    invocations: Arc<Mutex<mpsc::Receiver<Invocation>>>,
    replies: mpsc::UnboundedSender<Reply>,
    function_arn: Arc<str>,
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
    server: JoinHandle<()>,
    invocations: mpsc::Sender<Invocation>,
    replies: mpsc::UnboundedReceiver<Reply>,
    /// Whether it has taken an invocation yet (the first one includes its init).
    warm: bool,
}

impl Drop for Environment {
    fn drop(&mut self) {
        // The child goes first: with its Runtime API gone it would report a failed request.
        let _ = self.child.start_kill();
        self.server.abort();
    }
}

/// The function, run as Lambda runs it: one execution environment at a time, started at
/// the first invocation and replaced after a timeout, a crash or an init error.
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

    pub fn config(&self) -> &FunctionConfig {
        &self.config
    }

    pub fn starts(&self) -> usize {
        self.starts.load(Ordering::SeqCst)
    }

    /// Serves a Runtime API on a free 127.0.0.1 port and starts the bootstrap against it.
    async fn start_environment(&self) -> Result<Environment, InvokeError> {
        let config = &self.config;
        let listener =
            TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|source| InvokeError::Spawn {
                    program: "the Runtime API".into(),
                    source,
                })?;
        let address = listener.local_addr().map_err(|source| InvokeError::Spawn {
            program: "the Runtime API".into(),
            source,
        })?;
        let (invocations, waiting) = mpsc::channel(1);
        let (replies_tx, replies) = mpsc::unbounded_channel();
        let api = Api {
            invocations: Arc::new(Mutex::new(waiting)),
            replies: replies_tx,
            function_arn: format!(
                "arn:aws:lambda:{}:123456789012:function:{FUNCTION_NAME}",
                config.region
            )
            .into(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(|State(api): State<Api>, UrlPath(id): UrlPath<String>, body: String| async move {
                    reply(&api, Reply::Response { id, body })
                }),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(|State(api): State<Api>, UrlPath(id): UrlPath<String>, body: String| async move {
                    reply(&api, Reply::Error { id, body })
                }),
            )
            .route(
                "/2018-06-01/runtime/init/error",
                post(|State(api): State<Api>, body: String| async move {
                    reply(&api, Reply::InitError(body))
                }),
            )
            .with_state(api);
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the Lambda Runtime API stopped");
            }
        });
        let child = self.spawn(address)?;
        Ok(Environment {
            child,
            server,
            invocations,
            replies,
            warm: false,
        })
    }

    fn spawn(&self, runtime_api: SocketAddr) -> Result<Child, InvokeError> {
        let config = &self.config;
        let bootstrap = &config.bootstrap;
        let binary = bootstrap
            .args
            .last()
            .map_or_else(|| bootstrap.program.clone(), PathBuf::from);
        let task_root = binary
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
        let mut command = Command::new(&bootstrap.program);
        command
            .args(&bootstrap.args)
            .env_clear()
            .envs(config.passthrough.iter().cloned())
            .envs([
                ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
                ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME.to_owned()),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
                (
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                    config.memory_mb.to_string(),
                ),
                (
                    "AWS_LAMBDA_LOG_GROUP_NAME",
                    format!("/aws/lambda/{FUNCTION_NAME}"),
                ),
                ("AWS_REGION", config.region.clone()),
                ("AWS_DEFAULT_REGION", config.region.clone()),
                ("_HANDLER", "bootstrap".to_owned()),
                ("LAMBDA_TASK_ROOT", task_root),
                (storefirst_lambda::TABLE_VAR, config.table.clone()),
                (
                    storefirst_lambda::RETENTION_VAR,
                    config.retention.as_secs().to_string(),
                ),
            ])
            .stdin(Stdio::null())
            .stdout(logs())
            .stderr(logs())
            .kill_on_drop(true);
        let child = command.spawn().map_err(|source| InvokeError::Spawn {
            program: bootstrap.program.clone(),
            source,
        })?;
        let starts = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(pid = child.id(), starts, %runtime_api, "started the function: {}", bootstrap.how);
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
        let limit = self.config.timeout
            + if environment.warm {
                Duration::ZERO
            } else {
                INIT_TIMEOUT
            };
        environment.warm = true;
        let id = uuid::Uuid::new_v4().to_string();
        let deadline_ms = now_millis() + millis(self.config.timeout);
        let invocation = Invocation {
            id: id.clone(),
            event,
            deadline_ms,
        };
        let outcome = match environment.invocations.try_send(invocation) {
            Err(_) => Err(InvokeError::Crashed(
                "its Runtime API holds an invocation nobody took".into(),
            )),
            Ok(()) => tokio::time::timeout(limit, async {
                tokio::select! {
                    exit = environment.child.wait() => Err(InvokeError::Crashed(match exit {
                        Ok(status) => status.to_string(),
                        Err(error) => error.to_string(),
                    })),
                    reply = answer(&mut environment.replies, &id) => reply,
                }
            })
            .await
            .unwrap_or(Err(InvokeError::Timeout(self.config.timeout))),
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

/// The reply to invocation `id`; replies to others (a timed-out one) are dropped.
async fn answer(
    replies: &mut mpsc::UnboundedReceiver<Reply>,
    id: &str,
) -> Result<String, InvokeError> {
    while let Some(reply) = replies.recv().await {
        match reply {
            Reply::Response { id: of, body } if of == id => return Ok(body),
            Reply::Error { id: of, body } if of == id => return Err(InvokeError::Function(body)),
            Reply::InitError(body) => return Err(InvokeError::Init(body)),
            late => tracing::debug!(?late, "dropping a reply to an earlier invocation"),
        }
    }
    std::future::pending().await
}

/// `GET .../invocation/next`: waits for the next invocation, as Lambda's does.
async fn next(State(api): State<Api>) -> Response {
    let Some(invocation) = api.invocations.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let trace = format!(
        "Root=1-{:08x}-{};Sampled=0",
        now_millis() / 1000,
        &invocation.id.replace('-', "")[..24]
    );
    for (name, value) in [
        ("lambda-runtime-aws-request-id", invocation.id.clone()),
        (
            "lambda-runtime-deadline-ms",
            invocation.deadline_ms.to_string(),
        ),
        (
            "lambda-runtime-invoked-function-arn",
            api.function_arn.to_string(),
        ),
        ("lambda-runtime-trace-id", trace),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (headers, axum::Json(invocation.event)).into_response()
}

fn reply(api: &Api, reply: Reply) -> StatusCode {
    let _ = api.replies.send(reply);
    StatusCode::ACCEPTED
}

/// Delivers batches to a [`LambdaFunction`] as the event source mapping does, and reads
/// its `batchItemFailures`.
pub struct LambdaInvoker {
    pub function: Arc<LambdaFunction>,
}

impl<C: Sync> Invoker<C, Value> for LambdaInvoker {
    async fn invoke(
        &self,
        rows: &[StreamRow<C, Value>],
        _settings: &StreamSettings,
    ) -> Vec<String> {
        let every = || -> Vec<String> {
            rows.iter()
                .map(|row| row.record.sequence_number.clone())
                .collect()
        };
        let records: Vec<Value> = rows.iter().map(|row| row.source.clone()).collect();
        let body = match self.function.invoke(json!({ "Records": records })).await {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(%error, records = rows.len(), "the invocation failed: the whole batch is retried");
                return every();
            }
        };
        match failures(&body, &every().into_iter().collect()) {
            Some(failures) => failures,
            None => {
                tracing::warn!(
                    body,
                    "the response is no valid batchItemFailures: the whole batch is retried"
                );
                every()
            }
        }
    }
}

/// The sequence numbers a response names, or `None` when it names a record that is not in
/// the batch or none at all, which Lambda treats as a failure of the whole batch.
fn failures(body: &str, batch: &HashSet<String>) -> Option<Vec<String>> {
    let response: Value = if body.trim().is_empty() || body.trim() == "null" {
        return Some(Vec::new());
    } else {
        serde_json::from_str(body).ok()?
    };
    let Some(items) = response.get("batchItemFailures") else {
        return Some(Vec::new());
    };
    items
        .as_array()?
        .iter()
        .map(|item| {
            let id = item.get("itemIdentifier")?.as_str()?;
            batch.contains(id).then(|| id.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expected: Option<&[&str]>) {
        let batch: HashSet<String> = ["1", "2", "3"].map(String::from).into();
        let expected = expected.map(|ids| ids.iter().map(|id| id.to_string()).collect());
        assert_eq!(failures(body, &batch), expected, "{body}");
    }

    #[test]
    fn batch_item_failures() {
        check(r#"{"batchItemFailures":[]}"#, Some(&[]));
        check(
            r#"{"batchItemFailures":[{"itemIdentifier":"2"}]}"#,
            Some(&["2"]),
        );
        check("", Some(&[]));
        check("null", Some(&[]));
        check("{}", Some(&[]));
        // Lambda fails the whole batch for an identifier it does not know, or none.
        check(r#"{"batchItemFailures":[{"itemIdentifier":"9"}]}"#, None);
        check(r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#, None);
        check(r#"{"batchItemFailures":[{}]}"#, None);
        check("not json", None);
    }
}
