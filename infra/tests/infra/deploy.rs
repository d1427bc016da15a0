//! The template creates and deletes cleanly on moto server, with the mapping switched off
//! (moto cannot run the function, and a mapping would consume the stream).

use std::time::Duration;

use serde_json::json;
use storefirst_harness::until_some;

use crate::support::{Moto, unique, xml_values};

/// A zip with a `bootstrap`: moto stores the code, it never runs it.
fn function_zip() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("bootstrap", zip::write::SimpleFileOptions::default())
        .expect("a zip entry");
    std::io::Write::write_all(&mut zip, b"#!/bin/sh\n").expect("written");
    zip.finish().expect("a zip").into_inner()
}

/// Polls DescribeStacks until the stack leaves `*_IN_PROGRESS`; `None` once it is gone.
async fn settle(moto: &Moto, stack: &str) -> Option<String> {
    until_some(
        Duration::from_secs(120),
        &format!("{stack} settles"),
        || async {
            let (status, xml) = moto
                .cloudformation(&[("Action", "DescribeStacks"), ("StackName", stack)])
                .await;
            if status == 400 && xml.contains("does not exist") {
                return Some(None);
            }
            assert_eq!(status, 200, "DescribeStacks: {xml}");
            let state = xml_values(&xml, "StackStatus")
                .first()
                .copied()
                .unwrap_or_default()
                .to_owned();
            (!state.ends_with("_IN_PROGRESS")).then_some(Some(xml))
        },
    )
    .await
}

#[tokio::test]
async fn the_stack_creates_and_deletes_on_moto() {
    let moto = Moto::new();
    let run = unique("run");
    let bucket = format!("artifacts-{run}");
    moto.s3_put(&bucket, Vec::new()).await;
    moto.s3_put(&format!("{bucket}/stream-processor.zip"), function_zip())
        .await;
    let stack = format!("storefirst-{run}");
    let body = storefirst_infra::synthesize().unwrap_or_else(|e| panic!("{e}"));
    let (status, xml) = moto
        .cloudformation(&[
            ("Action", "CreateStack"),
            ("StackName", &stack),
            ("TemplateBody", &body),
            ("Capabilities.member.1", "CAPABILITY_IAM"),
            ("Parameters.member.1.ParameterKey", "ArtifactBucket"),
            ("Parameters.member.1.ParameterValue", &bucket),
            ("Parameters.member.2.ParameterKey", "StreamProcessorKey"),
            ("Parameters.member.2.ParameterValue", "stream-processor.zip"),
            ("Parameters.member.3.ParameterKey", "StreamProcessing"),
            ("Parameters.member.3.ParameterValue", "disabled"),
        ])
        .await;
    assert_eq!(status, 200, "CreateStack: {xml}");
    let described = settle(&moto, &stack).await.expect("the stack exists");
    assert_eq!(
        xml_values(&described, "StackStatus"),
        ["CREATE_COMPLETE"],
        "{:?}",
        xml_values(&described, "StackStatusReason")
    );
    let keys = xml_values(&described, "OutputKey");
    let values = xml_values(&described, "OutputValue");
    let table = keys
        .iter()
        .zip(&values)
        .find(|(key, _)| **key == "TableName")
        .map(|(_, value)| value.to_string())
        .expect("a TableName output");
    let (status, answer) = moto
        .dynamodb("DescribeTable", &json!({"TableName": table}).to_string())
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["Table"]["StreamSpecification"]["StreamViewType"],
        "NEW_AND_OLD_IMAGES"
    );
    let (status, resources) = moto
        .cloudformation(&[("Action", "DescribeStackResources"), ("StackName", &stack)])
        .await;
    assert_eq!(status, 200);
    assert!(
        !xml_values(&resources, "LogicalResourceId").contains(&"StreamMapping"),
        "the mapping must be switched off"
    );

    let (status, xml) = moto
        .cloudformation(&[("Action", "DeleteStack"), ("StackName", &stack)])
        .await;
    assert_eq!(status, 200, "DeleteStack: {xml}");
    if let Some(xml) = settle(&moto, &stack).await {
        assert_eq!(
            xml_values(&xml, "StackStatus"),
            ["DELETE_COMPLETE"],
            "{xml}"
        );
    }
    // The table's retention (RetainExceptOnCreate) is checked in the template
    // (invariants.rs): moto 5.2.5 keeps only resources marked plain "Retain".
}
