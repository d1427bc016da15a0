//! The native build of `stream-processor`, as a child process against a minimal Lambda
//! Runtime API served here: it fetches the event, processes it against moto with the
//! sample processor and posts the response, logging JSON lines with the request id and
//! sequence numbers. Its init calls no AWS endpoint.

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::{REGION, TIMEOUT, Table, inserts_of, moto_url, order};

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

#[derive(Clone)]
struct RuntimeApi {
    /// Handed out by the first `next`; later calls wait for ever, as Lambda's do between
    /// invocations.
    event: Arc<Mutex<Option<Value>>>,
    /// Every call the function makes: `next`, `response <id>`, `error <id>`, `init error`.
    posted: mpsc::UnboundedSender<(String, Value)>,
}

async fn next(State(api): State<RuntimeApi>) -> (HeaderMap, Json<Value>) {
    let _ = api.posted.send(("next".to_owned(), Value::Null));
    let Some(event) = api.event.lock().unwrap().take() else {
        return std::future::pending().await;
    };
    let deadline = storefirst_domain::now_millis() + 60_000;
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", REQUEST_ID.to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:stream-processor".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700".to_owned(),
        ),
    ] {
        headers.insert(name, value.parse().unwrap());
    }
    (headers, Json(event))
}

/// Passes what the runtime posted to the test. The runtime sends no content type, so the
/// body is taken as text.
async fn record(api: RuntimeApi, what: String, body: String) -> StatusCode {
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    let _ = api.posted.send((what, body));
    StatusCode::ACCEPTED
}

/// Serves the Runtime API on 127.0.0.1 with `event` as the one invocation, and returns its
/// address and the calls the function makes.
async fn runtime_api(
    event: Option<Value>,
) -> (SocketAddr, mpsc::UnboundedReceiver<(String, Value)>) {
    let (posted, calls) = mpsc::unbounded_channel();
    let api = RuntimeApi {
        event: Arc::new(Mutex::new(event)),
        posted,
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(|State(api), Path(id): Path<String>, body| {
                record(api, format!("response {id}"), body)
            }),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(|State(api), Path(id): Path<String>, body| {
                record(api, format!("error {id}"), body)
            }),
        )
        .route(
            "/2018-06-01/runtime/init/error",
            post(|State(api), body| record(api, "init error".into(), body)),
        )
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, calls)
}

/// Starts the native binary with a clean environment: only what Lambda sets and what the
/// function is configured with.
fn start_function(runtime_api: SocketAddr, endpoint: &str, table: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_stream-processor"))
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string().as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", "stream-processor"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/stream-processor"),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/01/01/[$LATEST]0123456789abcdef",
            ),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_MAX_ATTEMPTS", "1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("TABLE_NAME", table),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the stream-processor binary")
}

/// The first call other than `next`.
async fn posted(calls: &mut mpsc::UnboundedReceiver<(String, Value)>) -> Option<(String, Value)> {
    while let Some((what, body)) = calls.recv().await {
        if what != "next" {
            return Some((what, body));
        }
    }
    None
}

/// Stops the function and returns what it printed.
fn stop(mut child: Child) -> (String, String) {
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let logs = format!(
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (stdout, logs)
}

#[tokio::test]
async fn the_binary_speaks_the_lambda_runtime_api() {
    let table = Table::create().await;
    table.post("good", &order("Roma", &[("espresso", 2)])).await;
    table.post("bad", &order("Roma", &[("sushi", 1)])).await;
    let records = table.stream_records().await;
    let bad = inserts_of(&records, "bad");
    let (address, mut calls) = runtime_api(Some(table.lambda_event(&records))).await;
    let child = start_function(address, &moto_url(), &table.name);

    let posted = tokio::time::timeout(TIMEOUT, posted(&mut calls)).await;
    let (stdout, logs) = stop(child);
    let Ok(Some((what, body))) = posted else {
        panic!("no response posted within {TIMEOUT:?}\n{logs}");
    };
    assert_eq!(what, format!("response {REQUEST_ID}"), "{body}\n{logs}");
    assert_eq!(body, json!({ "batchItemFailures": [] }), "{logs}");
    assert_eq!(table.item("good").await.status, "succeeded");
    let bad_item = table.item("bad").await;
    assert_eq!((bad_item.status.as_str(), bad_item.attempts), ("failed", 1));

    // Every line is JSON; the rejection's line names the invocation and the record.
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|line| line["span"]["requestId"] == REQUEST_ID
                && line["fields"]["seq"] == bad[0].as_str()),
        "no log line with requestId {REQUEST_ID} and seq {}\n{logs}",
        bad[0]
    );
}

#[tokio::test]
async fn init_makes_no_network_call() {
    // The AWS endpoint is a socket that counts connections; the function asks for its
    // first event only once init is done.
    let endpoint = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint_url = format!("http://{}", endpoint.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while endpoint.accept().await.is_ok() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let (address, mut calls) = runtime_api(None).await;
    let child = start_function(address, &endpoint_url, "requests");
    let first = tokio::time::timeout(TIMEOUT, calls.recv()).await;
    let (_, logs) = stop(child);
    assert!(
        matches!(&first, Ok(Some((what, _))) if what == "next"),
        "the function did not ask for an event: {first:?}\n{logs}"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 0, "{logs}");
}
