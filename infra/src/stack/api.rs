//! The REST API: direct DynamoDB integrations (no function on the request path), a body
//! validator, an API key with a usage plan, and a stage with access logs.

use std::collections::BTreeMap;

use serde_json::json;
use storefirst_domain::LARGEST_NUMBER;

use crate::{
    model::{
        Expr, Logical, Resource, Template,
        apigateway::{
            AccessLogSetting, ApiKey, ApiResource, ApiStage, Deployment, EndpointConfiguration,
            GatewayResponse, Integration, IntegrationResponse, Method, MethodResponse,
            MethodSetting, Model, RequestValidator, RestApi, Stage, Throttle, UsagePlan,
            UsagePlanKey,
        },
        iam::{InlinePolicy, PolicyDocument, Role, Statement},
        logs::LogGroup,
    },
    stack::{cors, mapping::MappingTemplates, table::RequestsTable},
};

pub const STAGE: &str = "prod";
/// The stage's access log group, one JSON line per request.
pub const ACCESS_LOGS: &str = "ApiAccessLogs";
/// The access log's fields with the ids the item records as `request_id` and `trace_id`.
pub const ACCESS_LOG_REQUEST_ID: &str = "extendedRequestId";
pub const ACCESS_LOG_TRACE_ID: &str = "xrayTraceId";
/// The REST API's name (an `Fn::Sub`): API Gateway's metrics carry it as `ApiName`.
pub const NAME: &str = "${AWS::StackName}-requests";
/// Requests per second (steady, burst) for each API key, and for the stage as a whole.
pub const THROTTLE_RATE: f64 = 100.0;
pub const THROTTLE_BURST: u32 = 200;
const JSON: &str = "application/json";
/// Every status DynamoDB can answer with; the error template picks the client's status.
const ANY_ERROR: &str = "[45]\\d{2}";

pub struct Api {
    pub rest_api: Logical,
    pub stage: Logical,
    pub key: Logical,
    pub methods: Vec<Logical>,
}

/// One method: its verb, resource, request template, success status and template, and the
/// statuses its error template may answer with.
struct MethodSpec<'a> {
    id: &'static str,
    verb: &'static str,
    resource: &'a Logical,
    action: &'static str,
    request: &'a str,
    success: (&'static str, &'a str),
    errors: &'static [&'static str],
    with_body: bool,
    id_in_path: bool,
}

