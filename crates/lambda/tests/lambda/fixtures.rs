//! DynamoDB stream events in AWS's documented shape drive the handler to the right
//! response. The store here is in memory: the moto tests prove the DynamoDB one.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use aws_lambda_events::event::dynamodb::Event;
use serde_json::json;
use storefirst_domain::{Outcome, RequestId, RequestStore, StoreError, StreamSettings, Written};
use storefirst_lambda::StreamHandler;

use crate::support::Kitchen;

/// Records each outcome; a second one for a finished request is a duplicate. Clones
/// share the record, so the test keeps one while the handler owns the other.
#[derive(Default, Clone)]
struct MemoryStore {
    outcomes: Arc<Mutex<HashMap<String, Vec<Outcome>>>>,
}

impl RequestStore for MemoryStore {
    async fn record_outcome(
        &self,
        id: &RequestId,
        outcome: &Outcome,
    ) -> Result<Written, StoreError> {
        let mut outcomes = self.outcomes.lock().unwrap();
        let history = outcomes.entry(id.to_string()).or_default();
        if history
            .iter()
            .any(|earlier| !matches!(earlier, Outcome::Transient { .. }))
        {
            return Ok(Written::AlreadyDone);
        }
        history.push(outcome.clone());
        Ok(Written::Applied)
    }
}

fn kind(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded { .. } => "succeeded",
        Outcome::Rejected { .. } => "rejected",
        Outcome::Transient { .. } => "transient",
    }
}

/// Runs `fixture` through the handler and compares the response's failures and the
/// outcome written for each request id.
async fn check(
    fixture: &str,
    expected_failures: &[&str],
    expected_outcomes: &[(&str, &str)],
) -> HashMap<String, Vec<Outcome>> {
    let path = format!(
        "{}/tests/lambda/fixtures/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let event: Event = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    let store = MemoryStore::default();
    let handler = StreamHandler::new(Kitchen, store.clone(), StreamSettings::DEFAULT);
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
    let outcomes = std::mem::take(&mut *store.outcomes.lock().unwrap());
    let mut got: Vec<(String, &str)> = outcomes
        .iter()
        .flat_map(|(id, history)| history.iter().map(move |o| (id.clone(), kind(o))))
        .collect();
    got.sort();
    let mut want: Vec<(String, &str)> = expected_outcomes
        .iter()
        .map(|(id, k)| (id.to_string(), *k))
        .collect();
    want.sort();
    assert_eq!(got, want, "{fixture}: outcomes written");
    outcomes
}

#[tokio::test]
async fn insert() {
    let outcomes = check("insert.json", &[], &[("order-1", "succeeded")]).await;
    let Outcome::Succeeded { result, .. } = &outcomes["order-1"][0] else {
        unreachable!("checked above")
    };
    assert_eq!(result, &json!({ "total_cents": 1900, "items": 2 }));
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
    let ids: Vec<(String, &str)> = (1..=100)
        .map(|i| {
            let kind = if transient.contains(&i) {
                "transient"
            } else if rejected.contains(&i) {
                "rejected"
            } else {
                "succeeded"
            };
            (format!("order-{i:03}"), kind)
        })
        .collect();
    let expected: Vec<(&str, &str)> = ids.iter().map(|(id, kind)| (id.as_str(), *kind)).collect();
    check("batch-100.json", &expected_failures, &expected).await;
}

#[tokio::test]
async fn unusual_attribute_types() {
    // odd-1 carries every attribute type; odd-2's request is a number (nothing to process,
    // so it fails for good); odd-3 has quotes, backslashes and unicode. The rest cannot be
    // decoded (numeric id, invalid id, unknown event, no sequence number, an INSERT with the
    // key alone): dropped and logged, never retried, and the batch still succeeds.
    let outcomes = check(
        "unusual-types.json",
        &[],
        &[
            ("odd-1", "succeeded"),
            ("odd-2", "rejected"),
            ("odd-3", "succeeded"),
        ],
    )
    .await;
    let Outcome::Rejected { error } = &outcomes["odd-2"][0] else {
        unreachable!("checked above")
    };
    assert!(error.contains("no request body"), "{error}");
}
