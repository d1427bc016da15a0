//! `AWS::SQS::Queue`.

use serde::Serialize;

use crate::model::{Expr, ResourceType};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Queue {
    pub message_retention_period: u32,
    pub sqs_managed_sse_enabled: bool,
    /// How long a received message stays hidden from other consumers; SQS's default (30 s)
    /// where none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility_timeout: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redrive_policy: Option<RedrivePolicy>,
}

impl Queue {
    /// Encrypted with SQS-managed keys, keeping messages `retention_seconds`.
    pub fn encrypted(retention_seconds: u32) -> Self {
        Self {
            message_retention_period: retention_seconds,
            sqs_managed_sse_enabled: true,
            visibility_timeout: None,
            redrive_policy: None,
        }
    }
}

impl ResourceType for Queue {
    const TYPE: &'static str = "AWS::SQS::Queue";
    const ATTRIBUTES: &'static [&'static str] = &["Arn", "QueueName", "QueueUrl"];
}

/// Where a message goes after `max_receive_count` receives without a delete (SQS names
/// these two keys in camelCase).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedrivePolicy {
    pub dead_letter_target_arn: Expr,
    pub max_receive_count: u32,
}
