//! The change set: one stack and one template ([`Plan`]) made into a change set, approved,
//! executed and followed until the stack settles ([`apply`]); and the one place that decides
//! "no changes" ([`propose`]), for the app stack, the bootstrap stack and `diff` alike.

use std::{
    collections::BTreeMap,
    time::{SystemTime, UNIX_EPOCH},
};

use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, Parameter};
use serde_json::Value;

use crate::{
    Aws, Change, Console, Error, INLINE_TEMPLATE_LIMIT, RequireApproval,
    assets::{put_if_absent, sha256_hex},
    aws::failed,
    review::Review,
    stack::{self, Current},
};

/// One stack, one template: what [`apply`] works on.
pub(crate) struct Plan<'a> {
    pub stack: &'a str,
    pub template: &'a Value,
    pub parameters: &'a BTreeMap<String, String>,
    /// Where a template too large to send inline goes.
    pub template_bucket: Option<&'a str>,
    /// Approves what needs approval: replacing or removing state, and the security changes
    /// `require_approval` asks about.
    pub yes: bool,
    pub require_approval: RequireApproval,
    pub execution_role: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    NoChanges,
    /// A change set was executed.
    Executed,
}

pub(crate) struct Applied {
    pub outcome: Outcome,
    pub current: Current,
}

/// A change set ready to execute.
pub(crate) struct Proposal {
    pub id: String,
    pub stack_id: String,
    pub changes: Vec<Change>,
    pub review: Review,
}

/// Creates or updates one stack from `plan` and follows it until it settles: describe,
/// check, propose, approve, execute, follow.
pub(crate) async fn apply(aws: &Aws, plan: &Plan<'_>, console: &Console) -> Result<Applied, Error> {
    let current = stack::describe(aws, plan.stack).await?;
    if let Some(current) = &current {
        stack::check_deployable(plan.stack, current)?;
    }
    let Some(proposal) = propose(aws, plan, current.as_ref(), console).await? else {
        let current = current.expect("only a deployed stack can be unchanged");
        return Ok(Applied {
            outcome: Outcome::NoChanges,
            current,
        });
    };
    console.say(proposal.review.report(plan.stack, &proposal.changes));
    approve(aws, plan, &proposal, console).await?;
    let current = execute(aws, plan.stack, &proposal, console).await?;
    console.say(format!("{}: {}", plan.stack, current.status));
    Ok(Applied {
        outcome: Outcome::Executed,
        current,
    })
}

/// A change set for `plan`, or `None` (and a "no changes" line) when nothing would change.
/// Three signs say so: the deployed template and parameters are these (compared first, like
/// CDK, so an unchanged deploy creates no change set), or CloudFormation refuses the change
/// set or fails it for holding no changes.
pub(crate) async fn propose(
    aws: &Aws,
    plan: &Plan<'_>,
    current: Option<&Current>,
    console: &Console,
) -> Result<Option<Proposal>, Error> {
    let proposal = match request(aws, plan, current, console).await? {
        Some((request, review)) => {
            create(aws, request, console)
                .await?
                .map(|(id, stack_id, changes)| Proposal {
                    id,
                    stack_id,
                    changes,
                    review,
                })
        }
        None => None,
    };
    if proposal.is_none() {
        console.say(format!("{}: no changes", plan.stack));
    }
    Ok(proposal)
}

/// How the template reaches CloudFormation.
enum TemplateSource {
    Body(String),
    Url(String),
}

/// What one change set is made of.
struct Request<'a> {
    stack: &'a str,
    kind: ChangeSetType,
    template: TemplateSource,
    parameters: Vec<Parameter>,
    execution_role: Option<&'a str>,
}

