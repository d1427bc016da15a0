//! The whole connection limit taken by slow clients that reconnect as soon as they are cut
//! off (slow readers, slow writers, idle connections) does not starve a normal client: the
//! header, body, write and idle timeouts hang up on every one of them.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use storefirst_app::RestaurantOrders;
use storefirst_pipeline::{
    Config,
    server::{Limits, raise_open_files},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

use crate::API_KEY;

const ORDER: &str = r#"{"restaurant":"Roma","items":[{"dish":"espresso","quantity":1}]}"#;
const TIMEOUT: Duration = Duration::from_secs(2);
/// A slow client the server has not hung up on after this long fails the test.
const HELD_AT_MOST: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Slow {
    /// Pipelines requests (without a key: answered 403 and kept alive) and never reads.
    Reader,
    /// Sends a request line, then a header byte now and then, never finishing.
    TrickleHeaders,
    /// Sends complete headers, then the body a byte now and then.
    TrickleBody,
    /// Connects and sends nothing.
    Idle,
    /// Reads one answer, then keeps the connection open without a second request.
    IdleKeepAlive,
}

const KINDS: [Slow; 5] = [
    Slow::Reader,
    Slow::TrickleHeaders,
    Slow::TrickleBody,
    Slow::Idle,
    Slow::IdleKeepAlive,
];

async fn connect(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    // A small receive window: a reader that never reads stalls the server's writes early.
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(addr).await.unwrap()
}

/// One connection of `kind`, until the server hangs up; returns what the server sent.
async fn misbehave(mut stream: TcpStream, kind: Slow) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    match kind {
        Slow::Reader => {
            let pipelined = "GET /requests/x HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
            while stream.write_all(pipelined.as_bytes()).await.is_ok() {}
            return answer;
        }
        Slow::IdleKeepAlive => {
            stream
                .write_all(b"GET /requests/x HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
        }
        Slow::TrickleHeaders => {
            stream
                .write_all(b"POST /requests HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        Slow::TrickleBody => {
            let head = format!(
                "POST /requests HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
        }
        Slow::Idle => {}
    }
    loop {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return answer,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {
                let byte: &[u8] = match kind {
                    Slow::TrickleHeaders => b"x",
                    Slow::TrickleBody => b" ",
                    _ => continue,
                };
                if stream.write_all(byte).await.is_err() {
                    return answer;
                }
            }
        }
    }
}

/// Reconnects as `kind` until `stop`; returns how many times the server hung up.
async fn slow_client(addr: SocketAddr, kind: Slow, stop: Arc<AtomicBool>) -> usize {
    let mut hung_up = 0;
    while !stop.load(Ordering::Relaxed) {
        let stream = connect(addr).await;
        let answer = tokio::time::timeout(HELD_AT_MOST, misbehave(stream, kind))
            .await
            .unwrap_or_else(|_| {
                panic!("the server kept a {kind:?} connected for {HELD_AT_MOST:?}")
            });
        if let Slow::TrickleBody = kind {
            let answer = String::from_utf8_lossy(&answer);
            // The 408 may be lost to a reset when the server closes on the unread trickle.
            if !answer.is_empty() {
                assert!(
                    answer.starts_with("HTTP/1.1 408") && answer.contains("\"message\""),
                    "a trickled body gets 408: {answer:?}"
                );
            }
        }
        hung_up += 1;
    }
    hung_up
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limit_full_of_slow_clients_does_not_starve_normal_ones() {
    // The real default limit, both ends of every connection in this process.
    let limit = Limits::default().max_connections;
    let needed = 2 * limit as u64 + 512;
    assert!(
        raise_open_files(needed) >= needed,
        "this test needs {needed} open files: raise the hard limit (ulimit -Hn)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(
        dir.path().join("slow.db"),
        ([127, 0, 0, 1], 0).into(),
        API_KEY.into(),
    );
    config.limits.header_timeout = TIMEOUT;
    config.limits.write_timeout = TIMEOUT;
    config.body_timeout = TIMEOUT;
    let runtime = storefirst_sqlite::start(config, Arc::new(RestaurantOrders))
        .await
        .unwrap();
    let addr = runtime.addr();

    let stop = Arc::new(AtomicBool::new(false));
    let slow: Vec<_> = (0..limit)
        .map(|i| tokio::spawn(slow_client(addr, KINDS[i % KINDS.len()], stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Every request on a new connection, which waits for a free slot.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    for _ in 0..5 {
        let started = Instant::now();
        let response = client
            .post(format!("http://{addr}/requests"))
            .header("x-api-key", API_KEY)
            .header("content-type", "application/json")
            .body(ORDER)
            .send()
            .await
            .expect("a normal client is served while slow clients fill the connection limit");
        assert_eq!(response.status(), 202);
        println!("normal request served in {:?}", started.elapsed());
    }

    // Each slow client ends its current connection: the server must hang up on it.
    stop.store(true, Ordering::Relaxed);
    let mut hung_up = [0; KINDS.len()];
    for (i, task) in slow.into_iter().enumerate() {
        hung_up[i % KINDS.len()] += task.await.unwrap();
    }
    println!("hung up on, by kind {KINDS:?}: {hung_up:?}");
    runtime.shutdown().await;
}
