//! The DynamoDB backend against moto server, and the Lambda mode: the Runtime API with a
//! misbehaving bootstrap, the poller's checkpoint across a restart, redrive of a table, and
//! the contract suite through the deployable zip.

use std::{collections::BTreeSet, path::Path, sync::Arc, time::Duration};

use aws_sdk_dynamodb::{error::DisplayErrorContext, types::AttributeValue};
use serde_json::json;
use storefirst_contract::{Target, render};
use storefirst_domain::{RequestBody, RequestId, StreamSettings};
use storefirst_dynamodb::{DynamoRequests, DynamoStuck, DynamoTable};
use storefirst_harness::{lambda_mode, moto_url, requests_table, sdk_config, unique};
use storefirst_lambda_env::{Bootstrap, FunctionConfig, Identity, LambdaFunction};
use storefirst_pipeline::{
    Config, Runtime,
    ports::{InProcess, Ingest},
    redrive,
};

use crate::{
    API_KEY, eventually,
    inprocess::{Scripted, config},
    spawn_local_with,
};

async fn launch(
    table: &DynamoTable,
    db: &Path,
    processor: &Scripted,
    tune: impl FnOnce(&mut Config),
) -> Runtime<DynamoRequests> {
    let invoker = InProcess {
        processor: Arc::new(processor.clone()),
        store: Arc::new(table.outcomes()),
    };
    let stream = table.stream(db).unwrap();
    Runtime::launch(&config(db, tune), table.requests(), stream, invoker)
        .await
        .unwrap()
}

async fn put(requests: &DynamoRequests, id: &str, behaviour: &str) {
    let body = json!({ "behaviour": behaviour }).to_string();
    requests
        .accept(
            RequestId::parse(id).unwrap(),
            RequestBody::parse(body.as_bytes(), 1024).unwrap(),
            None,
        )
        .await
        .unwrap();
}

