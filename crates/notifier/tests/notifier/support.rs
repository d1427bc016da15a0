//! What the test areas share: moto server's table, queues and secret as the stack makes
//! them, a receiver on 127.0.0.1 that checks signatures with the Standard Webhooks
//! library, and the two event source mappings played by hand.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use axum::{
    Router,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::post,
};
use serde_json::{Value, json};
use storefirst_domain::{CallbackStatus, now_millis};
use storefirst_harness::{get_item, moto_url, requests_table, sdk_config, stream_records, unique};
use storefirst_lambda::{item, stream_record::lambda_record};
use storefirst_notifier::{Config, Delivery, Notifier, Response};
use tokio::net::TcpListener;

/// A secret as the stack generates it: 64 alphanumeric characters, no `whsec_`.
pub const SECRET: &str = "Zq3vT8mR1xK5nB7wY2cH9dJ4fL6gP0sA1eU3iO5aQ7rW9tE2yN4mX6bV8cZ0kS2p";

/// The table, the queues and the secret of one test on the shared moto server.
pub struct Stack {
    pub aws: SdkConfig,
    pub table: String,
    pub stream_arn: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub delivery_queue: String,
    pub dead_letters: String,
    pub secret_arn: String,
}

impl Stack {
    pub async fn create() -> Self {
        let aws = sdk_config(&moto_url()).await;
        let table = requests_table("notifier").await;
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let secrets = aws_sdk_secretsmanager::Client::new(&aws);
        let queue = |name: String| {
            let sqs = sqs.clone();
            async move {
                sqs.create_queue()
                    .queue_name(name)
                    .send()
                    .await
                    .expect("CreateQueue on moto")
                    .queue_url
                    .expect("a queue URL")
            }
        };
        let delivery_queue = queue(unique("webhooks")).await;
        let dead_letters = queue(unique("webhook-dead-letters")).await;
        let secret_arn = secrets
            .create_secret()
            .name(unique("webhook-secret"))
            .secret_string(SECRET)
            .send()
            .await
            .expect("CreateSecret on moto")
            .arn
            .expect("a secret ARN");
        Self {
            aws,
            table: table.name,
            stream_arn: table.stream_arn,
            dynamodb: table.dynamodb,
            streams: table.streams,
            sqs,
            secrets,
            delivery_queue,
            dead_letters,
            secret_arn,
        }
    }

