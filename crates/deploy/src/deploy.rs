//! The deploy, diff and destroy flows, composed from the CloudFormation and S3 steps.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use aws_sdk_cloudformation::types::{ChangeSetType, Parameter};
use serde_json::Value;

use crate::{
    Asset, Aws, Change, Console, Error, INLINE_TEMPLATE_LIMIT,
    assets::{put_if_absent, sha256_hex},
    aws::failed,
    bootstrap, changes,
    stack::{self, Current, TemplateSource},
};

/// Everything a deploy of one stack needs.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub stack: String,
    pub template: Value,
    /// Values for the template's parameters; the others keep their deployed value, or
    /// take their default on the first deploy.
    pub parameters: BTreeMap<String, String>,
    /// The parameter that receives the assets bucket's name, if the template takes it.
    pub bucket_parameter: Option<String>,
    pub assets: Vec<Asset>,
    pub bootstrap_stack: String,
    /// Where `<stack>-outputs.json` is written.
    pub outputs_dir: PathBuf,
    /// Replacing or removing a table or queue goes ahead without asking.
    pub yes: bool,
    /// The role CloudFormation creates, updates and deletes the stack's resources as
    /// (`cdk deploy --role-arn`); without it, the caller's own permissions.
    pub execution_role: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    NoChanges,
    /// A change set was executed.
    Executed,
}

#[derive(Debug, Clone)]
pub struct Deployed {
    pub outcome: Outcome,
    pub outputs: BTreeMap<String, String>,
    pub outputs_file: PathBuf,
}

/// `<outputs_dir>/<stack>-outputs.json`, which `test-e2e` reads.
pub fn outputs_path(outputs_dir: &Path, stack: &str) -> PathBuf {
    outputs_dir.join(format!("{stack}-outputs.json"))
}

/// One stack, one template: what [`apply`] works on.
pub(crate) struct Plan<'a> {
    pub stack: &'a str,
    pub template: &'a Value,
    pub parameters: &'a BTreeMap<String, String>,
    /// Where a template too large to send inline goes.
    pub template_bucket: Option<&'a str>,
    pub yes: bool,
    pub execution_role: Option<&'a str>,
}

pub(crate) struct Applied {
    pub outcome: Outcome,
    pub current: Current,
}

/// Like `cdk deploy`: bootstrap, upload the assets that are not there yet, then create and
/// execute a change set unless the deployed template and parameters are already these.
pub async fn deploy(
    aws: &Aws,
    deployment: &Deployment,
    console: &Console,
) -> Result<Deployed, Error> {
    // Local problems (an unbuilt zip) and a stack that cannot be updated fail before
    // anything is created or uploaded.
    let staged = deployment
        .assets
        .iter()
        .map(Asset::stage)
        .collect::<Result<Vec<_>, _>>()?;
    let execution_role = deployment.execution_role.as_deref();
    clear_failed_create(
        aws,
        &deployment.stack,
        execution_role,
        deployment.yes,
        console,
    )
    .await?;
    let bucket = bootstrap::ensure(
        aws,
        &deployment.bootstrap_stack,
        execution_role.is_some(),
        deployment.yes,
        console,
    )
    .await?;
    let mut parameters = deployment.parameters.clone();
    if let Some(name) = &deployment.bucket_parameter {
        parameters.insert(name.clone(), bucket.clone());
    }
    for asset in &staged {
        put_if_absent(
            aws,
            &bucket,
            &asset.key,
            &asset.bytes,
            &asset.label,
            console,
        )
        .await?;
        parameters.insert(asset.parameter.clone(), asset.key.clone());
    }
    let plan = Plan {
        stack: &deployment.stack,
        template: &deployment.template,
        parameters: &parameters,
        template_bucket: Some(&bucket),
        yes: deployment.yes,
        execution_role,
    };
    let applied = apply(aws, &plan, console).await?;
    let outputs_file = outputs_path(&deployment.outputs_dir, &deployment.stack);
    write_outputs(&outputs_file, &deployment.stack, &applied.current.outputs)?;
    console.say(format!("outputs of {}:", deployment.stack));
    if applied.current.outputs.is_empty() {
        console.say("  (CloudFormation reported none)");
    }
    for (key, value) in &applied.current.outputs {
        console.say(format!("  {key} = {value}"));
    }
    console.say(format!("written to {}", outputs_file.display()));
    Ok(Deployed {
        outcome: applied.outcome,
        outputs: applied.current.outputs,
        outputs_file,
    })
}