async fn status(requests: &DynamoRequests, id: &str) -> (String, i64) {
    let item = requests
        .get(RequestId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{id} is stored"));
    (item.status, item.attempts)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_checkpoint_survives_a_restart() {
    let (table, dir) = (requests_table("local").await, tempfile::tempdir().unwrap());
    let db = dir.path().join("ledger.db");
    let processor = Scripted::default();
    let requests = table.requests();
    let runtime = launch(&table, &db, &processor, |_| {}).await;
    let before: Vec<String> = (0..4).map(|i| format!("before-{i}")).collect();
    for id in &before {
        put(&requests, id, "ok").await;
    }
    eventually(
        Duration::from_secs(20),
        "the first requests succeed",
        || async {
            processor.calls("before-3") == 1 && status(&requests, "before-3").await.0 == "succeeded"
        },
    )
    .await;
    runtime.shutdown().await;

    // Accepted while nothing reads the stream: the next run must find them.
    let after: Vec<String> = (0..4).map(|i| format!("after-{i}")).collect();
    for id in &after {
        put(&requests, id, "ok").await;
    }
    let checkpoint = table.stream(&db).unwrap().ledger().current().await.unwrap();
    assert!(
        checkpoint.shard.is_some() && checkpoint.after.is_some(),
        "the checkpoint is persisted: {checkpoint}"
    );
    let runtime = launch(&table, &db, &processor, |_| {}).await;
    eventually(
        Duration::from_secs(20),
        "the later requests succeed",
        || async { status(&requests, "after-3").await.0 == "succeeded" },
    )
    .await;
    runtime.shutdown().await;
    for id in before.iter().chain(&after) {
        assert_eq!(
            (status(&requests, id).await, processor.calls(id)),
            (("succeeded".to_owned(), 1), 1),
            "{id}: processed once, neither lost nor replayed after the restart"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redrive_of_a_dynamodb_table() {
    let (table, dir) = (requests_table("local").await, tempfile::tempdir().unwrap());
    let db = dir.path().join("ledger.db");
    let processor = Scripted::default();
    let requests = table.requests();
    let runtime = launch(&table, &db, &processor, |c| {
        c.stream.maximum_retry_attempts = 1;
    })
    .await;
    put(&requests, "poison", "panic").await;
    put(&requests, "fine", "ok").await;
    let ledger = table.ledger(&db).unwrap();
    eventually(
        Duration::from_secs(20),
        "the poison is dead-lettered",
        || async { ledger.dead_letters().await.unwrap().len() == 1 },
    )
    .await;
    runtime.shutdown().await;
    assert_eq!(status(&requests, "poison").await, ("pending".into(), 2));
    // Never attempted: one older than the maximum record age (the mapping gave up on
    // it), one recent (its record is still coming).
    put(&requests, "abandoned", "ok").await;
    put(&requests, "recent", "ok").await;
    aws_sdk_dynamodb::Client::new(&sdk_config(&moto_url()).await)
        .update_item()
        .table_name(&table.name)
        .key("id", AttributeValue::S("abandoned".into()))
        .update_expression("SET created_at = :old")
        .expression_attribute_values(":old", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();

    // Retries may have run `fine` again (at-least-once); redrive must not.
    let fine_calls = processor.calls("fine");
    processor.fix();
    let stuck = DynamoStuck {
        requests: requests.clone(),
        outcomes: Arc::new(table.outcomes()),
        ledger: Some(ledger.clone()),
        maximum_record_age: StreamSettings::DEFAULT.maximum_record_age,
    };
    let report = redrive(
        &stuck,
        Arc::new(processor.clone()),
        &StreamSettings::DEFAULT,
    )
    .await
    .unwrap();
    assert_eq!(
        (report.found, report.succeeded, report.still_failing),
        (2, 2, 0)
    );
    assert_eq!(status(&requests, "poison").await, ("succeeded".into(), 3));
    assert_eq!(
        status(&requests, "abandoned").await,
        ("succeeded".into(), 1)
    );
    assert_eq!(status(&requests, "recent").await, ("pending".into(), 0));
    assert_eq!(
        processor.calls("fine"),
        fine_calls,
        "redrive leaves done items alone"
    );
    assert!(ledger.dead_letters().await.unwrap().is_empty());
}

/// A function whose every start fails at init (the execution environment's own tests,
/// `crates/lambda-env/tests`, cover timeouts, crashes and restarts one by one).
fn failing_at_init(timeout: Duration) -> LambdaFunction {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/failing-bootstrap.sh");
    LambdaFunction::new(FunctionConfig {
        bootstrap: Bootstrap {
            program: "/bin/sh".into(),
            args: vec![script.into_os_string()],
            how: "a bootstrap that fails at init".into(),
        },
        identity: Identity {
            name: "stream-processor".into(),
            region: "us-east-1".into(),
            memory_mb: 128,
        },
        timeout,
        env: vec![("PATH".into(), std::env::var("PATH").unwrap())],
    })
}

/// A function that keeps crashing fails its batch: retried with a new process each time,
/// then dead-lettered, and the stream moves on.
#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_function_is_retried_then_dead_lettered() {
    let (table, dir) = (requests_table("local").await, tempfile::tempdir().unwrap());
    let db = dir.path().join("ledger.db");
    let function = Arc::new(failing_at_init(Duration::from_secs(2)));
    let invoker = storefirst_local::lambda::LambdaInvoker {
        function: function.clone(),
    };
    let config = config(&db, |c| c.stream.maximum_retry_attempts = 2);
    let runtime = Runtime::launch(
        &config,
        table.requests(),
        table.stream(&db).unwrap(),
        invoker,
    )
    .await
    .unwrap();
    put(&table.requests(), "doomed", "ok").await;
    let ledger = table.ledger(&db).unwrap();
    eventually(
        Duration::from_secs(30),
        "the batch is dead-lettered",
        || async { ledger.dead_letters().await.unwrap().len() == 1 },
    )
    .await;
    runtime.shutdown().await;
    let letter = &ledger.dead_letters().await.unwrap()[0];
    assert_eq!(letter.request_ids, ["doomed"]);
    assert_eq!(
        function.starts(),
        3,
        "one start per delivery: the first and 2 retries"
    );
}

/// The contract suite through `storefirst-local --lambda` with the deployable zip itself:
/// its arm64 bootstrap under qemu-user (natively on an arm64 machine), never a stand-in.
#[tokio::test(flavor = "multi_thread")]
async fn the_contract_holds_through_the_lambda_zip() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    let table = unique("contract");
    let (args, envs) = lambda_mode(&table);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let local = spawn_local_with(&db, "warn", std::process::Stdio::inherit(), &args, &envs);
    let _backend = local.next_line();
    let how = local.next_line();
    println!("{how}");
    let expected = if cfg!(target_arch = "aarch64") {
        "Lambda function: the zip's bootstrap, natively"
    } else {
        "Lambda function: the zip's arm64 bootstrap under qemu-aarch64-static"
    };
    assert!(how.contains(expected), "expected `{expected}`, got `{how}`");

    let target = Target::new(&local.url, API_KEY);
    let reports = target.run().await;
    let report = render(&reports);
    println!("{report}");
    assert!(
        reports.iter().all(|r| r.result.is_ok()),
        "contract failures through {how}:\n{report}"
    );
    // Nothing refused was stored: the table holds exactly the ids that got a 202.
    assert_eq!(stored_ids(&table).await, target.accepted_ids());
}

/// Every id in `table` on moto server, read with a consistent Scan.
async fn stored_ids(table: &str) -> BTreeSet<String> {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(&moto_url()).await);
    let (mut ids, mut start) = (BTreeSet::new(), None);
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Scan {table} on moto: {}", DisplayErrorContext(&e)));
        for item in page.items.unwrap_or_default() {
            let id = item.get("id").and_then(|id| id.as_s().ok());
            ids.insert(
                id.unwrap_or_else(|| panic!("an item without a string id: {item:?}"))
                    .clone(),
            );
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return ids;
        }
    }
}
