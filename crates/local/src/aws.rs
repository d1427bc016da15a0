//! The DynamoDB and Lambda modes: a DynamoDB table and its stream (moto or AWS) instead of
//! SQLite, with the processor in-process or in the Lambda zip behind a local Runtime API,
//! and the webhook notifier's zip beside it (`notifier.rs`); and redrive over such a table.

use std::{sync::Arc, time::Duration};

use storefirst_app::{App, function};
use storefirst_domain::Receivers;
use storefirst_dynamodb::{DynamoReadModel, DynamoRequests, DynamoStuck, DynamoTable};
use storefirst_lambda_env::{
    Bootstrap, FunctionConfig, Identity, LambdaFunction, inherited_environment,
};
use storefirst_local::lambda::LambdaInvoker;
use storefirst_pipeline::{
    Config, Runtime,
    console::Console,
    ports::{ChangeStream, InProcess, Invoker},
    redrive,
};

use crate::{
    cli::{Args, Command},
    notifier::{self, NotifierSetup, Origin},
};

pub async fn run(
    args: &Args,
    table: &str,
    config: Config,
    processor: Arc<App>,
) -> anyhow::Result<()> {
    let aws = aws_config::load_from_env().await;
    let region = aws
        .region()
        .map_or("us-east-1".to_owned(), ToString::to_string);
    let table = DynamoTable::connect(&aws, table, args.create_table).await?;

    match &args.command {
        Some(Command::Redrive {
            webhook_queue_url,
            webhook_dead_letters_url,
        }) => {
            let queues = match (webhook_queue_url, webhook_dead_letters_url) {
                (Some(queue), Some(dead)) => Some((queue.clone(), dead.clone())),
                _ => notifier::find_queues(&aws, &table.name).await?,
            };
            redrive_webhooks(&aws, &table, queues).await?;
            // The dead letters of a local run against this table, if there was one.
            let ledger = config
                .db
                .exists()
                .then(|| table.ledger(&config.db))
                .transpose()?;
            let stuck = stuck(&table, ledger, &config);
            return crate::reported(redrive(&stuck, processor, &config.stream).await?);
        }
        Some(Command::WebhookSecret) => {
            println!(
                "{}",
                notifier::kept_secret(&aws, &table.name).await?.as_str()
            );
            return Ok(());
        }
        None => {}
    }

    let stream = table.stream(&config.db)?;
    // The console's redrive runs this processor in-process, as `redrive` does.
    let ledger = Some(stream.ledger().clone());
    let console = Console {
        read: DynamoReadModel {
            requests: table.requests(),
            ledger: ledger.clone(),
        },
        stuck: stuck(&table, ledger, &config),
        processor: processor.clone(),
        settings: config.stream.clone(),
    };
    let backend = format!(
        "DynamoDB table {} (stream ledger in {})",
        table.name,
        args.db.display()
    );
    let Some(zip) = &args.lambda else {
        let invoker = InProcess {
            processor,
            store: Arc::new(table.outcomes()),
        };
        let runtime = launch(&config, table.requests(), stream, invoker, console).await?;
        return crate::serve(runtime, &[backend, "processor in-process".into()]).await;
    };
    let dir = args
        .db
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("lambda");
    let bootstrap = Bootstrap::from_zip(zip, &dir, args.native_bootstrap.as_deref())?;
    let how = format!("Lambda function: {}", bootstrap.how);
    let timeout = args
        .function_timeout_secs
        .map_or_else(|| function::timeout(&config.stream), Duration::from_secs);
    let mut env = inherited_environment();
    env.extend([
        (storefirst_lambda::TABLE_VAR.to_owned(), table.name.clone()),
        (
            storefirst_lambda::RETENTION_VAR.to_owned(),
            config.stream.succeeded_retention.as_secs().to_string(),
        ),
    ]);
    let function = LambdaFunction::new(FunctionConfig {
        bootstrap,
        identity: Identity {
            name: "stream-processor".into(),
            region: region.clone(),
            memory_mb: function::MEMORY_MB,
        },
        timeout,
        env,
    });
    let invoker = LambdaInvoker {
        function: Arc::new(function),
    };
    let mut about = vec![backend, how];
    let Some(notifier_zip) = &args.notifier_zip else {
        about.push("no webhook notifier (--notifier-zip): x-callback-url is refused".into());
        let runtime = launch(&config, table.requests(), stream, invoker, console).await?;
        return crate::serve(runtime, &about).await;
    };
    let (resources, secret, origin) = notifier::provision(
        &aws,
        &table.name,
        Duration::from_secs(args.webhook_visibility_timeout_secs),
        config.webhook_secret.as_deref(),
    )
    .await?;
    about.push(format!(
        "webhooks wait in the queue {} (given up: {})",
        resources.queue_url, resources.dead_letters_url
    ));
    let again = format!(
        "`storefirst-local webhook-secret --dynamodb-table {}` prints it again",
        table.name
    );
    let kept = format!(
        "kept in Secrets Manager as {}",
        notifier::secret_name(&table.name)
    );
    about.push(match origin {
        Origin::Generated => format!(
            "webhooks are signed with the secret {} (generated and {kept}; {again})",
            secret.as_str()
        ),
        Origin::Kept => format!("webhooks are signed with the secret {kept}; {again}"),
        Origin::Given => format!("webhooks are signed with the given secret, {kept}"),
    });
    let allow_loopback = config.receivers == Receivers::AlsoLoopback;
    if allow_loopback {
        about.push(
            "webhooks may go to receivers on this machine (--allow-loopback-webhooks)".to_owned(),
        );
    }
    let requests = table.requests().delivering_webhooks();
    let mut runtime = launch(&config, requests, stream, invoker, console).await?;
    let how = notifier::start(
        &mut runtime,
        &table,
        &aws,
        resources,
        NotifierSetup {
            zip: notifier_zip,
            native: args.native_notifier.as_deref(),
            dir: &dir.join("notifier"),
            ledger: &config.db.with_extension("notifier.db"),
            region,
            allow_loopback,
            base: &config.stream,
            retry_backoff: config.retry_backoff,
        },
    )?;
    about.push(format!("webhook notifier: {how}"));
    crate::serve(runtime, &about).await
}