/// The change summary a deploy would show, without executing (or uploading) anything.
pub async fn diff(
    aws: &Aws,
    deployment: &Deployment,
    console: &Console,
) -> Result<Vec<Change>, Error> {
    let staged = deployment
        .assets
        .iter()
        .map(Asset::stage)
        .collect::<Result<Vec<_>, _>>()?;
    let current = match stack::describe(aws, &deployment.stack).await? {
        Some(current)
            if current.status != "REVIEW_IN_PROGRESS" && current.status != stack::FAILED_CREATE =>
        {
            current
        }
        current => {
            let changes = changes::all_added(&deployment.template);
            console.say(match current {
                Some(current) if current.status == stack::FAILED_CREATE => format!(
                    "{} is {}: deploy deletes it and creates it again",
                    deployment.stack,
                    stack::FAILED_CREATE
                ),
                _ => format!("{} does not exist yet", deployment.stack),
            });
            console.say(changes::summary(&deployment.stack, &changes));
            return Ok(changes);
        }
    };
    stack::check_deployable(&deployment.stack, &current)?;
    let bucket = bootstrap::find(aws, &deployment.bootstrap_stack)
        .await?
        .ok_or_else(|| Error::NoBootstrap(deployment.bootstrap_stack.clone()))?;
    let mut parameters = deployment.parameters.clone();
    if let Some(name) = &deployment.bucket_parameter {
        parameters.insert(name.clone(), bucket.clone());
    }
    for asset in &staged {
        parameters.insert(asset.parameter.clone(), asset.key.clone());
    }
    let plan = Plan {
        stack: &deployment.stack,
        template: &deployment.template,
        parameters: &parameters,
        template_bucket: Some(&bucket),
        yes: false,
        execution_role: deployment.execution_role.as_deref(),
    };
    let Some(proposal) = propose(aws, &plan, Some(&current), console).await? else {
        console.say(format!("{}: no changes", deployment.stack));
        return Ok(Vec::new());
    };
    stack::delete_change_set(aws, &proposal.id).await?;
    console.say(changes::summary(&deployment.stack, &proposal.changes));
    Ok(proposal.changes)
}

/// Makes the stack `name` deployable or refuses: a stack whose first create failed (see
/// [`stack::FAILED_CREATE`]) is deleted, as `execution_role`, once approved (`yes`, or asked
/// at a terminal), so that the deploy creates it again; any other state that cannot be
/// updated is an error that says what to do.
pub(crate) async fn clear_failed_create(
    aws: &Aws,
    name: &str,
    execution_role: Option<&str>,
    yes: bool,
    console: &Console,
) -> Result<(), Error> {
    let Some(current) = stack::describe(aws, name).await? else {
        return Ok(());
    };
    if current.status != stack::FAILED_CREATE {
        return stack::check_deployable(name, &current);
    }
    let what = format!(
        "{name} is {}: its first create failed, and such a stack can only be deleted and \
         created again",
        current.status
    );
    if !yes && !console.confirm(&format!("{what}. Delete it and create it again?")) {
        return Err(Error::NotApproved { what });
    }
    stack::delete(aws, name, &current.id, execution_role, console).await?;
    console.say(format!(
        "{name}: deleted the stack its failed first create left; creating it again"
    ));
    Ok(())
}

/// Creates or updates one stack from `plan` and follows it until it settles.
pub(crate) async fn apply(aws: &Aws, plan: &Plan<'_>, console: &Console) -> Result<Applied, Error> {
    let current = stack::describe(aws, plan.stack).await?;
    if let Some(current) = &current {
        stack::check_deployable(plan.stack, current)?;
    }
    let Some(proposal) = propose(aws, plan, current.as_ref(), console).await? else {
        console.say(format!("{}: no changes", plan.stack));
        let current = current.expect("only a deployed stack can be unchanged");
        return Ok(Applied {
            outcome: Outcome::NoChanges,
            current,
        });
    };
    console.say(changes::summary(plan.stack, &proposal.changes));
    let destructive: Vec<String> = proposal
        .changes
        .iter()
        .filter(|c| c.is_destructive())
        .map(|c| format!("{} ({})", c.logical_id, c.resource_type))
        .collect();
    if !destructive.is_empty() && !plan.yes {
        let what = format!(
            "the change set for {} replaces or removes {}, and their data or messages with them",
            plan.stack,
            destructive.join(", ")
        );
        if !console.confirm(&format!("{what}. Deploy anyway?")) {
            stack::delete_change_set(aws, &proposal.id).await?;
            return Err(Error::NotApproved { what });
        }
    }
    let marker = stack::newest_event(aws, &proposal.stack_id).await?;
    aws.cloudformation
        .execute_change_set()
        .change_set_name(&proposal.id)
        .send()
        .await
        .map_err(failed("CloudFormation ExecuteChangeSet"))?;
    let current = stack::follow(
        aws,
        plan.stack,
        &proposal.stack_id,
        marker,
        proposal.changes.len(),
        console,
    )
    .await?;
    console.say(format!("{}: {}", plan.stack, current.status));
    Ok(Applied {
        outcome: Outcome::Executed,
        current,
    })
}

