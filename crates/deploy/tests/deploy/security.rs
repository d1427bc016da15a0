//! The security changes on moto server: what diff and deploy show, and which deploys stop
//! for approval (`--require-approval`, default broadening) when no one can be asked.

use serde_json::{Value, json};
use storefirst_deploy::{Console, Deployment, Error, Outcome, RequireApproval, deploy, diff};
use storefirst_domain::StreamSettings;

use crate::support::{Fixture, Proxy, actions, aws, template};

fn processor_statements(template: &mut Value) -> &mut Vec<Value> {
    template["Resources"]["StreamProcessorPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .expect("statements")
}

fn add_action(template: &mut Value) {
    processor_statements(template)[0]["Action"]
        .as_array_mut()
        .expect("actions")
        .push(json!("dynamodb:DeleteItem"));
}

/// A change to a template.
type Edit = fn(&mut Value);

fn edited(deployment: &Deployment, edit: impl FnOnce(&mut Value)) -> Deployment {
    let mut edited = deployment.clone();
    edit(&mut edited.template);
    edited
}

/// The stack deployed on moto, as the deployment the tests change.
async fn deployed(fixture: &Fixture, aws: &storefirst_deploy::Aws) -> Deployment {
    let deployment = fixture.deployment(template(&StreamSettings::DEFAULT));
    let (console, captured) = Console::capture();
    if let Err(e) = deploy(aws, &deployment, &console).await {
        panic!("the first deploy: {e}\n{}", captured.text());
    }
    Deployment {
        require_approval: RequireApproval::default(),
        ..deployment
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_shows_a_changed_property_old_to_new_and_an_added_action() {
    let fixture = Fixture::new("secdiff");
    let aws = aws(&crate::support::moto_url()).await;
    let deployment = deployed(&fixture, &aws).await;
    let mut changed = edited(&deployment, add_action);
    changed.template = {
        let mut template = template(&StreamSettings {
            batch_size: 50,
            ..StreamSettings::DEFAULT
        });
        add_action(&mut template);
        template
    };

    let (console, captured) = Console::capture();
    let found = diff(&aws, &changed, false, &console)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", captured.text()));
    let text = captured.text();

    assert!(
        text.contains(
            "  ~ modify       StreamMapping                            AWS::Lambda::EventSourceMapping\n      BatchSize: 100 → 50\n"
        ),
        "{text}"
    );
    // The security section is the templates' alone: stable across emulators.
    expect_test::expect![[r#"
        security changes to {stack}:
        IAM statements:
             where                  effect  principal                    action               resource
          -  StreamProcessorPolicy  Allow   role ${StreamProcessorRole}  dynamodb:UpdateItem  ${RequestsTable.Arn}
          +  StreamProcessorPolicy  Allow   role ${StreamProcessorRole}  dynamodb:DeleteItem  ${RequestsTable.Arn}
                                                                         dynamodb:UpdateItem
        broadens permissions:
          StreamProcessorPolicy: role ${StreamProcessorRole} may dynamodb:DeleteItem on ${RequestsTable.Arn}"#]]
    .assert_eq(&found.review.security_report("{stack}"));
    assert!(
        text.contains(&found.review.security_report(&fixture.stack)),
        "{text}"
    );

    // --security-only: that section alone, without a change set.
    let proxy = Proxy::to_moto().await;
    let through = crate::support::aws(&proxy.url).await;
    let (console, captured) = Console::capture();
    diff(&through, &changed, true, &console)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", captured.text()));
    assert_eq!(
        captured.text().trim_end(),
        found.review.security_report(&fixture.stack)
    );
    assert!(actions(&proxy.take(), "CreateChangeSet").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broadening_deploy_stops_without_a_terminal_and_a_narrowing_one_goes_ahead() {
    let fixture = Fixture::new("secdeploy");
    let proxy = Proxy::to_moto().await;
    let aws = aws(&proxy.url).await;
    let deployment = deployed(&fixture, &aws).await;
    let broadening: [(&str, Edit); 3] = [
        ("an added action", add_action),
        ("a new trust principal", |t| {
            t["Resources"]["StreamProcessorRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
                [0]["Principal"]["AWS"] = json!("arn:aws:iam::999999999999:root");
        }),
        ("a wider resource", |t| {
            processor_statements(t)[0]["Resource"] = json!("*");
        }),
    ];
    for (what, edit) in broadening {
        proxy.take();
        let (console, captured) = Console::capture();
        let refused = deploy(&aws, &edited(&deployment, edit), &console).await;
        let text = captured.text();
        let Err(error @ Error::SecurityNotApproved { .. }) = refused else {
            panic!("{what}: expected a refusal, got {refused:?}\n{text}");
        };
        assert!(
            error.to_string().contains("--require-approval never")
                && error.to_string().contains("--yes"),
            "{what}: {error}"
        );
        assert!(text.contains("broadens permissions:"), "{what}: {text}");
        let calls = proxy.take();
        assert!(
            actions(&calls, "ExecuteChangeSet").is_empty(),
            "{what}: {calls:?}"
        );
        assert_eq!(actions(&calls, "DeleteChangeSet").len(), 1, "{what}");
    }

    // Removing an action is shown and goes ahead.
    let narrower = edited(&deployment, |t| {
        processor_statements(t)[1]["Action"]
            .as_array_mut()
            .expect("actions")
            .retain(|a| a != "dynamodb:DescribeStream");
    });
    let (console, captured) = Console::capture();
    let done = deploy(&aws, &narrower, &console)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", captured.text()));
    let text = captured.text();
    assert_eq!(done.outcome, Outcome::Executed, "{text}");
    assert!(text.contains("nothing broadens permissions"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("  -  StreamProcessorPolicy")
                && l.contains("dynamodb:DescribeStream")),
        "{text}"
    );

    // --yes approves a broadening deploy, and says so.
    let (console, captured) = Console::capture();
    let approved = Deployment {
        yes: true,
        ..edited(&narrower, add_action)
    };
    deploy(&aws, &approved, &console)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", captured.text()));
    assert!(
        captured.text().contains(&format!(
            "security changes to {}: approved by --yes",
            fixture.stack
        )),
        "{}",
        captured.text()
    );

    // Unchanged: no change set, and nothing to ask about even under any-change.
    proxy.take();
    let unchanged = Deployment {
        yes: false,
        require_approval: RequireApproval::AnyChange,
        ..approved
    };
    let (console, captured) = Console::capture();
    let again = deploy(&aws, &unchanged, &console)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", captured.text()));
    assert_eq!(again.outcome, Outcome::NoChanges, "{}", captured.text());
    let calls = proxy.take();
    assert!(actions(&calls, "CreateChangeSet").is_empty(), "{calls:?}");
    assert!(
        !captured.text().contains("security changes"),
        "{}",
        captured.text()
    );
}
