//! The CloudWatch dashboard: the API's traffic and errors, what the stream function did
//! with the records (its own metrics, written as EMF lines: `storefirst_domain::metrics`),
//! how far it trails the stream, its failures, and the dead-letter queue.

use serde_json::{Value, json};
use storefirst_domain::metrics::{
    DIMENSION, NAMESPACE, OUTCOME_LATENCY, REJECTED, RETRIED, SUCCEEDED, UNDECODABLE,
};

use crate::{
    model::{Expr, Resource, Template, cloudwatch::Dashboard},
    stack::{api, processor::Processor},
};

/// `Fn::Sub` variables the body names.
const FUNCTION: &str = "${Function}";
const QUEUE: &str = "${Queue}";
const REGION: &str = "${AWS::Region}";

/// A line of a metric widget: namespace, name, dimension pairs, then how to draw it.
fn line(namespace: &str, name: &str, dimensions: &[(&str, &str)], how: Value) -> Value {
    let mut line = vec![json!(namespace), json!(name)];
    for (dimension, value) in dimensions {
        line.extend([json!(dimension), json!(value)]);
    }
    line.push(how);
    Value::Array(line)
}

fn widget(title: &str, (x, y, width): (u32, u32, u32), lines: Vec<Value>) -> Value {
    json!({
        "type": "metric",
        "x": x, "y": y, "width": width, "height": 6,
        "properties": {
            "title": title,
            "region": REGION,
            "view": "timeSeries",
            "period": 60,
            "metrics": lines,
        },
    })
}

/// The dashboard's body, with `${Function}`, `${Queue}` and the API's name to substitute.
pub fn body() -> String {
    let api = [("ApiName", api::NAME), ("Stage", api::STAGE)];
    let function = [("FunctionName", FUNCTION)];
    let own = [(DIMENSION, FUNCTION)];
    let queue = [("QueueName", QUEUE)];
    let sum = |label: &str| json!({ "stat": "Sum", "label": label });
    let stat = |stat: &str| json!({ "stat": stat, "label": stat });
    let labels = [
        (SUCCEEDED, "succeeded"),
        (REJECTED, "rejected (failed)"),
        (RETRIED, "retried"),
        (UNDECODABLE, "undecodable"),
    ];
    let widgets = vec![
        widget(
            "API requests",
            (0, 0, 12),
            vec![
                line("AWS/ApiGateway", "Count", &api, sum("requests")),
                line("AWS/ApiGateway", "4XXError", &api, sum("4xx")),
                line("AWS/ApiGateway", "5XXError", &api, sum("5xx")),
            ],
        ),
        widget(
            "API latency (ms)",
            (12, 0, 12),
            vec![
                line("AWS/ApiGateway", "Latency", &api, stat("p50")),
                line("AWS/ApiGateway", "Latency", &api, stat("p99")),
            ],
        ),
        widget(
            "Records by outcome",
            (0, 6, 12),
            labels
                .iter()
                .map(|(name, label)| line(NAMESPACE, name, &own, sum(label)))
                .collect(),
        ),
        widget(
            "Created to outcome (ms)",
            (12, 6, 12),
            ["p50", "p99", "Maximum"]
                .iter()
                .map(|s| line(NAMESPACE, OUTCOME_LATENCY, &own, stat(s)))
                .collect(),
        ),
        widget(
            "Stream processor: errors and throttles",
            (0, 12, 8),
            vec![
                line("AWS/Lambda", "Errors", &function, sum("errors")),
                line("AWS/Lambda", "Throttles", &function, sum("throttles")),
            ],
        ),
        widget(
            "Stream processor: duration (ms)",
            (8, 12, 8),
            vec![
                line("AWS/Lambda", "Duration", &function, stat("p50")),
                line("AWS/Lambda", "Duration", &function, stat("Maximum")),
            ],
        ),
        widget(
            "Iterator age (ms): how far the mapping trails the stream",
            (16, 12, 8),
            vec![line(
                "AWS/Lambda",
                "IteratorAge",
                &function,
                stat("Maximum"),
            )],
        ),
        widget(
            "Dead-letter queue",
            (0, 18, 24),
            vec![
                line(
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    &queue,
                    json!({ "stat": "Maximum", "label": "waiting" }),
                ),
                line(
                    "AWS/SQS",
                    "NumberOfMessagesSent",
                    &queue,
                    sum("dead-lettered stretches"),
                ),
            ],
        ),
    ];
    json!({ "widgets": widgets }).to_string()
}

pub fn add(template: &mut Template, processor: &Processor) {
    template.add(
        "Dashboard",
        Resource::new(Dashboard {
            dashboard_body: Expr::sub_with(
                body(),
                [
                    ("Function", processor.function.r#ref()),
                    ("Queue", processor.dead_letters.get_att("QueueName")),
                ],
            ),
        }),
    );
}
