//! `AWS::SQS::Queue`.

use serde::Serialize;

use crate::model::ResourceType;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Queue {
    pub message_retention_period: u32,
    pub sqs_managed_sse_enabled: bool,
}

impl ResourceType for Queue {
    const TYPE: &'static str = "AWS::SQS::Queue";
    const ATTRIBUTES: &'static [&'static str] = &["Arn", "QueueName", "QueueUrl"];
}
