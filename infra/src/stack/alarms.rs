//! Alarms on what needs a person: dead letters, a stream falling behind, failing runs.

use crate::{
    model::{
        Expr, Resource, Template,
        cloudwatch::{Alarm, Dimension},
    },
    stack::processor::Processor,
};

/// Where alarms notify: an SNS topic when the `AlarmTopicArn` parameter names one.
pub fn add(template: &mut Template, processor: &Processor, actions: Expr) {
    let alarm = |description,
                 namespace,
                 metric,
                 dimension: Dimension,
                 statistic,
                 period,
                 periods,
                 threshold| {
        Resource::new(Alarm {
            alarm_description: description,
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
    let function = || Dimension {
        name: "FunctionName",
        value: processor.function.r#ref(),
    };
    template.add(
        "DeadLetterAlarm",
        alarm(
            "Records gave up on after the retries are waiting in the dead-letter queue: their items stay pending; fix the cause, then run cargo xtask redrive",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            Dimension {
                name: "QueueName",
                value: processor.dead_letters.get_att("QueueName"),
            },
            "Maximum",
            60,
            1,
            0.0,
        ),
    );
    template.add(
        "IteratorAgeAlarm",
        alarm(
            "The stream processor is more than 10 minutes behind the table's stream",
            "AWS/Lambda",
            "IteratorAge",
            function(),
            "Maximum",
            60,
            5,
            600_000.0,
        ),
    );
    template.add(
        "StreamProcessorErrorsAlarm",
        alarm(
            "The stream processor failed whole invocations (a crash or a timeout, not a rejected request)",
            "AWS/Lambda",
            "Errors",
            function(),
            "Sum",
            300,
            1,
            0.0,
        ),
    );
}
