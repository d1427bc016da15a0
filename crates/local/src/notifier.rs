//! The Lambda mode's webhook notifier, as the stack runs it: the delivery queue, its dead
//! letters and the signing secret in the same AWS endpoint as the table, and the notifier
//! zip fed by two event source mappings: the table's stream (its own checkpoint, the
//! stack's filter) and the delivery queue (pollers of their own, so that a function
//! waiting on a receiver never holds up the stream).

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use aws_config::SdkConfig;
use aws_sdk_sqs::{error::DisplayErrorContext, types::QueueAttributeName};
use storefirst_app::function::MEMORY_MB;
use storefirst_domain::{ChangeEvent, StreamSettings};
use storefirst_dynamodb::DynamoTable;
use storefirst_lambda::{filter::Pattern, item::notifier_filter_pattern};
use storefirst_lambda_env::{
    Bootstrap, FunctionConfig, Identity, LambdaFunction, inherited_environment,
};
use storefirst_local::{lambda::LambdaInvoker, sqs::SqsSource};
use storefirst_notifier::{DEAD_LETTER_QUEUE_VAR, DELIVERY_QUEUE_VAR, LOOPBACK_VAR, SECRET_VAR};
use storefirst_pipeline::{Runtime, poller::Poller};
use storefirst_webhooks::{Secret, generate_secret};
use tracing::Instrument;

/// The stack's function timeout and the queue's receives before SQS dead-letters a
/// message (the stack's values).
const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RECEIVE_COUNT: u32 = 5;
/// The dead letters are kept as long as SQS allows (14 days), as the stack keeps them.
const DEAD_LETTER_RETENTION_SECONDS: u32 = 14 * 24 * 60 * 60;
/// Batches of the delivery queue that run at once, each in its own execution environment
/// (started at its first batch). Lambda starts with five and scales with the backlog; here
/// the scaling stops at this many.
const QUEUE_CONCURRENCY: usize = 10;
/// The stream mapping as the stack configures it: batches of 100, retried until the
/// record leaves the stream (a record fails only while SQS refuses the enqueue), never
/// split.
const STREAM_EVENTS: &[ChangeEvent] = &[
    ChangeEvent::Insert,
    ChangeEvent::Modify,
    ChangeEvent::Remove,
];

/// Where the table's webhooks wait and what signs them.
pub struct Resources {
    pub queue_url: String,
    pub queue_arn: String,
    pub dead_letters_url: String,
    pub secret_arn: String,
}

/// The queue names of `table`'s webhooks: deliveries, and given-up ones.
pub fn queue_names(table: &str) -> (String, String) {
    (
        format!("{table}-webhooks"),
        format!("{table}-webhook-dead-letters"),
    )
}

/// The signing secret's name for `table` (the stack's is `<stack>-webhook`).
pub fn secret_name(table: &str) -> String {
    format!("{table}-webhook")
}

/// Where the secret came from.
pub enum Origin {
    Given,
    Kept,
    Generated,
}

/// Creates (or updates) the queues and the secret of `table`'s webhooks: `given` replaces
/// the kept secret, a missing one is generated. Answers the secret as receivers use it
/// (`whsec_...`).
pub async fn provision(
    aws: &SdkConfig,
    table: &str,
    visibility_timeout: Duration,
    given: Option<&str>,
) -> anyhow::Result<(Resources, Secret, Origin)> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let (queue, dead) = queue_names(table);
    let dead_letters_url = ensure_queue(
        &sqs,
        &dead,
        HashMap::from([(
            QueueAttributeName::MessageRetentionPeriod,
            DEAD_LETTER_RETENTION_SECONDS.to_string(),
        )]),
    )
    .await?;
    let dead_letters_arn = queue_arn(&sqs, &dead_letters_url).await?;
    let redrive_policy = serde_json::json!({
        "deadLetterTargetArn": dead_letters_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    });
    let queue_url = ensure_queue(
        &sqs,
        &queue,
        HashMap::from([
            (
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout.as_secs().to_string(),
            ),
            (
                QueueAttributeName::RedrivePolicy,
                redrive_policy.to_string(),
            ),
        ]),
    )
    .await?;
    let queue_arn = queue_arn(&sqs, &queue_url).await?;
    let (secret_arn, secret, origin) = ensure_secret(aws, table, given).await?;
    Ok((
        Resources {
            queue_url,
            queue_arn,
            dead_letters_url,
            secret_arn,
        },
        secret,
        origin,
    ))
}

