//! `deploy-ci-role` on moto server: the CI role stack deploys through the same change-set
//! flow, with an existing OIDC provider referenced. Whom its roles trust is the template's
//! test (`infra/tests/infra/ci_role.rs`).

use storefirst_deploy::{CiRole, Console, Outcome, RequireApproval, deploy};
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

/// The account's GitHub OIDC provider, created unless an earlier run made it: IAM holds one
/// per URL and account.
async fn oidc_provider() -> String {
    let listed = iam(&[("Action", "ListOpenIDConnectProviders")]).await;
    let host = ci_role::GITHUB_OIDC_URL.trim_start_matches("https://");
    if let Some(arn) = listed
        .split("<Arn>")
        .skip(1)
        .filter_map(|rest| rest.split("</Arn>").next())
        .find(|arn| arn.ends_with(&format!("oidc-provider/{host}")))
    {
        return arn.to_owned();
    }
    let created = iam(&[
        ("Action", "CreateOpenIDConnectProvider"),
        ("Url", ci_role::GITHUB_OIDC_URL),
        ("ClientIDList.member.1", ci_role::GITHUB_AUDIENCE),
    ])
    .await;
    element(&created, "OpenIDConnectProviderArn").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ci_role_stack_deploys_through_the_change_set_flow_with_an_existing_provider() {
    let fixture = Fixture::new("storefirst-ci");
    // The account's existing provider, as --oidc-provider-arn names it.
    let provider = oidc_provider().await;
    let deployment = CiRole {
        repo: REPO.to_owned(),
        stack: fixture.stack.clone(),
        oidc_provider_arn: Some(provider.clone()),
        bootstrap_stack: fixture.bootstrap.clone(),
        outputs_dir: fixture.outputs_dir(),
        yes: false,
        // Every statement is new on a first deploy: the approval has its own tests.
        require_approval: RequireApproval::Never,
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
    for role in ["GitHubDeployRole", "CloudFormationExecutionRole"] {
        assert!(resources.contains_key(role), "no {role} in {resources:?}");
    }
    assert!(
        !resources.contains_key("GitHubOidcProvider"),
        "an existing provider is referenced, not created: {resources:?}"
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
        require_approval: RequireApproval::default(),
    };
    let error = role.deployment().unwrap_err();
    assert!(error.to_string().contains("OWNER/NAME"), "{error}");
}
