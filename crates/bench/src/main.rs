//! `storefirst-bench`: what `cargo xtask bench` runs. Every comparison is measured side by
//! side in one run, against the release build of `storefirst-local`.

mod lambda;
mod loadgen;
mod webhooks;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use http_body_util::Full;
use hyper::{Request, StatusCode, body::Bytes};
use serde::Serialize;
use serde_json::json;
use storefirst_domain::{ChangeEvent, RequestId};
use storefirst_harness::Listening;
use storefirst_pipeline::ports::{ChangeStream, Ingest};
use storefirst_sqlite::SqliteStore;

use crate::loadgen::Summary;

const API_KEY: &str = "bench-key";
/// Unmeasured time at the start of each run, while the clients connect.
const WARMUP: Duration = Duration::from_secs(1);
const ORDER: &str = r#"{"restaurant":"Roma","items":[{"dish":"margherita","quantity":2},{"dish":"espresso","quantity":1}]}"#;

#[derive(Parser)]
struct Args {
    /// The `storefirst-local` binary to measure.
    #[arg(long)]
    local: PathBuf,
    /// Where the JSON results go.
    #[arg(long)]
    out: PathBuf,
    /// Seconds measured per load level, for the ceiling and for durable POSTs each.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent clients, one load level each.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    clients: Vec<usize>,
    /// The native `stream-processor` for the cold-start comparison.
    #[arg(long)]
    stream_processor: PathBuf,
    /// Node.js, for the cold-start comparison.
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// Which parts to run: ingest, webhooks, lambda, lambda-dynamodb, warm-up.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ingest,webhooks,lambda,lambda-dynamodb,warm-up"
    )]
    only: Vec<String>,
    /// moto server, the DynamoDB endpoint of the lambda-dynamodb and warm-up parts.
    #[arg(long)]
    moto_url: Option<String>,
    /// Extra arguments for `storefirst-local` (ingest and webhooks), e.g. `--concurrency=32`.
    #[arg(long, allow_hyphen_values = true)]
    local_arg: Vec<String>,
}

#[derive(Serialize)]
struct IngestLevel {
    clients: usize,
    durable: Summary,
    ceiling: Summary,
    durable_over_ceiling: f64,
    max_backlog: i64,
    processed_per_second: f64,
    /// From 202 to `succeeded`, for the items of the durable run.
    outcome_latency: Latency,
}

#[derive(Serialize)]
struct Latency {
    requests: usize,
    p50_ms: f64,
    p99_ms: f64,
}

