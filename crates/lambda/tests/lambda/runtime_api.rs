//! The native build of `stream-processor`, as a child process against the Lambda Runtime
//! API of storefirst-lambda-env: it fetches the event, processes it against moto with the
//! sample processor and posts the response, logging JSON lines with the request id and
//! sequence numbers. Its init opens the DynamoDB connection with one call that writes
//! nothing, and goes on whatever that call comes to.

use std::{
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    http::{HeaderMap, StatusCode},
};
use serde_json::{Value, json};
use storefirst_lambda::{
    WARM_UP_VAR,
    warm_up::{WARM_UP_KEY, WARM_UP_TIMEOUT},
};
use storefirst_lambda_env::{Call, Identity, Reply, RuntimeApi};

use crate::support::{REGION, TIMEOUT, Table, inserts_of, moto_url, order};

/// The function as the stack configures it.
fn identity() -> Identity {
    Identity {
        name: "stream-processor".into(),
        region: REGION.into(),
        memory_mb: 128,
    }
}

/// Starts the native binary with a clean environment: only what Lambda sets and what the
/// function is configured with.
fn start_function(api: &RuntimeApi, endpoint: &str, table: &str) -> Child {
    start_function_with(api, endpoint, table, &[])
}

/// The same, with more variables.
fn start_function_with(
    api: &RuntimeApi,
    endpoint: &str,
    table: &str,
    env: &[(&str, &str)],
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_stream-processor"))
        .env_clear()
        .envs(identity().environment(api.address()))
        .envs([
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_MAX_ATTEMPTS", "1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("TABLE_NAME", table),
        ])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the stream-processor binary")
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
    let mut api = RuntimeApi::serve(&identity()).await.unwrap();
    let id = api
        .invoke(table.lambda_event(&records), Duration::from_secs(60))
        .unwrap();
    let child = start_function(&api, &moto_url(), &table.name);

    let answer = tokio::time::timeout(TIMEOUT, api.answer(&id)).await;
    let (stdout, logs) = stop(child);
    let Ok(Some(answer)) = answer else {
        panic!("no response posted within {TIMEOUT:?}\n{logs}");
    };
    // Posted to `.../invocation/{id}/response`, the request id the API handed out.
    let Reply::Response(body) = answer.reply else {
        panic!("no response to {id}: {:?}\n{logs}", answer.reply);
    };
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
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
            .any(|line| line["spans"][0]["requestId"] == id.as_str()
                && line["span"]["name"] == "record"
                && line["fields"]["seq"] == bad[0].as_str()),
        "no log line with requestId {id} and seq {}\n{logs}",
        bad[0]
    );
    // The warm-up reached DynamoDB during init and wrote nothing.
    assert_eq!(warm_up_line(&lines, &logs)["level"], "INFO", "{logs}");
    let warm_up_item = table
        .dynamodb
        .get_item()
        .table_name(&table.name)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(WARM_UP_KEY.into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem on moto");
    assert_eq!(warm_up_item.item, None);
}

/// How a stand-in DynamoDB endpoint treats the calls it gets.
#[derive(Clone, Copy)]
enum Endpoint {
    /// As DynamoDB answers the warm-up: its condition failed.
    Answers,
    /// Takes the request and never answers.
    Hangs,
}

/// A DynamoDB endpoint on 127.0.0.1 that records the `X-Amz-Target` of every call.
async fn dynamodb(behaviour: Endpoint) -> (String, Arc<Mutex<Vec<String>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let app = Router::new().fallback(move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            seen.lock().unwrap().push(target);
            if let Endpoint::Hangs = behaviour {
                std::future::pending::<()>().await;
            }
            (
                StatusCode::BAD_REQUEST,
                [("content-type", "application/x-amz-json-1.0")],
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

/// Starts the function with no event to serve and returns, once it asks for its first
/// event (init is done), how long init took and the JSON lines it logged.
async fn init(endpoint: &str, env: &[(&str, &str)]) -> (Duration, Vec<Value>, String) {
    let mut api = RuntimeApi::serve(&identity()).await.unwrap();
    let started = Instant::now();
    let child = start_function_with(&api, endpoint, "requests", env);
    let first = tokio::time::timeout(TIMEOUT, api.call()).await;
    let elapsed = started.elapsed();
    let (stdout, logs) = stop(child);
    assert!(
        matches!(&first, Ok(Some((_, Call::Next)))),
        "the function did not ask for an event: {first:?}\n{logs}"
    );
    let lines = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}")))
        .collect();
    (elapsed, lines, logs)
}

/// The log line of the warm-up, which every init writes unless it is off.
fn warm_up_line<'a>(lines: &'a [Value], logs: &str) -> &'a Value {
    let found: Vec<&Value> = lines
        .iter()
        .filter(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("warm-up:"))
        })
        .collect();
    assert_eq!(found.len(), 1, "expected one warm-up line\n{logs}");
    found[0]
}

#[tokio::test]
async fn init_opens_the_connection_with_one_call_that_writes_nothing() {
    let (endpoint, calls) = dynamodb(Endpoint::Answers).await;
    let (_, lines, logs) = init(&endpoint, &[]).await;
    assert_eq!(
        *calls.lock().unwrap(),
        ["DynamoDB_20120810.UpdateItem"],
        "{logs}"
    );
    let line = warm_up_line(&lines, &logs);
    assert_eq!(line["level"], "INFO", "{logs}");
    assert_eq!(line["fields"]["table"], "requests", "{logs}");
}

#[tokio::test]
async fn init_waits_a_bounded_time_for_an_endpoint_that_does_not_answer() {
    let (endpoint, calls) = dynamodb(Endpoint::Hangs).await;
    let (elapsed, lines, logs) = init(&endpoint, &[]).await;
    // One attempt, no retries, and init goes on after the timeout.
    assert_eq!(calls.lock().unwrap().len(), 1, "{logs}");
    assert!(
        elapsed >= WARM_UP_TIMEOUT && elapsed < WARM_UP_TIMEOUT + Duration::from_secs(5),
        "init took {elapsed:?} with a warm-up bounded by {WARM_UP_TIMEOUT:?}\n{logs}"
    );
    let line = warm_up_line(&lines, &logs);
    assert_eq!(line["level"], "WARN", "{logs}");
    assert!(
        line["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no answer")),
        "{logs}"
    );
}

#[tokio::test]
async fn init_succeeds_when_the_endpoint_is_down() {
    // A port that was free a moment ago: nothing listens there.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let (elapsed, lines, logs) = init(&endpoint, &[]).await;
    assert!(elapsed < WARM_UP_TIMEOUT + Duration::from_secs(5), "{logs}");
    let line = warm_up_line(&lines, &logs);
    assert_eq!(line["level"], "WARN", "{logs}");
    assert!(
        line["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("could not reach")),
        "{logs}"
    );
}

#[tokio::test]
async fn with_the_warm_up_off_init_makes_no_network_call() {
    let (endpoint, calls) = dynamodb(Endpoint::Answers).await;
    let (_, lines, logs) = init(&endpoint, &[(WARM_UP_VAR, "off")]).await;
    assert!(calls.lock().unwrap().is_empty(), "{logs}");
    assert!(
        !lines.iter().any(|line| line["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("warm-up:"))),
        "{logs}"
    );
}
