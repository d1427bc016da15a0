//! `AWS::CloudWatch::Alarm` and `AWS::CloudWatch::Dashboard`.

use serde::Serialize;

use crate::model::{Expr, ResourceType};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Alarm {
    pub alarm_description: String,
    pub namespace: &'static str,
    pub metric_name: &'static str,
    pub dimensions: Vec<Dimension>,
    pub statistic: &'static str,
    pub period: u32,
    pub evaluation_periods: u32,
    pub threshold: f64,
    pub comparison_operator: &'static str,
    pub treat_missing_data: &'static str,
    pub alarm_actions: Expr,
}

impl ResourceType for Alarm {
    const TYPE: &'static str = "AWS::CloudWatch::Alarm";
    const ATTRIBUTES: &'static [&'static str] = &["Arn"];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dimension {
    pub name: &'static str,
    pub value: Expr,
}

/// A dashboard: its body is JSON text (CloudWatch's dashboard body structure), here an
/// `Fn::Sub` so that it names the stack's own resources. CloudFormation names it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dashboard {
    pub dashboard_body: Expr,
}

impl ResourceType for Dashboard {
    const TYPE: &'static str = "AWS::CloudWatch::Dashboard";
    const ATTRIBUTES: &'static [&'static str] = &[];
}