/// The URLs of `table`'s delivery queue and dead letters, if the Lambda mode made them.
pub async fn find_queues(aws: &SdkConfig, table: &str) -> anyhow::Result<Option<(String, String)>> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let (queue, dead) = queue_names(table);
    let (Some(queue), Some(dead)) = (
        queue_url(&sqs, &queue).await?,
        queue_url(&sqs, &dead).await?,
    ) else {
        return Ok(None);
    };
    Ok(Some((queue, dead)))
}

async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> anyhow::Result<Option<String>> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(found) => Ok(found.queue_url),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_queue_does_not_exist()) =>
        {
            Ok(None)
        }
        Err(error) => Err(anyhow::anyhow!(
            "GetQueueUrl of {name} failed: {}; check AWS_ENDPOINT_URL, AWS_REGION and the \
             credentials",
            DisplayErrorContext(&error)
        )),
    }
}

/// The queue `name` with `attributes`: created, or set on the existing one.
async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: HashMap<QueueAttributeName, String>,
) -> anyhow::Result<String> {
    let fail = |call: &str, error: String| {
        anyhow::anyhow!(
            "{call} of the queue {name} failed: {error}; check AWS_ENDPOINT_URL, AWS_REGION \
             and the credentials"
        )
    };
    if let Some(url) = queue_url(sqs, name).await? {
        sqs.set_queue_attributes()
            .queue_url(&url)
            .set_attributes(Some(attributes))
            .send()
            .await
            .map_err(|e| fail("SetQueueAttributes", DisplayErrorContext(&e).to_string()))?;
        return Ok(url);
    }
    sqs.create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| fail("CreateQueue", DisplayErrorContext(&e).to_string()))?
        .queue_url
        .ok_or_else(|| fail("CreateQueue", "the answer has no URL".into()))
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("GetQueueAttributes of {url}: {}", DisplayErrorContext(&e)))?
        .attributes
        .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
        .with_context(|| format!("GetQueueAttributes of {url} answered no QueueArn"))
}

async fn ensure_secret(
    aws: &SdkConfig,
    table: &str,
    given: Option<&str>,
) -> anyhow::Result<(String, Secret, Origin)> {
    let secrets = aws_sdk_secretsmanager::Client::new(aws);
    let name = secret_name(table);
    let given = given.map(Secret::parse_stored).transpose()?;
    let fail = |call: &str, error: String| {
        anyhow::anyhow!(
            "{call} of the secret {name} failed: {error}; check AWS_ENDPOINT_URL, AWS_REGION \
             and the credentials"
        )
    };
    match secrets.get_secret_value().secret_id(&name).send().await {
        Ok(kept) => {
            let arn = kept.arn.clone().unwrap_or_else(|| name.clone());
            let Some(given) = given else {
                let text = kept
                    .secret_string
                    .with_context(|| format!("the secret {name} has no SecretString"))?;
                return Ok((arn, Secret::parse_stored(&text)?, Origin::Kept));
            };
            if kept.secret_string.as_deref() != Some(given.stored()) {
                secrets
                    .put_secret_value()
                    .secret_id(&arn)
                    .secret_string(given.stored())
                    .send()
                    .await
                    .map_err(|e| fail("PutSecretValue", DisplayErrorContext(&e).to_string()))?;
            }
            Ok((arn, given, Origin::Given))
        }
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            let (secret, origin) = match given {
                Some(given) => (given, Origin::Given),
                None => (Secret::parse(&generate_secret())?, Origin::Generated),
            };
            let created = secrets
                .create_secret()
                .name(&name)
                .description("The webhook signing secret of storefirst-local's Lambda mode")
                .secret_string(secret.stored())
                .send()
                .await
                .map_err(|e| fail("CreateSecret", DisplayErrorContext(&e).to_string()))?;
            Ok((created.arn.unwrap_or(name), secret, origin))
        }
        Err(error) => Err(fail(
            "GetSecretValue",
            DisplayErrorContext(&error).to_string(),
        )),
    }
}

