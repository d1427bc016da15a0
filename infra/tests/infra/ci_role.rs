//! The CI role stack: GitHub may assume its role only from the repository's `v*` tags and
//! `production` environment, its permissions name the storefirst resources, and cfn-lint
//! accepts it.

use std::process::Command;

use serde_json::{Value, json};
use storefirst_infra::ci_role::{self, ci_role_template};

/// Set by `cargo xtask test` (xtask/src/test.rs): the pinned cfn-lint's `bin` directory.
const CFN_LINT_VAR: &str = "STOREFIRST_CFN_LINT";
const REPO: &str = "octo-org/storefirst";

fn template() -> Value {
    ci_role_template(REPO)
        .expect("a valid repository")
        .to_json()
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// Every statement of the stack's policies, with the policy's logical id.
fn statements(template: &Value) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for (id, resource) in template["Resources"].as_object().unwrap() {
        if resource["Type"] == "AWS::IAM::Policy" {
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap()
            {
                found.push((id.clone(), statement.clone()));
            }
        }
    }
    found
}

#[test]
fn github_may_assume_the_role_only_from_the_repositorys_tags_and_production() {
    let template = template();
    let trust = &template["Resources"]["GitHubDeployRole"]["Properties"]["AssumeRolePolicyDocument"]
        ["Statement"];
    assert_eq!(
        trust,
        &json!([{
            "Effect": "Allow",
            "Principal": {"Federated": {"Fn::If": [
                "CreateOidcProvider",
                {"Ref": "GitHubOidcProvider"},
                {"Ref": "OidcProviderArn"}
            ]}},
            "Action": ["sts:AssumeRoleWithWebIdentity"],
            "Condition": {
                "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                "StringLike": {"token.actions.githubusercontent.com:sub": [
                    "repo:octo-org/storefirst:ref:refs/tags/v*",
                    "repo:octo-org/storefirst:environment:production"
                ]}
            }
        }])
    );
    // The provider is created only when no existing one is given.
    let provider = &template["Resources"]["GitHubOidcProvider"];
    assert_eq!(provider["Type"], "AWS::IAM::OIDCProvider");
    assert_eq!(provider["Condition"], "CreateOidcProvider");
    assert_eq!(
        provider["Properties"],
        json!({"Url": "https://token.actions.githubusercontent.com", "ClientIdList": ["sts.amazonaws.com"]})
    );
    assert_eq!(
        template["Conditions"]["CreateOidcProvider"],
        json!({"Fn::Equals": [{"Ref": "OidcProviderArn"}, ""]})
    );
    assert_eq!(template["Parameters"]["OidcProviderArn"]["Default"], "");
    // CloudFormation, and only it, assumes the execution role.
    assert_eq!(
        template["Resources"]["CloudFormationExecutionRole"]["Properties"]["AssumeRolePolicyDocument"]
            ["Statement"],
        json!([{
            "Effect": "Allow",
            "Principal": {"Service": "cloudformation.amazonaws.com"},
            "Action": ["sts:AssumeRole"]
        }])
    );
    assert_eq!(
        template["Outputs"][ci_role::DEPLOY_ROLE_OUTPUT]["Value"],
        json!({"Fn::GetAtt": ["GitHubDeployRole", "Arn"]})
    );
}

#[test]
fn repositories_that_are_not_owner_slash_name_are_refused() {
    for bad in ["storefirst", "octo-org/*", "octo-org/storefirst/x", "*/*"] {
        assert!(ci_role_template(bad).is_err(), "{bad}");
    }
}