    /// The function's environment as the stack sets it, and the local Lambda mode's
    /// opt-in to loopback receivers.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TABLE_NAME", self.table.clone()),
            ("DELIVERY_QUEUE_URL", self.delivery_queue.clone()),
            ("DEAD_LETTER_QUEUE_URL", self.dead_letters.clone()),
            ("WEBHOOK_SECRET_ARN", self.secret_arn.clone()),
            ("STOREFIRST_ALLOW_LOOPBACK_WEBHOOKS", "1".to_owned()),
        ]
    }

    pub fn config(&self, changes: &[(&str, &str)]) -> Config {
        let mut env: HashMap<String, String> = self
            .environment()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        for (name, value) in changes {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        Config::from_lookup(|name| env.get(name).cloned()).expect("a complete configuration")
    }

    pub async fn notifier(&self) -> Notifier {
        self.notifier_with(&[]).await
    }

    /// A request with a callback to `url`, accepted and then processed: PutItem as POST
    /// does, then the outcome's UpdateItem as the stream processor writes it.
    pub async fn finish(&self, id: &str, url: &str) {
        self.finish_with(id, url, r#"{"restaurant":"Roma"}"#).await;
    }

    /// [`Stack::finish`] with the body `request`.
    pub async fn finish_with(&self, id: &str, url: &str, request: &str) {
        let mut new = item::new_request(id, request, now_millis());
        new.extend(item::callback(url));
        self.dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(new))
            .send()
            .await
            .expect("PutItem on moto");
        self.dynamodb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::key(id)))
            .update_expression(
                "SET #status = :status, #result = :result, #updated_at = :now ADD #attempts :one",
            )
            .set_expression_attribute_names(Some(item::names(&[
                "#status #result #updated_at #attempts",
            ])))
            .expression_attribute_values(":status", AttributeValue::S("succeeded".into()))
            .expression_attribute_values(
                ":result",
                AttributeValue::S(r#"{"total_cents":1900}"#.into()),
            )
            .expression_attribute_values(":now", AttributeValue::N(now_millis().to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await
            .expect("UpdateItem on moto");
    }

    /// A notifier started with the environment changed by `changes`.
    pub async fn notifier_with(&self, changes: &[(&str, &str)]) -> Notifier {
        Notifier::init(&self.aws, &self.config(changes))
            .await
            .expect("the notifier starts")
    }

    /// The finished records handed to `notifier` as one stream batch.
    pub async fn enqueue(&self, notifier: &Notifier) -> Response {
        notifier
            .handle(self.finished_records().await)
            .await
            .expect("a stream event")
    }

    /// The delivery state of `id`'s webhook: its status, attempts and last error.
    pub async fn callback(&self, id: &str) -> (CallbackStatus, i64, Option<String>) {
        let callback = self
            .item(id)
            .await
            .callback
            .unwrap_or_else(|| panic!("item {id} has no callback"));
        (callback.status, callback.attempts, callback.error)
    }

    pub async fn item(&self, id: &str) -> item::Stored {
        let found = get_item(&self.dynamodb, &self.table, id).await;
        item::Stored::from_item(&found).expect("an item of the schema")
    }

    /// The stream's records the notifier's event filter lets through (pending to
    /// finished, with a callback), as the event source mapping delivers them.
    pub async fn finished_records(&self) -> Value {
        let records = stream_records(&self.streams, &self.stream_arn).await;
        let finished: Vec<Value> = records
            .iter()
            .map(|record| lambda_record(record, &self.stream_arn))
            .filter(|record| {
                let change = &record["dynamodb"];
                record["eventName"] == "MODIFY"
                    && change["OldImage"]["status"]["S"] == "pending"
                    && change["NewImage"]["status"]["S"] != "pending"
                    && change["NewImage"]["callback_url"]["S"].is_string()
            })
            .collect();
        json!({ "Records": finished })
    }

    /// The messages waiting in `queue` now (none that are delayed), taken off it.
    pub async fn take(&self, queue: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let mut taken = Vec::new();
        loop {
            let messages = self.receive(queue, None).await;
            if messages.is_empty() {
                return taken;
            }
            for message in &messages {
                self.delete(queue, message).await;
            }
            taken.extend(messages);
        }
    }

    /// The messages waiting in `queue` now, left there (received with no visibility
    /// timeout).
    pub async fn peek(&self, queue: &str) -> Vec<aws_sdk_sqs::types::Message> {
        self.receive(queue, Some(0)).await
    }

    /// Up to 10 messages of `queue` due now; `visibility_timeout` overrides the queue's.
    async fn receive(
        &self,
        queue: &str,
        visibility_timeout: Option<i32>,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .set_visibility_timeout(visibility_timeout)
            .send()
            .await
            .expect("ReceiveMessage on moto")
            .messages
            .unwrap_or_default()
    }

    /// How many messages of `queue` are delayed.
    pub async fn delayed(&self, queue: &str) -> usize {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .expect("GetQueueAttributes on moto")
            .attributes
            .unwrap_or_default();
        attributes
            .get(&QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .and_then(|count| count.parse().ok())
            .expect("a count of delayed messages")
    }

    async fn delete(&self, queue: &str, message: &aws_sdk_sqs::types::Message) {
        self.sqs
            .delete_message()
            .queue_url(queue)
            .receipt_handle(message.receipt_handle().expect("a receipt handle"))
            .send()
            .await
            .expect("DeleteMessage on moto");
    }

    /// One batch of the delivery queue (up to 10 messages due now) handed to `notifier`
    /// as the SQS event source mapping does: the messages not reported as failures are
    /// deleted. Answers how many there were.
    pub async fn pump(&self, notifier: &Notifier) -> usize {
        let messages = self.receive(&self.delivery_queue, None).await;
        if messages.is_empty() {
            return 0;
        }
        let response = notifier
            .handle(sqs_event(&messages))
            .await
            .expect("an SQS event");
        let failures = response.failures();
        for message in &messages {
            if !failures
                .iter()
                .any(|id| Some(id.as_str()) == message.message_id())
            {
                self.delete(&self.delivery_queue, message).await;
            }
        }
        messages.len()
    }
}

/// `messages` as Lambda delivers them from SQS.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|message| {
            json!({
                "messageId": message.message_id(),
                "receiptHandle": message.receipt_handle(),
                "body": message.body(),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": message.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:webhooks",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

pub fn stream_failures(response: &Response) -> Vec<String> {
    match response {
        Response::Stream(_) => response.failures(),
        other => panic!("a stream batch answers as one: {other:?}"),
    }
}

pub fn delivery(message: &aws_sdk_sqs::types::Message) -> Delivery {
    Delivery::parse(message.body().expect("a body")).expect("a delivery")
}

/// One POST a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub webhook_id: String,
    pub body: Vec<u8>,
    /// Whether the signature checks out with the receiver's secret (the Standard
    /// Webhooks library's `verify`).
    pub verified: Result<(), String>,
}

/// How a receiver answers a POST.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: StatusCode,
    pub retry_after: Option<u64>,
    pub delay: Duration,
}

impl Reply {
    /// `status` at once, with no Retry-After.
    pub const fn status(status: StatusCode) -> Self {
        Self {
            status,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
}

pub const OK: Reply = Reply::status(StatusCode::NO_CONTENT);

/// A webhook receiver on 127.0.0.1 that checks signatures with [`SECRET`]: answers the
/// scripted replies in turn, then `OK`.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    script: Arc<Mutex<VecDeque<Reply>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(script: &[Reply]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/hook",
            listener.local_addr().unwrap().port()
        );
        let receiver = Self {
            url,
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            received: Arc::default(),
        };
        let verifier = Arc::new(
            standardwebhooks::Webhook::new(&format!("whsec_{SECRET}")).expect("a whsec_ secret"),
        );
        let state = receiver.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (verifier, state) = (verifier.clone(), state.clone());
                async move {
                    let verified = verifier.verify(&body, &headers).map_err(|e| e.to_string());
                    state.received.lock().unwrap().push(Received {
                        at: Instant::now(),
                        webhook_id: headers
                            .get("webhook-id")
                            .and_then(|id| id.to_str().ok())
                            .unwrap_or_default()
                            .to_owned(),
                        body: body.to_vec(),
                        verified,
                    });
                    let reply = state.script.lock().unwrap().pop_front().unwrap_or(OK);
                    tokio::time::sleep(reply.delay).await;
                    let mut headers = HeaderMap::new();
                    if let Some(seconds) = reply.retry_after {
                        headers.insert("retry-after", seconds.into());
                    }
                    (reply.status, headers).into_response()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}
