//! The dashboard graphs what it should, by the names the services publish: the stream
//! function's own metrics exactly as its EMF lines name them, API Gateway's by the REST
//! API's name and stage, Lambda's by the function, SQS's by the queue.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use storefirst_domain::metrics;
use storefirst_lambda::metrics::BatchMetrics;

use crate::support::{resource, resources_of};

/// The body with its `Fn::Sub` variables checked and left as `${...}` text.
fn body() -> Value {
    let dashboard = resource("Dashboard");
    assert_eq!(dashboard["Type"], "AWS::CloudWatch::Dashboard");
    let sub = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_array()
        .expect("the body is an Fn::Sub with variables");
    assert_eq!(
        sub[1],
        json!({
            "Function": { "Ref": "StreamProcessor" },
            "Queue": { "Fn::GetAtt": ["DeadLetterQueue", "QueueName"] },
            "Notifier": { "Ref": "NotifierFunction" },
            "WebhookQueue": { "Fn::GetAtt": ["WebhookQueue", "QueueName"] },
            "WebhookDeadLetters": { "Fn::GetAtt": ["WebhookDeadLetters", "QueueName"] },
        })
    );
    serde_json::from_str(sub[0].as_str().unwrap()).expect("the body is JSON")
}

/// A graphed metric: namespace, name, and its dimensions.
type Graphed = (String, String, Vec<(String, String)>);

fn graphed(body: &Value) -> Vec<Graphed> {
    let mut lines = Vec::new();
    for widget in body["widgets"].as_array().unwrap() {
        for line in widget["properties"]["metrics"].as_array().unwrap() {
            let parts = line.as_array().unwrap();
            // Namespace, name, then dimension pairs: every part a string.
            let text: Vec<&str> = parts.iter().map(|part| part.as_str().unwrap()).collect();
            assert_eq!(text.len() % 2, 0, "{line}");
            let dimensions = text[2..]
                .chunks(2)
                .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
                .collect();
            lines.push((text[0].to_owned(), text[1].to_owned(), dimensions));
        }
    }
    lines
}

#[test]
fn the_dashboard_names_each_metric_as_its_service_publishes_it() {
    let body = body();
    let api_name = resource("Api")["Properties"]["Name"]["Fn::Sub"].clone();
    let stage = resources_of("AWS::ApiGateway::Stage")[0].1["Properties"]["StageName"].clone();
    let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let mut names = BTreeSet::new();
    for (namespace, name, dimensions) in graphed(&body) {
        let expected = match namespace.as_str() {
            "AWS/ApiGateway" => pairs(&[
                ("ApiName", api_name.as_str().unwrap()),
                ("Stage", stage.as_str().unwrap()),
            ]),
            "AWS/Lambda" if dimensions == pairs(&[("FunctionName", "${Notifier}")]) => {
                names.insert(format!("notifier {name}"));
                continue;
            }
            "AWS/Lambda" => pairs(&[("FunctionName", "${Function}")]),
            "AWS/SQS" => {
                let queue = &dimensions[0].1;
                assert!(
                    ["${Queue}", "${WebhookQueue}", "${WebhookDeadLetters}"]
                        .contains(&queue.as_str()),
                    "{name} of {queue}"
                );
                names.insert(format!("{queue} {name}"));
                pairs(&[("QueueName", queue.as_str())])
            }
            ns if ns == metrics::NAMESPACE => pairs(&[(metrics::DIMENSION, "${Function}")]),
            other => panic!("{name} in an unexpected namespace {other}"),
        };
        assert_eq!(dimensions, expected, "{namespace} {name}");
        names.insert(format!("{namespace} {name}"));
    }
    let wanted = [
        "AWS/ApiGateway Count",
        "AWS/ApiGateway 4XXError",
        "AWS/ApiGateway 5XXError",
        "AWS/ApiGateway Latency",
        "AWS/Lambda Errors",
        "AWS/Lambda Duration",
        "AWS/Lambda Throttles",
        "AWS/Lambda IteratorAge",
        "${Queue} ApproximateNumberOfMessagesVisible",
        "${WebhookQueue} ApproximateNumberOfMessagesVisible",
        "${WebhookQueue} ApproximateAgeOfOldestMessage",
        "${WebhookDeadLetters} ApproximateNumberOfMessagesVisible",
        "notifier Errors",
        "notifier IteratorAge",
    ];
    for name in wanted {
        assert!(
            names.contains(name),
            "the dashboard graphs {name}: {names:?}"
        );
    }

    // What the function writes, read back from its own EMF line: each metric is graphed.
    let line = BatchMetrics {
        latencies: vec![1],
        ..BatchMetrics::default()
    }
    .emf("f", 0)
    .remove(0);
    let emf: Value = serde_json::from_str(&line).unwrap();
    let directive = &emf["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Dimensions"], json!([[metrics::DIMENSION]]));
    for metric in directive["Metrics"].as_array().unwrap() {
        let name = format!(
            "{} {}",
            directive["Namespace"].as_str().unwrap(),
            metric["Name"].as_str().unwrap()
        );
        assert!(
            names.contains(&name),
            "the dashboard graphs {name}: {names:?}"
        );
    }
}

#[test]
fn every_widget_reads_the_stacks_region_by_a_stat() {
    for widget in body()["widgets"].as_array().unwrap() {
        let properties = &widget["properties"];
        assert_eq!(properties["region"], "${AWS::Region}", "{widget}");
        assert!(properties["stat"].is_string(), "{widget}");
    }
}
