//! Failures moto cannot produce faithfully (it reports some create failures as a JSON body
//! on the XML API, or leaves the stack in CREATE_IN_PROGRESS, and IAM propagates at once):
//! the proxy answers those calls with responses in the services' documented shapes, moto
//! answers the rest.

use std::{
    process::Output,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use serde_json::json;
use storefirst_deploy::{Console, Deployment, Error, deploy};
use storefirst_domain::StreamSettings;

use crate::support::{
    Answer, Call, Canned, Fixture, Proxy, account_logs_role, account_updates, actions, aws,
    bootstrap_as_administrator, bootstrap_logs_role, names, once_executed, set_account_logs_role,
    small_deployment, template, uploads,
};

const ROLLBACK_COMPLETE: &str = include_str!("fixtures/describe-stacks-rollback-complete.xml");
const CREATE_FAILED_EVENTS: &str = include_str!("fixtures/describe-stack-events-create-failed.xml");
const DELETE_STACK: &str = include_str!("fixtures/delete-stack.xml");
const DELETE_COMPLETE: &str = include_str!("fixtures/describe-stacks-delete-complete.xml");
const DELETE_EVENTS: &str = include_str!("fixtures/describe-stack-events-delete-complete.xml");
/// The id of the stack in the fixtures.
const FIXTURE_STACK_UUID: &str = "5a8e6c30-ccb4-11f0-9f1e-0affd3e1b2c5";
const EXPIRED_TOKEN: &str = include_str!("fixtures/expired-token.xml");
const ROLE_NOT_PROPAGATED: &str = include_str!("fixtures/update-account-role-not-propagated.json");

/// Runs `storefirst-deploy` against `endpoint` with dummy credentials and nothing from the
/// user's own AWS configuration.
async fn run_cli(fixture: &Fixture, endpoint: Option<&str>, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_storefirst-deploy"));
    command
        .args(args)
        .env_clear()
        .env("HOME", fixture.dir.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1");
    if let Some(endpoint) = endpoint {
        command
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing");
    }
    tokio::task::spawn_blocking(move || command.output().expect("storefirst-deploy runs"))
        .await
        .expect("the command's thread")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_create_exits_non_zero_naming_the_resource_and_its_reason() {
    let fixture = Fixture::new("fails");
    let stack = fixture.stack.clone();
    // CloudFormation's answers for a create that failed on the function and rolled back.
    let answer = once_executed(&fixture.stack, move |call| match call.action() {
        Some("DescribeStacks") => Some(Canned::xml(
            200,
            ROLLBACK_COMPLETE.replace("{stack}", &stack),
        )),
        Some("DescribeStackEvents") => Some(Canned::xml(
            200,
            CREATE_FAILED_EVENTS.replace("{stack}", &stack),
        )),
        _ => None,
    });
    let proxy = Proxy::answering(answer).await;
    let lambda_dir = fixture.dir.path().join("lambda");
    let outputs_dir = fixture.outputs_dir();

    let output = run_cli(
        &fixture,
        Some(&proxy.url),
        &[
            "deploy",
            "--stack",
            &fixture.stack,
            "--region",
            "us-east-1",
            "--bootstrap-stack",
            &fixture.bootstrap,
            "--parameter",
            "StreamProcessing=disabled",
            // A first deploy adds every statement: not what this test is about.
            "--require-approval",
            "never",
            "--lambda-dir",
            lambda_dir.to_str().unwrap(),
            "--outputs-dir",
            outputs_dir.to_str().unwrap(),
        ],
    )
    .await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "stack {} ended in ROLLBACK_COMPLETE",
            fixture.stack
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "StreamProcessor (AWS::Lambda::Function) CREATE_FAILED: Resource handler returned \
             message: \"Error occurred while GetObject. S3 Error Code: NoSuchKey."
        ),
        "{stderr}"
    );
    // A sibling cancelled because of it is not named as a cause.
    assert!(
        !stderr.contains("DeadLetterQueue (AWS::SQS::Queue)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("deploy again, which deletes the stack first (with --yes"),
        "{stderr}"
    );
    // The events were followed: the failure and the rollback as they happened.
    assert!(
        stderr.contains("CREATE_FAILED                AWS::Lambda::Function"),
        "{stderr}"
    );
    assert!(!outputs_dir.exists(), "no outputs for a failed deploy");
}

/// CloudFormation's answers for `stack` left in ROLLBACK_COMPLETE by a failed first create,
/// until it is deleted; moto answers the rest, and creates the stack anew.
fn failed_create_until_deleted(stack: &str) -> Answer {
    let stack = stack.to_owned();
    let deleted = AtomicBool::new(false);
    Box::new(move |call: &Call| {
        let fixture_id = call
            .param("StackName")
            .is_some_and(|name| name.contains(FIXTURE_STACK_UUID));
        let recorded = |xml: &str| Some(Canned::xml(200, xml.replace("{stack}", &stack)));
        match call.action() {
            _ if !names(call, &stack) => None,
            Some("DeleteStack") => {
                deleted.store(true, Ordering::SeqCst);
                recorded(DELETE_STACK)
            }
            Some("DescribeStacks") if !deleted.load(Ordering::SeqCst) => {
                recorded(ROLLBACK_COMPLETE)
            }
            Some("DescribeStackEvents") if !deleted.load(Ordering::SeqCst) => {
                recorded(CREATE_FAILED_EVENTS)
            }
            // Deleted stacks are found by id only: by name, moto has none.
            Some("DescribeStacks") if fixture_id => recorded(DELETE_COMPLETE),
            Some("DescribeStackEvents") if fixture_id => recorded(DELETE_EVENTS),
            _ => None,
        }
    })
}

/// `stack` was deleted, then created again by a CREATE change set, and the output says so.
fn deleted_then_created(calls: &[Call], text: &str, stack: &str) {
    let created = position(calls, stack, "CreateChangeSet");
    assert!(position(calls, stack, "DeleteStack") < created, "{calls:?}");
    assert_eq!(calls[created].param("ChangeSetType"), Some("CREATE"));
    assert!(
        text.contains(&format!(
            "{stack}: deleted the stack its failed first create left; creating it again"
        )),
        "{text}"
    );
}

/// The position of the first call for `stack` with this action.
fn position(calls: &[Call], stack: &str, action: &str) -> usize {
    calls
        .iter()
        .position(|c| c.action() == Some(action) && names(c, stack))
        .unwrap_or_else(|| panic!("no {action} for {stack}: {calls:?}"))
}

async fn deployed_with(proxy: &Proxy, deployment: &Deployment) -> (Vec<Call>, String) {
    let aws = aws(&proxy.url).await;
    let (console, captured) = Console::capture();
    if let Err(e) = deploy(&aws, deployment, &console).await {
        panic!("deploy failed: {e}\n{}", captured.text());
    }
    (proxy.take(), captured.text())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_left_in_rollback_complete_needs_approval_before_anything_is_uploaded() {
    let fixture = Fixture::new("stuck");
    let proxy = Proxy::answering(failed_create_until_deleted(&fixture.stack)).await;
    let aws = aws(&proxy.url).await;
    let (console, _) = Console::capture();

    let result = deploy(
        &aws,
        &fixture.deployment(template(&StreamSettings::DEFAULT)),
        &console,
    )
    .await;

    let Err(error @ Error::NotApproved { .. }) = result else {
        panic!("expected a refusal, got {result:?}");
    };
    let text = error.to_string();
    assert!(text.contains("is ROLLBACK_COMPLETE"), "{text}");
    assert!(text.contains("run again with --yes"), "{text}");
    let calls = proxy.take();
    assert!(uploads(&calls).is_empty(), "{calls:?}");
    assert!(actions(&calls, "DeleteStack").is_empty(), "{calls:?}");
    assert!(actions(&calls, "CreateChangeSet").is_empty(), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_yes_a_stack_left_in_rollback_complete_is_deleted_as_the_role_and_created_again() {
    let fixture = Fixture::new("recreate");
    let proxy = Proxy::answering(failed_create_until_deleted(&fixture.stack)).await;
    let role = "arn:aws:iam::123456789012:role/storefirst-ci-role-ExecutionRole";
    let mut deployment = small_deployment(&fixture, json!({"Queue": {"Type": "AWS::SQS::Queue"}}));
    deployment.execution_role = Some(role.to_owned());
    deployment.yes = true;
    bootstrap_as_administrator(&aws(&proxy.url).await, &fixture).await;
    proxy.take();

    let (calls, text) = deployed_with(&proxy, &deployment).await;

    let deletes: Vec<_> = actions(&calls, "DeleteStack")
        .iter()
        .map(|c| (c.param("StackName").unwrap(), c.param("RoleARN")))
        .collect();
    assert_eq!(deletes.len(), 1, "{calls:?}");
    assert!(
        deletes[0].0.contains(FIXTURE_STACK_UUID),
        "by id: {deletes:?}"
    );
    assert_eq!(deletes[0].1, Some(role));
    deleted_then_created(&calls, &text, &fixture.stack);
    assert!(
        text.contains(&format!("{}: CREATE_COMPLETE", fixture.stack)),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bootstrap_stack_left_in_rollback_complete_is_deleted_as_the_caller_and_created_again() {
    let fixture = Fixture::new("rebootstrap");
    let proxy = Proxy::answering(failed_create_until_deleted(&fixture.bootstrap)).await;
    // Without an execution role: the bootstrap stack is changed only with the caller's own
    // (administrator) permissions.
    let mut deployment = small_deployment(&fixture, json!({"Queue": {"Type": "AWS::SQS::Queue"}}));
    deployment.yes = true;

    let (calls, text) = deployed_with(&proxy, &deployment).await;

    let deletes = actions(&calls, "DeleteStack");
    assert_eq!(deletes.len(), 1, "{calls:?}");
    assert_eq!(deletes[0].param("RoleARN"), None);
    deleted_then_created(&calls, &text, &fixture.bootstrap);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_gateway_refusing_a_role_iam_has_not_propagated_yet_is_retried() {
    let fixture = Fixture::new("propagate");
    set_account_logs_role("").await;
    // API Gateway's answer while IAM propagates the new role, to the first attempt.
    let refused = Mutex::new(false);
    let proxy = Proxy::answering(Box::new(move |call| {
        let mut refused = refused.lock().expect("no panics while answering");
        (!account_updates(std::slice::from_ref(call)).is_empty() && !*refused).then(|| {
            *refused = true;
            Canned::json_error(400, "BadRequestException", ROLE_NOT_PROPAGATED.to_owned())
        })
    }))
    .await;
    let deployment = small_deployment(&fixture, json!({"Queue": {"Type": "AWS::SQS::Queue"}}));

    let (calls, text) = deployed_with(&proxy, &deployment).await;

    assert_eq!(account_updates(&calls).len(), 2, "{calls:?}");
    let ours = bootstrap_logs_role(&fixture.bootstrap).await;
    assert_eq!(account_logs_role().await, ours);
    assert!(
        text.contains(&format!("does not accept {ours} yet")),
        "{text}"
    );
    assert!(text.contains(&format!("role: set to {ours}")), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_says_to_log_in_again() {
    let fixture = Fixture::new("expired");
    let proxy = Proxy::answering(Box::new(|_| {
        Some(Canned::xml(400, EXPIRED_TOKEN.to_owned()))
    }))
    .await;
    let aws = aws(&proxy.url).await;
    let (console, _) = Console::capture();

    let result = deploy(
        &aws,
        &fixture.deployment(template(&StreamSettings::DEFAULT)),
        &console,
    )
    .await;

    let Err(error @ Error::ExpiredToken) = result else {
        panic!("expected ExpiredToken, got {result:?}");
    };
    assert!(error.to_string().contains("aws sso login"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_credentials_or_region_the_cli_says_what_to_set() {
    let fixture = Fixture::new("nocreds");
    let no_region = run_cli(&fixture, None, &["destroy"]).await;
    let stderr = String::from_utf8_lossy(&no_region.stderr);
    assert!(!no_region.status.success());
    assert!(stderr.contains("no AWS region: pass --region"), "{stderr}");

    // Nothing listens there: a call that got past the credentials would fail otherwise.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let endpoint = format!("http://{closed}");
    for command in ["deploy", "diff", "destroy"] {
        for verbose in [false, true] {
            let mut args = vec![command, "--region", "eu-west-1"];
            if verbose {
                args.push("--verbose");
            }
            let output = run_without_credentials(&fixture, &endpoint, &args).await;
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{stderr}");
            assert!(
                stderr.contains("no AWS credentials found: run `aws configure`"),
                "{stderr}"
            );
            // The SDK's account of where it looked: only when asked for.
            let chain = stderr.contains("Ec2InstanceMetadata");
            assert_eq!(chain, verbose, "{command} {args:?}:\n{stderr}");
            if !verbose {
                assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
            }
        }
    }
}

/// `storefirst-deploy` with no credentials anywhere: no variables, no profile, no instance
/// metadata.
async fn run_without_credentials(fixture: &Fixture, endpoint: &str, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_storefirst-deploy"));
    command
        .args(args)
        .env_clear()
        .env("HOME", fixture.dir.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint);
    tokio::task::spawn_blocking(move || command.output().expect("storefirst-deploy runs"))
        .await
        .expect("the command's thread")
}
