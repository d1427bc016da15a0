//! The deployable zip itself, arm64 under qemu-user in a Lambda execution environment
//! ([`storefirst_lambda_env`]), delivering one webhook end to end through moto: the
//! stream batch enqueues, the queue batch delivers.

use std::time::Duration;

use serde_json::{Value, json};
use storefirst_domain::CallbackStatus;
use storefirst_harness::{REGION, moto_url};
use storefirst_lambda_env::{Bootstrap, FunctionConfig, Identity, LambdaFunction};

use crate::support::{Receiver, Stack, sqs_event};

/// Set by `cargo xtask test` to the notifier's zip it built.
const ZIP_VAR: &str = "STOREFIRST_TEST_NOTIFIER_ZIP";

#[tokio::test]
async fn the_zip_delivers_a_webhook_through_moto() {
    let zip = std::env::var(ZIP_VAR).unwrap_or_else(|_| {
        panic!(
            "{ZIP_VAR} is not set: run the tests with `cargo xtask test`, which builds the zip \
             (or set it to target/lambda/notifier/bootstrap.zip after `cargo xtask build`)"
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let bootstrap =
        Bootstrap::from_zip(zip.as_ref(), dir.path(), None).unwrap_or_else(|e| panic!("{e}"));
    let stack = Stack::create().await;
    let mut env: Vec<(String, String)> = stack
        .environment()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    env.extend(
        [
            ("AWS_ENDPOINT_URL", moto_url()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_MAX_ATTEMPTS", "1".into()),
        ]
        .map(|(name, value)| (name.to_owned(), value)),
    );
    let function = LambdaFunction::new(FunctionConfig {
        bootstrap,
        identity: Identity {
            name: "notifier".into(),
            region: REGION.into(),
            memory_mb: 128,
        },
        timeout: Duration::from_secs(30),
        env,
    });
    let receiver = Receiver::start(&[]).await;
    stack.finish("order-1", &receiver.url).await;

    let answer = function
        .invoke(stack.finished_records().await)
        .await
        .unwrap_or_else(|e| panic!("the stream batch: {e}"));
    let none = json!({ "batchItemFailures": [] });
    assert_eq!(serde_json::from_str::<Value>(&answer).unwrap(), none);
    let messages = stack.take(&stack.delivery_queue).await;
    assert_eq!(messages.len(), 1);
    let answer = function
        .invoke(sqs_event(&messages))
        .await
        .unwrap_or_else(|e| panic!("the queue batch: {e}"));
    assert_eq!(serde_json::from_str::<Value>(&answer).unwrap(), none);

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].verified,
        Ok(()),
        "signed with the stack's secret"
    );
    assert_eq!(
        stack.callback("order-1").await,
        (CallbackStatus::Delivered, 1, None)
    );
    assert_eq!(function.starts(), 1, "one execution environment for both");
}
