//! The notifier in process against moto server's DynamoDB, DynamoDB Streams, SQS and
//! Secrets Manager, delivering to receivers on 127.0.0.1 (the loopback opt-in, as the
//! local Lambda mode sets it).

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use storefirst_domain::CallbackStatus;
use storefirst_harness::until_some;
use storefirst_notifier::{Notifier, redrive_dead_letters};

use crate::support::{OK, Receiver, Reply, Stack, delivery, stream_failures};

/// A finished request's stream record becomes one message; its attempt POSTs GET's
/// document, signed, and the item records the delivery.
#[tokio::test]
async fn a_finished_request_is_enqueued_then_delivered_signed() {
    let stack = Stack::create().await;
    let receiver = Receiver::start(&[]).await;
    stack.finish("order-1", &receiver.url).await;
    let notifier = stack.notifier().await;
    let event = stack.finished_records().await;
    assert_eq!(event["Records"].as_array().unwrap().len(), 1, "{event}");

    let response = notifier.handle(event.clone()).await.unwrap();
    assert_eq!(stream_failures(&response), Vec::<String>::new());
    assert!(
        receiver.received().is_empty(),
        "the stream path sends nothing"
    );
    let queued = stack.take(&stack.delivery_queue).await;
    assert_eq!(queued.len(), 1);
    let message = delivery(&queued[0]);
    let event_id = event["Records"][0]["eventID"].as_str().unwrap();
    assert_eq!(message.webhook_id, format!("msg_{event_id}"));
    assert_eq!(message.attempts, 0);
    // GET's document of the item the stream record shows.
    let document = serde_json::to_string(&stack.item("order-1").await.shown()).unwrap();
    assert_eq!(message.document.get(), document);

    // Enqueued again (the stream retried the record): the same webhook id.
    notifier.handle(event).await.unwrap();
    assert_eq!(stack.pump(&notifier).await, 1);
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].verified, Ok(()), "the signature checks out");
    assert_eq!(received[0].webhook_id, message.webhook_id);
    assert_eq!(String::from_utf8_lossy(&received[0].body), document);
    assert_eq!(
        stack.callback("order-1").await,
        (CallbackStatus::Delivered, 1, None)
    );
}

/// A record the delivery queue does not take is a batch item failure, so the stream
/// delivers it again.
#[tokio::test]
async fn a_record_that_cannot_be_enqueued_is_a_batch_item_failure() {
    let stack = Stack::create().await;
    stack.finish("order-1", "http://127.0.0.1:9/hook").await;
    let missing = format!("{}-missing", stack.delivery_queue);
    let notifier = stack
        .notifier_with(&[("DELIVERY_QUEUE_URL", &missing)])
        .await;
    let event = stack.finished_records().await;
    let sequence_number = event["Records"][0]["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = notifier.handle(event).await.unwrap();

    assert_eq!(
        stream_failures(&response),
        std::slice::from_ref(&sequence_number)
    );
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({ "batchItemFailures": [{ "itemIdentifier": sequence_number }] })
    );
}

/// The secret is read at init: a wrong id fails the start with what to set, and a secret
/// changed afterwards is not read again by the same execution environment.
#[tokio::test]
async fn the_secret_is_read_once_at_init() {
    let stack = Stack::create().await;
    let error = Notifier::init(
        &stack.aws,
        &stack.config(&[("WEBHOOK_SECRET_ARN", "no-such-secret")]),
    )
    .await
    .err()
    .expect("a missing secret fails the start")
    .to_string();
    assert!(
        error.contains("no-such-secret")
            && error.contains("set WEBHOOK_SECRET_ARN")
            && error.contains("WebhookSecretArn"),
        "{error}"
    );

    let notifier = stack.notifier().await;
    let rotated = "0".repeat(64);
    stack
        .secrets
        .put_secret_value()
        .secret_id(&stack.secret_arn)
        .secret_string(&rotated)
        .send()
        .await
        .expect("PutSecretValue on moto");
    let receiver = Receiver::start(&[]).await;
    stack.finish("order-1", &receiver.url).await;
    stack.enqueue(&notifier).await;
    stack.pump(&notifier).await;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].verified,
        Ok(()),
        "signed with the secret read at init"
    );
}

