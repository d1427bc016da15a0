//! The API Gateway (REST API, v1) resource types.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Expr, ResourceType};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestApi {
    pub name: Expr,
    pub description: &'static str,
    pub endpoint_configuration: EndpointConfiguration,
    pub api_key_source_type: &'static str,
}

impl ResourceType for RestApi {
    const TYPE: &'static str = "AWS::ApiGateway::RestApi";
    const ATTRIBUTES: &'static [&'static str] = &["RestApiId", "RootResourceId"];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointConfiguration {
    pub types: Vec<&'static str>,
}

/// A path segment; named `ApiResource` to keep it apart from a template resource.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiResource {
    pub rest_api_id: Expr,
    pub parent_id: Expr,
    pub path_part: &'static str,
}

impl ResourceType for ApiResource {
    const TYPE: &'static str = "AWS::ApiGateway::Resource";
    const ATTRIBUTES: &'static [&'static str] = &["ResourceId"];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestValidator {
    pub rest_api_id: Expr,
    pub name: &'static str,
    pub validate_request_body: bool,
    pub validate_request_parameters: bool,
}

impl ResourceType for RequestValidator {
    const TYPE: &'static str = "AWS::ApiGateway::RequestValidator";
    const ATTRIBUTES: &'static [&'static str] = &["RequestValidatorId"];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Model {
    pub rest_api_id: Expr,
    pub name: &'static str,
    pub description: &'static str,
    pub content_type: &'static str,
    pub schema: serde_json::Value,
}

impl ResourceType for Model {
    const TYPE: &'static str = "AWS::ApiGateway::Model";
    const ATTRIBUTES: &'static [&'static str] = &[];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Method {
    pub rest_api_id: Expr,
    pub resource_id: Expr,
    pub http_method: &'static str,
    pub authorization_type: &'static str,
    pub api_key_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_validator_id: Option<Expr>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub request_parameters: BTreeMap<&'static str, bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub request_models: BTreeMap<&'static str, Expr>,
    pub integration: Integration,
    pub method_responses: Vec<MethodResponse>,
}

impl ResourceType for Method {
    const TYPE: &'static str = "AWS::ApiGateway::Method";
    const ATTRIBUTES: &'static [&'static str] = &[];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Integration {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// The AWS service call; a `MOCK` integration has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_http_method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<Expr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Expr>,
    pub passthrough_behavior: &'static str,
    pub request_templates: BTreeMap<&'static str, Expr>,
    pub integration_responses: Vec<IntegrationResponse>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IntegrationResponse {
    pub status_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection_pattern: Option<&'static str>,
    pub response_templates: BTreeMap<&'static str, Expr>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MethodResponse {
    pub status_code: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub response_parameters: BTreeMap<&'static str, bool>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Deployment {
    pub rest_api_id: Expr,
    pub description: String,
}

impl ResourceType for Deployment {
    const TYPE: &'static str = "AWS::ApiGateway::Deployment";
    const ATTRIBUTES: &'static [&'static str] = &["DeploymentId"];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stage {
    pub rest_api_id: Expr,
    pub deployment_id: Expr,
    pub stage_name: &'static str,
    pub tracing_enabled: bool,
    /// Values the mapping templates read at run time as `$stageVariables.name`: unlike the
    /// methods, they change without a new deployment.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<&'static str, Expr>,
    pub access_log_setting: AccessLogSetting,
    pub method_settings: Vec<MethodSetting>,
}

impl ResourceType for Stage {
    const TYPE: &'static str = "AWS::ApiGateway::Stage";
    const ATTRIBUTES: &'static [&'static str] = &[];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessLogSetting {
    pub destination_arn: Expr,
    pub format: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MethodSetting {
    pub resource_path: &'static str,
    pub http_method: &'static str,
    pub metrics_enabled: bool,
    pub logging_level: &'static str,
    pub data_trace_enabled: bool,
    pub throttling_rate_limit: f64,
    pub throttling_burst_limit: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiKey {
    pub description: &'static str,
    pub enabled: bool,
}

impl ResourceType for ApiKey {
    const TYPE: &'static str = "AWS::ApiGateway::ApiKey";
    const ATTRIBUTES: &'static [&'static str] = &["APIKeyId"];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsagePlan {
    pub description: &'static str,
    pub api_stages: Vec<ApiStage>,
    pub throttle: Throttle,
}

impl ResourceType for UsagePlan {
    const TYPE: &'static str = "AWS::ApiGateway::UsagePlan";
    const ATTRIBUTES: &'static [&'static str] = &["Id"];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiStage {
    pub api_id: Expr,
    pub stage: Expr,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Throttle {
    pub rate_limit: f64,
    pub burst_limit: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsagePlanKey {
    pub key_id: Expr,
    pub key_type: &'static str,
    pub usage_plan_id: Expr,
}

impl ResourceType for UsagePlanKey {
    const TYPE: &'static str = "AWS::ApiGateway::UsagePlanKey";
    const ATTRIBUTES: &'static [&'static str] = &["Id"];
}

/// A response API Gateway makes itself (a refused body, a missing key, ...).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GatewayResponse {
    pub rest_api_id: Expr,
    pub response_type: &'static str,
    /// None keeps API Gateway's status; on `DEFAULT_4XX`/`DEFAULT_5XX` a status would
    /// replace that of every response of the family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<&'static str>,
    /// Headers: `gatewayresponse.header.NAME` to a static `'value'` or a request value such
    /// as `method.request.header.NAME`; a gateway response has no logic of its own.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub response_parameters: BTreeMap<String, Expr>,
    pub response_templates: BTreeMap<&'static str, String>,
}

impl ResourceType for GatewayResponse {
    const TYPE: &'static str = "AWS::ApiGateway::GatewayResponse";
    const ATTRIBUTES: &'static [&'static str] = &["Id"];
}
