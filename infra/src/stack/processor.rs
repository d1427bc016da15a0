//! The stream processor: the function, its role, log group and dead-letter queue, and the
//! event source mapping that feeds it the table's INSERT records.

use std::collections::BTreeMap;

use storefirst_domain::StreamSettings;

use crate::{
    model::{
        Logical, Resource, Template,
        iam::Statement,
        lambda::{DestinationConfig, EventSourceMapping, FilterCriteria, OnFailure, StreamSource},
        sqs::Queue,
    },
    stack::{
        function::{self, Artifact, Spec},
        table::RequestsTable,
    },
};

/// The environment the function reads (`storefirst_lambda::Config`).
pub const TABLE_VAR: &str = "TABLE_NAME";
pub const RETENTION_VAR: &str = "SUCCEEDED_RETENTION_SECONDS";
/// The function's log group (`function::add` names it after the prefix).
pub const PROCESSOR_LOGS: &str = "StreamProcessorLogs";
/// How long the dead-letter queues keep a message: SQS's longest.
pub const DEAD_LETTER_RETENTION_SECONDS: u32 = 14 * 24 * 60 * 60;

pub struct Processor {
    pub function: Logical,
    pub dead_letters: Logical,
    pub policy: Logical,
    pub mapping: Logical,
}

/// The stream actions of an event source mapping's poller on the table's stream.
pub fn stream_statements(table: &RequestsTable) -> [Statement; 2] {
    [
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
    ]
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
            Resource::new(Queue::encrypted(DEAD_LETTER_RETENTION_SECONDS)).retain(),
        );
        let mut statements = vec![
            // Outcome writes only: the processor never creates or deletes items.
            Statement::allow(vec!["dynamodb:UpdateItem"], vec![table.arn()]),
        ];
        statements.extend(stream_statements(table));
        statements.push(Statement::allow(
            vec!["sqs:SendMessage"],
            vec![dead_letters.get_att("Arn")],
        ));
        let environment = BTreeMap::from([
            (TABLE_VAR, table.name()),
            (
                RETENTION_VAR,
                settings.succeeded_retention.as_secs().to_string().into(),
            ),
        ]);
        let added = function::add(
            template,
            Spec {
                id: "StreamProcessor",
                prefix: "StreamProcessor",
                policy_name: "stream-processor",
                artifact,
                environment,
                timeout: storefirst_app::function::timeout(settings),
                statements,
            },
        );
        let mapping = template.add(
            "StreamMapping",
            Resource::new(EventSourceMapping {
                event_source_arn: table.stream_arn(),
                function_name: added.function.r#ref(),
                batch_size: settings.batch_size,
                function_response_types: vec!["ReportBatchItemFailures"],
                stream: Some(StreamSource {
                    starting_position: "TRIM_HORIZON",
                    maximum_batching_window_in_seconds: settings.batching_window.as_secs(),
                    maximum_retry_attempts: settings.maximum_retry_attempts.into(),
                    bisect_batch_on_function_error: settings.bisect_batch_on_function_error,
                    maximum_record_age_in_seconds: settings
                        .maximum_record_age
                        .as_secs()
                        .try_into()
                        .expect("a record age within days"),
                    destination_config: Some(DestinationConfig {
                        on_failure: OnFailure {
                            destination: dead_letters.get_att("Arn"),
                        },
                    }),
                }),
                filter_criteria: Some(FilterCriteria::pattern(settings.filter_pattern())),
                scaling_config: None,
            })
            .condition(mapping_condition)
            // Creating the mapping checks that the role can read the stream.
            .depends_on(&added.policy),
        );
        Self {
            function: added.function,
            dead_letters,
            policy: added.policy,
            mapping,
        }
    }
}
