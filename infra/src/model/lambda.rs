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

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventSourceMapping {
    pub event_source_arn: Expr,
    pub function_name: Expr,
    pub starting_position: &'static str,
    pub batch_size: u32,
    pub maximum_batching_window_in_seconds: u64,
    pub maximum_retry_attempts: u32,
    pub bisect_batch_on_function_error: bool,
    pub maximum_record_age_in_seconds: u64,
    pub function_response_types: Vec<&'static str>,
    pub filter_criteria: FilterCriteria,
    pub destination_config: DestinationConfig,
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
