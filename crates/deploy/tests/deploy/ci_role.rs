//! `deploy-ci-role` on moto server: the CI role stack deploys through the same change-set
//! flow, and its role trusts only the repository's tags and production environment.

use serde_json::{Value, json};
use storefirst_deploy::{CiRole, Console, Outcome, deploy};
use storefirst_infra::ci_role;

use crate::support::{Fixture, actions, authorization, aws, moto_url, physical_ids};

const REPO: &str = "octo-org/storefirst";

/// One IAM query-protocol call to moto server; its XML answer.
async fn iam(params: &[(&str, &str)]) -> String {
    let mut form = vec![("Version", "2010-05-08")];
    form.extend_from_slice(params);
    let response = reqwest::Client::new()
        .post(moto_url())
        .header("Authorization", authorization("iam"))
        .form(&form)
        .send()
        .await
        .expect("moto answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    assert!(status.is_success(), "IAM {params:?}: {status}\n{text}");
    text
}

/// The text of the first `<tag>` element of an XML answer.
fn element<'a>(xml: &'a str, tag: &str) -> &'a str {
    let start = xml
        .find(&format!("<{tag}>"))
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + tag.len()
        + 2;
    let end = xml[start..].find(&format!("</{tag}>")).expect("closed") + start;
    &xml[start..end]
}

/// The role's trust policy, as IAM holds it (URL-encoded JSON in XML).
async fn trust_policy(role: &str) -> Value {
    let xml = iam(&[("Action", "GetRole"), ("RoleName", role)]).await;
    let raw = element(&xml, "AssumeRolePolicyDocument")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let decoded: String =
        form_urlencoded::parse(format!("d={}", raw.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .expect("a value");
    serde_json::from_str(&decoded).unwrap_or_else(|e| panic!("{e}: {decoded}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ci_role_stack_deploys_a_role_trusted_from_the_repositorys_tags_and_production() {
    let fixture = Fixture::new("storefirst-ci");
    // The account's existing provider, as --oidc-provider-arn names it.
    let created = iam(&[
        ("Action", "CreateOpenIDConnectProvider"),
        ("Url", ci_role::GITHUB_OIDC_URL),
        ("ClientIDList.member.1", ci_role::GITHUB_AUDIENCE),
    ])
    .await;
    let provider = element(&created, "OpenIDConnectProviderArn").to_owned();
    let deployment = CiRole {
        repo: REPO.to_owned(),
        stack: fixture.stack.clone(),
        oidc_provider_arn: Some(provider.clone()),
        bootstrap_stack: fixture.bootstrap.clone(),
        outputs_dir: fixture.outputs_dir(),
        yes: false,
    }
    .deployment()
    .expect("a valid repository");
    let proxy = crate::support::Proxy::to_moto().await;
    let aws = aws(&proxy.url).await;
    let (console, captured) = Console::capture();
    let deployed = match deploy(&aws, &deployment, &console).await {
        Ok(deployed) => deployed,
        Err(e) => panic!("deploy-ci-role failed: {e}\n{}", captured.text()),
    };
    assert_eq!(deployed.outcome, Outcome::Executed, "{}", captured.text());
    let calls = proxy.take();
    // The same flow as the app stack: the bootstrap stack, then a change set for this one,
    // and nothing uploaded.
    let stacks: Vec<_> = actions(&calls, "CreateChangeSet")
        .iter()
        .map(|c| c.param("StackName").unwrap().to_owned())
        .collect();
    assert_eq!(stacks, [fixture.bootstrap.clone(), fixture.stack.clone()]);
    assert!(
        !calls.iter().any(|c| c.method == "PUT"),
        "deploy-ci-role uploads nothing"
    );
    let change_set = actions(&calls, "CreateChangeSet")[1];
    let bucket = physical_ids(&fixture.bootstrap).await["AssetsBucket"].clone();
    assert!(
        change_set
            .params
            .iter()
            .any(|(k, v)| k.ends_with(".ParameterValue") && *v == bucket),
        "the bootstrap bucket fills AssetsBucket: {:?}",
        change_set.params
    );

    let resources = physical_ids(&fixture.stack).await;
    let role = resources
        .get("GitHubDeployRole")
        .unwrap_or_else(|| panic!("no GitHubDeployRole in {resources:?}"));
    assert!(
        resources.contains_key("CloudFormationExecutionRole"),
        "{resources:?}"
    );
    assert!(
        !resources.contains_key("GitHubOidcProvider"),
        "an existing provider is referenced, not created: {resources:?}"
    );
    assert_eq!(
        trust_policy(role).await["Statement"],
        json!([{
            "Effect": "Allow",
            "Principal": {"Federated": provider},
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
    // A second run changes nothing.
    let (console, captured) = Console::capture();
    let again = deploy(&aws, &deployment, &console)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", captured.text()));
    assert_eq!(again.outcome, Outcome::NoChanges, "{}", captured.text());
}

#[test]
fn an_invalid_repository_is_refused_before_any_call() {
    let role = CiRole {
        repo: "octo-org/*".to_owned(),
        stack: ci_role::DEFAULT_STACK.to_owned(),
        oidc_provider_arn: None,
        bootstrap_stack: "storefirst-bootstrap".to_owned(),
        outputs_dir: "target/storefirst".into(),
        yes: false,
    };
    let error = role.deployment().unwrap_err();
    assert!(error.to_string().contains("OWNER/NAME"), "{error}");
}