/// The change set to create for `plan` and what the templates say it changes, or `None`
/// when the stack already runs this template with these parameters. A template too large
/// to send inline is uploaded first.
async fn request<'a>(
    aws: &Aws,
    plan: &Plan<'a>,
    current: Option<&Current>,
    console: &Console,
) -> Result<Option<(Request<'a>, Review)>, Error> {
    let deployed = current.filter(|c| c.status != "REVIEW_IN_PROGRESS");
    let (parameters, effective) = resolve_parameters(plan.template, plan.parameters, deployed)?;
    let (kind, review) = match deployed {
        Some(deployed) => {
            // A template that is not JSON (deployed by something else) compares as empty.
            let template = stack::deployed_template(aws, plan.stack)
                .await?
                .unwrap_or_else(|| Value::Object(Default::default()));
            if deployed.parameters == effective && &template == plan.template {
                return Ok(None);
            }
            let old = Some((&template, &deployed.parameters));
            (
                ChangeSetType::Update,
                Review::between(old, plan.template, &effective),
            )
        }
        None => (
            ChangeSetType::Create,
            Review::between(None, plan.template, &effective),
        ),
    };
    let body = crate::body::template_body(plan.template);
    let template = if body.len() <= INLINE_TEMPLATE_LIMIT {
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
    let request = Request {
        stack: plan.stack,
        kind,
        template,
        parameters,
        execution_role: plan.execution_role,
    };
    Ok(Some((request, review)))
}

/// Creates a change set and waits for it: its id, its stack's id and its changes; `None`
/// when CloudFormation finds no changes in it.
async fn create(
    aws: &Aws,
    request: Request<'_>,
    console: &Console,
) -> Result<Option<(String, String, Vec<Change>)>, Error> {
    let Request {
        stack,
        kind,
        template,
        parameters,
        execution_role,
    } = request;
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let mut request = aws
        .cloudformation
        .create_change_set()
        .stack_name(stack)
        .change_set_name(format!("storefirst-{millis}"))
        .change_set_type(kind.clone())
        .description("cargo xtask deploy")
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .set_parameters(Some(parameters))
        .set_role_arn(execution_role.map(str::to_owned));
    request = match template {
        TemplateSource::Body(body) => request.template_body(body),
        TemplateSource::Url(url) => request.template_url(url),
    };
    console.note(format!(
        "{stack}: creating a change set ({})",
        kind.as_str()
    ));
    let created = match request.send().await {
        Ok(created) => created,
        // One of the two shapes of "nothing changed": refused up front.
        Err(error) if is_no_changes(error.as_service_error().and_then(|e| e.meta().message())) => {
            return Ok(None);
        }
        Err(error) => return Err(failed("CloudFormation CreateChangeSet")(error)),
    };
    let id = created.id().unwrap_or_default().to_owned();
    let stack_id = created.stack_id().unwrap_or_default().to_owned();
    loop {
        console.status(format!("{stack}: waiting for the change set"));
        let described = aws
            .cloudformation
            .describe_change_set()
            .change_set_name(&id)
            .send()
            .await
            .map_err(failed("CloudFormation DescribeChangeSet"))?;
        match described.status() {
            Some(ChangeSetStatus::CreateComplete) => break,
            Some(ChangeSetStatus::Failed) => {
                let reason = described.status_reason().unwrap_or_default().to_owned();
                delete(aws, &id).await?;
                // The other shape: a FAILED change set that "didn't contain changes".
                if is_no_changes(Some(&reason)) {
                    return Ok(None);
                }
                return Err(Error::ChangeSetFailed {
                    stack: stack.to_owned(),
                    reason,
                });
            }
            _ => tokio::time::sleep(stack::POLL).await,
        }
    }
    console.clear_status();
    let changes = changes_of(aws, &id).await?;
    Ok(Some((id, stack_id, changes)))
}

/// The change set's changes, sorted by logical id.
async fn changes_of(aws: &Aws, id: &str) -> Result<Vec<Change>, Error> {
    let mut changes = Vec::new();
    let mut token = None;
    loop {
        let page = aws
            .cloudformation
            .describe_change_set()
            .change_set_name(id)
            .set_next_token(token)
            .send()
            .await
            .map_err(failed("CloudFormation DescribeChangeSet"))?;
        changes.extend(
            page.changes()
                .iter()
                .filter_map(|c| c.resource_change())
                .map(Change::from_resource_change),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    // CloudFormation lists changes in no particular order.
    changes.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
    Ok(changes)
}

fn is_no_changes(reason: Option<&str>) -> bool {
    reason.is_some_and(|r| {
        r.contains("didn't contain changes") || r.contains("No updates are to be performed")
    })
}

/// Replacing or removing a table or queue, and the security changes `plan.require_approval`
/// asks about, go ahead only with `plan.yes` or a yes at a terminal; refused, the change
/// set is deleted and nothing changes. Security changes approved without asking say so.
async fn approve(
    aws: &Aws,
    plan: &Plan<'_>,
    proposal: &Proposal,
    console: &Console,
) -> Result<(), Error> {
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
            delete(aws, &proposal.id).await?;
            return Err(Error::NotApproved { what });
        }
    }
    let security = &proposal.review.security;
    let level = plan.require_approval;
    if security.is_empty() {
        return Ok(());
    }
    if !security.needs_approval(level) {
        console.say(format!(
            "security changes to {}: no approval needed (--require-approval {level})",
            plan.stack
        ));
        return Ok(());
    }
    if plan.yes {
        console.say(format!(
            "security changes to {}: approved by --yes",
            plan.stack
        ));
        return Ok(());
    }
    let what = match level {
        RequireApproval::AnyChange => "changes IAM permissions or the API's authorization",
        _ => "broadens IAM permissions or the API's authorization",
    };
    let question = format!(
        "the change set for {} {what} (security changes above). Deploy anyway?",
        plan.stack
    );
    if console.confirm(&question) {
        return Ok(());
    }
    delete(aws, &proposal.id).await?;
    Err(Error::SecurityNotApproved {
        stack: plan.stack.to_owned(),
        what,
        level,
    })
}

/// Executes the change set and follows the stack's events until it settles.
async fn execute(
    aws: &Aws,
    stack: &str,
    proposal: &Proposal,
    console: &Console,
) -> Result<Current, Error> {
    let marker = stack::newest_event(aws, &proposal.stack_id).await?;
    aws.cloudformation
        .execute_change_set()
        .change_set_name(&proposal.id)
        .send()
        .await
        .map_err(failed("CloudFormation ExecuteChangeSet"))?;
    stack::follow(
        aws,
        stack,
        &proposal.stack_id,
        marker,
        proposal.changes.len(),
        console,
    )
    .await
}

pub(crate) async fn delete(aws: &Aws, id: &str) -> Result<(), Error> {
    aws.cloudformation
        .delete_change_set()
        .change_set_name(id)
        .send()
        .await
        .map_err(failed("CloudFormation DeleteChangeSet"))?;
    Ok(())
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

    #[test]
    fn both_shapes_of_no_changes_are_recognized() {
        assert!(is_no_changes(Some(
            "The submitted information didn't contain changes. Submit different information to create a change set."
        )));
        assert!(is_no_changes(Some("No updates are to be performed.")));
        assert!(!is_no_changes(Some(
            "Template format error: Unresolved resource dependencies"
        )));
        assert!(!is_no_changes(None));
    }
}