#[test]
fn no_action_is_a_wildcard_and_resources_are_storefirsts() {
    let template = template();
    let all = statements(&template);
    assert!(all.len() > 10, "{all:?}");
    for (id, statement) in &all {
        for action in statement["Action"].as_array().unwrap() {
            let action = action.as_str().unwrap();
            assert!(!action.contains('*'), "{id}: wildcard action {action}");
        }
        for resource in statement["Resource"].as_array().unwrap() {
            if resource == "*" {
                // Only actions without resource-level permissions: CreateEventSourceMapping,
                // which a condition limits to storefirst functions, the log group
                // handlers' listings, and the random characters of a generated secret.
                if statement["Action"] == json!(["lambda:CreateEventSourceMapping"]) {
                    assert!(
                        statement["Condition"]["ArnLike"]["lambda:FunctionArn"].is_object(),
                        "{id}"
                    );
                } else if statement["Action"] == json!(["secretsmanager:GetRandomPassword"]) {
                    assert!(statement["Condition"].is_null(), "{id}");
                } else {
                    assert_eq!(
                        statement["Action"],
                        json!([
                            "logs:DescribeLogGroups",
                            "logs:DescribeIndexPolicies",
                            "logs:DescribeResourcePolicies"
                        ]),
                        "{id}"
                    );
                }
                continue;
            }
            let text = resource.to_string();
            // ARNs are this stack's roles, or built from pseudo parameters, never a literal
            // partition or account.
            assert!(
                resource["Fn::GetAtt"].is_array() || text.contains("${AWS::Partition}"),
                "{id}: {text}"
            );
            assert!(!text.contains("arn:aws:"), "{id}: {text}");
        }
    }
    let grants = |holder: &str, effect: &str| -> Vec<(Value, Value)> {
        all.iter()
            .filter(|(id, s)| id == holder && s["Effect"] == effect)
            .map(|(_, s)| (s["Action"].clone(), s["Resource"].clone()))
            .collect()
    };
    let stacks = json!({"Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/storefirst*/*"});
    let github = grants("GitHubDeployPolicy", "Allow");
    let change_sets = github
        .iter()
        .find(|(actions, _)| {
            actions
                .as_array()
                .unwrap()
                .contains(&json!("cloudformation:ExecuteChangeSet"))
        })
        .expect("change sets");
    // Change sets are authorized on their stack; a stack that failed its first create
    // (ROLLBACK_COMPLETE) can be deleted.
    assert_eq!(change_sets.1, json!([stacks]));
    assert!(
        change_sets
            .0
            .as_array()
            .unwrap()
            .contains(&json!("cloudformation:DeleteStack"))
    );
    // The GitHub role creates nothing itself: no IAM but PassRole, no DynamoDB but
    // DeleteItem, no Lambda, SQS or logs at all.
    let github_actions: Vec<&str> = github
        .iter()
        .flat_map(|(actions, _)| actions.as_array().unwrap())
        .map(|a| a.as_str().unwrap())
        .collect();
    for action in &github_actions {
        let service = action.split(':').next().unwrap();
        assert!(
            ["cloudformation", "iam", "s3", "apigateway", "dynamodb"].contains(&service),
            "{action}"
        );
    }
    assert!(github_actions.contains(&"iam:PassRole"));
    assert!(
        !github_actions
            .iter()
            .any(|a| a.starts_with("iam:") && *a != "iam:PassRole")
    );
    assert!(
        !github_actions
            .iter()
            .any(|a| a.starts_with("dynamodb:") && *a != "dynamodb:DeleteItem")
    );
    // API Gateway: reads, and PATCH of the account's CloudWatch role setting only.
    let patch = github
        .iter()
        .find(|(actions, _)| {
            actions
                .as_array()
                .unwrap()
                .contains(&json!("apigateway:PATCH"))
        })
        .expect("the account setting");
    assert_eq!(patch.0, json!(["apigateway:GET", "apigateway:PATCH"]));
    assert_eq!(
        patch.1,
        json!([{"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/account"}])
    );
    assert!(!github_actions.iter().any(
        |a| a.starts_with("apigateway:") && !["apigateway:GET", "apigateway:PATCH"].contains(a)
    ));
    // PassRole: the execution role to CloudFormation, and storefirst roles (the bootstrap
    // stack's logs role) to API Gateway only.
    let passes: Vec<&Value> = all
        .iter()
        .filter(|(id, s)| id == "GitHubDeployPolicy" && s["Action"] == json!(["iam:PassRole"]))
        .map(|(_, s)| s)
        .collect();
    assert_eq!(passes.len(), 2, "{passes:?}");
    assert_eq!(
        passes[0]["Resource"],
        json!([{"Fn::GetAtt": ["CloudFormationExecutionRole", "Arn"]}])
    );
    assert_eq!(
        passes[0]["Condition"],
        json!({"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}})
    );
    assert_eq!(
        passes[1]["Resource"],
        json!([{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/storefirst*"}])
    );
    assert_eq!(
        passes[1]["Condition"],
        json!({"StringEquals": {"iam:PassedToService": "apigateway.amazonaws.com"}})
    );
    // It may not change its own stack, and the execution role may not change this
    // stack's roles.
    let denied = grants("GitHubDeployPolicy", "Deny");
    assert_eq!(
        denied[0].1,
        json!([{"Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${AWS::StackName}/*"}])
    );
    assert!(
        denied[0]
            .0
            .as_array()
            .unwrap()
            .contains(&json!("cloudformation:DeleteStack"))
    );
    let denied = grants("CloudFormationExecutionPolicy", "Deny");
    assert_eq!(
        denied[0].1,
        json!([
            {"Fn::GetAtt": ["GitHubDeployRole", "Arn"]},
            {"Fn::GetAtt": ["CloudFormationExecutionRole", "Arn"]}
        ])
    );
    assert!(
        denied[0]
            .0
            .as_array()
            .unwrap()
            .contains(&json!("iam:PutRolePolicy"))
    );
}

#[test]
fn cfn_lint_accepts_the_template() {
    let bin = std::env::var(CFN_LINT_VAR).unwrap_or_else(|_| {
        panic!(
            "{CFN_LINT_VAR} is not set: this test needs the pinned cfn-lint. Run the tests with \
             `cargo xtask test`, which installs it under target/tools and sets {CFN_LINT_VAR}"
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ci-role.template.json");
    std::fs::write(&path, serde_json::to_string_pretty(&template()).unwrap()).unwrap();
    let output = Command::new(format!("{bin}/cfn-lint"))
        .args(["--format", "parseable"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("could not run {bin}/cfn-lint: {e}"));
    assert!(
        output.status.success(),
        "cfn-lint found problems:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
