//! The API's ids on the item reach every log line the function writes about the record,
//! the processor's own included: what `cargo xtask logs` queries for.
//!
//! A test binary of its own: a thread's `set_default` subscriber can miss events whose
//! callsites other tests' threads register at the same time (tracing caches their interest
//! globally), which made this test fail now and then beside the others.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use aws_lambda_events::event::dynamodb::Event;
use serde_json::{Value, json};
use storefirst_domain::{
    Correlation, PendingRequest, ProcessError, Processor, RequestId, StreamSettings,
};
use storefirst_lambda::{StreamHandler, decode, item, logging};
use storefirst_testkit::MemoryStore;
use tracing_subscriber::EnvFilter;

const REQUEST_ID: &str = "BQGojGVSIAMF3xw=";
const TRACE_ID: &str = "1-6749a1b2-0123456789abcdef01234567";

/// An INSERT as the POST template writes it, with the API's ids.
fn event(ids: &[(&str, &str)]) -> Event {
    let mut image = json!({
        "id": {"S": "BQGojGVSIAMF3xw"},
        "request": {"S": r#"{"restaurant":"Roma","items":[{"dish":"espresso","quantity":1}]}"#},
        "status": {"S": "pending"},
        "attempts": {"N": "0"},
        "created_at": {"N": "1767225600000"},
        "updated_at": {"N": "1767225600000"},
    });
    for (attribute, value) in ids {
        image[*attribute] = json!({ "S": value });
    }
    serde_json::from_value(json!({
        "Records": [{
            "eventID": "e1",
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "Keys": {"id": {"S": "BQGojGVSIAMF3xw"}},
                "NewImage": image,
                "SequenceNumber": "1",
                "SizeBytes": 200,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
        }]
    }))
    .expect("a DynamoDB stream event")
}

#[test]
fn decode_reads_the_ids_and_does_without_them() {
    let record = |ids| decode(event(ids).records.remove(0)).expect("decodes");
    assert_eq!(
        record(&[(item::REQUEST_ID, REQUEST_ID), (item::TRACE_ID, TRACE_ID)]).correlation,
        Correlation {
            request_id: Some(REQUEST_ID.to_owned()),
            trace_id: Some(TRACE_ID.to_owned()),
        }
    );
    // Stored before the ids were recorded, or by a stage without tracing.
    assert_eq!(record(&[]).correlation, Correlation::default());
    assert_eq!(
        record(&[(item::REQUEST_ID, REQUEST_ID), (item::TRACE_ID, "")]).correlation,
        Correlation {
            request_id: Some(REQUEST_ID.to_owned()),
            trace_id: None,
        }
    );
}

/// Logs a line of its own, as a user's processor may.
struct Chatty;

impl Processor for Chatty {
    async fn process(&self, request: &PendingRequest) -> Result<Value, ProcessError> {
        tracing::info!("pricing the order");
        Err(ProcessError::Rejected(format!(
            "{} is closed today",
            request.id
        )))
    }
}

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("no panics while writing").write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime: the processor's task runs on this thread, under the subscriber.
#[tokio::test]
async fn every_line_about_the_record_carries_the_api_ids() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = logging::json_lines(EnvFilter::new("debug"), move || writer.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    let handler = StreamHandler::new(
        Arc::new(Chatty),
        Arc::new(MemoryStore::default()),
        StreamSettings::DEFAULT,
    );
    handler
        .handle(event(&[
            (item::REQUEST_ID, REQUEST_ID),
            (item::TRACE_ID, TRACE_ID),
        ]))
        .await;
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let message = |event: &Value| {
        event["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let about_the_record: Vec<&Value> = events
        .iter()
        .filter(|event| message(event) != "batch processed")
        .collect();
    let messages: Vec<String> = about_the_record.iter().map(|e| message(e)).collect();
    assert!(
        messages.contains(&"pricing the order".to_owned())
            && messages.contains(&"rejected".to_owned()),
        "the processor's line and the outcome's line: {text}"
    );
    let id = RequestId::parse("BQGojGVSIAMF3xw").unwrap();
    for event in about_the_record {
        assert_eq!(
            event["span"],
            json!({
                "name": "record",
                "id": id.as_str(),
                "request_id": REQUEST_ID,
                "trace_id": TRACE_ID,
            }),
            "{event}"
        );
    }
}
