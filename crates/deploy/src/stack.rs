//! One CloudFormation stack: its state, the template it runs, whether it can be updated
//! (and how to recover when not), following its events until it settles, and deleting it.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use aws_sdk_cloudformation::types::{StackEvent, TemplateStage};
use serde_json::Value;

use crate::{
    Aws, Console, Error, ResourceFailure,
    aws::{code, failed},
};

/// Between two looks at a stack or change set in progress: CloudFormation is rate limited,
/// and resources take seconds to minutes.
pub(crate) const POLL: Duration = Duration::from_secs(2);

/// A stack as DescribeStacks reports it.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    pub id: String,
    pub status: String,
    pub reason: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
}

/// The stack, or `None` when there is none by that name (or id).
pub(crate) async fn describe(aws: &Aws, stack: &str) -> Result<Option<Current>, Error> {
    let output = match aws
        .cloudformation
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
    {
        Ok(output) => output,
        Err(error)
            if code(&error) == Some("ValidationError")
                && error
                    .as_service_error()
                    .and_then(|e| e.meta().message())
                    .is_some_and(|m| m.contains("does not exist")) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(failed("CloudFormation DescribeStacks")(error)),
    };
    Ok(output.stacks().first().map(|stack| Current {
        id: stack.stack_id().unwrap_or_default().to_owned(),
        status: stack
            .stack_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        reason: stack.stack_status_reason().map(str::to_owned),
        parameters: stack
            .parameters()
            .iter()
            .filter_map(|p| Some((p.parameter_key()?.into(), p.parameter_value()?.into())))
            .collect(),
        outputs: stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.into(), o.output_value()?.into())))
            .collect(),
    }))
}

/// A stack whose first create failed and was rolled back: it holds no resources and can
/// only be deleted, which a deploy does (with approval) before creating it again.
pub(crate) const FAILED_CREATE: &str = "ROLLBACK_COMPLETE";

/// States a stack can be updated from. REVIEW_IN_PROGRESS is a create change set that was
/// never executed: the next deploy creates the stack.
const DEPLOYABLE: &[&str] = &[
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
    "REVIEW_IN_PROGRESS",
];

const SUCCEEDED: &[&str] = &[
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "DELETE_COMPLETE",
    "IMPORT_COMPLETE",
];

pub(crate) fn check_deployable(stack: &str, current: &Current) -> Result<(), Error> {
    if DEPLOYABLE.contains(&current.status.as_str()) {
        return Ok(());
    }
    Err(Error::NotDeployable {
        stack: stack.to_owned(),
        status: current.status.clone(),
        hint: recovery_hint(stack, &current.status),
    })
}

/// Makes the stack `name` deployable or refuses: a stack whose first create failed (see
/// [`FAILED_CREATE`]) is deleted, as `execution_role`, once approved (`yes`, or asked at a
/// terminal), so that the deploy creates it again; any other state that cannot be updated
/// is an error that says what to do.
pub(crate) async fn clear_failed_create(
    aws: &Aws,
    name: &str,
    execution_role: Option<&str>,
    yes: bool,
    console: &Console,
) -> Result<(), Error> {
    let Some(current) = describe(aws, name).await? else {
        return Ok(());
    };
    if current.status != FAILED_CREATE {
        return check_deployable(name, &current);
    }
    let what = format!(
        "{name} is {}: its first create failed, and such a stack can only be deleted and \
         created again",
        current.status
    );
    if !yes && !console.confirm(&format!("{what}. Delete it and create it again?")) {
        return Err(Error::NotApproved { what });
    }
    delete(aws, name, &current.id, execution_role, console).await?;
    console.say(format!(
        "{name}: deleted the stack its failed first create left; creating it again"
    ));
    Ok(())
}

