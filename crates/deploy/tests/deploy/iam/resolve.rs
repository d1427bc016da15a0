//! The three templates with their intrinsic functions resolved as CloudFormation would in
//! one account and region (partition `aws`, `us-east-1`, account 123456789012): a `Ref` or
//! `GetAtt` of a resource becomes the name, id or ARN that resource type has, so the
//! policies read as IAM evaluates them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use storefirst_infra::ci_role;

pub const PARTITION: &str = "aws";
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
/// The CI role stack's repository.
const REPO: &str = "octo-org/storefirst";

/// A template as one stack name deploys it.
pub struct Stack {
    pub name: &'static str,
    template: Value,
    conditions: BTreeMap<String, bool>,
}

/// One resource with its properties resolved.
pub struct Resource {
    pub id: String,
    pub kind: String,
    pub properties: Value,
    /// The ARNs IAM authorizes calls on this resource against (an inline policy's are its
    /// roles').
    pub arns: Vec<String>,
}

/// One policy document, resolved, and where it is.
pub struct Policy {
    pub location: String,
    pub document: Value,
}

impl Stack {
    /// The app stack, as `cargo xtask deploy` deploys it (`--stack storefirst`).
    pub fn app() -> Self {
        let text = storefirst_infra::synthesize().unwrap_or_else(|e| panic!("{e}"));
        Self::new("storefirst", serde_json::from_str(&text).expect("JSON"))
    }

    pub fn ci_role() -> Self {
        let template = ci_role::ci_role_template(REPO)
            .expect("a valid repository")
            .to_json()
            .unwrap_or_else(|e| panic!("{e:?}"));
        Self::new(ci_role::DEFAULT_STACK, template)
    }

    pub fn bootstrap() -> Self {
        Self::new(
            storefirst_deploy::bootstrap::DEFAULT_STACK,
            storefirst_deploy::bootstrap::template(),
        )
    }

