//! Bodies API Gateway stores but the HTTP contract refuses end `failed` with the reason,
//! once, without reaching the processor and without a retry.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use serde_json::{Value, json};
use storefirst_domain::{
    PendingRequest, ProcessError, Processor, RequestId, Status, StreamSettings,
};
use storefirst_lambda::StreamHandler;
use storefirst_testkit::MemoryStore;

use crate::support::{event, failures};

/// Succeeds on every body it is given, and counts them.
#[derive(Default)]
struct Counting(AtomicUsize);

impl Processor for Counting {
    async fn process(&self, _: &PendingRequest) -> Result<Value, ProcessError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(json!({"ok": true}))
    }
}

/// An INSERT as DynamoDB Streams delivers it for an item the API's template wrote.
fn insert(seq: usize, id: &str, request: &str) -> Value {
    json!({
        "eventID": format!("e{seq}"),
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"id": {"S": id}},
            "NewImage": {
                "id": {"S": id},
                "request": {"S": request},
                "status": {"S": "pending"},
                "attempts": {"N": "0"}
            },
            "SequenceNumber": format!("{}", 100 + seq),
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"
    })
}

#[tokio::test]
async fn bodies_outside_the_contract_fail_with_the_reason_and_are_not_processed() {
    // What API Gateway may store, each with what the error must name.
    let cases = [
        (
            "duplicate",
            r#"{"restaurant":"Roma","restaurant":"Napoli"}"#,
            "duplicate member name \"restaurant\"",
        ),
        (
            "surrogate",
            r#"{"restaurant":"Roma\ud800"}"#,
            "lone surrogate escape (\\ud800)",
        ),
        ("number", r#"{"tip":1e400}"#, "the number 1e400"),
        (
            "between",
            r#"{"tip":1.7976931348623158e308}"#,
            "beyond the largest double",
        ),
        (
            "bom",
            "\u{feff}{\"restaurant\":\"Roma\"}",
            "byte order mark",
        ),
        ("nul", "{\"restaurant\":\"Roma\"}\u{0}", "U+0000"),
        ("trailing", r#"{"restaurant":"Roma"} x"#, "not valid JSON"),
    ];
    let good = r#"{"restaurant":"Roma","n":9007199254740993}"#;
    let mut records: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(seq, (id, body, _))| insert(seq, id, body))
        .collect();
    records.push(insert(cases.len(), "good", good));
    let processor = Arc::new(Counting::default());
    let store = Arc::new(MemoryStore::default());
    let handler = StreamHandler::new(processor.clone(), store.clone(), StreamSettings::DEFAULT);

    let response = handler.handle(event(json!({ "Records": records }))).await;

    assert_eq!(
        failures(&response),
        Vec::<String>::new(),
        "nothing is retried"
    );
    for (id, _, reason) in cases {
        let item = store.item(&RequestId::parse(id).unwrap());
        assert_eq!(
            (item.status, item.attempts),
            (Status::Failed, 1),
            "{id}: {item:?}"
        );
        let error = item.error.unwrap_or_default();
        assert!(
            error.contains("outside the HTTP contract") && error.contains(reason),
            "{id}: the error should name {reason:?}: {error}"
        );
    }
    let item = store.item(&RequestId::parse("good").unwrap());
    assert_eq!(item.status, Status::Succeeded, "{item:?}");
    assert_eq!(
        processor.0.load(Ordering::SeqCst),
        1,
        "only the body within the contract reaches the processor"
    );
}
