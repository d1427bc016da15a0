//! The deploy flow against moto server, through a proxy that records every call.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use storefirst_deploy::{Action, Aws, Console, Deployment, Error, Outcome, deploy, destroy, diff};
use storefirst_domain::StreamSettings;
use storefirst_infra::stack::STREAM_PROCESSING;

use crate::support::{
    Canned, Fixture, Proxy, account_logs_role, account_updates, actions, authorization, aws,
    bootstrap_as_administrator, bootstrap_logs_role, function_zip, moto_url, once_executed,
    physical_ids, sdk_config, set_account_logs_role, small_deployment, small_stack, template,
    uploads,
};

async fn cloudformation() -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&sdk_config(&moto_url()).await)
}

/// Deploys and fails the test with the console's text on an error.
async fn deployed(aws: &Aws, deployment: &Deployment) -> (storefirst_deploy::Deployed, String) {
    let (console, captured) = Console::capture();
    match deploy(aws, deployment, &console).await {
        Ok(deployed) => (deployed, captured.text()),
        Err(e) => panic!("deploy failed: {e}\n{}", captured.text()),
    }
}

async fn stack_status(stack: &str) -> Option<String> {
    let described = cloudformation()
        .await
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .ok()?;
    described.stacks()[0]
        .stack_status()
        .map(|s| s.as_str().to_owned())
}

async fn bucket_of(bootstrap: &str) -> String {
    physical_ids(bootstrap).await["AssetsBucket"].clone()
}

/// The uploads of assets among `calls`: a template too large to send inline is uploaded
/// for every change set of it (the app stack's is, since its dashboard).
fn asset_uploads(calls: &[crate::support::Call]) -> Vec<String> {
    uploads(calls)
        .into_iter()
        .filter(|path| !path.contains("/templates/"))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// moto's JSON answer to `request`.
async fn answer_of(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("moto answers")
        .json()
        .await
        .expect("JSON")
}

/// The CodeSha256 moto holds for the function (Lambda's base64 of the zip's sha256).
async fn code_sha256(function: &str) -> String {
    let answer = answer_of(
        reqwest::Client::new()
            .get(format!("{}/2015-03-31/functions/{function}", moto_url()))
            .header("Authorization", authorization("lambda")),
    )
    .await;
    answer["Configuration"]["CodeSha256"]
        .as_str()
        .unwrap_or_else(|| panic!("no CodeSha256 in {answer}"))
        .to_owned()
}

fn lambda_sha256(zip: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(zip))
}

const CREATE_COMPLETE: &str = include_str!("fixtures/describe-stacks-create-complete.xml");

