//! Alarms on what needs a person: dead letters and given-up webhooks, a stream falling
//! behind, failing runs.

use crate::{
    model::{
        Expr, Logical, Resource, Template,
        cloudwatch::{Alarm, Dimension},
    },
    stack::{notifier::Notifier, processor::Processor},
};

/// Where alarms notify: an SNS topic when the `AlarmTopicArn` parameter names one.
pub fn add(template: &mut Template, processor: &Processor, notifier: &Notifier, actions: Expr) {
    let alarm = |description: &str,
                 namespace,
                 metric,
                 dimension: Dimension,
                 statistic,
                 period,
                 periods,
                 threshold| {
        Resource::new(Alarm {
            alarm_description: description.to_owned(),
            namespace,
            metric_name: metric,
            dimensions: vec![dimension],
            statistic,
            period,
            evaluation_periods: periods,
            threshold,
            comparison_operator: "GreaterThanThreshold",
            // No data means no traffic, not a problem.
            treat_missing_data: "notBreaching",
            alarm_actions: actions.clone(),
        })
    };
    let queue = |queue: &Logical| Dimension {
        name: "QueueName",
        value: queue.get_att("QueueName"),
    };
    let function = |function: &Logical| Dimension {
        name: "FunctionName",
        value: function.r#ref(),
    };
    template.add(
        "DeadLetterAlarm",
        alarm(
            "Records gave up on after the retries are waiting in the dead-letter queue: their items stay pending; fix the cause, then run cargo xtask redrive",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            queue(&processor.dead_letters),
            "Maximum",
            60,
            1,
            0.0,
        ),
    );
    template.add(
        "WebhookGiveUpsAlarm",
        alarm(
            "Webhook deliveries were given up on (a permanent answer, or the retries ran out) and wait in the webhook dead letters: their callbacks show failed; fix the receiver, then run cargo xtask redrive",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            queue(&notifier.dead_letters),
            "Maximum",
            60,
            1,
            0.0,
        ),
    );
    // Each function's own failures, not the ones it reports about a record or a delivery.
    for (prefix, name, target, not_an_error) in [
        (
            "StreamProcessor",
            "The stream processor",
            &processor.function,
            "a rejected request",
        ),
        (
            "Notifier",
            "The notifier",
            &notifier.function,
            "a refused or retried delivery",
        ),
    ] {
        let iterator_age = match prefix {
            // The processor's alarm keeps its first id.
            "StreamProcessor" => "IteratorAgeAlarm".to_owned(),
            _ => format!("{prefix}IteratorAgeAlarm"),
        };
        template.add(
            &iterator_age,
            alarm(
                &format!("{name} is more than 10 minutes behind the table's stream"),
                "AWS/Lambda",
                "IteratorAge",
                function(target),
                "Maximum",
                60,
                5,
                600_000.0,
            ),
        );
        template.add(
            &format!("{prefix}ErrorsAlarm"),
            alarm(
                &format!(
                    "{name} failed whole invocations (a crash or a timeout, not {not_an_error})"
                ),
                "AWS/Lambda",
                "Errors",
                function(target),
                "Sum",
                300,
                1,
                0.0,
            ),
        );
    }
}