/// Two messages of one batch: the receiver that hangs holds only its own attempt (to the
/// sender's timeout), the healthy one is delivered at once, and the hung one is retried.
#[tokio::test]
async fn a_hanging_receiver_does_not_delay_another_in_the_same_batch() {
    let stack = Stack::create().await;
    let hang = Reply {
        delay: Duration::from_secs(30),
        ..OK
    };
    let hanging = Receiver::start(&[hang]).await;
    let healthy = Receiver::start(&[]).await;
    stack.finish("slow", &hanging.url).await;
    stack.finish("fast", &healthy.url).await;
    let notifier = stack.notifier().await;
    stack.enqueue(&notifier).await;

    let started = Instant::now();
    assert_eq!(stack.pump(&notifier).await, 2, "one batch of both");
    let took = started.elapsed();

    let received = healthy.received();
    assert_eq!(received.len(), 1);
    let waited = received[0].at - started;
    assert!(
        waited < Duration::from_secs(1),
        "the healthy receiver waited {waited:?}"
    );
    assert_eq!(hanging.received().len(), 1);
    assert!(
        (storefirst_webhooks::TIMEOUT..Duration::from_secs(15)).contains(&took),
        "the batch lasts as long as the hung attempt's timeout: {took:?}"
    );
    assert_eq!(
        stack.callback("fast").await,
        (CallbackStatus::Delivered, 1, None)
    );
    let (status, attempts, error) = stack.callback("slow").await;
    assert_eq!((status, attempts), (CallbackStatus::Pending, 1));
    let error = error.unwrap_or_default();
    assert!(error.contains("no answer within"), "{error}");
}

/// A 503 with Retry-After is tried again after that long, through a delayed message, and
/// then delivered with the same webhook id.
#[tokio::test]
async fn a_503_with_retry_after_is_sent_again_after_the_delay_and_delivered() {
    let stack = Stack::create().await;
    let busy = Reply {
        retry_after: Some(2),
        ..Reply::status(StatusCode::SERVICE_UNAVAILABLE)
    };
    let receiver = Receiver::start(&[busy]).await;
    stack.finish("order-1", &receiver.url).await;
    let notifier = stack.notifier().await;
    stack.enqueue(&notifier).await;

    assert_eq!(stack.pump(&notifier).await, 1);
    let retried = Instant::now();
    assert_eq!(
        stack.callback("order-1").await,
        (
            CallbackStatus::Pending,
            1,
            Some("the receiver answered 503".into())
        )
    );
    // Delayed: not received before the receiver's Retry-After.
    assert_eq!(stack.pump(&notifier).await, 0, "the retry waits");
    until_some(Duration::from_secs(10), "the retry is received", || async {
        (stack.pump(&notifier).await == 1).then_some(())
    })
    .await;
    assert!(
        retried.elapsed() >= Duration::from_millis(1500),
        "the retry came after {:?}",
        retried.elapsed()
    );
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].webhook_id, received[1].webhook_id);
    assert_eq!(received[0].body, received[1].body);
    assert!(received.iter().all(|r| r.verified.is_ok()), "{received:?}");
    assert_eq!(
        stack.callback("order-1").await,
        (CallbackStatus::Delivered, 2, None)
    );
}