/// A change set for `plan`, or `None` when the stack already runs this template with these
/// parameters: compared here first, like CDK, so an unchanged deploy creates no change set.
async fn propose(
    aws: &Aws,
    plan: &Plan<'_>,
    current: Option<&Current>,
    console: &Console,
) -> Result<Option<stack::Proposal>, Error> {
    let deployed = current.filter(|c| c.status != "REVIEW_IN_PROGRESS");
    let (parameters, effective) = resolve_parameters(plan.template, plan.parameters, deployed)?;
    let kind = match deployed {
        Some(deployed) => {
            if deployed.parameters == effective
                && stack::deployed_template(aws, plan.stack).await?.as_ref() == Some(plan.template)
            {
                return Ok(None);
            }
            ChangeSetType::Update
        }
        None => ChangeSetType::Create,
    };
    let body = crate::body::template_body(plan.template);
    let source = if body.len() <= INLINE_TEMPLATE_LIMIT {
        TemplateSource::Body(body)
    } else {
        let bucket = plan
            .template_bucket
            .ok_or(Error::TemplateTooLarge { size: body.len() })?;
        let key = format!("templates/{}.json", sha256_hex(body.as_bytes()));
        let label = format!("template of {} ({} bytes)", plan.stack, body.len());
        put_if_absent(aws, bucket, &key, body.as_bytes(), &label, console).await?;
        TemplateSource::Url(template_url(aws.region(), bucket, &key))
    };
    let request = stack::ChangeSetRequest {
        stack: plan.stack,
        kind,
        template: source,
        parameters,
        execution_role: plan.execution_role,
    };
    stack::propose(aws, request, console).await
}

fn template_url(region: &str, bucket: &str, key: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{bucket}.s3.{region}.{suffix}/{key}")
}

