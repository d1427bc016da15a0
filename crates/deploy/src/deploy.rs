//! The app's deploy, diff and destroy: what `cargo xtask deploy | diff | destroy` run, on top
//! of [`change_set`] and [`stack`]; [`prepare`] is the part deploy and diff share.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde_json::Value;

use crate::{
    Asset, Aws, Change, Console, Error, RequireApproval,
    assets::{Staged, put_if_absent},
    aws::failed,
    bootstrap,
    change_set::{self, Outcome, Plan},
    changes,
    review::Review,
    stack,
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
    /// Replacing or removing a table or queue, and the security changes `require_approval`
    /// asks about, go ahead without asking.
    pub yes: bool,
    /// Which security changes need approval (`--require-approval`).
    pub require_approval: RequireApproval,
    /// The role CloudFormation creates, updates and deletes the stack's resources as
    /// (`cdk deploy --role-arn`); without it, the caller's own permissions.
    pub execution_role: Option<String>,
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

/// Like `cdk deploy`: bootstrap, upload the assets that are not there yet, then create and
/// execute a change set unless the deployed template and parameters are already these.
pub async fn deploy(
    aws: &Aws,
    deployment: &Deployment,
    console: &Console,
) -> Result<Deployed, Error> {
    // Local problems (an unbuilt zip) and a stack that cannot be updated fail before
    // anything is created or uploaded.
    let staged = stage(deployment)?;
    stack::clear_failed_create(
        aws,
        &deployment.stack,
        deployment.execution_role.as_deref(),
        deployment.yes,
        console,
    )
    .await?;
    let prepared = prepare(aws, deployment, &staged, Intent::Deploy, console).await?;
    let applied = change_set::apply(aws, &prepared.plan(deployment), console).await?;
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

/// What [`diff`] found: the change set's resources (empty for `security_only`) and what
/// the templates say changes.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    pub changes: Vec<Change>,
    pub review: Review,
}

/// The changes a deploy would show, without executing anything or uploading an asset (a
/// template too large to send inline goes to the assets bucket for the change set); with
/// `security_only`, just the security section, from the templates alone (no change set,
/// no bootstrap stack, no assets).
pub async fn diff(
    aws: &Aws,
    deployment: &Deployment,
    security_only: bool,
    console: &Console,
) -> Result<Diff, Error> {
    let staged = if security_only {
        Vec::new()
    } else {
        stage(deployment)?
    };
    let current = match stack::describe(aws, &deployment.stack).await? {
        Some(current)
            if current.status != "REVIEW_IN_PROGRESS" && current.status != stack::FAILED_CREATE =>
        {
            current
        }
        current => {
            let diff = Diff {
                changes: changes::all_added(&deployment.template),
                review: Review::between(None, &deployment.template, &deployment.parameters),
            };
            console.say(match current {
                Some(current) if current.status == stack::FAILED_CREATE => format!(
                    "{} is {}: deploy deletes it and creates it again",
                    deployment.stack,
                    stack::FAILED_CREATE
                ),
                _ => format!("{} does not exist yet", deployment.stack),
            });
            console.say(diff.report(&deployment.stack, security_only));
            return Ok(diff);
        }
    };
    stack::check_deployable(&deployment.stack, &current)?;
    if security_only {
        let deployed = stack::deployed_template(aws, &deployment.stack)
            .await?
            .unwrap_or_else(|| Value::Object(Default::default()));
        let diff = Diff {
            changes: Vec::new(),
            review: Review::between(
                Some((&deployed, &current.parameters)),
                &deployment.template,
                &deployment.parameters,
            ),
        };
        console.say(diff.report(&deployment.stack, true));
        return Ok(diff);
    }
    let prepared = prepare(aws, deployment, &staged, Intent::Diff, console).await?;
    let plan = prepared.plan(deployment);
    let Some(proposal) = change_set::propose(aws, &plan, Some(&current), console).await? else {
        return Ok(Diff::default());
    };
    change_set::delete(aws, &proposal.id).await?;
    let diff = Diff {
        changes: proposal.changes,
        review: proposal.review,
    };
    console.say(diff.report(&deployment.stack, false));
    Ok(diff)
}

impl Diff {
    fn report(&self, stack: &str, security_only: bool) -> String {
        if security_only {
            self.review.security_report(stack)
        } else {
            self.review.report(stack, &self.changes)
        }
    }
}

/// Each asset read and named by its content: an unbuilt zip fails before anything else.
fn stage(deployment: &Deployment) -> Result<Vec<Staged>, Error> {
    deployment.assets.iter().map(Asset::stage).collect()
}

/// Whether [`prepare`] may change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    /// Creates or updates the bootstrap stack and uploads the assets it lacks.
    Deploy,
    /// Only reads: the bootstrap stack must exist already.
    Diff,
}

/// What the change set for a deployment is made from.
struct Prepared {
    /// The assets bucket, which also takes a template too large to send inline.
    bucket: String,
    /// The given parameters, and the bucket's name and each asset's key.
    parameters: BTreeMap<String, String>,
}

impl Prepared {
    fn plan<'a>(&'a self, deployment: &'a Deployment) -> Plan<'a> {
        Plan {
            stack: &deployment.stack,
            template: &deployment.template,
            parameters: &self.parameters,
            template_bucket: Some(&self.bucket),
            yes: deployment.yes,
            require_approval: deployment.require_approval,
            execution_role: deployment.execution_role.as_deref(),
        }
    }
}

/// What deploy and diff both do before a change set: the bootstrap stack's bucket, the
/// assets in it (uploaded by a deploy when absent), and the parameters that name them.
async fn prepare(
    aws: &Aws,
    deployment: &Deployment,
    staged: &[Staged],
    intent: Intent,
    console: &Console,
) -> Result<Prepared, Error> {
    let bucket = match intent {
        Intent::Deploy => {
            bootstrap::ensure(
                aws,
                &deployment.bootstrap_stack,
                deployment.execution_role.is_some(),
                deployment.yes,
                deployment.require_approval,
                console,
            )
            .await?
        }
        Intent::Diff => bootstrap::find(aws, &deployment.bootstrap_stack)
            .await?
            .ok_or_else(|| Error::NoBootstrap(deployment.bootstrap_stack.clone()))?,
    };
    let mut parameters = deployment.parameters.clone();
    if let Some(name) = &deployment.bucket_parameter {
        parameters.insert(name.clone(), bucket.clone());
    }
    for asset in staged {
        if intent == Intent::Deploy {
            put_if_absent(
                aws,
                &bucket,
                &asset.key,
                &asset.bytes,
                &asset.label,
                console,
            )
            .await?;
        }
        parameters.insert(asset.parameter.clone(), asset.key.clone());
    }
    Ok(Prepared { bucket, parameters })
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
