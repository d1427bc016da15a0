//! `cargo xtask logs` against moto server: the stack's log groups found from its resources,
//! the query run over both through StartQuery and GetQueryResults, the lines oldest first
//! with where each came from. moto runs `fields`, `sort` and `limit` but ignores `filter`
//! (its Logs Insights parser knows no other command), so which lines the filter keeps is
//! checked on the query's text (the unit tests of `logs::query`), not here.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use serde_json::json;
use storefirst_deploy::{
    Console, Error,
    logs::{LogSearch, Source, log_groups, request_logs},
};
use storefirst_infra::stack::{api::ACCESS_LOGS, processor::PROCESSOR_LOGS};

use crate::support::{aws, moto_url, sdk_config, unique};

/// A stack with the app stack's two log groups, by their logical ids.
async fn stack_with_log_groups(resources: serde_json::Value) -> String {
    let stack = unique("logs");
    aws_sdk_cloudformation::Client::new(&sdk_config(&moto_url()).await)
        .create_stack()
        .stack_name(&stack)
        .template_body(json!({ "Resources": resources }).to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    stack
}

async fn put(group: &str, events: &[(i64, serde_json::Value)]) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk_config(&moto_url()).await);
    let stream = unique("stream");
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(&stream)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let mut put = logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(&stream);
    for (timestamp, message) in events {
        put = put.log_events(
            InputLogEvent::builder()
                .timestamp(*timestamp)
                .message(message.to_string())
                .build()
                .expect("timestamp and message"),
        );
    }
    put.send().await.unwrap_or_else(|e| panic!("{e:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_query_runs_over_the_stacks_log_groups_and_the_lines_come_oldest_first() {
    let aws = aws(&moto_url()).await;
    let stack = stack_with_log_groups(json!({
        ACCESS_LOGS: {"Type": "AWS::Logs::LogGroup"},
        PROCESSOR_LOGS: {"Type": "AWS::Logs::LogGroup"},
    }))
    .await;
    let (access_logs, processor_logs) = log_groups(&aws, &stack)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(access_logs, processor_logs);

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let start = now - 60_000;
    let span = json!({
        "name": "record",
        "id": "BQGojGVSIAMF3xw",
        "request_id": "BQGojGVSIAMF3xw=",
        "trace_id": "1-6749a1b2-0123456789abcdef01234567",
    });
    // The POST, then a GET of its outcome; the processor's lines fall between them.
    put(
        &access_logs,
        &[
            (
                start,
                json!({"extendedRequestId": "BQGojGVSIAMF3xw=", "method": "POST", "status": "202"}),
            ),
            (
                start + 3_000,
                json!({
                    "extendedRequestId": "BQGoj2VSIAMF4ab=",
                    "method": "GET",
                    "path": "/prod/requests/BQGojGVSIAMF3xw",
                    "status": "200",
                }),
            ),
        ],
    )
    .await;
    put(
        &processor_logs,
        &[
            (
                start + 1_000,
                json!({"level": "INFO", "fields": {"message": "pricing the order"}, "span": span}),
            ),
            (
                start + 2_000,
                json!({"level": "INFO", "fields": {"message": "rejected"}, "span": span}),
            ),
        ],
    )
    .await;

    let (console, captured) = Console::capture();
    let search = LogSearch {
        id: "BQGojGVSIAMF3xw".to_owned(),
        window: std::time::Duration::from_secs(3600),
    };
    let found = request_logs(&aws, &stack, &search, &console)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", captured.text()));
    let printed = captured.text();
    assert!(
        printed.contains(&found.query)
            && printed.contains(&access_logs)
            && printed.contains(&processor_logs),
        "the query and the groups it runs over are printed: {printed}"
    );
    let seen: Vec<(Source, String)> = found
        .lines
        .iter()
        .map(|line| {
            let message: serde_json::Value =
                serde_json::from_str(&line.message).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            let what = message["method"]
                .as_str()
                .or(message["fields"]["message"].as_str())
                .unwrap_or_default()
                .to_owned();
            (line.source, what)
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Source::Api, "POST".to_owned()),
            (Source::Processor, "pricing the order".to_owned()),
            (Source::Processor, "rejected".to_owned()),
            (Source::Api, "GET".to_owned()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_stack_says_what_to_check() {
    let aws = aws(&moto_url()).await;
    let stack = unique("no-such-stack");
    let error = log_groups(&aws, &stack).await.expect_err("no such stack");
    assert!(
        matches!(&error, Error::NoStack(name) if *name == stack),
        "{error}"
    );
    assert!(error.to_string().contains("--region"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_without_the_log_groups_says_to_deploy() {
    let aws = aws(&moto_url()).await;
    let stack = stack_with_log_groups(json!({
        ACCESS_LOGS: {"Type": "AWS::Logs::LogGroup"},
    }))
    .await;
    let (console, _captured) = Console::capture();
    let search = LogSearch {
        id: "order-1".to_owned(),
        window: std::time::Duration::from_secs(3600),
    };
    let error = request_logs(&aws, &stack, &search, &console)
        .await
        .expect_err("no function log group");
    assert!(
        matches!(&error, Error::NoLogGroup { logical_id, .. } if *logical_id == PROCESSOR_LOGS),
        "{error}"
    );
    assert!(error.to_string().contains("cargo xtask deploy"), "{error}");
}
