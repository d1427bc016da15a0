//! `AWS::Lambda::Function` and `AWS::Lambda::EventSourceMapping`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Expr, ResourceType};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Function {
    pub runtime: &'static str,
    pub architectures: Vec<&'static str>,
    pub handler: &'static str,
    pub code: Code,
    pub role: Expr,
    pub memory_size: u32,
    pub timeout: u64,
    pub environment: Environment,
    pub logging_config: LoggingConfig,
}

impl ResourceType for Function {
    const TYPE: &'static str = "AWS::Lambda::Function";
    const ATTRIBUTES: &'static [&'static str] = &["Arn"];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Code {
    pub s3_bucket: Expr,
    pub s3_key: Expr,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Environment {
    pub variables: BTreeMap<&'static str, Expr>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingConfig {
    pub log_format: &'static str,
    pub application_log_level: &'static str,
    pub system_log_level: &'static str,
    pub log_group: Expr,
}

/// A mapping from a stream or a queue to a function.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventSourceMapping {
    pub event_source_arn: Expr,
    pub function_name: Expr,
    pub batch_size: u32,
    pub function_response_types: Vec<&'static str>,
    /// What only a stream source takes; none for a queue.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_criteria: Option<FilterCriteria>,
    /// A queue source's bound on concurrent invocations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling_config: Option<ScalingConfig>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingConfig {
    pub maximum_concurrency: u32,
}

/// A stream source's position, batching and retries.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSource {
    pub starting_position: &'static str,
    pub maximum_batching_window_in_seconds: u64,
    /// -1: until the record expires from the stream.
    pub maximum_retry_attempts: i64,
    pub bisect_batch_on_function_error: bool,
    /// -1: the stream's retention.
    pub maximum_record_age_in_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_config: Option<DestinationConfig>,
}

impl ResourceType for EventSourceMapping {
    const TYPE: &'static str = "AWS::Lambda::EventSourceMapping";
    const ATTRIBUTES: &'static [&'static str] = &["Id", "EventSourceMappingArn"];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilterCriteria {
    pub filters: Vec<Filter>,
}

impl FilterCriteria {
    /// One filter: `pattern`, an event pattern as JSON text.
    pub fn pattern(pattern: String) -> Self {
        Self {
            filters: vec![Filter { pattern }],
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    /// The event pattern as JSON text, as the API takes it.
    pub pattern: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationConfig {
    pub on_failure: OnFailure,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OnFailure {
    pub destination: Expr,
}