/// What to do about a stack left in `status`.
pub(crate) fn recovery_hint(stack: &str, status: &str) -> String {
    match status {
        FAILED_CREATE => {
            "the stack was never created and cannot be updated: fix the cause above and \
             deploy again, which deletes the stack first (with --yes, or when you confirm)"
                .to_owned()
        }
        "ROLLBACK_FAILED" | "CREATE_FAILED" => format!(
            "the stack was never created and cannot be updated: delete it with \
             `cargo xtask destroy --stack {stack}`, fix the cause above, and deploy again"
        ),
        "UPDATE_ROLLBACK_COMPLETE" => {
            "the update was rolled back and the stack runs its previous version: fix the \
             cause above and deploy again"
                .to_owned()
        }
        "UPDATE_ROLLBACK_FAILED" => format!(
            "the rollback failed too: run `aws cloudformation continue-update-rollback \
             --stack-name {stack}` (with `--resources-to-skip LogicalId` for a resource that \
             cannot roll back), wait for UPDATE_ROLLBACK_COMPLETE, then deploy again"
        ),
        "UPDATE_FAILED" => format!(
            "the update failed without a rollback: run `aws cloudformation rollback-stack \
             --stack-name {stack}`, or fix the cause and deploy again"
        ),
        "DELETE_FAILED" => format!(
            "some resources could not be deleted (see above): fix the cause and run \
             `cargo xtask destroy --stack {stack}` again"
        ),
        "IMPORT_ROLLBACK_FAILED" | "IMPORT_ROLLBACK_COMPLETE" => {
            "the import was rolled back: fix the cause and deploy again".to_owned()
        }
        in_progress if in_progress.ends_with("_IN_PROGRESS") => {
            "another operation is running on it: wait until it finishes (the \
             CloudFormation console shows its events) and run the command again"
                .to_owned()
        }
        _ => "see the stack's events in the CloudFormation console".to_owned(),
    }
}

/// The template the stack runs, parsed; `None` when it is not JSON (e.g. YAML deployed by
/// something else), which never equals ours.
pub(crate) async fn deployed_template(aws: &Aws, stack: &str) -> Result<Option<Value>, Error> {
    let output = aws
        .cloudformation
        .get_template()
        .stack_name(stack)
        .template_stage(TemplateStage::Original)
        .send()
        .await
        .map_err(failed("CloudFormation GetTemplate"))?;
    Ok(output
        .template_body()
        .and_then(|body| serde_json::from_str(body).ok()))
}

/// Deletes the stack (as `execution_role`, if given) and follows it until DELETE_COMPLETE.
pub(crate) async fn delete(
    aws: &Aws,
    stack: &str,
    stack_id: &str,
    execution_role: Option<&str>,
    console: &Console,
) -> Result<(), Error> {
    let marker = newest_event(aws, stack_id).await?;
    aws.cloudformation
        .delete_stack()
        .stack_name(stack_id)
        .set_role_arn(execution_role.map(str::to_owned))
        .send()
        .await
        .map_err(failed("CloudFormation DeleteStack"))?;
    console.note(format!("{stack}: deleting"));
    follow(aws, stack, stack_id, marker, 0, console).await?;
    console.say(format!("{stack}: deleted"));
    Ok(())
}

/// The newest event of the stack: what the next operation's events come after.
pub(crate) async fn newest_event(aws: &Aws, stack_id: &str) -> Result<Option<String>, Error> {
    let output = aws
        .cloudformation
        .describe_stack_events()
        .stack_name(stack_id)
        .send()
        .await
        .map_err(failed("CloudFormation DescribeStackEvents"))?;
    Ok(output
        .stack_events()
        .first()
        .and_then(|e| e.event_id())
        .map(str::to_owned))
}