/// Moves the given-up webhooks of `queues` (delivery, dead letters) back to delivery.
async fn redrive_webhooks(
    aws: &aws_config::SdkConfig,
    table: &DynamoTable,
    queues: Option<(String, String)>,
) -> anyhow::Result<()> {
    let Some((queue, dead_letters)) = queues else {
        println!(
            "redrive: table {} has no webhook queues (the Lambda mode with --notifier-zip makes              them; a stack's are --webhook-queue-url and --webhook-dead-letters-url)",
            table.name
        );
        return Ok(());
    };
    let moved = storefirst_notifier::redrive_dead_letters(
        &aws_sdk_sqs::Client::new(aws),
        &table.dynamodb,
        &table.name,
        &dead_letters,
        &queue,
    )
    .await
    .map_err(|e| anyhow::anyhow!("redriving the webhooks of {dead_letters}: {e}"))?;
    println!(
        "redrive: {moved} given-up webhooks are due again in {queue}; the notifier delivers them"
    );
    Ok(())
}

type TableConsole<P> = Console<DynamoReadModel, DynamoStuck<storefirst_lambda::DynamoStore>, P>;

/// What is stuck in `table`, with the dead letters of `ledger`.
fn stuck(
    table: &DynamoTable,
    ledger: Option<storefirst_dynamodb::ShardLedger>,
    config: &Config,
) -> DynamoStuck<storefirst_lambda::DynamoStore> {
    DynamoStuck {
        requests: table.requests(),
        outcomes: Arc::new(table.outcomes()),
        ledger,
        maximum_record_age: config.stream.maximum_record_age,
    }
}

async fn launch<T: ChangeStream, I: Invoker<T::Cursor, T::Source>>(
    config: &Config,
    requests: DynamoRequests,
    stream: T,
    invoker: I,
    console: TableConsole<App>,
) -> anyhow::Result<Runtime<DynamoRequests>> {
    Ok(Runtime::launch_with(config, requests, stream, invoker, |key| console.routes(key)).await?)
}