/// A permanent 4xx fails the delivery: the item says so and the delivery waits in the
/// dead-letter queue, from where redrive delivers it again.
#[tokio::test]
async fn a_permanent_refusal_is_dead_lettered_and_redriven() {
    let stack = Stack::create().await;
    let receiver = Receiver::start(&[Reply::status(StatusCode::GONE)]).await;
    stack.finish("order-1", &receiver.url).await;
    let notifier = stack.notifier().await;
    stack.enqueue(&notifier).await;

    assert_eq!(stack.pump(&notifier).await, 1);
    assert_eq!(
        stack.callback("order-1").await,
        (
            CallbackStatus::Failed,
            1,
            Some("the receiver answered 410".into())
        )
    );
    assert_eq!(stack.pump(&notifier).await, 0, "not retried");
    let dead = stack.peek(&stack.dead_letters).await;
    assert_eq!(dead.len(), 1);
    let dead = delivery(&dead[0]);
    assert_eq!(
        (dead.id.as_str(), dead.attempts, dead.error.as_deref()),
        ("order-1", 1, Some("the receiver answered 410"))
    );

    let moved = redrive_dead_letters(
        &stack.sqs,
        &stack.dynamodb,
        &stack.table,
        &stack.dead_letters,
        &stack.delivery_queue,
    )
    .await
    .unwrap();

    assert_eq!(moved, 1);
    assert!(stack.peek(&stack.dead_letters).await.is_empty());
    assert_eq!(
        stack.callback("order-1").await,
        (CallbackStatus::Pending, 0, None)
    );
    assert_eq!(stack.pump(&notifier).await, 1);
    assert_eq!(
        stack.callback("order-1").await,
        (CallbackStatus::Delivered, 1, None)
    );
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].webhook_id, received[1].webhook_id,
        "the same webhook"
    );
}

/// A wait longer than SQS's longest delay is served in several delays, with no attempt
/// before its time.
#[tokio::test]
async fn a_delivery_not_due_yet_is_delayed_again_without_an_attempt() {
    let stack = Stack::create().await;
    let receiver = Receiver::start(&[]).await;
    stack.finish("order-1", &receiver.url).await;
    let notifier = stack.notifier().await;
    stack.enqueue(&notifier).await;
    let mut later = delivery(&stack.take(&stack.delivery_queue).await[0]);
    later.not_before = Some(storefirst_domain::now_millis() + 3_600_000);
    stack
        .sqs
        .send_message()
        .queue_url(&stack.delivery_queue)
        .message_body(later.body())
        .send()
        .await
        .unwrap();

    assert_eq!(stack.pump(&notifier).await, 1);

    assert!(receiver.received().is_empty(), "no attempt before its time");
    assert_eq!(stack.delayed(&stack.delivery_queue).await, 1);
    assert_eq!(
        stack.callback("order-1").await,
        (CallbackStatus::Pending, 0, None)
    );
}

/// Only an outcome that cannot be recorded fails a message: here the dead-letter queue
/// does not take the give-up, so SQS delivers the message again.
#[tokio::test]
async fn an_outcome_that_cannot_be_recorded_is_a_batch_item_failure() {
    let stack = Stack::create().await;
    let receiver = Receiver::start(&[Reply::status(StatusCode::GONE)]).await;
    stack.finish("order-1", &receiver.url).await;
    let missing = format!("{}-missing", stack.dead_letters);
    let notifier = stack
        .notifier_with(&[("DEAD_LETTER_QUEUE_URL", &missing)])
        .await;
    stack.enqueue(&notifier).await;
    let messages = stack.take(&stack.delivery_queue).await;

    let response = notifier
        .handle(crate::support::sqs_event(&messages))
        .await
        .unwrap();

    let message_id = messages[0].message_id().unwrap();
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({ "batchItemFailures": [{ "itemIdentifier": message_id }] })
    );
    assert_eq!(receiver.received().len(), 1);
}

/// The largest body the API takes, escaped twice over in the document (every character a
/// quote), travels in one message and reaches the receiver byte for byte.
#[tokio::test]
async fn the_largest_document_is_delivered_whole() {
    let stack = Stack::create().await;
    let receiver = Receiver::start(&[]).await;
    let quotes = "\\\"".repeat((storefirst_domain::DEFAULT_BODY_LIMIT - 16) / 2);
    let body = format!(r#"{{"note":"{quotes}"}}"#);
    assert!(body.len() <= storefirst_domain::DEFAULT_BODY_LIMIT);
    stack.finish_with("order-1", &receiver.url, &body).await;
    let notifier = stack.notifier().await;

    let response = stack.enqueue(&notifier).await;
    assert_eq!(stream_failures(&response), Vec::<String>::new());
    assert_eq!(stack.pump(&notifier).await, 1);

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].verified, Ok(()));
    let document: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(document["request"], body.as_str());
    assert!(
        received[0].body.len() > 2 * body.len() - 64,
        "{}",
        received[0].body.len()
    );
}
