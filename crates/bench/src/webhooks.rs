//! The webhooks part of `cargo xtask bench`: the time from a request's 202 to its webhook
//! at a receiver on 127.0.0.1, at light load and at the highest ingest rate, the deliveries
//! per second there, and a healthy receiver's latency beside one that hangs. Each phase
//! runs on a fresh `storefirst-local --allow-loopback-webhooks`, so that no phase inherits
//! another's deliveries (a hanging receiver's are retried for hours).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use serde::Serialize;
use serde_json::json;
use storefirst_pipeline::ports::Ingest;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::{Args, Latency, Server, WARMUP, light_load, loadgen, post_order, write_report};

/// One request in this many names the hanging receiver, in the phases that have one.
const HANGING_SHARE: u64 = 10;
/// The light load: one client, this many requests, this pause after each answer.
const LIGHT_REQUESTS: usize = 150;
const LIGHT_PAUSE: Duration = Duration::from_millis(20);
/// How long a phase's deliveries may take to arrive after its load ends; what has not
/// arrived by then counts as slower than this, and the phase moves on.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
enum Load {
    /// One client, paced.
    Light,
    /// The ingest load generator with this many clients, as fast as they go.
    Clients(usize),
}

impl Load {
    fn name(self) -> String {
        match self {
            Load::Light => format!(
                "light: 1 client, {:.0} requests/s",
                1.0 / LIGHT_PAUSE.as_secs_f64()
            ),
            Load::Clients(clients) => format!("{clients} clients"),
        }
    }
}

/// What one phase measured, at the healthy receiver.
#[derive(Serialize)]
struct PhaseReport {
    load: String,
    hanging_receiver: bool,
    /// Requests answered 202 per second while the load ran.
    accepted_per_second: f64,
    /// Webhooks arriving per second at the healthy receiver while the load ran.
    delivered_per_second: f64,
    /// From the 202 (the item's `created_at`, as the ingest part's 202 -> succeeded) to
    /// the webhook's arrival.
    accept_to_webhook: Latency,
    /// From the outcome (the document's `updated_at`) to the webhook's arrival: the
    /// delivery's own share.
    outcome_to_webhook: Latency,
    /// Requests with a callback to the healthy receiver, and how many of their webhooks
    /// arrived within [`DELIVERY_DEADLINE`] after the load.
    expected: usize,
    received: usize,
    /// From the load's end to the last healthy webhook; `None` when some did not arrive
    /// within [`DELIVERY_DEADLINE`].
    drained_after_ms: Option<f64>,
    /// Connections the hanging receiver accepted and never answered.
    hanging_connections: usize,
    /// Answers other than 202.
    unexpected: u64,
}

/// A webhook as the healthy receiver saw it first (a retry of one is not counted again).
#[derive(Clone, Copy)]
struct Arrival {
    at_ms: f64,
    created_at: i64,
    updated_at: i64,
}

#[derive(Clone)]
struct Receiver {
    verifier: Arc<standardwebhooks::Webhook>,
    arrivals: Arc<Mutex<HashMap<String, Arrival>>>,
    /// Deliveries whose signature or body did not verify: answered 400, and the bench fails.
    invalid: Arc<AtomicU64>,
}

/// A receiver that answers 204 to every webhook whose signature verifies, and records when
/// each arrived.
struct Healthy {
    url: String,
    receiver: Receiver,
    task: JoinHandle<()>,
}

impl Healthy {
    async fn start(secret: &str) -> anyhow::Result<Self> {
        let receiver = Receiver {
            verifier: Arc::new(standardwebhooks::Webhook::new(secret)?),
            arrivals: Arc::default(),
            invalid: Arc::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/ok", listener.local_addr()?);
        let app = Router::new()
            .route("/ok", post(receive))
            .with_state(receiver.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            receiver,
            task,
        })
    }

    fn arrivals(&self) -> HashMap<String, Arrival> {
        self.receiver
            .arrivals
            .lock()
            .expect("no panics while holding the lock")
            .clone()
    }
}

impl Drop for Healthy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at_ms = epoch_ms();
    // The Standard Webhooks library's own verification, on every delivery: the bench
    // measures signed webhooks, never unsigned junk.
    let document = receiver
        .verifier
        .verify(&body, &headers)
        .ok()
        .and_then(|()| serde_json::from_slice::<serde_json::Value>(&body).ok());
    let arrival = document.as_ref().and_then(|document| {
        Some((
            document["id"].as_str()?.to_owned(),
            Arrival {
                at_ms,
                created_at: document["created_at"].as_i64()?,
                updated_at: document["updated_at"].as_i64()?,
            },
        ))
    });
    let Some((id, arrival)) = arrival else {
        receiver.invalid.fetch_add(1, Ordering::Relaxed);
        return StatusCode::BAD_REQUEST;
    };
    receiver
        .arrivals
        .lock()
        .expect("no panics while holding the lock")
        .entry(id)
        .or_insert(arrival);
    StatusCode::NO_CONTENT
}

