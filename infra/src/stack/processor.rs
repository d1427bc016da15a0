//! The stream processor: the function, its role, log group and dead-letter queue, and the
//! event source mapping that feeds it the table's INSERT records.

use std::collections::BTreeMap;

use storefirst_app::function;
use storefirst_domain::StreamSettings;

use crate::{
    model::{
        Expr, Logical, Resource, Template,
        iam::{Policy, PolicyDocument, Role, Statement},
        lambda::{
            Code, DestinationConfig, Environment, EventSourceMapping, Filter, FilterCriteria,
            Function, LoggingConfig, OnFailure,
        },
        logs::LogGroup,
        sqs::Queue,
    },
    stack::table::RequestsTable,
};

/// The environment the function reads (`storefirst_lambda::Config`).
pub const TABLE_VAR: &str = "TABLE_NAME";
pub const RETENTION_VAR: &str = "SUCCEEDED_RETENTION_SECONDS";
/// The function's log group.
pub const PROCESSOR_LOGS: &str = "StreamProcessorLogs";

/// Where the function's code comes from: the S3 object `deploy` uploads.
pub struct Artifact {
    pub bucket: Expr,
    pub key: Expr,
}

pub struct Processor {
    pub function: Logical,
    pub dead_letters: Logical,
    pub policy: Logical,
    pub mapping: Logical,
}

impl Processor {
    /// The mapping exists only when `mapping_condition` holds (an emulator that cannot run
    /// functions would otherwise consume the stream).
    pub fn add(
        template: &mut Template,
        table: &RequestsTable,
        artifact: Artifact,
        settings: &StreamSettings,
        mapping_condition: &str,
    ) -> Self {
        // After the retries, the mapping sends a description of the failed batch here; the
        // items stay `pending` with their last error, for `cargo xtask redrive`.
        let dead_letters = template.add(
            "DeadLetterQueue",
            Resource::new(Queue {
                message_retention_period: 14 * 24 * 60 * 60,
                sqs_managed_sse_enabled: true,
            })
            .retain(),
        );
        let logs = template.add(
            PROCESSOR_LOGS,
            Resource::new(LogGroup {
                log_group_name: None,
                retention_in_days: 30,
            }),
        );
        let role = template.add(
            "StreamProcessorRole",
            Resource::new(Role::for_service("lambda.amazonaws.com")),
        );
        let policy = template.add(
            "StreamProcessorPolicy",
            Resource::new(Policy {
                policy_name: Expr::sub("${AWS::StackName}-stream-processor"),
                policy_document: PolicyDocument::new(vec![
                    // Outcome writes only: the processor never creates or deletes items.
                    Statement::allow(vec!["dynamodb:UpdateItem"], vec![table.arn()]),
                    Statement::allow(
                        vec![
                            "dynamodb:DescribeStream",
                            "dynamodb:GetRecords",
                            "dynamodb:GetShardIterator",
                        ],
                        vec![table.stream_arn()],
                    ),
                    // ListStreams has no resource-level permissions: IAM requires "*".
                    Statement::allow(vec!["dynamodb:ListStreams"], vec!["*".into()]),
                    Statement::allow(vec!["sqs:SendMessage"], vec![dead_letters.get_att("Arn")]),
                    Statement::allow(
                        vec!["logs:CreateLogStream", "logs:PutLogEvents"],
                        vec![logs.get_att("Arn")],
                    ),
                ]),
                roles: vec![role.r#ref()],
            }),
        );
        let environment = BTreeMap::from([
            (TABLE_VAR, table.name()),
            (
                RETENTION_VAR,
                settings.succeeded_retention.as_secs().to_string().into(),
            ),
        ]);
        let function = template.add(
            "StreamProcessor",
            Resource::new(Function {
                runtime: "provided.al2023",
                architectures: vec!["arm64"],
                handler: "bootstrap",
                code: Code {
                    s3_bucket: artifact.bucket,
                    s3_key: artifact.key,
                },
                role: role.get_att("Arn"),
                memory_size: function::MEMORY_MB,
                timeout: function::timeout(settings).as_secs(),
                environment: Environment {
                    variables: environment,
                },
                logging_config: LoggingConfig {
                    log_format: "JSON",
                    application_log_level: "INFO",
                    system_log_level: "WARN",
                    log_group: logs.r#ref(),
                },
            })
            // Its first log lines need the log permissions.
            .depends_on(&policy),
        );
        let mapping = template.add(
            "StreamMapping",
            Resource::new(EventSourceMapping {
                event_source_arn: table.stream_arn(),
                function_name: function.r#ref(),
                starting_position: "TRIM_HORIZON",
                batch_size: settings.batch_size,
                maximum_batching_window_in_seconds: settings.batching_window.as_secs(),
                maximum_retry_attempts: settings.maximum_retry_attempts,
                bisect_batch_on_function_error: settings.bisect_batch_on_function_error,
                maximum_record_age_in_seconds: settings.maximum_record_age.as_secs(),
                function_response_types: vec!["ReportBatchItemFailures"],
                filter_criteria: FilterCriteria {
                    filters: vec![Filter {
                        pattern: settings.filter_pattern(),
                    }],
                },
                destination_config: DestinationConfig {
                    on_failure: OnFailure {
                        destination: dead_letters.get_att("Arn"),
                    },
                },
            })
            .condition(mapping_condition)
            // Creating the mapping checks that the role can read the stream.
            .depends_on(&policy),
        );
        Self {
            function,
            dead_letters,
            policy,
            mapping,
        }
    }
}
