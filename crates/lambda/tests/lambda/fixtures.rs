//! DynamoDB stream events in AWS's documented shape decode to the right change records and
//! drive the handler to the right response. The store here is in memory: the moto tests
//! prove the DynamoDB one.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use serde_json::{Value, json};
use storefirst_domain::{ChangeEvent, ChangeRecord, RequestId, Status, StreamSettings};
use storefirst_lambda::{DecodeError, StreamHandler, decode};
use storefirst_testkit::{MemoryItem, MemoryStore};

use crate::support::Kitchen;

fn text(fixture: &str) -> String {
    let path = format!(
        "{}/tests/lambda/fixtures/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn read(fixture: &str) -> Event {
    serde_json::from_str(&text(fixture)).unwrap_or_else(|e| panic!("{fixture}: {e}"))
}

/// Runs `fixture` through the handler and compares the response with the sequence
/// numbers to retry, and each request's item with its expected status and attempts (a
/// request not listed must have no outcome).
async fn check(
    fixture: &str,
    expected_failures: &[&str],
    expected_items: &[(&str, Status, u32)],
) -> Arc<MemoryStore> {
    let event = read(fixture);
    let ids: Vec<RequestId> = event
        .records
        .iter()
        .filter_map(|record| record.change.keys.get("id"))
        .filter_map(|id| serde_dynamo::from_attribute_value::<_, String>(id.clone()).ok())
        .filter_map(|id| RequestId::parse(&id).ok())
        .collect();
    let store = Arc::new(MemoryStore::default());
    let handler = StreamHandler::new(Arc::new(Kitchen), store.clone(), StreamSettings::DEFAULT);
    let response = handler.handle(event).await;
    // What Lambda reads: the JSON, not the Rust type.
    let failures: Vec<_> = expected_failures
        .iter()
        .map(|seq| json!({ "itemIdentifier": seq }))
        .collect();
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({ "batchItemFailures": failures }),
        "{fixture}: the response"
    );
    for id in ids {
        let item = store.item(&id);
        let got = (item.status, item.attempts);
        let want = expected_items
            .iter()
            .find(|(expected, _, _)| *expected == id.as_str())
            .map_or((Status::Pending, 0), |(_, status, attempts)| {
                (*status, *attempts)
            });
        assert_eq!(got, want, "{fixture}: {id}");
    }
    store
}

fn item(store: &MemoryStore, id: &str) -> MemoryItem {
    store.item(&RequestId::parse(id).unwrap())
}

#[tokio::test]
async fn insert() {
    let store = check("insert.json", &[], &[("order-1", Status::Succeeded, 1)]).await;
    let result: Option<Value> = item(&store, "order-1").result;
    assert_eq!(result, Some(json!({ "total_cents": 1900, "items": 2 })));
}

#[tokio::test]
async fn modify_and_remove_are_not_processed() {
    for fixture in ["modify.json", "remove.json", "ttl-remove.json"] {
        check(fixture, &[], &[]).await;
    }
}

/// Why `decode` drops a record, by kind.
fn reason(error: &DecodeError) -> &'static str {
    match error {
        DecodeError::NoSequenceNumber => "no sequence number",
        DecodeError::UnknownEvent(_) => "unknown event",
        DecodeError::NoId => "no id",
        DecodeError::InvalidId(_) => "invalid id",
        DecodeError::NoRequest => "no request",
    }
}

