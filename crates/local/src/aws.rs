//! The DynamoDB and Lambda modes: a DynamoDB table and its stream (moto or AWS) instead of
//! SQLite, with the processor in-process or in the Lambda zip behind a local Runtime API;
//! and redrive over such a table.

use std::{sync::Arc, time::Duration};

use storefirst_app::{App, function};
use storefirst_dynamodb::{DynamoReadModel, DynamoStuck, DynamoTable};
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

use crate::cli::{Args, Command};

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

    if let Some(Command::Redrive) = args.command {
        // The dead letters of a local run against this table, if there was one.
        let ledger = config
            .db
            .exists()
            .then(|| table.ledger(&config.db))
            .transpose()?;
        let stuck = stuck(&table, ledger, &config);
        return crate::reported(redrive(&stuck, processor, &config.stream).await?);
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
        let runtime = launch(&config, &table, stream, invoker, console).await?;
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
            region,
            memory_mb: function::MEMORY_MB,
        },
        timeout,
        env,
    });
    let invoker = LambdaInvoker {
        function: Arc::new(function),
    };
    let runtime = launch(&config, &table, stream, invoker, console).await?;
    crate::serve(runtime, &[backend, how]).await
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
    table: &DynamoTable,
    stream: T,
    invoker: I,
    console: TableConsole<App>,
) -> anyhow::Result<Runtime<storefirst_dynamodb::DynamoRequests>> {
    Ok(
        Runtime::launch_with(config, table.requests(), stream, invoker, |key| {
            console.routes(key)
        })
        .await?,
    )
}
