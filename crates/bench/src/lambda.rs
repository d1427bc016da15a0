//! The Lambda side: the handler's time for a 100-record batch in process, with an
//! in-memory store and with the DynamoDB store against moto server; cold start
//! (process start to first invocation answered) of the native `stream-processor` beside a
//! Node.js handler, both served by the Runtime API of storefirst-lambda-env; and the first
//! invocation's latency against moto server with and without the init's connection
//! warm-up.

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use aws_lambda_events::event::dynamodb::Event;
use axum::{Router, routing::post};
use serde::Serialize;
use storefirst_app::RestaurantOrders;
use storefirst_domain::{DEFAULT_BODY_LIMIT, OutcomeStore, RequestBody, StreamSettings};
use storefirst_dynamodb::DynamoTable;
use storefirst_lambda::{StreamHandler, decode};
use storefirst_lambda_env::{Answer, Identity, Reply, RuntimeApi};
use storefirst_pipeline::ports::Ingest;
use storefirst_testkit::MemoryStore;

/// AWS's documented event shape, 100 INSERTs of restaurant orders.
pub const BATCH: &str = include_str!("../../lambda/tests/lambda/fixtures/batch-100.json");
/// One INSERT, the smallest batch a cold start can be woken for.
pub const ONE_RECORD: &str = include_str!("../../lambda/tests/lambda/fixtures/insert.json");
/// The table the events' records belong to.
pub const TABLE: &str = "storefirst-requests";

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub runs: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl Stats {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        Self {
            runs: samples.len(),
            median_ms: samples.get(samples.len() / 2).map_or(0.0, ms),
            min_ms: samples.first().map_or(0.0, ms),
            max_ms: samples.last().map_or(0.0, ms),
        }
    }
}

/// How long the handler takes on `event` with `store`; a failed record fails the bench.
async fn handle<S: OutcomeStore>(store: Arc<S>, event: &Event) -> anyhow::Result<Duration> {
    let handler = StreamHandler::new(Arc::new(RestaurantOrders), store, StreamSettings::DEFAULT);
    let started = Instant::now();
    let response = handler.handle(event.clone()).await;
    let took = started.elapsed();
    if !response.batch_item_failures.is_empty() {
        bail!("the handler reported failures on a clean batch");
    }
    Ok(took)
}

/// `StreamHandler::handle` on the 100-record batch with an in-memory store, fresh per run.
pub async fn batch_time(runs: usize) -> anyhow::Result<Stats> {
    let event: Event = serde_json::from_str(BATCH)?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        samples.push(handle(Arc::new(MemoryStore::default()), &event).await?);
    }
    Ok(Stats::of(samples))
}

/// `StreamHandler::handle` on the 100-record batch with the DynamoDB store against moto
/// server: one conditional UpdateItem per record through the SDK, as the deployed function
/// writes. Each run gets a fresh table holding the batch's requests, pending, as the API
/// stored them; only `handle` is timed.
pub async fn dynamodb_batch_time(moto: &str, runs: usize) -> anyhow::Result<Stats> {
    let event: Event = serde_json::from_str(BATCH)?;
    let requests: Vec<_> = event
        .records
        .iter()
        .map(|record| decode(record.clone()))
        .collect::<Result<_, _>>()?;
    let config = storefirst_harness::sdk_config(moto).await;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let name = storefirst_harness::unique("bench");
        let table = DynamoTable::connect(&config, &name, true)
            .await
            .with_context(|| format!("CreateTable {name} on moto server at {moto}"))?;
        let ingest = table.requests();
        for request in &requests {
            let body = request.body.as_deref().context("an INSERT has a body")?;
            let body = RequestBody::parse(body.as_bytes(), DEFAULT_BODY_LIMIT)?;
            ingest.accept(request.id.clone(), body, None).await?;
        }
        samples.push(handle(Arc::new(table.outcomes()), &event).await?);
        // A write whose condition failed would count as done: check that each one landed.
        for request in &requests {
            let item = ingest.get(request.id.clone()).await?;
            if item.is_none_or(|item| item.status == "pending") {
                bail!("{} has no outcome after the batch", request.id);
            }
        }
    }
    Ok(Stats::of(samples))
}

/// The function the cold starts run as.
fn identity() -> Identity {
    Identity {
        name: "bench".into(),
        region: "us-east-1".into(),
        memory_mb: 128,
    }
}

/// Stands in for DynamoDB's UpdateItem, so the native handler's writes cost a local round
/// trip: its URL, and the server, which stops when dropped.
async fn dynamodb_stand_in() -> anyhow::Result<(String, AbortOnDrop)> {
    let app = Router::new().route(
        "/",
        post(|| async { ([("content-type", "application/x-amz-json-1.0")], "{}") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, AbortOnDrop(server)))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How long one process took to answer its first invocation.
#[derive(Debug, Clone, Copy)]
pub struct FirstAnswer {
    /// From the process's start: init plus the invocation.
    pub from_start: Duration,
    /// From the moment the Runtime API handed out the event.
    pub from_invoke: Duration,
}

/// What a cold start runs: the program, the event it gets, where its DynamoDB calls go
/// (`None`: a local stand-in that answers `{}`), and more variables.
pub struct ColdStart<'a> {
    pub program: &'a Path,
    pub args: &'a [&'a str],
    pub event: &'static str,
    pub dynamodb: Option<&'a str>,
    pub env: &'a [(&'a str, &'a str)],
}

/// Starts the program against a fresh Runtime API and times its answer to the first
/// invocation.
pub async fn cold_start(run: ColdStart<'_>) -> anyhow::Result<FirstAnswer> {
    let ColdStart {
        program,
        args,
        event,
        dynamodb: endpoint,
        env,
    } = run;
    let mut api = RuntimeApi::serve(&identity()).await?;
    let id = api.invoke(serde_json::from_str(event)?, Duration::from_secs(60))?;
    let (endpoint, _stand_in) = match endpoint {
        Some(endpoint) => (endpoint.to_owned(), None),
        None => {
            let (url, server) = dynamodb_stand_in().await?;
            (url, Some(server))
        }
    };

    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .envs(identity().environment(api.address()))
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("TABLE_NAME", TABLE)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let answer = tokio::time::timeout(Duration::from_secs(30), api.answer(&id)).await;
    let _ = child.kill();
    let _ = child.wait();
    match answer {
        Ok(Some(Answer {
            reply: Reply::Response(body),
            delivered: Some(delivered),
            at,
        })) if body.contains("\"batchItemFailures\":[]") => Ok(FirstAnswer {
            from_start: at - started,
            from_invoke: at - delivered,
        }),
        Ok(Some(answer)) => bail!("{} answered {:?}", program.display(), answer.reply),
        _ => bail!(
            "{} did not answer its first invocation within 30 s",
            program.display()
        ),
    }
}

/// The events' table on moto server (idempotent: an existing table is kept).
pub async fn create_table(moto: &str) -> anyhow::Result<()> {
    let config = storefirst_harness::sdk_config(moto).await;
    DynamoTable::connect(&config, TABLE, true)
        .await
        .map(drop)
        .with_context(|| format!("CreateTable {TABLE} on moto server at {moto}"))
}
