//! Failures moto cannot produce faithfully (it reports some create failures as a JSON body
//! on the XML API, or leaves the stack in CREATE_IN_PROGRESS): the proxy answers those
//! calls with responses in CloudFormation's documented shapes, moto answers the rest.

use std::process::Output;

use storefirst_deploy::{Console, Error, deploy};
use storefirst_domain::StreamSettings;

use crate::support::{Fixture, Proxy, actions, aws, names, once_executed, template, uploads};

const ROLLBACK_COMPLETE: &str = include_str!("fixtures/describe-stacks-rollback-complete.xml");
const CREATE_FAILED_EVENTS: &str = include_str!("fixtures/describe-stack-events-create-failed.xml");
const EXPIRED_TOKEN: &str = include_str!("fixtures/expired-token.xml");

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
        Some("DescribeStacks") => Some((200, ROLLBACK_COMPLETE.replace("{stack}", &stack))),
        Some("DescribeStackEvents") => Some((200, CREATE_FAILED_EVENTS.replace("{stack}", &stack))),
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
        stderr.contains(&format!("cargo xtask destroy --stack {}", fixture.stack)),
        "{stderr}"
    );
    // The events were followed: the failure and the rollback as they happened.
    assert!(
        stderr.contains("CREATE_FAILED                AWS::Lambda::Function"),
        "{stderr}"
    );
    assert!(!outputs_dir.exists(), "no outputs for a failed deploy");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_left_in_rollback_complete_is_refused_before_anything_is_uploaded() {
    let fixture = Fixture::new("stuck");
    let stack = fixture.stack.clone();
    let proxy = Proxy::answering(Box::new(move |call| {
        (call.action() == Some("DescribeStacks") && names(call, &stack))
            .then(|| (200, ROLLBACK_COMPLETE.replace("{stack}", &stack)))
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

    let Err(error @ Error::NotDeployable { .. }) = result else {
        panic!("expected a refusal, got {result:?}");
    };
    let text = error.to_string();
    assert!(text.contains("is ROLLBACK_COMPLETE"), "{text}");
    assert!(
        text.contains(&format!("cargo xtask destroy --stack {}", fixture.stack)),
        "{text}"
    );
    let calls = proxy.take();
    assert!(uploads(&calls).is_empty(), "{calls:?}");
    assert!(actions(&calls, "CreateChangeSet").is_empty(), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_says_to_log_in_again() {
    let fixture = Fixture::new("expired");
    let proxy = Proxy::answering(Box::new(|_| Some((400, EXPIRED_TOKEN.to_owned())))).await;
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
    let no_credentials = run_cli(&fixture, None, &["destroy", "--region", "eu-west-1"]).await;
    let stderr = String::from_utf8_lossy(&no_credentials.stderr);
    assert!(!no_credentials.status.success());
    assert!(stderr.contains("no AWS credentials"), "{stderr}");
    assert!(stderr.contains("aws configure"), "{stderr}");

    let no_region = run_cli(&fixture, None, &["destroy"]).await;
    let stderr = String::from_utf8_lossy(&no_region.stderr);
    assert!(!no_region.status.success());
    assert!(stderr.contains("no AWS region: pass --region"), "{stderr}");
}