impl Latency {
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_unstable_by(f64::total_cmp);
        let at = |q: f64| {
            values
                .get(((values.len() as f64 * q) as usize).min(values.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Self {
            requests: values.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
        }
    }
}

/// `storefirst-local` and its database, read through the pipeline's ports as the API and
/// the poller read it.
struct Server {
    local: Listening,
    addr: SocketAddr,
    store: SqliteStore,
    /// The stream's end as last seen: the stream only grows at its end, so the next look
    /// scans only what came after.
    end: AtomicI64,
}

impl Server {
    fn start(binary: &Path, db: PathBuf, extra: &[String]) -> anyhow::Result<Self> {
        let local = Listening::spawn(
            Command::new(binary)
                .args(["--port", "0", "--api-key", API_KEY, "--log", "warn", "--db"])
                .arg(&db)
                .args(extra),
        )?;
        Ok(Self {
            addr: local.addr(),
            local,
            store: SqliteStore::open_beside(&db)
                .with_context(|| format!("cannot open {}", db.display()))?,
            end: AtomicI64::new(0),
        })
    }

    /// Peak resident memory so far, from /proc.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.local.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// The cursor after the stream's newest record.
    async fn end(&self) -> anyhow::Result<i64> {
        let known = self.end.load(Ordering::Acquire);
        // No event matches: the batch is empty and its horizon is the stream's end.
        let end = self.store.read(&known, 1, &[]).await?.horizon;
        Ok(self.end.fetch_max(end, Ordering::AcqRel).max(end))
    }

    /// The poller's checkpoint: every record up to it is processed.
    async fn checkpoint(&self) -> anyhow::Result<i64> {
        Ok(self.store.checkpoint().await?)
    }

    /// Stream records not yet read by the poller.
    async fn backlog(&self) -> anyhow::Result<i64> {
        let checkpoint = self.checkpoint().await?;
        Ok(self.end().await? - checkpoint)
    }

    /// The ids of the requests accepted between the stream cursors `after` and `until`.
    async fn accepted(&self, after: i64, until: i64) -> anyhow::Result<Vec<RequestId>> {
        const PAGE: u32 = 1000;
        let (mut ids, mut cursor) = (Vec::new(), after);
        while cursor < until {
            let batch = self
                .store
                .read(&cursor, PAGE, &[ChangeEvent::Insert])
                .await?;
            let last = batch.rows.len() < PAGE as usize;
            ids.extend(
                batch
                    .rows
                    .into_iter()
                    .take_while(|row| row.cursor <= until)
                    .map(|row| row.record.id),
            );
            if last {
                break;
            }
            cursor = batch.horizon;
        }
        Ok(ids)
    }

    /// Accept-to-outcome latency of the requests accepted between two stream cursors.
    async fn outcome_latency(&self, after: i64, until: i64) -> anyhow::Result<Latency> {
        let mut values = Vec::new();
        for id in self.accepted(after, until).await? {
            if let Some(item) = self.store.get(id).await?
                && item.status == "succeeded"
            {
                values.push((item.updated_at - item.created_at) as f64);
            }
        }
        Ok(Latency::of(values))
    }
}

/// The callback URL a client names in its `n`th request.
type CallbackFor = Arc<dyn Fn(usize, u64) -> String + Send + Sync>;

/// POSTs of an order, naming a callback URL chosen per client and request when given one.
fn post_order(callback: Option<CallbackFor>) -> loadgen::MakeRequest {
    Arc::new(move |client, n| {
        let mut request = Request::post("/requests")
            .header("host", "bench")
            .header("x-api-key", API_KEY)
            .header("content-type", "application/json");
        if let Some(callback) = &callback {
            request = request.header("x-callback-url", callback(client, n));
        }
        request
            .body(Full::new(Bytes::from_static(ORDER.as_bytes())))
            .expect("a valid request")
    })
}

fn get_unknown() -> loadgen::MakeRequest {
    Arc::new(|client, n| {
        Request::get(format!("/requests/unknown-{client}-{n}"))
            .header("host", "bench")
            .header("x-api-key", API_KEY)
            .body(Full::new(Bytes::new()))
            .expect("a valid request")
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    if args.only.iter().any(|part| part == "ingest") {
        ingest(&args).await?;
    }
    if args.only.iter().any(|part| part == "webhooks") {
        webhooks::run(&args).await?;
    }
    if args.only.iter().any(|part| part == "lambda") {
        lambda(&args).await?;
    }
    if args.only.iter().any(|part| part == "lambda-dynamodb") {
        lambda_dynamodb(&args).await?;
    }
    if args.only.iter().any(|part| part == "warm-up") {
        warm_up(&args).await?;
    }
    Ok(())
}

async fn lambda(args: &Args) -> anyhow::Result<()> {
    println!("\nLambda handler: 100-record batch in process (in-memory store), 200 runs");
    let batch = lambda::batch_time(200).await?;
    println!("cold start: native stream-processor vs Node.js, 10 starts each, alternating");
    let node_handler = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/handler.mjs");
    let node_args = [node_handler.to_str().context("a UTF-8 path")?];
    let (mut native, mut node) = (Vec::new(), Vec::new());
    let start = |program, args| lambda::ColdStart {
        program,
        args,
        event: lambda::BATCH,
        dynamodb: None,
        env: &[],
    };
    for _ in 0..10 {
        native.push(
            lambda::cold_start(start(&args.stream_processor, &[]))
                .await?
                .from_start,
        );
        node.push(
            lambda::cold_start(start(&args.node, &node_args))
                .await
                .context("Node.js is needed for the comparison: install it (e.g. apt-get install nodejs)")?
                .from_start,
        );
    }
    let (native, node) = (lambda::Stats::of(native), lambda::Stats::of(node));
    let ratio = node.median_ms / native.median_ms.max(f64::MIN_POSITIVE);
    println!(
        "\n{:<40} {:>10} {:>10} {:>10}",
        "", "median ms", "min ms", "max ms"
    );
    println!(
        "{:<40} {:>10.3} {:>10.3} {:>10.3}",
        "handler, 100-record batch", batch.median_ms, batch.min_ms, batch.max_ms
    );
    println!(
        "{:<40} {:>10.1} {:>10.1} {:>10.1}",
        "cold start, native stream-processor", native.median_ms, native.min_ms, native.max_ms
    );
    println!(
        "{:<40} {:>10.1} {:>10.1} {:>10.1}",
        "cold start, Node.js handler", node.median_ms, node.min_ms, node.max_ms
    );
    println!(
        "Node.js / native cold start: {ratio:.1}x (native also makes 100 UpdateItem calls to a local endpoint)"
    );
    let report = json!({
        "handler_batch_100": batch,
        "cold_start_native": native,
        "cold_start_node": node,
        "node_over_native": ratio,
    });
    write_report(args, "lambda.json", &report)
}

/// The handler on a 100-record batch with the DynamoDB store, against moto server.
async fn lambda_dynamodb(args: &Args) -> anyhow::Result<()> {
    const RUNS: usize = 10;
    let moto = args
        .moto_url
        .as_deref()
        .context("the DynamoDB batch needs --moto-url (`cargo xtask bench` starts moto)")?;
    println!(
        "\nLambda handler: 100-record batch in process, DynamoDB store against moto server, {RUNS} runs"
    );
    let batch = lambda::dynamodb_batch_time(moto, RUNS).await?;
    println!(
        "\n{:<40} {:>10} {:>10} {:>10}",
        "", "median ms", "min ms", "max ms"
    );
    println!(
        "{:<40} {:>10.1} {:>10.1} {:>10.1}",
        "handler, 100-record batch, moto", batch.median_ms, batch.min_ms, batch.max_ms
    );
    println!(
        "(100 conditional UpdateItem calls over plain HTTP to 127.0.0.1: moto's time, mostly)"
    );
    write_report(
        args,
        "lambda-dynamodb.json",
        &json!({ "handler_batch_100_moto": batch }),
    )
}

/// The first invocation of a fresh `stream-processor` against moto server, with the
/// DynamoDB connection opened during init (the default) and without
/// (`STOREFIRST_WARM_UP=off`), alternating, for a one-record and a 100-record batch.
async fn warm_up(args: &Args) -> anyhow::Result<()> {
    const RUNS: usize = 10;
    let moto = args
        .moto_url
        .as_deref()
        .context("the warm-up comparison needs --moto-url (`cargo xtask bench` starts moto)")?;
    lambda::create_table(moto).await?;
    println!(
        "\nfirst invocation against moto server, warm-up on vs off ({}=off), {RUNS} starts each, alternating",
        storefirst_lambda::WARM_UP_VAR
    );
    let mut rows = Vec::new();
    for (batch, event) in [
        ("1 record", lambda::ONE_RECORD),
        ("100 records", lambda::BATCH),
    ] {
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            for (samples, switch) in [(&mut on, "on"), (&mut off, "off")] {
                samples.push(
                    lambda::cold_start(lambda::ColdStart {
                        program: &args.stream_processor,
                        args: &[],
                        event,
                        dynamodb: Some(moto),
                        env: &[(storefirst_lambda::WARM_UP_VAR, switch)],
                    })
                    .await?,
                );
            }
        }
        for (switch, samples) in [("on", on), ("off", off)] {
            let invoke = lambda::Stats::of(samples.iter().map(|s| s.from_invoke).collect());
            let start = lambda::Stats::of(samples.iter().map(|s| s.from_start).collect());
            rows.push(json!({
                "batch": batch,
                "warm_up": switch,
                "invoke_to_response": invoke,
                "process_start_to_response": start,
            }));
        }
    }
    println!(
        "\n{:<28} {:>8} | {:>24} | {:>24}",
        "", "warm-up", "invoke -> response ms", "process start -> response ms"
    );
    println!(
        "{:<28} {:>8} | {:>7} {:>7} {:>8} | {:>7} {:>7} {:>8}",
        "", "", "median", "min", "max", "median", "min", "max"
    );
    for row in &rows {
        let stat = |part: &str, key: &str| row[part][key].as_f64().unwrap_or_default();
        println!(
            "{:<28} {:>8} | {:>7.1} {:>7.1} {:>8.1} | {:>7.1} {:>7.1} {:>8.1}",
            format!(
                "first invocation, {}",
                row["batch"].as_str().unwrap_or_default()
            ),
            row["warm_up"].as_str().unwrap_or_default(),
            stat("invoke_to_response", "median_ms"),
            stat("invoke_to_response", "min_ms"),
            stat("invoke_to_response", "max_ms"),
            stat("process_start_to_response", "median_ms"),
            stat("process_start_to_response", "min_ms"),
            stat("process_start_to_response", "max_ms"),
        );
    }
    println!(
        "(plain HTTP to 127.0.0.1: no TLS handshake, which is most of what the warm-up moves out of the first invocation on AWS)"
    );
    write_report(args, "warm-up.json", &json!({ "first_invocation": rows }))
}

async fn ingest(args: &Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let measure = Duration::from_secs(args.seconds);
    let half = measure / 2;
    println!(
        "storefirst-bench: {} s per level, clients {:?}",
        args.seconds, args.clients
    );
    let server = Server::start(&args.local, dir.path().join("bench.db"), &args.local_arg)?;

    // Light load first, on an idle pipeline: one request every 20 ms.
    println!("light load: 1 client, 50 requests/s");
    let light_from = server.end().await?;
    light_load(
        server.addr,
        post_order(None),
        150,
        Duration::from_millis(20),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let light = server
        .outcome_latency(light_from, server.end().await?)
        .await?;

    let mut levels = Vec::new();
    let mut peak_rss_at_32 = None;
    for &clients in &args.clients {
        println!(
            "{clients} clients: ceiling (GET of an unknown id) for {half:?}, durable POST for {measure:?}, ceiling for {half:?}"
        );
        let ceiling = |measure| {
            loadgen::run(
                server.addr,
                clients,
                WARMUP,
                measure,
                get_unknown(),
                StatusCode::NOT_FOUND,
            )
        };
        // The ceiling is measured before and after the durable run, so that a change in
        // the machine's load during the level skews the ratio as little as it can.
        let before = ceiling(half).await?;
        let processed_from = server.checkpoint().await?;
        let (started, durable_from) = (Instant::now(), server.end().await?);
        let (durable, max_backlog) = tokio::join!(
            loadgen::run(
                server.addr,
                clients,
                WARMUP,
                measure,
                post_order(None),
                StatusCode::ACCEPTED
            ),
            backlog_sampler(&server, WARMUP + measure)
        );
        let durable = Summary::of(clients, vec![durable?]);
        let (processed_until, elapsed) = (server.checkpoint().await?, started.elapsed());
        let durable_until = server.end().await?;
        // The durable run's work (processing, checkpoints) must not slow the ceiling.
        drain(&server).await?;
        let processed = server.accepted(processed_from, processed_until).await?;
        let processed_per_second = processed.len() as f64 / elapsed.as_secs_f64();
        let outcome_latency = server.outcome_latency(durable_from, durable_until).await?;
        let ceiling = Summary::of(clients, vec![before, ceiling(half).await?]);
        if clients == 32 {
            peak_rss_at_32 = server.peak_rss_mib();
        }
        levels.push(IngestLevel {
            clients,
            durable_over_ceiling: durable.per_second / ceiling.per_second.max(f64::MIN_POSITIVE),
            durable,
            ceiling,
            max_backlog: max_backlog?,
            processed_per_second,
            outcome_latency,
        });
    }
    // At the highest ingest rate: the busiest level.
    let busiest = levels
        .iter()
        .max_by(|a, b| a.durable.per_second.total_cmp(&b.durable.per_second));

    print_table(&levels, &light, busiest, peak_rss_at_32);
    let report = json!({
        "ingest": levels,
        "outcome_latency_light": light,
        "busiest_level_clients": busiest.map(|l| l.clients),
        "peak_rss_mib_at_32_clients": peak_rss_at_32,
    });
    write_report(args, "ingest.json", &report)?;
    if levels.iter().any(|l| l.durable.unexpected > 0) {
        bail!("some POSTs were not answered 202; see the table");
    }
    Ok(())
}

/// One client sends `count` requests on one connection, pausing after each answer.
async fn light_load(
    addr: SocketAddr,
    make: loadgen::MakeRequest,
    count: usize,
    pause: Duration,
) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    for n in 0..count {
        sender.ready().await?;
        let response = sender.send_request(make(0, n as u64)).await?;
        if response.status() != StatusCode::ACCEPTED {
            bail!("POST answered {}", response.status());
        }
        http_body_util::BodyExt::collect(response.into_body()).await?;
        tokio::time::sleep(pause).await;
    }
    Ok(())
}

/// The largest stream backlog seen while the load runs.
async fn backlog_sampler(server: &Server, length: Duration) -> anyhow::Result<i64> {
    let until = Instant::now() + length;
    let mut max = 0;
    while Instant::now() < until {
        max = max.max(server.backlog().await?);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(max)
}

/// Waits for the poller to catch up, so levels do not measure each other's backlog.
async fn drain(server: &Server) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.backlog().await? > 0 {
        if Instant::now() > deadline {
            bail!("the stream backlog did not drain within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Writes `report`, with the machine it was measured on, as `args.out/name`.
fn write_report(args: &Args, name: &str, report: &serde_json::Value) -> anyhow::Result<()> {
    let mut report = report.clone();
    report["machine"] = machine();
    let path = args.out.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn machine() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        });
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}

fn print_table(
    levels: &[IngestLevel],
    light: &Latency,
    busiest: Option<&IngestLevel>,
    rss: Option<f64>,
) {
    println!("\nIngest (durable = POST answered 202 after fsync; ceiling = GET of an unknown id)");
    println!(
        "{:>7} | {:>10} {:>8} {:>8} {:>8} | {:>10} {:>8} {:>8} | {:>7} | {:>9} {:>10}",
        "clients",
        "durable/s",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "ceiling/s",
        "p50 ms",
        "p99 ms",
        "ratio",
        "backlog",
        "processed/s"
    );
    for l in levels {
        println!(
            "{:>7} | {:>10.0} {:>8.2} {:>8.2} {:>8.2} | {:>10.0} {:>8.2} {:>8.2} | {:>7.2} | {:>9} {:>10.0}",
            l.clients,
            l.durable.per_second,
            l.durable.p50_ms,
            l.durable.p99_ms,
            l.durable.p999_ms,
            l.ceiling.per_second,
            l.ceiling.p50_ms,
            l.ceiling.p99_ms,
            l.durable_over_ceiling,
            l.max_backlog,
            l.processed_per_second
        );
    }
    println!(
        "\n202 -> succeeded: light load p50 {:.0} ms, p99 {:.0} ms ({} requests)",
        light.p50_ms, light.p99_ms, light.requests
    );
    for l in levels {
        let busiest = if busiest.is_some_and(|b| b.clients == l.clients) {
            " (the highest ingest rate)"
        } else {
            ""
        };
        let o = &l.outcome_latency;
        println!(
            "  {} clients{busiest}: p50 {:.0} ms, p99 {:.0} ms ({} requests)",
            l.clients, o.p50_ms, o.p99_ms, o.requests
        );
    }
    if let Some(rss) = rss {
        println!("peak RSS of storefirst-local after the 32-client level: {rss:.1} MiB");
    }
}
