//! DynamoDB stream events in AWS's documented shape drive the handler to the right
//! response. The store here is in memory: the moto tests prove the DynamoDB one.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use serde_json::{Value, json};
use storefirst_domain::{RequestId, Status, StreamSettings};
use storefirst_lambda::StreamHandler;
use storefirst_testkit::{MemoryItem, MemoryStore};

use crate::support::Kitchen;

/// Runs `fixture` through the handler and compares the response with the sequence
/// numbers to retry, and each request's item with its expected status and attempts (a
/// request not listed must have no outcome).
async fn check(
    fixture: &str,
    expected_failures: &[&str],
    expected_items: &[(&str, Status, u32)],
) -> Arc<MemoryStore> {
    let path = format!(
        "{}/tests/lambda/fixtures/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let event: Event = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{fixture}: {e}"));
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

#[test]
fn ttl_remove_names_the_dynamodb_service() {
    let text = include_str!("fixtures/ttl-remove.json");
    let event: Event = serde_json::from_str(text).unwrap();
    let identity = event.records[0]
        .user_identity
        .as_ref()
        .expect("userIdentity");
    assert_eq!(
        (identity.type_.as_str(), identity.principal_id.as_str()),
        ("Service", "dynamodb.amazonaws.com")
    );
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
