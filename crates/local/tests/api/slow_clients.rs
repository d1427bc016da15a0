//! Idle and trickling connections are cut off by the header and body timeouts and do not
//! starve normal clients.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use storefirst_app::RestaurantOrders;
use storefirst_pipeline::Config;

use crate::API_KEY;

const ORDER: &str = r#"{"restaurant":"Roma","items":[{"dish":"espresso","quantity":1}]}"#;

enum Slow {
    /// Connects and sends nothing.
    Idle,
    /// Sends a request line, then a header byte now and then, never finishing.
    TrickleHeaders,
    /// Sends complete headers, then the body a byte now and then.
    TrickleBody,
}

/// Runs one slow client until the server hangs up; returns what the server sent.
fn slow_client(addr: SocketAddr, kind: Slow) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let head = match kind {
        Slow::Idle => String::new(),
        Slow::TrickleHeaders => "POST /requests HTTP/1.1\r\nHost: x\r\n".to_owned(),
        Slow::TrickleBody => format!(
            "POST /requests HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{"
        ),
    };
    stream.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while started.elapsed() < Duration::from_secs(20) {
        match stream.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&answer).into_owned(),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let byte: &[u8] = match kind {
                    Slow::Idle => continue,
                    Slow::TrickleHeaders => b"x",
                    Slow::TrickleBody => b" ",
                };
                if stream.write_all(byte).is_err() {
                    return String::from_utf8_lossy(&answer).into_owned();
                }
            }
            Err(_) => return String::from_utf8_lossy(&answer).into_owned(),
        }
    }
    panic!("the server kept a slow client connected for 20 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_do_not_starve_normal_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(
        dir.path().join("slow.db"),
        ([127, 0, 0, 1], 0).into(),
        API_KEY.into(),
    );
    config.limits.header_timeout = Duration::from_secs(2);
    config.body_timeout = Duration::from_secs(2);
    config.limits.max_connections = 256;
    let runtime = storefirst_sqlite::start(config, std::sync::Arc::new(RestaurantOrders))
        .await
        .unwrap();
    let addr = runtime.addr();

    let slow: Vec<_> = (0..200)
        .map(|i| {
            let kind = match i % 3 {
                0 => Slow::Idle,
                1 => Slow::TrickleHeaders,
                _ => Slow::TrickleBody,
            };
            std::thread::spawn(move || (i % 3, slow_client(addr, kind)))
        })
        .collect();

    // Meanwhile a normal client is served as usual.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..30 {
        let response = client
            .post(format!("http://{addr}/requests"))
            .header("x-api-key", API_KEY)
            .header("content-type", "application/json")
            .body(ORDER)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    for handle in slow {
        let (kind, answer) = tokio::task::spawn_blocking(move || handle.join().unwrap())
            .await
            .unwrap();
        if kind == 2 {
            assert!(
                answer.starts_with("HTTP/1.1 408"),
                "a trickled body gets 408: {answer:?}"
            );
            assert!(answer.contains("\"message\""), "{answer}");
        }
    }
    runtime.shutdown().await;
}
