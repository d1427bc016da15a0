//! `AWS::Logs::LogGroup`.

use serde::Serialize;

use crate::model::ResourceType;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogGroup {
    pub retention_in_days: u32,
}

impl ResourceType for LogGroup {
    const TYPE: &'static str = "AWS::Logs::LogGroup";
    const ATTRIBUTES: &'static [&'static str] = &["Arn"];
}