impl Api {
    /// `cors_origins`: the stage variable the templates read the allowed origins from.
    pub fn add(template: &mut Template, table: &RequestsTable, cors_origins: Expr) -> Self {
        let rest_api = template.add(
            "Api",
            Resource::new(RestApi {
                name: Expr::sub(NAME),
                description: "storefirst: requests are stored first, processed from the table's stream",
                endpoint_configuration: EndpointConfiguration {
                    types: vec!["REGIONAL"],
                },
                api_key_source_type: "HEADER",
            }),
        );
        let api_id = rest_api.r#ref();
        let role = template.add(
            "ApiRole",
            Resource::new(Role {
                policies: vec![InlinePolicy {
                    policy_name: "requests-table",
                    policy_document: PolicyDocument::new(vec![Statement::allow(
                        vec![
                            "dynamodb:PutItem",
                            "dynamodb:UpdateItem",
                            "dynamodb:GetItem",
                        ],
                        vec![table.arn()],
                    )]),
                }],
                ..Role::for_service("apigateway.amazonaws.com")
            }),
        );
        let requests = template.add(
            "ApiRequestsResource",
            Resource::new(ApiResource {
                rest_api_id: api_id.clone(),
                parent_id: rest_api.get_att("RootResourceId"),
                path_part: "requests",
            }),
        );
        let request = template.add(
            "ApiRequestResource",
            Resource::new(ApiResource {
                rest_api_id: api_id.clone(),
                parent_id: requests.r#ref(),
                path_part: "{id}",
            }),
        );
        let validator = template.add(
            "ApiValidator",
            Resource::new(RequestValidator {
                rest_api_id: api_id.clone(),
                name: "body-and-parameters",
                validate_request_body: true,
                validate_request_parameters: true,
            }),
        );
        // The envelope check API Gateway can do itself: JSON, an object, and I-JSON's
        // numbers (at most the largest double in magnitude, at any depth: `maximum` applies
        // to numbers only, `additionalProperties` to objects, `items` to arrays).
        let largest: f64 = LARGEST_NUMBER.parse().expect("a double");
        let model = template.add(
            "ApiRequestModel",
            Resource::new(Model {
                rest_api_id: api_id.clone(),
                name: "Request",
                description: "Any JSON object with at least one field: the processor judges the content later",
                content_type: JSON,
                schema: json!({
                    "$schema": "http://json-schema.org/draft-04/schema#",
                    "title": "Request",
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {"$ref": "#/definitions/value"},
                    "definitions": {
                        "value": {
                            "maximum": largest,
                            "minimum": -largest,
                            "additionalProperties": {"$ref": "#/definitions/value"},
                            "items": {"$ref": "#/definitions/value"}
                        }
                    }
                }),
            }),
        );
        // API Gateway's own answers keep its JSON message; the two a template never sees
        // say what to do instead.
        let default_message = "{\"message\":$context.error.messageString}".to_owned();
        let mut gateway_responses = Vec::new();
        for (id, response_type, status, message) in [
            (
                "ApiBadBodyResponse",
                "BAD_REQUEST_BODY",
                Some("400"),
                json!({ "message": model_refusal() }).to_string(),
            ),
            (
                "ApiUnsupportedMediaTypeResponse",
                "UNSUPPORTED_MEDIA_TYPE",
                Some("415"),
                json!({ "message": "unsupported content type: send application/json" }).to_string(),
            ),
            // Every other 4xx and 5xx (a missing key, a throttle, a body too large...),
            // for their CORS headers.
            (
                "ApiDefault4xxResponse",
                "DEFAULT_4XX",
                None,
                default_message.clone(),
            ),
            (
                "ApiDefault5xxResponse",
                "DEFAULT_5XX",
                None,
                default_message,
            ),
        ] {
            gateway_responses.push(template.add(
                id,
                Resource::new(GatewayResponse {
                    rest_api_id: api_id.clone(),
                    response_type,
                    status_code: status,
                    response_parameters: cors::gateway_response_headers(),
                    response_templates: BTreeMap::from([(JSON, message)]),
                }),
            ));
        }

        let templates = MappingTemplates::compose();
        let specs = [
            MethodSpec {
                id: "ApiPostMethod",
                verb: "POST",
                resource: &requests,
                action: "PutItem",
                request: &templates.post_request,
                success: ("202", &templates.post_accepted),
                errors: &["400", "409", "413", "503"],
                with_body: true,
                id_in_path: false,
            },
            MethodSpec {
                id: "ApiPutMethod",
                verb: "PUT",
                resource: &request,
                action: "UpdateItem",
                request: &templates.put_request,
                success: ("202", &templates.put_accepted),
                errors: &["400", "409", "413", "503"],
                with_body: true,
                id_in_path: true,
            },
            MethodSpec {
                id: "ApiGetMethod",
                verb: "GET",
                resource: &request,
                action: "GetItem",
                request: &templates.get_request,
                success: ("200", &templates.item),
                errors: &["400", "404", "503"],
                with_body: false,
                id_in_path: true,
            },
        ];
        let methods: Vec<Logical> = specs
            .iter()
            .map(|spec| {
                let method = method(spec, &api_id, &role, &validator, &model, table, &templates);
                template.add(spec.id, Resource::new(method))
            })
            .collect();
        let mut preflights = Vec::new();
        for (id, resource, allowed) in [
            (
                "ApiRequestsOptionsMethod",
                &requests,
                &templates.preflight_allowed_collection,
            ),
            (
                "ApiRequestOptionsMethod",
                &request,
                &templates.preflight_allowed_item,
            ),
        ] {
            // Without an allowed origin there is no preflight method: API Gateway refuses
            // an OPTIONS itself (403, no CORS header), as the spec has it.
            let method = Resource::new(preflight(&api_id, resource, allowed, &templates))
                .condition(cors::CONFIGURED);
            preflights.push(template.add(id, method));
        }

        // A deployment is a snapshot: CloudFormation makes a new one only under a new
        // logical id, so the id carries a hash of everything it snapshots. Two of them, one
        // per CORS state (see cors::deployment_of_state).
        let hash = fnv1a(snapshot(template).as_bytes());
        let mut deployments = Vec::new();
        for (id, condition, state_methods) in [
            (
                format!("ApiDeployment{hash:016x}"),
                cors::NOT_CONFIGURED,
                &[][..],
            ),
            (
                format!("ApiDeploymentCors{hash:016x}"),
                cors::CONFIGURED,
                &preflights[..],
            ),
        ] {
            let mut deployment = Resource::new(Deployment {
                rest_api_id: api_id.clone(),
                description: "the methods, models and gateway responses of this template".into(),
            })
            .condition(condition);
            for dependency in methods
                .iter()
                .chain(state_methods)
                .chain(&gateway_responses)
            {
                deployment = deployment.depends_on(dependency);
            }
            deployments.push(template.add(&id, deployment));
        }
        let deployment = cors::deployment_of_state(&deployments[1], &deployments[0]);

        let stage = Self::add_stage(template, &rest_api, deployment, cors_origins);
        let key = template.add(
            "ApiKey",
            Resource::new(ApiKey {
                description: "the key clients send in x-api-key",
                enabled: true,
            }),
        );
        let plan = template.add(
            "ApiUsagePlan",
            Resource::new(UsagePlan {
                description: "throttles each API key",
                api_stages: vec![ApiStage {
                    api_id: api_id.clone(),
                    stage: stage.r#ref(),
                }],
                throttle: Throttle {
                    rate_limit: THROTTLE_RATE,
                    burst_limit: THROTTLE_BURST,
                },
            }),
        );
        template.add(
            "ApiUsagePlanKey",
            Resource::new(UsagePlanKey {
                key_id: key.r#ref(),
                key_type: "API_KEY",
                usage_plan_id: plan.r#ref(),
            }),
        );
        Self {
            rest_api,
            stage,
            key,
            methods,
        }
    }

