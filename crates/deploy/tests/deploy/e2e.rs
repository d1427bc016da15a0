//! What `test-e2e --stack` reads from a deployed stack, on moto (which has no API Gateway
//! data plane to run the suite against; `cargo xtask test` runs it with `--local`).

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use storefirst_contract::Storage;
use storefirst_deploy::{Console, Error, deploy, e2e};
use storefirst_domain::StreamSettings;

use crate::support::{Fixture, aws, moto_url, physical_ids, sdk_config, template};

#[tokio::test(flavor = "multi_thread")]
async fn the_suite_targets_the_stack_from_its_outputs_and_cleans_up_after_itself() {
    let aws = aws(&moto_url()).await;
    let fixture = Fixture::new("e2e");
    let (console, captured) = Console::capture();
    let deployed = deploy(
        &aws,
        &fixture.deployment(template(&StreamSettings::DEFAULT)),
        &console,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", captured.text()));
    // moto reports no outputs for a stack created by a change set, and creates no API key
    // from the template: write the outputs CloudFormation would, with a key made here.
    let config = sdk_config(&moto_url()).await;
    let key = aws_sdk_apigateway::Client::new(&config)
        .create_api_key()
        .name(&fixture.stack)
        .enabled(true)
        .send()
        .await
        .unwrap();
    let resources = physical_ids(&fixture.stack).await;
    let url = format!(
        "https://{}.execute-api.us-east-1.amazonaws.com/prod",
        resources["Api"]
    );
    let outputs = json!({ &fixture.stack: {
        "ApiUrl": url,
        "ApiKeyId": key.id(),
        "TableName": resources["RequestsTable"],
    }});
    std::fs::write(&deployed.outputs_file, outputs.to_string()).unwrap();

    let api = e2e::stack_api(&aws, &fixture.stack, &fixture.outputs_dir())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(api.url, url);
    assert_eq!(api.table, resources["RequestsTable"]);
    assert_eq!(Some(api.api_key.as_str()), key.value());
    assert!(!api.api_key.is_empty());

    // The suite's requests go; anything else in the table stays.
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    for id in ["contract-a", "contract-b", "someone-else"] {
        dynamodb
            .put_item()
            .table_name(&api.table)
            .item("id", AttributeValue::S(id.into()))
            .send()
            .await
            .unwrap();
    }
    let created = BTreeSet::from(["contract-a".to_owned(), "contract-b".to_owned()]);
    e2e::remove_requests(&aws, &api.table, &created)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let left: Vec<_> = dynamodb
        .scan()
        .table_name(&api.table)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .filter_map(|item| item.get("id")?.as_s().ok().cloned())
        .collect();
    assert_eq!(left, ["someone-else"]);

    // The probes' "nothing stored" reads the table itself, and removes what it finds.
    let table = e2e::Table {
        aws: &aws,
        name: &api.table,
    };
    assert_eq!(table.holds("someone-else").await, Ok(true));
    assert_eq!(table.holds("someone-else").await, Ok(false));
    assert_eq!(table.holds("probe!#$%&'*+^|~").await, Ok(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_deploy_it_says_to_deploy_first() {
    let aws = aws(&moto_url()).await;
    let fixture = Fixture::new("undeployed");
    let result = e2e::stack_api(&aws, &fixture.stack, &fixture.outputs_dir()).await;
    let Err(error @ Error::Outputs { .. }) = result else {
        panic!("expected a missing outputs file, got {result:?}");
    };
    assert!(
        error
            .to_string()
            .contains(&format!("cargo xtask deploy --stack {}", fixture.stack)),
        "{error}"
    );
}
