//! The storefirst stack: the constructs of design section 6, composed.

pub mod alarms;
pub mod api;
pub mod cors;
pub mod dashboard;
pub mod function;
pub mod mapping;
pub mod notifier;
pub mod processor;
pub mod table;

use storefirst_domain::StreamSettings;

use crate::model::{Condition, Expr, Parameter, Template};
use api::Api;
use function::Artifact;
use notifier::Notifier;
use processor::Processor;
use table::RequestsTable;

/// The parameter that switches the event source mappings off, and its condition.
pub const STREAM_PROCESSING: &str = "StreamProcessing";
pub const STREAM_PROCESSING_ENABLED: &str = "StreamProcessingEnabled";
/// The parameters `cargo xtask deploy` fills: the assets bucket, and the key of each
/// function's zip in it.
pub const ARTIFACT_BUCKET: &str = "ArtifactBucket";
pub const STREAM_PROCESSOR_KEY: &str = "StreamProcessorKey";
pub const NOTIFIER_KEY: &str = "NotifierKey";
const HAS_ALARM_TOPIC: &str = "HasAlarmTopic";

/// The whole stack, reading the one stream configuration the local runtime reads.
pub fn stack(settings: &StreamSettings) -> Template {
    let mut template = Template::new(
        "storefirst: a storage-first asynchronous API. Requests are stored in DynamoDB before \
         the 202; the table's stream drives the stream-processor function, and the notifier \
         function, which delivers webhooks through an SQS queue.",
    );
    let bucket = template.parameter(
        ARTIFACT_BUCKET,
        Parameter::string(
            "The S3 bucket that holds the functions' zips (cargo xtask deploy uploads them)",
        ),
    );
    let key = template.parameter(
        STREAM_PROCESSOR_KEY,
        Parameter::string("The S3 key of the stream-processor zip, named by its content hash"),
    );
    let notifier_key = template.parameter(
        NOTIFIER_KEY,
        Parameter::string("The S3 key of the notifier zip, named by its content hash"),
    );
    let switch = template.parameter(
        STREAM_PROCESSING,
        Parameter {
            default: Some("enabled"),
            allowed_values: vec!["enabled", "disabled"],
            ..Parameter::string(
                "disabled leaves out the event source mappings: for emulators, where a mapping \
                 would consume the stream or the queue without running the function",
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
    let notifier = Notifier::add(
        &mut template,
        &table,
        Artifact {
            bucket: bucket.r#ref(),
            key: notifier_key.r#ref(),
        },
        STREAM_PROCESSING_ENABLED,
    );
    let cors_origins = cors::add(&mut template);
    let api = Api::add(&mut template, &table, cors_origins.clone());
    let actions = Expr::if_(
        HAS_ALARM_TOPIC,
        Expr::List(vec![topic.r#ref()]),
        Expr::no_value(),
    );
    alarms::add(&mut template, &processor, &notifier, actions);
    dashboard::add(&mut template, &processor, &notifier);

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
            "WebhookSecretArn",
            "The webhook signing secret: receivers verify with whsec_ and its value \
             (aws secretsmanager get-secret-value --secret-id <arn>)",
            notifier.secret.r#ref(),
        ),
        (
            "WebhookQueueUrl",
            "The webhook delivery queue",
            notifier.queue.r#ref(),
        ),
        (
            "WebhookDeadLettersUrl",
            "Webhook deliveries given up on: cargo xtask redrive sends them again",
            notifier.dead_letters.r#ref(),
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