    fn new(name: &'static str, template: Value) -> Self {
        let mut stack = Stack {
            name,
            template,
            conditions: BTreeMap::new(),
        };
        let conditions = stack.template["Conditions"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        // Conditions name only parameters and earlier conditions.
        for (name, condition) in &conditions {
            let value = stack.condition(condition, &conditions);
            stack.conditions.insert(name.clone(), value);
        }
        stack
    }

    /// The resources CloudFormation creates with the parameters' defaults (or the values
    /// `deploy` passes).
    pub fn resources(&self) -> Vec<Resource> {
        self.raw_resources()
            .filter(|(_, r)| r["Condition"].as_str().is_none_or(|c| self.conditions[c]))
            .map(|(id, raw)| Resource {
                id: id.clone(),
                kind: kind(raw).to_owned(),
                properties: self.resolve(&raw["Properties"]).unwrap_or(Value::Null),
                arns: self.arns(id),
            })
            .collect()
    }

    /// Every policy of the stack: roles' trust and inline policies, `AWS::IAM::Policy`
    /// documents and bucket policies.
    pub fn policies(&self) -> Vec<Policy> {
        let mut found = Vec::new();
        for resource in self.resources() {
            let at = |what: &str| format!("{}/{}{what}", self.name, resource.id);
            let properties = &resource.properties;
            match resource.kind.as_str() {
                "AWS::IAM::Role" => {
                    found.push(Policy {
                        location: at(" trust policy"),
                        document: properties["AssumeRolePolicyDocument"].clone(),
                    });
                    for policy in properties["Policies"].as_array().into_iter().flatten() {
                        found.push(Policy {
                            location: at(&format!(" policy {}", policy["PolicyName"])),
                            document: policy["PolicyDocument"].clone(),
                        });
                    }
                }
                "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::S3::BucketPolicy" => found
                    .push(Policy {
                        location: at(""),
                        document: properties["PolicyDocument"].clone(),
                    }),
                _ => {}
            }
        }
        found
    }

    fn raw_resources(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.template["Resources"]
            .as_object()
            .expect("resources")
            .iter()
    }

    fn raw(&self, id: &str) -> &Value {
        let raw = &self.template["Resources"][id];
        assert!(raw.is_object(), "{}: no resource {id}", self.name);
        raw
    }

    /// A property of a resource, resolved; `Null` when absent.
    fn property(&self, id: &str, name: &str) -> Value {
        self.resolve(&self.raw(id)["Properties"][name])
            .unwrap_or(Value::Null)
    }

    fn text(&self, id: &str, name: &str) -> String {
        match self.property(id, name) {
            Value::String(text) => text,
            other => panic!("{}: {id}.{name} is {other}, not a string", self.name),
        }
    }

    /// The resource's explicit name, or the one CloudFormation generates: the stack name,
    /// the logical id and a random suffix.
    fn name(&self, id: &str, property: &str) -> String {
        match self.property(id, property) {
            Value::String(name) => name,
            _ => format!("{}-{id}-{}", self.name, token(id, 12).to_uppercase()),
        }
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:{PARTITION}:{service}:{REGION}:{ACCOUNT}:{resource}")
    }

    fn rest_api_path(&self, id: &str, rest: &str) -> String {
        let api = self.text(id, "RestApiId");
        self.arn_apigateway(&format!("/restapis/{api}/{rest}"))
    }

    fn arn_apigateway(&self, path: &str) -> String {
        format!("arn:{PARTITION}:apigateway:{REGION}::{path}")
    }

    /// What `Ref` of the resource answers.
    fn reference(&self, id: &str) -> String {
        match kind(self.raw(id)) {
            "AWS::DynamoDB::Table" => self.name(id, "TableName"),
            "AWS::Lambda::Function" => self.name(id, "FunctionName"),
            "AWS::Logs::LogGroup" => self.name(id, "LogGroupName"),
            "AWS::CloudWatch::Alarm" => self.name(id, "AlarmName"),
            "AWS::CloudWatch::Dashboard" => self.name(id, "DashboardName"),
            "AWS::IAM::Role" => self.name(id, "RoleName"),
            "AWS::SQS::Queue" => format!(
                "https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{}",
                self.name(id, "QueueName")
            ),
            "AWS::S3::Bucket" => self.name(id, "BucketName").to_lowercase(),
            "AWS::IAM::OIDCProvider" => {
                let url = self.text(id, "Url");
                format!(
                    "arn:{PARTITION}:iam::{ACCOUNT}:oidc-provider/{}",
                    url.trim_start_matches("https://")
                )
            }
            "AWS::Lambda::EventSourceMapping" => {
                let hex = token(id, 32);
                format!(
                    "{}-{}-{}-{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                )
            }
            // A secret's ARN: its name, a hyphen and six random characters.
            "AWS::SecretsManager::Secret" => self.arn(
                "secretsmanager",
                &format!("secret:{}-{}", self.name(id, "Name"), &token(id, 6)),
            ),
            "AWS::ApiGateway::Stage" => self.text(id, "StageName"),
            "AWS::ApiGateway::Model" => match self.property(id, "Name") {
                Value::String(name) => name,
                _ => id.to_owned(),
            },
            // API Gateway's ids: ten lowercase letters and digits.
            kind if kind.starts_with("AWS::ApiGateway::") => token(id, 10),
            _ => format!("{}-{id}-{}", self.name, token(id, 12).to_uppercase()),
        }
    }

    /// What `Fn::GetAtt` of the resource answers.
    fn attribute(&self, id: &str, attribute: &str) -> String {
        let name = self.reference(id);
        match (kind(self.raw(id)), attribute) {
            ("AWS::DynamoDB::Table", "Arn") => self.arn("dynamodb", &format!("table/{name}")),
            ("AWS::DynamoDB::Table", "StreamArn") => self.arn(
                "dynamodb",
                &format!("table/{name}/stream/2026-01-01T00:00:00.000"),
            ),
            ("AWS::Lambda::Function", "Arn") => self.arn("lambda", &format!("function:{name}")),
            ("AWS::Logs::LogGroup", "Arn") => self.arn("logs", &format!("log-group:{name}:*")),
            ("AWS::CloudWatch::Alarm", "Arn") => self.arn("cloudwatch", &format!("alarm:{name}")),
            ("AWS::IAM::Role", "Arn") => format!("arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"),
            ("AWS::SQS::Queue", "Arn") => {
                self.arn("sqs", name.rsplit('/').next().expect("a queue name"))
            }
            ("AWS::SQS::Queue", "QueueName") => {
                name.rsplit('/').next().expect("a queue name").to_owned()
            }
            ("AWS::S3::Bucket", "Arn") => format!("arn:{PARTITION}:s3:::{name}"),
            ("AWS::ApiGateway::RestApi", "RootResourceId") => token(&format!("{id}/"), 10),
            (kind, attribute) => panic!(
                "{}: GetAtt {id}.{attribute} of a {kind}: give it its shape in iam/resolve.rs",
                self.name
            ),
        }
    }

    /// The ARNs IAM authorizes calls on the resource against.
    fn arns(&self, id: &str) -> Vec<String> {
        let reference = self.reference(id);
        let single = match kind(self.raw(id)) {
            "AWS::DynamoDB::Table"
            | "AWS::Lambda::Function"
            | "AWS::CloudWatch::Alarm"
            | "AWS::IAM::Role"
            | "AWS::SQS::Queue"
            | "AWS::S3::Bucket" => self.attribute(id, "Arn"),
            "AWS::Logs::LogGroup" => self.arn("logs", &format!("log-group:{reference}")),
            "AWS::Lambda::EventSourceMapping" => {
                self.arn("lambda", &format!("event-source-mapping:{reference}"))
            }
            "AWS::IAM::OIDCProvider" | "AWS::SecretsManager::Secret" => reference,
            // Dashboards belong to the account, not to a region.
            "AWS::CloudWatch::Dashboard" => {
                format!("arn:{PARTITION}:cloudwatch::{ACCOUNT}:dashboard/{reference}")
            }
            "AWS::IAM::Policy" => {
                return self
                    .property(id, "Roles")
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|role| {
                        format!(
                            "arn:{PARTITION}:iam::{ACCOUNT}:role/{}",
                            role.as_str().expect("a role name")
                        )
                    })
                    .collect();
            }
            "AWS::S3::BucketPolicy" => {
                format!("arn:{PARTITION}:s3:::{}", self.text(id, "Bucket"))
            }
            "AWS::ApiGateway::RestApi" => self.arn_apigateway(&format!("/restapis/{reference}")),
            "AWS::ApiGateway::Resource" => {
                self.rest_api_path(id, &format!("resources/{reference}"))
            }
            "AWS::ApiGateway::Method" => self.rest_api_path(
                id,
                &format!(
                    "resources/{}/methods/{}",
                    self.text(id, "ResourceId"),
                    self.text(id, "HttpMethod")
                ),
            ),
            "AWS::ApiGateway::Model" => self.rest_api_path(id, &format!("models/{reference}")),
            "AWS::ApiGateway::RequestValidator" => {
                self.rest_api_path(id, &format!("requestvalidators/{reference}"))
            }
            "AWS::ApiGateway::GatewayResponse" => self.rest_api_path(
                id,
                &format!("gatewayresponses/{}", self.text(id, "ResponseType")),
            ),
            "AWS::ApiGateway::Deployment" => {
                self.rest_api_path(id, &format!("deployments/{reference}"))
            }
            "AWS::ApiGateway::Stage" => self.rest_api_path(id, &format!("stages/{reference}")),
            "AWS::ApiGateway::ApiKey" => self.arn_apigateway(&format!("/apikeys/{reference}")),
            "AWS::ApiGateway::UsagePlan" => {
                self.arn_apigateway(&format!("/usageplans/{reference}"))
            }
            "AWS::ApiGateway::UsagePlanKey" => self.arn_apigateway(&format!(
                "/usageplans/{}/keys/{}",
                self.text(id, "UsagePlanId"),
                self.text(id, "KeyId")
            )),
            "AWS::ApiGateway::Account" => self.arn_apigateway("/account"),
            kind => panic!(
                "{}: {id} is a {kind}: give it its ARN shape in iam/resolve.rs",
                self.name
            ),
        };
        vec![single]
    }

    fn parameter(&self, name: &str) -> String {
        let parameter = &self.template["Parameters"][name];
        assert!(parameter.is_object(), "{}: no parameter {name}", self.name);
        if let Some(default) = parameter["Default"].as_str() {
            return default.to_owned();
        }
        // What `deploy` passes for the parameters without a default.
        match name {
            "ArtifactBucket" | ci_role::ASSETS_BUCKET => {
                "storefirst-bootstrap-assetsbucket-1a2b3c4d5e6f".to_owned()
            }
            "StreamProcessorKey" => "stream-processor/0123456789abcdef.zip".to_owned(),
            "NotifierKey" => "notifier/fedcba9876543210.zip".to_owned(),
            _ => panic!(
                "{}: parameter {name} has no default: give it a realistic value in iam/resolve.rs",
                self.name
            ),
        }
    }

    fn pseudo(&self, name: &str) -> Option<String> {
        Some(match name {
            "AWS::Partition" => PARTITION.to_owned(),
            "AWS::Region" => REGION.to_owned(),
            "AWS::AccountId" => ACCOUNT.to_owned(),
            "AWS::StackName" => self.name.to_owned(),
            "AWS::URLSuffix" => "amazonaws.com".to_owned(),
            _ => return None,
        })
    }

    /// `Ref` of a pseudo parameter, parameter or resource.
    fn get_ref(&self, name: &str) -> String {
        if let Some(value) = self.pseudo(name) {
            value
        } else if self.template["Parameters"][name].is_object() {
            self.parameter(name)
        } else {
            self.reference(name)
        }
    }

    fn sub(&self, text: &str, variables: &Map<String, Value>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("a closed ${") + start;
            let name = &rest[start + 2..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
            } else if let Some(value) = variables.get(name) {
                out.push_str(
                    self.resolve(value)
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .as_deref()
                        .expect("a string variable"),
                );
            } else if let Some((id, attribute)) = name.split_once('.') {
                out.push_str(&self.attribute(id, attribute));
            } else {
                out.push_str(&self.get_ref(name));
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn condition(&self, condition: &Value, all: &Map<String, Value>) -> bool {
        let (function, arguments) = single(condition).expect("a condition function");
        let items = arguments.as_array();
        match function {
            "Fn::Equals" => {
                let items = items.expect("two values");
                self.resolve(&items[0]) == self.resolve(&items[1])
            }
            "Fn::Not" => !self.condition(&items.expect("one condition")[0], all),
            "Fn::And" => items
                .expect("conditions")
                .iter()
                .all(|c| self.condition(c, all)),
            "Fn::Or" => items
                .expect("conditions")
                .iter()
                .any(|c| self.condition(c, all)),
            "Condition" => {
                let name = arguments.as_str().expect("a condition name");
                self.conditions
                    .get(name)
                    .copied()
                    .unwrap_or_else(|| self.condition(&all[name], all))
            }
            other => panic!(
                "{}: condition function {other} is not resolved here",
                self.name
            ),
        }
    }

    /// The value as CloudFormation hands it to the resource; `None` for `AWS::NoValue`.
    pub fn resolve(&self, value: &Value) -> Option<Value> {
        match value {
            Value::Array(items) => Some(Value::Array(
                items.iter().filter_map(|v| self.resolve(v)).collect(),
            )),
            Value::Object(object) => {
                let Some((function, arguments)) = single(value) else {
                    return Some(Value::Object(
                        object
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), self.resolve(v)?)))
                            .collect(),
                    ));
                };
                let text = |s: String| Some(Value::String(s));
                match function {
                    "Ref" if arguments == "AWS::NoValue" => None,
                    "Ref" => text(self.get_ref(arguments.as_str().expect("a name"))),
                    "Fn::GetAtt" => {
                        let items = arguments.as_array().expect("[id, attribute]");
                        text(self.attribute(
                            items[0].as_str().expect("an id"),
                            items[1].as_str().expect("an attribute"),
                        ))
                    }
                    "Fn::Sub" => match arguments {
                        Value::String(template) => text(self.sub(template, &Map::new())),
                        Value::Array(items) => text(self.sub(
                            items[0].as_str().expect("a template"),
                            items[1].as_object().expect("variables"),
                        )),
                        other => panic!("Fn::Sub of {other}"),
                    },
                    "Fn::If" => {
                        let items = arguments.as_array().expect("[condition, then, else]");
                        let name = items[0].as_str().expect("a condition name");
                        self.resolve(&items[if self.conditions[name] { 1 } else { 2 }])
                    }
                    "Fn::Join" => {
                        let items = arguments.as_array().expect("[separator, values]");
                        let values = self.resolve(&items[1]).expect("values");
                        text(
                            values
                                .as_array()
                                .expect("a list")
                                .iter()
                                .map(|v| v.as_str().expect("a string").to_owned())
                                .collect::<Vec<_>>()
                                .join(items[0].as_str().expect("a separator")),
                        )
                    }
                    other if other.starts_with("Fn::") => {
                        panic!("{}: {other} is not resolved here: add it", self.name)
                    }
                    // A plain one-key object (a condition block, a tag).
                    _ => Some(Value::Object(
                        object
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), self.resolve(v)?)))
                            .collect(),
                    )),
                }
            }
            other => Some(other.clone()),
        }
    }
}

fn kind(raw: &Value) -> &str {
    raw["Type"].as_str().expect("a resource type")
}

/// The function and arguments of a one-key object.
fn single(value: &Value) -> Option<(&str, &Value)> {
    let object = value.as_object()?;
    let (key, arguments) = object.iter().next()?;
    (object.len() == 1).then_some((key.as_str(), arguments))
}

/// A stable lowercase hex token of `len` characters for `seed`: the random parts of names
/// and ids.
fn token(seed: &str, len: usize) -> String {
    let mut out = String::new();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    while out.len() < len {
        for byte in seed.bytes().chain(out.clone().into_bytes()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
        out.push_str(&format!("{hash:016x}"));
    }
    out.truncate(len);
    out
}
