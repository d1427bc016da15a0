//! The storefirst stack: the constructs of design section 6, composed.

pub mod alarms;
pub mod api;
pub mod cors;
pub mod dashboard;
pub mod mapping;
pub mod processor;
pub mod table;

use storefirst_domain::StreamSettings;

use crate::model::{Condition, Expr, Parameter, Template};
use api::Api;
use processor::{Artifact, Processor};
use table::RequestsTable;

/// The parameter that switches the event source mapping off, and its condition.
pub const STREAM_PROCESSING: &str = "StreamProcessing";
pub const STREAM_PROCESSING_ENABLED: &str = "StreamProcessingEnabled";
/// The parameters `cargo xtask deploy` fills: the assets bucket, and the key of each
/// function's zip in it.
pub const ARTIFACT_BUCKET: &str = "ArtifactBucket";
pub const STREAM_PROCESSOR_KEY: &str = "StreamProcessorKey";
const HAS_ALARM_TOPIC: &str = "HasAlarmTopic";

/// The whole stack, reading the one stream configuration the local runtime reads.
pub fn stack(settings: &StreamSettings) -> Template {
    let mut template = Template::new(
        "storefirst: a storage-first asynchronous API. Requests are stored in DynamoDB before \
         the 202; the table's stream drives the stream-processor function.",
    );
    let bucket = template.parameter(
        ARTIFACT_BUCKET,
        Parameter::string(
            "The S3 bucket that holds the function's zip (cargo xtask deploy uploads it)",
        ),
    );
    let key = template.parameter(
        STREAM_PROCESSOR_KEY,
        Parameter::string("The S3 key of the stream-processor zip, named by its content hash"),
    );
    let switch = template.parameter(
        STREAM_PROCESSING,
        Parameter {
            default: Some("enabled"),
            allowed_values: vec!["enabled", "disabled"],
            ..Parameter::string(
                "disabled leaves out the event source mapping: for emulators, where a mapping \
                 would consume the stream without running the function",
            )
        },
    );
    let topic = template.parameter(
        "AlarmTopicArn",
        Parameter {
            default: Some(""),
            allowed_pattern: Some("^(arn:[^:]+:sns:[^:]+:[0-9]{12}:[A-Za-z0-9_-]+)?$"),
            ..Parameter::string("An SNS topic the alarms notify; empty for none")
        },
    );
    template.condition(
        STREAM_PROCESSING_ENABLED,
        Condition::Equals(switch.r#ref(), "enabled".into()),
    );
    template.condition(
        HAS_ALARM_TOPIC,
        Condition::Not(Box::new(Condition::Equals(topic.r#ref(), "".into()))),
    );

    let table = RequestsTable::add(&mut template);
    let processor = Processor::add(
        &mut template,
        &table,
        Artifact {
            bucket: bucket.r#ref(),
            key: key.r#ref(),
        },
        settings,
        STREAM_PROCESSING_ENABLED,
    );
    let cors_origins = cors::add(&mut template);
    let api = Api::add(&mut template, &table, cors_origins.clone());
    let actions = Expr::if_(
        HAS_ALARM_TOPIC,
        Expr::List(vec![topic.r#ref()]),
        Expr::no_value(),
    );
    alarms::add(&mut template, &processor, actions);
    dashboard::add(&mut template, &processor);

    let outputs = [
        (
            "ApiUrl",
            "The API's base URL: POST {ApiUrl}/requests",
            Expr::sub("https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${ApiStage}"),
        ),
        (
            "ApiKeyId",
            "The API key's id: aws apigateway get-api-key --include-value --api-key <id>",
            api.key.r#ref(),
        ),
        ("TableName", "The requests table", table.name()),
        (
            "DeadLetterQueueUrl",
            "Where batches go after the retries",
            processor.dead_letters.r#ref(),
        ),
        (
            "StreamProcessorName",
            "The stream-processor function",
            processor.function.r#ref(),
        ),
        (
            "CorsOrigins",
            "The allowed origins as the templates read them: none, any (*), or the list",
            cors_origins,
        ),
    ];
    template.add_outputs(outputs);
    template
}
