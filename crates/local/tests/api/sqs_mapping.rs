//! The Lambda mode's SQS event source mapping against moto, with a scripted function: it
//! deletes what the function handled, leaves a batch item failure and every message of a
//! failed invocation to the queue's visibility timeout.

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use storefirst_harness::{moto_url, sdk_config, unique};
use storefirst_lambda_env::{Bootstrap, FunctionConfig, Identity, LambdaFunction};
use storefirst_local::sqs::SqsSource;
use tokio::sync::watch;

use crate::eventually;

/// The function of `fixtures/sqs-bootstrap.py`.
fn scripted() -> Arc<LambdaFunction> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/sqs-bootstrap.py");
    Arc::new(LambdaFunction::new(FunctionConfig {
        bootstrap: Bootstrap {
            program: "python3".into(),
            args: vec![script.into_os_string()],
            how: "a scripted function".into(),
        },
        identity: Identity {
            name: "notifier".into(),
            region: "us-east-1".into(),
            memory_mb: 128,
        },
        timeout: Duration::from_secs(5),
        env: vec![("PATH".into(), std::env::var("PATH").unwrap())],
    }))
}

/// A queue whose received messages come back after 1 s; its URL and ARN.
async fn queue(sqs: &aws_sdk_sqs::Client) -> (String, String) {
    let url = sqs
        .create_queue()
        .queue_name(unique("mapping"))
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = attributes(sqs, &url, QueueAttributeName::QueueArn).await
        [&QueueAttributeName::QueueArn]
        .clone();
    (url, arn)
}

/// The attributes `name` stands for of the queue at `url`.
pub async fn attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    name: QueueAttributeName,
) -> HashMap<QueueAttributeName, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(name)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
}

/// Every message left (the visibility timeout passed), with how often it was received.
async fn left(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<(String, u32)> {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let received = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap();
    let mut left: Vec<(String, u32)> = received
        .messages
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let count = m.attributes.unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount]
                .parse()
                .unwrap();
            (m.body.unwrap(), count)
        })
        .collect();
    left.sort();
    left
}

#[tokio::test(flavor = "multi_thread")]
async fn handled_messages_are_deleted_failures_and_failed_invocations_come_back() {
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&moto_url()).await);
    let (url, arn) = queue(&sqs).await;
    let function = scripted();
    let source = SqsSource {
        sqs: sqs.clone(),
        queue_url: url.clone(),
        queue_arn: arn,
        region: "us-east-1".into(),
        environments: vec![function.clone()],
    };
    let send = |body: &'static str| {
        let (sqs, url) = (sqs.clone(), url.clone());
        async move {
            sqs.send_message()
                .queue_url(url)
                .message_body(body)
                .send()
                .await
                .unwrap();
        }
    };
    for body in ["one", "fail", "two"] {
        send(body).await;
    }
    let (stop, stopping) = watch::channel(false);
    let running = tokio::spawn(source.run(stopping));
    eventually(
        Duration::from_secs(20),
        "the handled messages are deleted, the failure received again",
        || async {
            let attributes = attributes(&sqs, &url, QueueAttributeName::All).await;
            let count = |name| attributes[&name].parse::<u32>().unwrap();
            count(QueueAttributeName::ApproximateNumberOfMessages)
                + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                == 1
        },
    )
    .await;
    send("crash").await;
    eventually(
        Duration::from_secs(20),
        "the crashed function is started again",
        || async { function.starts() >= 3 },
    )
    .await;
    stop.send(true).unwrap();
    running.await.unwrap();

    let left = left(&sqs, &url).await;
    let bodies: Vec<&str> = left.iter().map(|(body, _)| body.as_str()).collect();
    assert_eq!(bodies, ["crash", "fail"], "{left:?}");
    assert!(
        left.iter().all(|(_, received)| *received >= 2),
        "each came back after the visibility timeout: {left:?}"
    );
}