/// The parameters to send, and the value each will have: the given value, else the
/// deployed one (kept with `UsePreviousValue`), else the template's default.
fn resolve_parameters(
    template: &Value,
    given: &BTreeMap<String, String>,
    deployed: Option<&Current>,
) -> Result<(Vec<Parameter>, BTreeMap<String, String>), Error> {
    let declared = template["Parameters"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if let Some(name) = given.keys().find(|name| !declared.contains_key(*name)) {
        return Err(Error::UnknownParameter {
            name: name.clone(),
            declared: declared.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    }
    let mut send = Vec::new();
    let mut effective = BTreeMap::new();
    for (name, declaration) in &declared {
        let previous = deployed.and_then(|d| d.parameters.get(name));
        let value = if let Some(value) = given.get(name) {
            send.push(
                Parameter::builder()
                    .parameter_key(name)
                    .parameter_value(value)
                    .build(),
            );
            value.clone()
        } else if let Some(previous) = previous {
            send.push(
                Parameter::builder()
                    .parameter_key(name)
                    .use_previous_value(true)
                    .build(),
            );
            previous.clone()
        } else {
            match &declaration["Default"] {
                Value::String(default) => default.clone(),
                Value::Null => return Err(Error::MissingParameter { name: name.clone() }),
                other => other.to_string(),
            }
        };
        effective.insert(name.clone(), value);
    }
    Ok((send, effective))
}

fn write_outputs(
    path: &Path,
    stack: &str,
    outputs: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let file_error = |action| {
        move |source| Error::File {
            action,
            path: path.to_owned(),
            source,
        }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(file_error("create the directory of"))?;
    }
    // The shape `cdk deploy --outputs-file` writes: outputs under the stack's name.
    let json = serde_json::json!({ stack: outputs });
    let text = serde_json::to_string_pretty(&json).expect("JSON values serialize") + "\n";
    std::fs::write(path, text).map_err(file_error("write"))
}

/// Deletes the stack (as `execution_role`, if given) and says which resources it retained
/// and how to remove them.
pub async fn destroy(
    aws: &Aws,
    name: &str,
    execution_role: Option<&str>,
    yes: bool,
    console: &Console,
) -> Result<(), Error> {
    let Some(current) = stack::describe(aws, name).await? else {
        console.say(format!("{name} does not exist: nothing to destroy"));
        return Ok(());
    };
    if current.status.ends_with("_IN_PROGRESS") && current.status != "REVIEW_IN_PROGRESS" {
        return Err(Error::NotDeployable {
            stack: name.to_owned(),
            hint: stack::recovery_hint(name, &current.status),
            status: current.status,
        });
    }
    let retained = retained_resources(aws, name).await?;
    if !yes && !console.confirm(&format!("Delete stack {name}?")) {
        return Err(Error::NotApproved {
            what: format!("destroy deletes the stack {name}"),
        });
    }
    stack::delete(aws, name, &current.id, execution_role, console).await?;
    if !retained.is_empty() {
        console
            .say("retained (DeletionPolicy Retain: a stack delete loses no data); to remove them:");
    }
    for resource in &retained {
        console.say(format!("  {resource}"));
    }
    Ok(())
}

/// A resource the stack keeps on delete.
struct Retained {
    logical_id: String,
    resource_type: String,
    physical_id: String,
}

impl std::fmt::Display for Retained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = &self.physical_id;
        let how = match self.resource_type.as_str() {
            "AWS::DynamoDB::Table" => format!("aws dynamodb delete-table --table-name {id}"),
            "AWS::SQS::Queue" => format!("aws sqs delete-queue --queue-url {id}"),
            "AWS::S3::Bucket" => {
                format!("aws s3 rb s3://{id} --force (versions too: empty it in the console)")
            }
            "AWS::IAM::Role" => {
                format!("detach its policies, then aws iam delete-role --role-name {id}")
            }
            _ => "in the console, if nothing else uses it".to_owned(),
        };
        write!(
            f,
            "{} ({}) {id}: {how}",
            self.logical_id, self.resource_type
        )
    }
}

async fn retained_resources(aws: &Aws, name: &str) -> Result<Vec<Retained>, Error> {
    let Some(template) = stack::deployed_template(aws, name).await? else {
        return Ok(Vec::new());
    };
    let mut retained = Vec::new();
    let mut token = None;
    loop {
        let page = aws
            .cloudformation
            .list_stack_resources()
            .stack_name(name)
            .set_next_token(token)
            .send()
            .await
            .map_err(failed("CloudFormation ListStackResources"))?;
        for resource in page.stack_resource_summaries() {
            let logical_id = resource.logical_resource_id().unwrap_or_default();
            let policy = template["Resources"][logical_id]["DeletionPolicy"].as_str();
            if matches!(policy, Some("Retain" | "RetainExceptOnCreate")) {
                retained.push(Retained {
                    logical_id: logical_id.to_owned(),
                    resource_type: resource.resource_type().unwrap_or_default().to_owned(),
                    // Emulators leave some physical ids empty.
                    physical_id: resource
                        .physical_resource_id()
                        .filter(|id| !id.is_empty())
                        .unwrap_or("(no physical id reported)")
                        .to_owned(),
                });
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    Ok(retained)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template() -> Value {
        json!({"Parameters": {
            "Bucket": {"Type": "String"},
            "Mode": {"Type": "String", "Default": "enabled"},
            "Size": {"Type": "Number", "Default": 3},
        }})
    }

    fn deployed(parameters: &[(&str, &str)]) -> Current {
        Current {
            id: "id".into(),
            status: "UPDATE_COMPLETE".into(),
            reason: None,
            parameters: parameters
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            outputs: BTreeMap::new(),
        }
    }

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_first_deploy_takes_the_given_values_and_the_defaults() {
        let (send, effective) =
            resolve_parameters(&template(), &given(&[("Bucket", "b")]), None).unwrap();
        assert_eq!(send.len(), 1);
        assert_eq!(send[0].parameter_value(), Some("b"));
        assert_eq!(
            effective,
            given(&[("Bucket", "b"), ("Mode", "enabled"), ("Size", "3")])
        );
    }

    #[test]
    fn an_update_keeps_the_deployed_values_it_is_not_given() {
        let stack = deployed(&[("Bucket", "b"), ("Mode", "disabled"), ("Size", "3")]);
        let (send, effective) =
            resolve_parameters(&template(), &given(&[("Bucket", "b")]), Some(&stack)).unwrap();
        let previous: Vec<_> = send
            .iter()
            .filter(|p| p.use_previous_value() == Some(true))
            .filter_map(|p| p.parameter_key())
            .collect();
        assert_eq!(previous, ["Mode", "Size"]);
        assert_eq!(effective, stack.parameters);
    }

    #[test]
    fn unknown_and_missing_parameters_are_refused() {
        let error = resolve_parameters(&template(), &given(&[("Bukcet", "b")]), None)
            .err()
            .unwrap();
        assert!(error.to_string().contains("Bukcet"), "{error}");
        assert!(error.to_string().contains("Bucket, Mode, Size"), "{error}");
        let error = resolve_parameters(&template(), &given(&[]), None)
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("--parameter Bucket=VALUE"),
            "{error}"
        );
    }

    #[test]
    fn large_templates_are_fetched_from_the_regional_bucket() {
        assert_eq!(
            template_url("eu-west-1", "assets", "templates/abc.json"),
            "https://assets.s3.eu-west-1.amazonaws.com/templates/abc.json"
        );
        assert_eq!(
            template_url("cn-north-1", "assets", "t.json"),
            "https://assets.s3.cn-north-1.amazonaws.com.cn/t.json"
        );
    }
}