    fn add_stage(
        template: &mut Template,
        rest_api: &Logical,
        deployment: Expr,
        cors_origins: Expr,
    ) -> Logical {
        // Stage logs need API Gateway's CloudWatch role, an account-wide setting: `cargo
        // xtask deploy`'s bootstrap step sets it when the account has none.
        let access_logs = template.add(
            ACCESS_LOGS,
            Resource::new(LogGroup {
                log_group_name: None,
                retention_in_days: 30,
            }),
        );
        // API Gateway writes its execution logs to a group of this name; declared here, it
        // has a retention and leaves with the stack. The stage waits for it, or API Gateway
        // would create it first, without either.
        let execution_logs = template.add(
            "ApiExecutionLogs",
            Resource::new(LogGroup {
                log_group_name: Some(Expr::sub(format!(
                    "API-Gateway-Execution-Logs_${{Api}}/{STAGE}"
                ))),
                retention_in_days: 30,
            }),
        );
        // The ids the item records too (`request_id`, `trace_id`): one query finds this line
        // and the processor's lines about the request (`cargo xtask logs`).
        let mut format = json!({
            "requestId": "$context.requestId",
            "ip": "$context.identity.sourceIp",
            "requestTime": "$context.requestTimeEpoch",
            "method": "$context.httpMethod",
            "path": "$context.path",
            "status": "$context.status",
            "responseLength": "$context.responseLength",
            "latency": "$context.responseLatency",
            "integrationStatus": "$context.integration.status",
            "integrationLatency": "$context.integration.latency",
            "error": "$context.error.message",
            "apiKeyId": "$context.identity.apiKeyId",
        });
        format[ACCESS_LOG_REQUEST_ID] = "$context.extendedRequestId".into();
        format[ACCESS_LOG_TRACE_ID] = "$context.xrayTraceId".into();
        template.add(
            "ApiStage",
            Resource::new(Stage {
                rest_api_id: rest_api.r#ref(),
                deployment_id: deployment,
                stage_name: STAGE,
                tracing_enabled: true,
                variables: BTreeMap::from([(cors::STAGE_VARIABLE, cors_origins)]),
                access_log_setting: AccessLogSetting {
                    destination_arn: access_logs.get_att("Arn"),
                    format: format.to_string(),
                },
                method_settings: vec![MethodSetting {
                    resource_path: "/*",
                    http_method: "*",
                    metrics_enabled: true,
                    logging_level: "ERROR",
                    // Traces would log request bodies.
                    data_trace_enabled: false,
                    throttling_rate_limit: THROTTLE_RATE,
                    throttling_burst_limit: THROTTLE_BURST,
                }],
            })
            .depends_on(&execution_logs),
        )
    }
}