#[tokio::test(flavor = "multi_thread")]
async fn a_first_deploy_bootstraps_uploads_executes_and_writes_the_outputs() {
    let fixture = Fixture::new("first");
    let stack = fixture.stack.clone();
    // moto leaves a change-set-created stack without outputs: once the stack is executed,
    // CloudFormation's recorded answer (with the outputs) stands in for its DescribeStacks.
    let proxy = Proxy::answering(once_executed(&fixture.stack, move |call| {
        (call.action() == Some("DescribeStacks"))
            .then(|| Canned::xml(200, CREATE_COMPLETE.replace("{stack}", &stack)))
    }))
    .await;
    let aws = aws(&proxy.url).await;
    let (deployed, text) = deployed(
        &aws,
        &fixture.deployment(template(&StreamSettings::DEFAULT)),
    )
    .await;

    assert_eq!(deployed.outcome, Outcome::Executed);
    let calls = proxy.take();
    let change_sets: Vec<_> = actions(&calls, "CreateChangeSet")
        .iter()
        .map(|c| {
            (
                c.param("StackName").unwrap(),
                c.param("ChangeSetType").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        change_sets,
        [
            (fixture.bootstrap.as_str(), "CREATE"),
            (fixture.stack.as_str(), "CREATE")
        ]
    );
    assert_eq!(actions(&calls, "ExecuteChangeSet").len(), 2);
    let bucket = bucket_of(&fixture.bootstrap).await;
    let zip = std::fs::read(fixture.zip_path()).unwrap();
    let notifier = std::fs::read(fixture.notifier_zip_path()).unwrap();
    let key = format!("assets/{}.zip", sha256_hex(&zip));
    assert_eq!(
        asset_uploads(&calls),
        [
            format!("/{bucket}/{key}"),
            format!("/{bucket}/assets/{}.zip", sha256_hex(&notifier))
        ]
    );
    assert_eq!(
        stack_status(&fixture.stack).await.as_deref(),
        Some("CREATE_COMPLETE")
    );
    assert!(text.contains("to add"), "{text}");

    // The outputs file, in `cdk deploy --outputs-file`'s shape.
    assert_eq!(
        deployed.outputs_file,
        fixture
            .outputs_dir()
            .join(format!("{}-outputs.json", fixture.stack))
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(&deployed.outputs_file).unwrap()).unwrap();
    assert_eq!(
        file,
        json!({ &fixture.stack: {
            "ApiUrl": "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/prod",
            "ApiKeyId": "k7l8m9n0p1",
            "TableName": format!("{}-RequestsTable-1TQ2V7K9ZC3XU", fixture.stack),
            "DeadLetterQueueUrl": format!("https://sqs.us-east-1.amazonaws.com/123456789012/{}-DeadLetterQueue-x0DsXq5lRt2w", fixture.stack),
            "StreamProcessorName": format!("{}-StreamProcessor-aB3dE5fG7hJ9", fixture.stack),
        }})
    );
    assert!(text.contains("ApiKeyId = k7l8m9n0p1"), "{text}");

    // moto created the resources: the function runs the uploaded zip, from the hashed key.
    let resources = physical_ids(&fixture.stack).await;
    assert_eq!(
        code_sha256(&resources["StreamProcessor"]).await,
        lambda_sha256(&zip)
    );
    assert_eq!(
        code_sha256(&resources["NotifierFunction"]).await,
        lambda_sha256(&notifier)
    );
    let config = sdk_config(&moto_url()).await;
    // The webhook delivery queue hands a message over five times, then dead-letters it.
    // (moto 5.2's CloudFormation leaves out the webhook secret: it has no
    // AWS::SecretsManager::Secret.)
    let attributes = answer_of(
        reqwest::Client::new()
            .post(moto_url())
            .header("X-Amz-Target", "AmazonSQS.GetQueueAttributes")
            .header("Content-Type", "application/x-amz-json-1.0")
            .header("Authorization", authorization("sqs"))
            .body(
                json!({"QueueUrl": resources["WebhookQueue"], "AttributeNames": ["All"]})
                    .to_string(),
            ),
    )
    .await;
    let redrive: Value = serde_json::from_str(
        attributes["Attributes"]["RedrivePolicy"]
            .as_str()
            .unwrap_or_else(|| panic!("no redrive policy in {attributes}")),
    )
    .expect("JSON");
    assert_eq!(redrive["maxReceiveCount"], 5, "{redrive}");
    assert!(
        redrive["deadLetterTargetArn"].as_str().is_some_and(
            |arn| resources["WebhookDeadLetters"].ends_with(arn.rsplit(':').next().unwrap())
        ),
        "{redrive} names {}",
        resources["WebhookDeadLetters"]
    );
    aws_sdk_dynamodb::Client::new(&config)
        .describe_table()
        .table_name(&resources["RequestsTable"])
        .send()
        .await
        .expect("the table exists");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .expect("the assets bucket is encrypted");
    let rule = &encryption
        .server_side_encryption_configuration()
        .expect("a configuration")
        .rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .map(|d| d.sse_algorithm().as_str()),
        Some("AES256")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_deploy_without_changes_uploads_nothing_and_creates_no_change_set() {
    let proxy = Proxy::to_moto().await;
    let aws = aws(&proxy.url).await;
    let fixture = Fixture::new("again");
    let deployment = fixture.deployment(template(&StreamSettings::DEFAULT));
    deployed(&aws, &deployment).await;
    std::fs::remove_file(
        fixture
            .outputs_dir()
            .join(format!("{}-outputs.json", fixture.stack)),
    )
    .unwrap();
    proxy.take();

    let (again, text) = deployed(&aws, &deployment).await;

    assert_eq!(again.outcome, Outcome::NoChanges);
    let calls = proxy.take();
    assert_eq!(uploads(&calls), Vec::<String>::new());
    for action in [
        "CreateChangeSet",
        "ExecuteChangeSet",
        "CreateStack",
        "UpdateStack",
    ] {
        assert!(
            actions(&calls, action).is_empty(),
            "{action} was called: {calls:?}"
        );
    }
    assert!(
        text.contains(&format!("{}: no changes", fixture.stack)),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}: no changes", fixture.bootstrap)),
        "{text}"
    );
    assert!(again.outputs_file.exists(), "the outputs are written again");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_code_change_only_the_new_zip_is_uploaded_and_the_function_updated() {
    let proxy = Proxy::to_moto().await;
    let aws = aws(&proxy.url).await;
    let fixture = Fixture::new("code");
    let deployment = fixture.deployment(template(&StreamSettings::DEFAULT));
    deployed(&aws, &deployment).await;
    let function = physical_ids(&fixture.stack).await["StreamProcessor"].clone();
    let v2 = function_zip("#!/bin/sh\necho v2\n");
    fixture.write_zip(&v2);
    proxy.take();

    let (second, _) = deployed(&aws, &deployment).await;

    assert_eq!(second.outcome, Outcome::Executed);
    let calls = proxy.take();
    let bucket = bucket_of(&fixture.bootstrap).await;
    let key = format!("assets/{}.zip", sha256_hex(&v2));
    assert_eq!(uploads(&calls), [format!("/{bucket}/{key}")]);
    let change_sets = actions(&calls, "CreateChangeSet");
    assert_eq!(change_sets.len(), 1, "the bootstrap stack is unchanged");
    let sent: BTreeMap<_, _> = (1..)
        .map_while(|n| {
            let name = change_sets[0].param(&format!("Parameters.member.{n}.ParameterKey"))?;
            let value = change_sets[0].param(&format!("Parameters.member.{n}.ParameterValue"));
            Some((name, value))
        })
        .collect();
    assert_eq!(sent["StreamProcessorKey"], Some(key.as_str()));
    assert_eq!(change_sets[0].param("ChangeSetType"), Some("UPDATE"));
    assert_eq!(
        physical_ids(&fixture.stack).await["StreamProcessor"],
        function,
        "updated in place"
    );
    assert_eq!(code_sha256(&function).await, lambda_sha256(&v2));
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_after_changing_the_batch_size_shows_the_mapping_as_modify() {
    let proxy = Proxy::to_moto().await;
    let aws = aws(&proxy.url).await;
    let fixture = Fixture::new("diff");
    // The mapping exists for this one: nothing writes to the table, so nothing is consumed.
    let mut deployment = fixture.deployment(template(&StreamSettings::DEFAULT));
    deployment
        .parameters
        .insert(STREAM_PROCESSING.to_owned(), "enabled".to_owned());
    deployed(&aws, &deployment).await;
    proxy.take();

    let settings = StreamSettings {
        batch_size: 10,
        ..StreamSettings::DEFAULT
    };
    deployment.template = template(&settings);
    let (console, captured) = Console::capture();
    let changes = diff(&aws, &deployment, false, &console)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", captured.text()))
        .changes;

    let summary: Vec<_> = changes
        .iter()
        .map(|c| (c.action, c.logical_id.as_str(), c.resource_type.as_str()))
        .collect();
    let mapping = (
        Action::Modify,
        "StreamMapping",
        "AWS::Lambda::EventSourceMapping",
    );
    assert!(summary.contains(&mapping), "{summary:?}");
    // moto may list the function too: it can rewrite the Code of a function it created, so
    // that its stored copy no longer equals ours. CloudFormation lists the mapping only.
    let function = (Action::Modify, "StreamProcessor", "AWS::Lambda::Function");
    assert!(
        summary.iter().all(|c| *c == mapping || *c == function),
        "{summary:?}"
    );
    let text = captured.text();
    assert!(text.contains("  ~ modify       StreamMapping "), "{text}");
    let counts = format!(
        "0 to add, {} to modify, 0 to replace, 0 to remove",
        changes.len()
    );
    assert!(text.contains(&counts), "{text}");
    // Nothing was executed, and the change set is gone.
    let deployed_template: Value = serde_json::from_str(
        cloudformation()
            .await
            .get_template()
            .stack_name(&fixture.stack)
            .send()
            .await
            .unwrap()
            .template_body()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        deployed_template["Resources"]["StreamMapping"]["Properties"]["BatchSize"],
        100
    );
    let calls = proxy.take();
    assert!(actions(&calls, "ExecuteChangeSet").is_empty(), "{calls:?}");
    assert!(asset_uploads(&calls).is_empty(), "{calls:?}");
    assert_eq!(actions(&calls, "CreateChangeSet").len(), 1, "{calls:?}");
    let deleted = actions(&calls, "DeleteChangeSet");
    let [deleted] = deleted.as_slice() else {
        panic!("one change set deleted: {calls:?}");
    };
    let gone = cloudformation()
        .await
        .describe_change_set()
        .change_set_name(deleted.param("ChangeSetName").unwrap())
        .send()
        .await;
    assert!(gone.is_err(), "the change set is gone: {gone:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_asks_then_removes_the_stack_and_keeps_the_table_and_queue() {
    let aws = aws(&moto_url()).await;
    let fixture = Fixture::new("destroy");
    // moto 5.2 keeps only `Retain` resources on a stack delete; AWS keeps
    // `RetainExceptOnCreate` ones too once they were created.
    let mut template = template(&StreamSettings::DEFAULT);
    for resource in template["Resources"]
        .as_object_mut()
        .expect("resources")
        .values_mut()
    {
        if resource["DeletionPolicy"] == "RetainExceptOnCreate" {
            resource["DeletionPolicy"] = json!("Retain");
        }
    }
    deployed(&aws, &fixture.deployment(template)).await;
    let resources = physical_ids(&fixture.stack).await;

    // Not at a terminal and no --yes: nothing is deleted.
    let (console, _) = Console::capture();
    let refused = destroy(&aws, &fixture.stack, None, false, &console).await;
    assert!(
        matches!(refused, Err(Error::NotApproved { .. })),
        "{refused:?}"
    );
    assert_eq!(
        stack_status(&fixture.stack).await.as_deref(),
        Some("CREATE_COMPLETE")
    );

    let (console, captured) = Console::capture();
    destroy(&aws, &fixture.stack, None, true, &console)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", captured.text()));

    assert_eq!(
        stack_status(&fixture.stack).await,
        None,
        "the stack is gone"
    );
    let table = &resources["RequestsTable"];
    let queue = &resources["DeadLetterQueue"];
    let text = captured.text();
    assert!(
        text.contains(&format!("aws dynamodb delete-table --table-name {table}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("aws sqs delete-queue --queue-url {queue}")),
        "{text}"
    );
    let config = sdk_config(&moto_url()).await;
    aws_sdk_dynamodb::Client::new(&config)
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("the table is retained");

    let (console, captured) = Console::capture();
    destroy(&aws, &fixture.stack, None, true, &console)
        .await
        .unwrap();
    assert!(
        captured.text().contains("nothing to destroy"),
        "{}",
        captured.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_the_queue_needs_approval() {
    let aws = aws(&moto_url()).await;
    let fixture = Fixture::new("approve");
    let mut deployment = small_deployment(
        &fixture,
        json!({
            "Queue": {"Type": "AWS::SQS::Queue"},
        }),
    );
    deployed(&aws, &deployment).await;

    deployment.template = small_stack(json!({
        "Logs": {"Type": "AWS::Logs::LogGroup"},
    }));
    let (console, captured) = Console::capture();
    let refused = deploy(&aws, &deployment, &console).await;
    let Err(error @ Error::NotApproved { .. }) = refused else {
        panic!("expected a refusal: {refused:?}\n{}", captured.text());
    };
    assert!(
        error.to_string().contains("Queue (AWS::SQS::Queue)"),
        "{error}"
    );
    assert!(error.to_string().contains("--yes"), "{error}");
    let resources = |stack: String| async move {
        cloudformation()
            .await
            .describe_stack_resources()
            .stack_name(stack)
            .send()
            .await
            .unwrap()
            .stack_resources()
            .iter()
            .filter_map(|r| r.logical_resource_id().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    assert_eq!(resources(fixture.stack.clone()).await, ["Queue"]);

    deployment.yes = true;
    let (again, _) = deployed(&aws, &deployment).await;
    assert_eq!(again.outcome, Outcome::Executed);
    assert_eq!(resources(fixture.stack.clone()).await, ["Logs"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudformation_acts_as_the_execution_role() {
    let proxy = Proxy::to_moto().await;
    let aws = aws(&proxy.url).await;
    let fixture = Fixture::new("role");
    let role = "arn:aws:iam::123456789012:role/storefirst-ci-role-ExecutionRole";
    let mut deployment = small_deployment(&fixture, json!({"Queue": {"Type": "AWS::SQS::Queue"}}));
    bootstrap_as_administrator(&aws, &fixture).await;
    proxy.take();
    deployment.execution_role = Some(role.to_owned());

    deployed(&aws, &deployment).await;
    let (console, captured) = Console::capture();
    destroy(&aws, &fixture.stack, Some(role), true, &console)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", captured.text()));

    let calls = proxy.take();
    let change_sets: Vec<_> = actions(&calls, "CreateChangeSet")
        .iter()
        .map(|c| (c.param("StackName").unwrap(), c.param("RoleARN")))
        .collect();
    // The deploy role never changes the bootstrap stack: it only checks it is current.
    assert_eq!(change_sets, [(fixture.stack.as_str(), Some(role))]);
    let deletes: Vec<_> = actions(&calls, "DeleteStack")
        .iter()
        .map(|c| c.param("RoleARN"))
        .collect();
    assert_eq!(deletes, [Some(role)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_role_stops_at_a_missing_or_stale_bootstrap_stack_and_says_who_can_fix_it() {
    let proxy = Proxy::to_moto().await;
    let aws = aws(&proxy.url).await;
    let fixture = Fixture::new("stale");
    let mut deployment = small_deployment(&fixture, json!({"Queue": {"Type": "AWS::SQS::Queue"}}));
    deployment.execution_role =
        Some("arn:aws:iam::123456789012:role/storefirst-ci-role-ExecutionRole".to_owned());
    let refused = |error: Error, why: &str| {
        let text = error.to_string();
        assert!(
            text.contains(why) && text.contains("cargo xtask deploy-ci-role"),
            "{text}"
        );
    };
    let (console, _) = Console::capture();
    refused(
        storefirst_deploy::deploy(&aws, &deployment, &console)
            .await
            .expect_err("no bootstrap stack"),
        "missing",
    );
    // A bootstrap stack from an older storefirst: its template lacks the logs role.
    let mut older = small_deployment(&fixture, json!({"Bucket": {"Type": "AWS::S3::Bucket"}}));
    older.stack = fixture.bootstrap.clone();
    older.bootstrap_stack = format!("{}-admin", fixture.bootstrap);
    deployed(&aws, &older).await;
    proxy.take();
    refused(
        storefirst_deploy::deploy(&aws, &deployment, &console)
            .await
            .expect_err("a stale bootstrap stack"),
        "older than this version",
    );
    let calls = proxy.take();
    assert!(
        actions(&calls, "CreateChangeSet").is_empty() && uploads(&calls).is_empty(),
        "nothing may change before the refusal: {calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_over_51200_bytes_goes_through_the_assets_bucket() {
    let proxy = Proxy::to_moto().await;
    let aws = aws(&proxy.url).await;
    let fixture = Fixture::new("large");
    let mut template = template(&StreamSettings::DEFAULT);
    template["Metadata"] = json!({"Padding": "x".repeat(40_000)});
    assert!(template.to_string().len() > storefirst_deploy::INLINE_TEMPLATE_LIMIT);
    let deployment = fixture.deployment(template);

    let (first, _) = deployed(&aws, &deployment).await;

    assert_eq!(first.outcome, Outcome::Executed);
    let calls = proxy.take();
    let app = actions(&calls, "CreateChangeSet")
        .into_iter()
        .find(|c| c.param("StackName") == Some(fixture.stack.as_str()))
        .expect("a change set for the stack");
    assert_eq!(app.param("TemplateBody"), None);
    let bucket = bucket_of(&fixture.bootstrap).await;
    let url = app.param("TemplateURL").expect("a TemplateURL");
    let key = url
        .strip_prefix(&format!("https://{bucket}.s3.us-east-1.amazonaws.com/"))
        .unwrap_or_else(|| panic!("{url} is not in {bucket}"));
    assert!(
        key.starts_with("templates/") && key.ends_with(".json") && key.len() == 10 + 64 + 5,
        "{key} is not named by its hash"
    );
    assert!(
        uploads(&calls).contains(&format!("/{bucket}/{key}")),
        "{calls:?}"
    );
    assert_eq!(
        stack_status(&fixture.stack).await.as_deref(),
        Some("CREATE_COMPLETE")
    );

    let (again, _) = deployed(&aws, &deployment).await;
    assert_eq!(again.outcome, Outcome::NoChanges);
    assert_eq!(uploads(&proxy.take()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bootstrap_gives_api_gateway_a_logs_role_only_where_the_account_has_none() {
    let proxy = Proxy::to_moto().await;
    let aws = aws(&proxy.url).await;
    let fixture = Fixture::new("logsrole");
    let deployment = small_deployment(&fixture, json!({"Queue": {"Type": "AWS::SQS::Queue"}}));
    set_account_logs_role("").await;

    // None yet: the bootstrap stack's role becomes the account's.
    let (_, text) = deployed(&aws, &deployment).await;
    let ours = bootstrap_logs_role(&fixture.bootstrap).await;
    assert!(
        ours.contains(&format!("role/{}-ApiGatewayLogsRole", fixture.bootstrap)),
        "named after the stack: {ours}"
    );
    assert_eq!(account_logs_role().await, ours);
    assert_eq!(account_updates(&proxy.take()).len(), 1);
    assert!(text.contains(&format!("role: set to {ours}")), "{text}");

    // Already ours: read, not written again.
    let (_, text) = deployed(&aws, &deployment).await;
    assert_eq!(account_updates(&proxy.take()).len(), 0);
    assert!(text.contains(&format!("role is already {ours}")), "{text}");

    // Another role: the account keeps it.
    let theirs = "arn:aws:iam::123456789012:role/AccountWideApiGatewayLogs";
    set_account_logs_role(theirs).await;
    proxy.take();
    let (_, text) = deployed(&aws, &deployment).await;
    assert_eq!(account_updates(&proxy.take()).len(), 0);
    assert_eq!(account_logs_role().await, theirs);
    assert!(
        text.contains(&format!("left the account's existing role {theirs}")),
        "{text}"
    );
}
