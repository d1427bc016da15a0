//! The CloudWatch dashboard: the API's traffic and errors, what the stream function did
//! with the records (its own metrics, written as EMF lines: `storefirst_domain::metrics`),
//! how far it trails the stream, its failures, and the dead-letter queue; the webhooks:
//! the notifier's failures and how far it trails, its delivery queue and dead letters.

use serde_json::{Value, json};
use storefirst_domain::metrics::{COUNTS, DIMENSION, NAMESPACE, OUTCOME_LATENCY};

use crate::{
    model::{Expr, Resource, Template, cloudwatch::Dashboard},
    stack::{api, notifier::Notifier, processor::Processor},
};

/// `Fn::Sub` variables the body names.
const FUNCTION: &str = "${Function}";
const QUEUE: &str = "${Queue}";
const NOTIFIER: &str = "${Notifier}";
const WEBHOOK_QUEUE: &str = "${WebhookQueue}";
const WEBHOOK_DEAD_LETTERS: &str = "${WebhookDeadLetters}";
const REGION: &str = "${AWS::Region}";

/// A line of a metric widget: namespace, name, then dimension pairs.
fn line(namespace: &str, name: &str, dimensions: &[(&str, &str)]) -> Value {
    let mut line = vec![json!(namespace), json!(name)];
    for (dimension, value) in dimensions {
        line.extend([json!(dimension), json!(value)]);
    }
    Value::Array(line)
}

/// A graph of `lines` by `stat` (per 5 minutes, CloudWatch's default), placed by
/// CloudWatch. Kept lean (no labels, layout or period): the body counts against the 51,200
/// bytes of a template sent inline.
/// A line per Lambda metric of `names`, for one function.
fn lambda_lines(names: &[&str], function: &[(&str, &str)]) -> Vec<Value> {
    names
        .iter()
        .map(|name| line("AWS/Lambda", name, function))
        .collect()
}

fn widget(title: &str, stat: &str, lines: Vec<Value>) -> Value {
    json!({
        "type": "metric",
        "properties": {
            "title": title,
            "region": REGION,
            "stat": stat,
            "metrics": lines,
        },
    })
}

/// The dashboard's body, with `${Function}`, `${Queue}`, `${Notifier}`, `${WebhookQueue}`,
/// `${WebhookDeadLetters}` and the API's name to substitute.
pub fn body() -> String {
    let api = [("ApiName", api::NAME), ("Stage", api::STAGE)];
    let function = [("FunctionName", FUNCTION)];
    let own = [(DIMENSION, FUNCTION)];
    let notifier = [("FunctionName", NOTIFIER)];
    let queue = |name| [("QueueName", name)];
    let widgets = vec![
        widget(
            "API requests",
            "Sum",
            ["Count", "4XXError", "5XXError"]
                .iter()
                .map(|name| line("AWS/ApiGateway", name, &api))
                .collect(),
        ),
        widget(
            "API latency p99 (ms)",
            "p99",
            vec![line("AWS/ApiGateway", "Latency", &api)],
        ),
        widget(
            "Records",
            "Sum",
            COUNTS
                .iter()
                .map(|name| line(NAMESPACE, name, &own))
                .collect(),
        ),
        widget(
            "To outcome p99 (ms)",
            "p99",
            vec![line(NAMESPACE, OUTCOME_LATENCY, &own)],
        ),
        widget(
            "Errors, throttles",
            "Sum",
            lambda_lines(&["Errors", "Throttles"], &function),
        ),
        widget(
            "Duration, iterator age (ms)",
            "Maximum",
            lambda_lines(&["Duration", "IteratorAge"], &function),
        ),
        widget(
            "Dead letters",
            "Maximum",
            vec![line(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                &queue(QUEUE),
            )],
        ),
        widget(
            "Notifier errors, throttles",
            "Sum",
            lambda_lines(&["Errors", "Throttles"], &notifier),
        ),
        widget(
            "Notifier duration, iterator age (ms)",
            "Maximum",
            lambda_lines(&["Duration", "IteratorAge"], &notifier),
        ),
        // Deliveries due, retries waiting out their delay, and the give-ups.
        widget(
            "Webhooks waiting, given up",
            "Maximum",
            vec![
                line(
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    &queue(WEBHOOK_QUEUE),
                ),
                line(
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesDelayed",
                    &queue(WEBHOOK_QUEUE),
                ),
                line(
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    &queue(WEBHOOK_DEAD_LETTERS),
                ),
            ],
        ),
        widget(
            "Oldest webhook waiting (s)",
            "Maximum",
            vec![line(
                "AWS/SQS",
                "ApproximateAgeOfOldestMessage",
                &queue(WEBHOOK_QUEUE),
            )],
        ),
    ];
    json!({ "widgets": widgets }).to_string()
}

pub fn add(template: &mut Template, processor: &Processor, notifier: &Notifier) {
    template.add(
        "Dashboard",
        Resource::new(Dashboard {
            dashboard_body: Expr::sub_with(
                body(),
                [
                    ("Function", processor.function.r#ref()),
                    ("Queue", processor.dead_letters.get_att("QueueName")),
                    ("Notifier", notifier.function.r#ref()),
                    ("WebhookQueue", notifier.queue.get_att("QueueName")),
                    (
                        "WebhookDeadLetters",
                        notifier.dead_letters.get_att("QueueName"),
                    ),
                ],
            ),
        }),
    );
}