/// What a deployment snapshots: every API Gateway resource of the API but the deployment
/// itself and what refers to it (stage, usage plan) or is not part of the API (key).
fn snapshot(template: &Template) -> String {
    let parts: Vec<serde_json::Value> = template
        .resources()
        .iter()
        .filter(|(_, r)| {
            r.kind().starts_with("AWS::ApiGateway::")
                && !matches!(
                    r.kind(),
                    "AWS::ApiGateway::Deployment"
                        | "AWS::ApiGateway::Stage"
                        | "AWS::ApiGateway::ApiKey"
                        | "AWS::ApiGateway::UsagePlan"
                        | "AWS::ApiGateway::UsagePlanKey"
                )
        })
        .map(|(id, r)| json!([id, r]))
        .collect();
    serde_json::to_string(&parts).expect("resources serialize")
}

fn method(
    spec: &MethodSpec,
    api_id: &Expr,
    role: &Logical,
    validator: &Logical,
    model: &Logical,
    table: &RequestsTable,
    templates: &MappingTemplates,
) -> Method {
    let with_table = |text: &str| Expr::sub_with(text, [("TableName", table.name())]);
    let (success_status, success_template) = spec.success;
    let mut success_headers = cors_headers();
    if success_status == "202" {
        success_headers.insert("method.response.header.Location", false);
    }
    let mut method_responses = vec![MethodResponse {
        status_code: success_status.into(),
        response_parameters: success_headers,
    }];
    // The error template answers a 503 with Retry-After, whichever status it picks.
    method_responses.extend(spec.errors.iter().map(|status| {
        let mut headers = cors_headers();
        headers.insert("method.response.header.Retry-After", false);
        MethodResponse {
            status_code: (*status).into(),
            response_parameters: headers,
        }
    }));
    Method {
        rest_api_id: api_id.clone(),
        resource_id: spec.resource.r#ref(),
        http_method: spec.verb,
        authorization_type: "NONE",
        api_key_required: true,
        request_validator_id: Some(validator.r#ref()),
        request_parameters: if spec.id_in_path {
            BTreeMap::from([("method.request.path.id", true)])
        } else {
            BTreeMap::new()
        },
        request_models: if spec.with_body {
            BTreeMap::from([(JSON, model.r#ref())])
        } else {
            BTreeMap::new()
        },
        integration: Integration {
            kind: "AWS",
            integration_http_method: Some("POST"),
            uri: Some(Expr::sub(format!(
                "arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}:dynamodb:action/{}",
                spec.action
            ))),
            credentials: Some(role.get_att("Arn")),
            // Only JSON has a template: any other content type is a 415.
            passthrough_behavior: "NEVER",
            request_templates: BTreeMap::from([(JSON, with_table(spec.request))]),
            integration_responses: vec![
                IntegrationResponse {
                    status_code: success_status.into(),
                    selection_pattern: None,
                    response_templates: BTreeMap::from([(JSON, success_template.into())]),
                },
                IntegrationResponse {
                    status_code: "400".into(),
                    selection_pattern: Some(ANY_ERROR),
                    response_templates: BTreeMap::from([(JSON, templates.error.as_str().into())]),
                },
            ],
        },
        method_responses,
    }
}

/// The CORS headers every answer of a method may carry (its response templates set them).
fn cors_headers() -> BTreeMap<&'static str, bool> {
    [
        "method.response.header.Access-Control-Allow-Origin",
        "method.response.header.Access-Control-Expose-Headers",
        "method.response.header.Vary",
    ]
    .into_iter()
    .map(|header| (header, false))
    .collect()
}

/// `OPTIONS`: a browser's preflight. No key (a browser sends none on a preflight), no
/// call to the table: a mock integration whose request template picks 204 or 403.
fn preflight(
    api_id: &Expr,
    resource: &Logical,
    allowed: &str,
    templates: &MappingTemplates,
) -> Method {
    let preflight_headers: BTreeMap<&'static str, bool> = [
        "method.response.header.Access-Control-Allow-Origin",
        "method.response.header.Access-Control-Allow-Methods",
        "method.response.header.Access-Control-Allow-Headers",
        "method.response.header.Access-Control-Max-Age",
        "method.response.header.Vary",
    ]
    .into_iter()
    .map(|header| (header, false))
    .collect();
    Method {
        rest_api_id: api_id.clone(),
        resource_id: resource.r#ref(),
        http_method: "OPTIONS",
        authorization_type: "NONE",
        api_key_required: false,
        request_validator_id: None,
        request_parameters: BTreeMap::new(),
        request_models: BTreeMap::new(),
        integration: Integration {
            kind: "MOCK",
            integration_http_method: None,
            uri: None,
            credentials: None,
            // A preflight has no body and no Content-Type: API Gateway takes the JSON
            // template for it.
            passthrough_behavior: "NEVER",
            request_templates: BTreeMap::from([(
                JSON,
                templates.preflight_request.as_str().into(),
            )]),
            integration_responses: vec![
                IntegrationResponse {
                    status_code: "204".into(),
                    selection_pattern: None,
                    response_templates: BTreeMap::from([(JSON, allowed.into())]),
                },
                IntegrationResponse {
                    status_code: "403".into(),
                    selection_pattern: Some("403"),
                    response_templates: BTreeMap::from([(
                        JSON,
                        templates.preflight_refused.as_str().into(),
                    )]),
                },
            ],
        },
        method_responses: vec![
            MethodResponse {
                status_code: "204".into(),
                response_parameters: preflight_headers,
            },
            MethodResponse {
                status_code: "403".into(),
                response_parameters: BTreeMap::from([("method.response.header.Vary", false)]),
            },
        ],
    }
}

/// What API Gateway answers when the request model refuses a body, whichever of its rules
/// the body broke (the validator's verdict does not say).
fn model_refusal() -> String {
    format!(
        "the request body is not a JSON object with at least one field, or has a number \
         beyond {LARGEST_NUMBER} in magnitude: send a JSON object such as {{\"key\": \"value\"}}"
    )
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust versions, unlike std's.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use storefirst_domain::StreamSettings;

    use super::*;

    #[test]
    fn the_deployment_id_covers_everything_a_deployment_snapshots() {
        let template = crate::stack::stack(&StreamSettings::DEFAULT);
        let snapshot = snapshot(&template);
        let mut covered = Vec::new();
        for (id, resource) in template.resources() {
            let kind = resource.kind();
            let part = json!([id, resource]).to_string();
            if kind.starts_with("AWS::ApiGateway::") && snapshot.contains(&part) {
                covered.push(id.as_str());
            }
        }
        for id in [
            "Api",
            "ApiRequestsResource",
            "ApiRequestResource",
            "ApiValidator",
            "ApiRequestModel",
            "ApiPostMethod",
            "ApiPutMethod",
            "ApiGetMethod",
            "ApiRequestsOptionsMethod",
            "ApiRequestOptionsMethod",
            "ApiBadBodyResponse",
            "ApiDefault4xxResponse",
            "ApiDefault5xxResponse",
        ] {
            assert!(
                covered.contains(&id),
                "{id} is not in the deployment's hash"
            );
        }
        assert!(
            !covered.iter().any(|id| id.starts_with("ApiDeployment")),
            "the deployment cannot hash itself"
        );
    }
}