/// The events after `marker`, oldest first; moves the marker to the newest.
async fn events_since(
    aws: &Aws,
    stack_id: &str,
    marker: &mut Option<String>,
) -> Result<Vec<StackEvent>, Error> {
    let mut fresh = Vec::new();
    let mut token = None;
    'pages: loop {
        let page = aws
            .cloudformation
            .describe_stack_events()
            .stack_name(stack_id)
            .set_next_token(token)
            .send()
            .await
            .map_err(failed("CloudFormation DescribeStackEvents"))?;
        for event in page.stack_events() {
            if marker.is_some() && event.event_id() == marker.as_deref() {
                break 'pages;
            }
            fresh.push(event.clone());
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    if let Some(newest) = fresh.first() {
        *marker = newest.event_id().map(str::to_owned);
    }
    fresh.reverse();
    Ok(fresh)
}

fn event_line(event: &StackEvent) -> String {
    // The time of day (UTC) is enough to follow one operation, and keeps the columns.
    let time = event.timestamp().map_or("--:--:--".to_owned(), |t| {
        let day = t.secs().rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", day / 3600, day / 60 % 60, day % 60)
    });
    let mut line = format!(
        "{time}  {:<28} {:<40} {}",
        event.resource_status().map_or("", |s| s.as_str()),
        event.resource_type().unwrap_or_default(),
        event.logical_resource_id().unwrap_or_default(),
    );
    if let Some(reason) = event.resource_status_reason().filter(|r| !r.is_empty()) {
        line.push_str(&format!("  {reason}"));
    }
    line
}

/// Prints the stack's events as they come until it leaves `*_IN_PROGRESS`; an error names
/// each failed resource with its reason and says how to recover.
pub(crate) async fn follow(
    aws: &Aws,
    stack: &str,
    stack_id: &str,
    mut marker: Option<String>,
    total: usize,
    console: &Console,
) -> Result<Current, Error> {
    let mut settled = BTreeSet::new();
    let mut failures = Vec::new();
    loop {
        // The state first, the events after: the last events read include the final ones.
        let current = describe(aws, stack_id).await?.unwrap_or_else(|| Current {
            id: stack_id.to_owned(),
            status: "DELETE_COMPLETE".to_owned(),
            reason: None,
            parameters: BTreeMap::new(),
            outputs: BTreeMap::new(),
        });
        for event in events_since(aws, stack_id, &mut marker).await? {
            console.note(event_line(&event));
            let status = event.resource_status().map_or("", |s| s.as_str());
            let resource = event.logical_resource_id().unwrap_or_default();
            if event.resource_type() == Some("AWS::CloudFormation::Stack") {
                continue;
            }
            if status.ends_with("_COMPLETE") {
                settled.insert(resource.to_owned());
            }
            let reason = event.resource_status_reason().unwrap_or_default();
            // Siblings cancelled because of the failure are not the cause.
            if status.ends_with("_FAILED") && !reason.contains("cancelled") {
                failures.push(ResourceFailure {
                    logical_id: resource.to_owned(),
                    resource_type: event.resource_type().unwrap_or_default().to_owned(),
                    status: status.to_owned(),
                    reason: reason.to_owned(),
                });
            }
        }
        if !current.status.ends_with("_IN_PROGRESS") {
            console.clear_status();
            if SUCCEEDED.contains(&current.status.as_str()) {
                return Ok(current);
            }
            if failures.is_empty()
                && let Some(reason) = current.reason.clone()
            {
                failures.push(ResourceFailure {
                    logical_id: stack.to_owned(),
                    resource_type: "AWS::CloudFormation::Stack".to_owned(),
                    status: current.status.clone(),
                    reason,
                });
            }
            return Err(Error::StackFailed {
                stack: stack.to_owned(),
                hint: recovery_hint(stack, &current.status),
                status: current.status,
                failures,
            });
        }
        let progress = if total > 0 {
            format!(" ({}/{total} resources)", settled.len().min(total))
        } else {
            String::new()
        };
        console.status(format!("{stack}: {}{progress}", current.status));
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current(status: &str) -> Current {
        Current {
            id: "id".into(),
            status: status.into(),
            reason: None,
            parameters: BTreeMap::new(),
            outputs: BTreeMap::new(),
        }
    }

    fn check(status: &str, deployable: bool, hint: &str) {
        let result = check_deployable("app", &current(status));
        assert_eq!(result.is_ok(), deployable, "{status}");
        if let Err(error) = result {
            let text = error.to_string();
            assert!(text.contains(status), "{text}");
            assert!(text.contains(hint), "{status}: {text}");
        }
    }

    #[test]
    fn failed_states_say_how_to_recover() {
        check("CREATE_COMPLETE", true, "");
        check("UPDATE_ROLLBACK_COMPLETE", true, "");
        check("REVIEW_IN_PROGRESS", true, "");
        check(
            "ROLLBACK_COMPLETE",
            false,
            "deletes the stack first (with --yes",
        );
        check("ROLLBACK_FAILED", false, "cargo xtask destroy --stack app");
        check(
            "UPDATE_ROLLBACK_FAILED",
            false,
            "aws cloudformation continue-update-rollback --stack-name app",
        );
        check("DELETE_FAILED", false, "destroy --stack app` again");
        check("UPDATE_IN_PROGRESS", false, "wait until it finishes");
        check("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", false, "wait");
    }
}