/// A receiver that accepts every connection and never answers, holding each until dropped.
struct Hanging {
    url: String,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Hanging {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hang", listener.local_addr()?);
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
                counted.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(Self {
            url,
            connections,
            task,
        })
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
        * 1000.0
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let clients = *args
        .clients
        .iter()
        .max()
        .context("--clients names no load level")?;
    println!(
        "\nWebhooks: 202 -> webhook at a receiver on 127.0.0.1, light load and {clients} clients \
         ({} s), each without and with a receiver that hangs on 1 request in {HANGING_SHARE}",
        args.seconds
    );
    let secret = storefirst_webhooks::generate_secret();
    let mut phases = Vec::new();
    for load in [Load::Light, Load::Clients(clients)] {
        for hanging in [false, true] {
            println!(
                "{}{}",
                load.name(),
                if hanging {
                    ", beside a hanging receiver"
                } else {
                    ""
                }
            );
            phases.push(phase(args, &secret, load, hanging).await?);
        }
    }
    print_table(&phases);
    write_report(args, "webhooks.json", &json!({ "phases": phases }))?;
    if phases.iter().any(|p| p.unexpected > 0) {
        bail!("some POSTs were not answered 202; see the table");
    }
    Ok(())
}

async fn phase(
    args: &Args,
    secret: &str,
    load: Load,
    hanging: bool,
) -> anyhow::Result<PhaseReport> {
    let dir = tempfile::tempdir()?;
    let mut extra = vec![
        "--allow-loopback-webhooks".to_owned(),
        "--webhook-secret".to_owned(),
        secret.to_owned(),
    ];
    extra.extend(args.local_arg.iter().cloned());
    let server = Server::start(&args.local, dir.path().join("webhooks.db"), &extra)?;
    let healthy = Healthy::start(secret).await?;
    let stuck = if hanging {
        Some(Hanging::start().await?)
    } else {
        None
    };
    let (healthy_url, stuck_url) = (healthy.url.clone(), stuck.as_ref().map(|s| s.url.clone()));
    let make = post_order(Some(Arc::new(move |client, n| match &stuck_url {
        Some(stuck) if (client as u64 + n).is_multiple_of(HANGING_SHARE) => stuck.clone(),
        _ => healthy_url.clone(),
    })));

    let from = server.end().await?;
    let started = epoch_ms();
    let (window, accepted_per_second, unexpected) = match load {
        Load::Light => {
            let clock = Instant::now();
            light_load(server.addr, make, LIGHT_REQUESTS, LIGHT_PAUSE).await?;
            let elapsed = clock.elapsed().as_secs_f64();
            let window = (started, started + elapsed * 1000.0);
            (window, LIGHT_REQUESTS as f64 / elapsed, 0)
        }
        Load::Clients(clients) => {
            let measure = Duration::from_secs(args.seconds);
            let sample = loadgen::run(
                server.addr,
                clients,
                WARMUP,
                measure,
                make,
                StatusCode::ACCEPTED,
            )
            .await?;
            let summary = loadgen::Summary::of(clients, vec![sample]);
            let measured_from = started + WARMUP.as_secs_f64() * 1000.0;
            let window = (
                measured_from,
                measured_from + measure.as_secs_f64() * 1000.0,
            );
            (window, summary.per_second, summary.unexpected)
        }
    };
    let (ended, deadline) = (epoch_ms(), Instant::now() + DELIVERY_DEADLINE);
    let until = server.end().await?;

    // The requests of the phase that name the healthy receiver, as the store has them.
    let mut expected = HashSet::new();
    for id in server.accepted(from, until).await? {
        let item = server.store.get(id.clone()).await?;
        if item
            .and_then(|item| item.callback)
            .is_some_and(|callback| callback.url == healthy.url)
        {
            expected.insert(id.as_str().to_owned());
        }
    }
    let arrivals = loop {
        let arrivals = healthy.arrivals();
        if expected.iter().all(|id| arrivals.contains_key(id)) || Instant::now() > deadline {
            break arrivals;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let invalid = healthy.receiver.invalid.load(Ordering::Relaxed);
    if invalid > 0 {
        bail!(
            "{invalid} webhooks failed the Standard Webhooks verification: the signing is broken"
        );
    }

    // A webhook that did not arrive counts as slower than any that did (infinite: null in
    // the JSON, and "> the deadline" in the table).
    let latency = |since: fn(&Arrival) -> i64| {
        Latency::of(
            expected
                .iter()
                .map(|id| {
                    arrivals
                        .get(id)
                        .map_or(f64::INFINITY, |a| a.at_ms - since(a) as f64)
                })
                .collect(),
        )
    };
    let ours: Vec<&Arrival> = expected.iter().filter_map(|id| arrivals.get(id)).collect();
    let in_window = ours
        .iter()
        .filter(|a| (window.0..window.1).contains(&a.at_ms))
        .count();
    let all_arrived = ours.len() == expected.len();
    Ok(PhaseReport {
        load: load.name(),
        hanging_receiver: hanging,
        accepted_per_second,
        delivered_per_second: in_window as f64 / ((window.1 - window.0) / 1000.0),
        accept_to_webhook: latency(|a| a.created_at),
        outcome_to_webhook: latency(|a| a.updated_at),
        expected: expected.len(),
        received: ours.len(),
        drained_after_ms: all_arrived
            .then(|| ours.iter().map(|a| a.at_ms).fold(ended, f64::max) - ended),
        hanging_connections: stuck.map_or(0, |s| s.connections.load(Ordering::Relaxed)),
        unexpected,
    })
}

/// A latency for the table: a quantile that fell on a webhook that never arrived is
/// beyond the deadline.
fn ms(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.1}")
    } else {
        format!(">{}", DELIVERY_DEADLINE.as_millis())
    }
}

fn print_table(phases: &[PhaseReport]) {
    println!(
        "\nWebhooks at the healthy receiver (202 = the item's created_at; every signature verified; \
         arrived = within {} s after the load)",
        DELIVERY_DEADLINE.as_secs()
    );
    println!(
        "{:<48} | {:>10} {:>11} | {:>17} | {:>21} | {:>13} {:>8} {:>5}",
        "",
        "accepted/s",
        "delivered/s",
        "202 -> webhook ms",
        "outcome -> webhook ms",
        "arrived",
        "drain ms",
        "held"
    );
    println!(
        "{:<48} | {:>10} {:>11} | {:>8} {:>8} | {:>10} {:>10} | {:>13} {:>8} {:>5}",
        "", "", "", "p50", "p99", "p50", "p99", "", "", ""
    );
    for p in phases {
        let name = if p.hanging_receiver {
            format!("{}, 1 in {HANGING_SHARE} hangs", p.load)
        } else {
            p.load.clone()
        };
        println!(
            "{:<48} | {:>10.0} {:>11.0} | {:>8} {:>8} | {:>10} {:>10} | {:>13} {:>8} {:>5}",
            name,
            p.accepted_per_second,
            p.delivered_per_second,
            ms(p.accept_to_webhook.p50_ms),
            ms(p.accept_to_webhook.p99_ms),
            ms(p.outcome_to_webhook.p50_ms),
            ms(p.outcome_to_webhook.p99_ms),
            format!("{}/{}", p.received, p.expected),
            p.drained_after_ms
                .map_or("-".to_owned(), |d| format!("{d:.0}")),
            p.hanging_connections,
        );
    }
    let ratio = |a: f64, b: f64| {
        if a.is_finite() && b.is_finite() {
            format!("{:.2}x", a / b.max(f64::MIN_POSITIVE))
        } else {
            "n/a (some webhooks did not arrive)".to_owned()
        }
    };
    let find = |busy: bool, hanging: bool| {
        phases
            .iter()
            .find(|p| p.load.starts_with("light") != busy && p.hanging_receiver == hanging)
    };
    if let (Some(light), Some(busy)) = (find(false, false), find(true, false)) {
        println!(
            "{} / light load, 202 -> webhook: p50 {}, p99 {}",
            busy.load,
            ratio(
                busy.accept_to_webhook.p50_ms,
                light.accept_to_webhook.p50_ms
            ),
            ratio(
                busy.accept_to_webhook.p99_ms,
                light.accept_to_webhook.p99_ms
            ),
        );
        println!(
            "{}: {:.0} webhooks/s delivered for {:.0} requests/s accepted ({:.2}x)",
            busy.load,
            busy.delivered_per_second,
            busy.accepted_per_second,
            busy.delivered_per_second / busy.accepted_per_second.max(f64::MIN_POSITIVE)
        );
    }
    for busy in [false, true] {
        if let (Some(alone), Some(beside)) = (find(busy, false), find(busy, true)) {
            println!(
                "{}: the healthy receiver beside a hanging one / alone, 202 -> webhook: p50 {}, p99 {}",
                alone.load,
                ratio(
                    beside.accept_to_webhook.p50_ms,
                    alone.accept_to_webhook.p50_ms
                ),
                ratio(
                    beside.accept_to_webhook.p99_ms,
                    alone.accept_to_webhook.p99_ms
                ),
            );
        }
    }
    println!(
        "(held: connections the hanging receiver accepted and never answered; an attempt waits 5 s for its answer)"
    );
}