/// What the handler runs first on each record: `decode` finds the sequence number, the
/// event, the id and the request body, or the reason to drop the record.
#[test]
fn every_fixture_record_decodes_to_its_change_record_or_its_reason() {
    let decoded = |fixture: &str| -> Vec<Result<ChangeRecord, &str>> {
        let records = read(fixture).records.into_iter();
        records.map(|r| decode(r).map_err(|e| reason(&e))).collect()
    };
    // The `request` string of each record's new image, read as plain JSON.
    let bodies = |fixture: &str| -> Vec<Option<String>> {
        let json: Value = serde_json::from_str(&text(fixture)).unwrap();
        let records = json["Records"].as_array().unwrap().iter();
        records
            .map(|r| {
                r["dynamodb"]["NewImage"]["request"]["S"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    };
    let record = |seq: &str, event, id: &str, body: &Option<String>| {
        Ok(ChangeRecord {
            sequence_number: seq.to_owned(),
            event,
            id: RequestId::parse(id).unwrap(),
            body: body.clone(),
            correlation: Default::default(),
        })
    };
    let (insert, modify) = (bodies("insert.json"), bodies("modify.json"));
    assert!(insert[0].is_some() && modify[0].is_some());
    assert_eq!(
        decoded("insert.json"),
        [record(
            "100000000000000000001",
            ChangeEvent::Insert,
            "order-1",
            &insert[0]
        )]
    );
    assert_eq!(
        decoded("modify.json"),
        [record(
            "100000000000000000002",
            ChangeEvent::Modify,
            "order-1",
            &modify[0]
        )]
    );
    assert_eq!(
        decoded("remove.json"),
        [record(
            "100000000000000000003",
            ChangeEvent::Remove,
            "order-1",
            &None
        )]
    );
    // A deletion by TTL (userIdentity dynamodb.amazonaws.com) is a REMOVE like any other.
    assert_eq!(
        decoded("ttl-remove.json"),
        [record(
            "100000000000000000004",
            ChangeEvent::Remove,
            "order-1",
            &None
        )]
    );
    let odd = bodies("unusual-types.json");
    assert_eq!(
        decoded("unusual-types.json"),
        [
            record(
                "300000000000000000001",
                ChangeEvent::Insert,
                "odd-1",
                &odd[0]
            ),
            // A number, not a string: no body, so the item fails for good.
            record("300000000000000000002", ChangeEvent::Insert, "odd-2", &None),
            record(
                "300000000000000000003",
                ChangeEvent::Insert,
                "odd-3",
                &odd[2]
            ),
            Err("no id"),
            Err("invalid id"),
            Err("unknown event"),
            Err("no sequence number"),
            Err("no request"),
        ]
    );
    assert!(odd[2].as_ref().is_some_and(|body| body.contains('🍕')));
}

#[tokio::test]
async fn batch_of_100() {
    // Generated: every 25th order is for the offline kitchen (transient), every tenth from
    // the third on has an unknown dish (rejected), the rest succeed.
    let transient = [25, 50, 75, 100];
    let rejected: Vec<u32> = (0..10).map(|tens| tens * 10 + 3).collect();
    let sequence = |i: u32| format!("2{i:020}");
    let expected_failures: Vec<String> = transient.iter().map(|&i| sequence(i)).collect();
    let expected_failures: Vec<&str> = expected_failures.iter().map(String::as_str).collect();
    let ids: Vec<(String, Status)> = (1..=100)
        .map(|i| {
            let status = if transient.contains(&i) {
                Status::Pending
            } else if rejected.contains(&i) {
                Status::Failed
            } else {
                Status::Succeeded
            };
            (format!("order-{i:03}"), status)
        })
        .collect();
    let expected: Vec<(&str, Status, u32)> = ids
        .iter()
        .map(|(id, status)| (id.as_str(), *status, 1))
        .collect();
    check("batch-100.json", &expected_failures, &expected).await;
}

#[tokio::test]
async fn unusual_attribute_types() {
    // odd-1 carries every attribute type; odd-2's request is a number (nothing to process,
    // so it fails for good); odd-3 has quotes, backslashes and unicode. The rest cannot be
    // decoded (numeric id, invalid id, unknown event, no sequence number, an INSERT with the
    // key alone): dropped and logged, never retried, and the batch still succeeds.
    let store = check(
        "unusual-types.json",
        &[],
        &[
            ("odd-1", Status::Succeeded, 1),
            ("odd-2", Status::Failed, 1),
            ("odd-3", Status::Succeeded, 1),
        ],
    )
    .await;
    let error = item(&store, "odd-2").error.unwrap_or_default();
    assert!(error.contains("no request body"), "{error}");
}

#[tokio::test]
async fn a_batch_measures_its_outcomes() {
    // batch-100: 86 succeed, 10 are rejected, 4 go back for a retry (see batch_of_100).
    let event = read("batch-100.json");
    let created = 1_767_225_600_000_i64;
    let handler = StreamHandler::new(
        Arc::new(Kitchen),
        Arc::new(MemoryStore::default()),
        StreamSettings::DEFAULT,
    );
    let before = storefirst_domain::now_millis();
    let (_, metrics) = handler.handle_measured(event).await;
    let after = storefirst_domain::now_millis();
    assert_eq!(
        (
            metrics.succeeded,
            metrics.rejected,
            metrics.retried,
            metrics.undecodable
        ),
        (86, 10, 4, 0)
    );
    assert_eq!(metrics.latencies.len(), 96, "one per outcome written");
    for latency in &metrics.latencies {
        assert!(
            (before - created..=after - created).contains(latency),
            "{latency}"
        );
    }
}
