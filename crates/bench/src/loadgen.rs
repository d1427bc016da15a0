//! A closed-loop, keep-alive HTTP/1.1 load generator: each client owns one connection and
//! sends its next request when the previous answer has arrived.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, body::Bytes};
use hyper_util::rt::TokioIo;
use serde::Serialize;

pub type MakeRequest = Arc<dyn Fn(usize, u64) -> Request<Full<Bytes>> + Send + Sync>;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub clients: usize,
    pub requests: u64,
    pub unexpected: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

/// What one run measured: the latency of each expected answer, in microseconds.
#[derive(Debug, Default)]
pub struct Sample {
    latencies: Vec<u32>,
    unexpected: u64,
    measured: Duration,
}

impl Summary {
    /// Rates and quantiles over all `samples`, as if they were one run.
    pub fn of(clients: usize, samples: Vec<Sample>) -> Self {
        let measured: Duration = samples.iter().map(|s| s.measured).sum();
        let unexpected = samples.iter().map(|s| s.unexpected).sum();
        let mut latencies: Vec<u32> = samples.into_iter().flat_map(|s| s.latencies).collect();
        latencies.sort_unstable();
        let quantile = |q: f64| {
            let index =
                ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
            latencies
                .get(index)
                .map_or(0.0, |us| f64::from(*us) / 1000.0)
        };
        Self {
            clients,
            requests: latencies.len() as u64,
            unexpected,
            per_second: latencies.len() as f64 / measured.as_secs_f64().max(f64::MIN_POSITIVE),
            p50_ms: quantile(0.50),
            p99_ms: quantile(0.99),
            p999_ms: quantile(0.999),
        }
    }
}

/// Runs `clients` clients for `warmup + measure`, counting only the measured part.
pub async fn run(
    addr: SocketAddr,
    clients: usize,
    warmup: Duration,
    measure: Duration,
    make: MakeRequest,
    expect: StatusCode,
) -> anyhow::Result<Sample> {
    let start = Instant::now();
    let (from, until) = (start + warmup, start + warmup + measure);
    let tasks: Vec<_> = (0..clients)
        .map(|client| tokio::spawn(client_loop(addr, client, from, until, make.clone(), expect)))
        .collect();
    let mut sample = Sample {
        measured: measure,
        ..Sample::default()
    };
    for task in tasks {
        let (mut l, u) = task.await.context("a load client panicked")??;
        sample.latencies.append(&mut l);
        sample.unexpected += u;
    }
    Ok(sample)
}

async fn client_loop(
    addr: SocketAddr,
    client: usize,
    from: Instant,
    until: Instant,
    make: MakeRequest,
    expect: StatusCode,
) -> anyhow::Result<(Vec<u32>, u64)> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let (mut latencies, mut unexpected) = (Vec::new(), 0);
    let mut n = 0;
    loop {
        let sent = Instant::now();
        if sent >= until {
            break;
        }
        sender
            .ready()
            .await
            .context("the server closed a keep-alive connection")?;
        let response = sender.send_request(make(client, n)).await?;
        let status = response.status();
        response.into_body().collect().await?;
        n += 1;
        if sent >= from {
            if status == expect {
                let micros = sent.elapsed().as_micros();
                latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
            } else {
                unexpected += 1;
            }
        }
    }
    Ok((latencies, unexpected))
}