/// The secret kept for `table`, as receivers use it.
pub async fn kept_secret(aws: &SdkConfig, table: &str) -> anyhow::Result<Secret> {
    let name = secret_name(table);
    let kept = aws_sdk_secretsmanager::Client::new(aws)
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "GetSecretValue of {name} failed: {}; start the Lambda mode with \
                 --notifier-zip once to create it",
                DisplayErrorContext(&e)
            )
        })?;
    Ok(Secret::parse_stored(&kept.secret_string.with_context(
        || format!("the secret {name} has no SecretString"),
    )?)?)
}

/// How the notifier runs.
pub struct NotifierSetup<'a> {
    pub zip: &'a Path,
    pub native: Option<&'a Path>,
    /// Where the bootstrap is unpacked.
    pub dir: &'a Path,
    /// The stream mapping's checkpoint and dead letters.
    pub ledger: &'a Path,
    pub region: String,
    pub allow_loopback: bool,
    pub base: &'a StreamSettings,
    pub retry_backoff: Duration,
}

/// Starts the notifier's two event source mappings beside `runtime`'s poller; answers how
/// the function runs.
pub fn start<S: storefirst_pipeline::ports::Ingest>(
    runtime: &mut Runtime<S>,
    table: &DynamoTable,
    aws: &SdkConfig,
    resources: Resources,
    setup: NotifierSetup<'_>,
) -> anyhow::Result<String> {
    let bootstrap = Bootstrap::from_zip(setup.zip, setup.dir, setup.native)?;
    let how = bootstrap.how.clone();
    let mut env = inherited_environment();
    env.extend([
        (storefirst_lambda::TABLE_VAR.to_owned(), table.name.clone()),
        (DELIVERY_QUEUE_VAR.to_owned(), resources.queue_url.clone()),
        (
            DEAD_LETTER_QUEUE_VAR.to_owned(),
            resources.dead_letters_url.clone(),
        ),
        (SECRET_VAR.to_owned(), resources.secret_arn.clone()),
    ]);
    if setup.allow_loopback {
        env.push((LOOPBACK_VAR.to_owned(), "1".to_owned()));
    }
    let config = FunctionConfig {
        bootstrap,
        identity: Identity {
            name: "notifier".into(),
            region: setup.region.clone(),
            memory_mb: MEMORY_MB,
        },
        timeout: TIMEOUT,
        env,
    };
    let function = || Arc::new(LambdaFunction::new(config.clone()));

    let stream = table
        .stream(setup.ledger)?
        .filtered(Pattern::parse(&notifier_filter_pattern())?);
    let settings = StreamSettings {
        batch_size: 100,
        batching_window: Duration::ZERO,
        maximum_retry_attempts: 10_000,
        bisect_batch_on_function_error: false,
        // The stream keeps a record 24 hours.
        maximum_record_age: Duration::from_secs(24 * 60 * 60),
        events: STREAM_EVENTS,
        ..setup.base.clone()
    };
    let invoker = LambdaInvoker {
        function: function(),
    };
    let retry_backoff = setup.retry_backoff;
    runtime.spawn(move |shutdown| {
        Poller {
            stream,
            invoker,
            settings,
            retry_backoff,
            shutdown,
        }
        .run()
        // Its log lines beside the processor's poller's.
        .instrument(tracing::info_span!("notifier_stream_mapping"))
    });

    let source = SqsSource {
        sqs: aws_sdk_sqs::Client::new(aws),
        queue_url: resources.queue_url,
        queue_arn: resources.queue_arn,
        region: setup.region,
        environments: (0..QUEUE_CONCURRENCY).map(|_| function()).collect(),
    };
    runtime.spawn(move |shutdown| source.run(shutdown));
    Ok(how)
}
