//! `process_batch` over the in-memory store: outcomes by processor behaviour, the filter,
//! bounded concurrency, duplicates, store failures.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use storefirst_domain::{
    BatchReport, ChangeEvent, ChangeRecord, PendingRequest, ProcessError, Processor, RequestId,
    Status, StreamSettings, process_batch,
};
use storefirst_testkit::{MemoryItem, MemoryStore};

/// Decides by body: `ok`, `reject`, `down`, `panic`, `hang`, `slow`.
#[derive(Default)]
struct Scripted {
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Processor for Scripted {
    async fn process(&self, request: &PendingRequest) -> Result<Value, ProcessError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let result = match request.body.as_str() {
            "ok" => Ok(json!({ "echo": request.id.as_str() })),
            "reject" => Err(ProcessError::Rejected("bad order".into())),
            "down" => Err(ProcessError::Unavailable("kitchen offline".into())),
            "panic" => panic!("poisoned record"),
            "hang" => futures::future::pending().await,
            "slow" => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(json!(null))
            }
            other => unreachable!("unscripted body {other}"),
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

fn item(store: &MemoryStore, id: &str) -> MemoryItem {
    store.item(&RequestId::parse(id).unwrap())
}

fn record(seq: u32, event: ChangeEvent, id: &str, body: Option<&str>) -> ChangeRecord {
    ChangeRecord {
        sequence_number: seq.to_string(),
        event,
        id: RequestId::parse(id).unwrap(),
        body: body.map(str::to_owned),
        correlation: Default::default(),
    }
}

fn inserts(bodies: &[&str]) -> (Vec<ChangeRecord>, Vec<String>) {
    let ids: Vec<String> = (0..bodies.len()).map(|i| format!("r{i}")).collect();
    let records = bodies
        .iter()
        .zip(&ids)
        .enumerate()
        .map(|(i, (body, id))| record(i as u32 + 1, ChangeEvent::Insert, id, Some(body)))
        .collect();
    (records, ids)
}

/// The batch's start, epoch milliseconds: outcomes are dated from it, not the clock.
const NOW: i64 = 1_767_225_600_123;

fn settings() -> StreamSettings {
    StreamSettings {
        record_timeout: Duration::from_millis(200),
        ..StreamSettings::DEFAULT
    }
}

async fn run(
    store: &Arc<MemoryStore>,
    processor: &Arc<Scripted>,
    records: Vec<ChangeRecord>,
) -> BatchReport {
    process_batch(records, processor.clone(), store.clone(), &settings(), NOW).await
}

/// One check per processor behaviour: status, error fragment, and whether it is reported.
#[tokio::test]
async fn outcomes_by_behaviour() {
    let cases: &[(&str, Status, Option<&str>, bool)] = &[
        ("ok", Status::Succeeded, None, false),
        ("reject", Status::Failed, Some("bad order"), false),
        ("down", Status::Pending, Some("kitchen offline"), true),
        (
            "panic",
            Status::Pending,
            Some("the processor panicked: poisoned record"),
            true,
        ),
        (
            "hang",
            Status::Pending,
            Some("ran past the record timeout"),
            true,
        ),
    ];
    let bodies: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let (records, ids) = inserts(&bodies);
    let store = Arc::new(MemoryStore::default());
    let processor = Arc::new(Scripted::default());

    let report = run(&store, &processor, records).await;

    let expected_failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| c.3)
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    assert_eq!(report.failures, expected_failures);
    assert_eq!(
        (report.succeeded, report.rejected, report.transient),
        (1, 1, 3)
    );
    for ((body, status, error, _), id) in cases.iter().zip(&ids) {
        let item = item(&store, id);
        assert_eq!(item.status, *status, "{body}");
        assert_eq!(item.attempts, 1, "{body}");
        match error {
            Some(fragment) => assert!(
                item.error.as_deref().unwrap().contains(fragment),
                "{body}: {item:?}"
            ),
            None => assert_eq!(item.error, None, "{body}"),
        }
    }
    let succeeded = item(&store, &ids[0]);
    assert_eq!(succeeded.result, Some(json!({ "echo": "r0" })));
    // NOW is 123 ms into its second: the TTL counts from the next whole second.
    assert_eq!(succeeded.expires_at, Some(NOW / 1000 + 1 + 24 * 60 * 60));
}

#[tokio::test]
async fn only_inserts_reach_the_processor() {
    let store = Arc::new(MemoryStore::default());
    let processor = Arc::new(Scripted::default());
    let records = vec![
        record(1, ChangeEvent::Modify, "a", Some("ok")),
        record(2, ChangeEvent::Remove, "a", None),
    ];

    let report = run(&store, &processor, records).await;

    assert_eq!(report.skipped, 2);
    assert_eq!(processor.calls.load(Ordering::SeqCst), 0);
    assert_eq!(item(&store, "a").status, Status::Pending);
}

#[tokio::test]
async fn duplicate_delivery_changes_nothing() {
    let store = Arc::new(MemoryStore::default());
    let processor = Arc::new(Scripted::default());
    let batch = vec![
        record(1, ChangeEvent::Insert, "a", Some("ok")),
        record(2, ChangeEvent::Insert, "b", Some("reject")),
    ];
    run(&store, &processor, batch.clone()).await;
    let before = (item(&store, "a"), item(&store, "b"));

    let report = run(&store, &processor, batch).await;

    assert_eq!(report.duplicates, 2);
    assert!(report.failures.is_empty());
    assert_eq!((item(&store, "a"), item(&store, "b")), before);
}

#[tokio::test]
async fn a_transient_failure_on_a_finished_item_is_not_retried() {
    let store = Arc::new(MemoryStore::default());
    let processor = Arc::new(Scripted::default());
    run(
        &store,
        &processor,
        vec![record(1, ChangeEvent::Insert, "a", Some("ok"))],
    )
    .await;

    let report = run(
        &store,
        &processor,
        vec![record(1, ChangeEvent::Insert, "a", Some("down"))],
    )
    .await;

    assert!(report.failures.is_empty());
    assert_eq!(item(&store, "a").status, Status::Succeeded);
}

#[tokio::test]
async fn store_errors_are_reported_for_retry() {
    let store = Arc::new(MemoryStore::default());
    store.set_failing(true);
    let processor = Arc::new(Scripted::default());

    let report = run(
        &store,
        &processor,
        vec![record(7, ChangeEvent::Insert, "a", Some("ok"))],
    )
    .await;

    assert_eq!(report.failures, vec!["7".to_owned()]);
    assert_eq!(report.processor_runs, 1);
    assert_eq!(item(&store, "a").status, Status::Pending);
}

#[tokio::test]
async fn an_insert_without_a_body_is_rejected_without_running_the_processor() {
    let store = Arc::new(MemoryStore::default());
    let processor = Arc::new(Scripted::default());

    let report = run(
        &store,
        &processor,
        vec![record(1, ChangeEvent::Insert, "a", None)],
    )
    .await;

    assert_eq!(report.rejected, 1);
    assert_eq!(processor.calls.load(Ordering::SeqCst), 0);
    assert!(item(&store, "a").error.unwrap().contains("no request body"));
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let bodies = vec!["slow"; 24];
    let (records, _) = inserts(&bodies);
    let store = Arc::new(MemoryStore::default());
    let processor = Arc::new(Scripted::default());
    let settings = StreamSettings {
        concurrency: 4,
        ..settings()
    };

    let report = process_batch(records, processor.clone(), store.clone(), &settings, NOW).await;

    assert_eq!(report.succeeded, 24);
    let max = processor.max_in_flight.load(Ordering::SeqCst);
    assert!((2..=4).contains(&max), "max in flight {max}");
}
