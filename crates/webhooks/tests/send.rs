//! One attempt against receivers on 127.0.0.1, with names resolved by a fixed table: what
//! a name resolves to is checked before any connection, so refusals are proven by a
//! listener that counts the connections it gets. No test sends anything beyond loopback:
//! refused addresses are never connected to.

use std::{
    collections::HashMap,
    future::Future,
    net::IpAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::post,
};
use storefirst_domain::{Answer, Receivers, RequestId};
use storefirst_webhooks::{Due, Lookup, Secret, Sender, TIMEOUT, generate_secret};
use tokio::net::TcpListener;

/// Names to addresses, as a resolver would answer.
struct Fixed(HashMap<&'static str, Vec<IpAddr>>);

impl Lookup for Fixed {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let found = self.0.get(host.as_str()).cloned();
        Box::pin(async move {
            found.ok_or_else(|| std::io::Error::other(format!("no such name {host}")))
        })
    }
}

/// A receiver on 127.0.0.1 that counts the connections it accepts and answers `answer`
/// (after `delay`), checking the signature with the Standard Webhooks library.
async fn receiver(secret: &str, answer: StatusCode, delay: Duration) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let verifier = Arc::new(standardwebhooks::Webhook::new(secret).unwrap());
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let verifier = verifier.clone();
            async move {
                verifier.verify(&body, &headers).expect("a valid signature");
                tokio::time::sleep(delay).await;
                (answer, [("retry-after", "7")]).into_response()
            }
        }),
    );
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
            let app = app.clone();
            tokio::spawn(async move {
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (port, connections)
}

fn due(url: String) -> Due {
    Due {
        id: RequestId::parse("r-1").unwrap(),
        receiver: url.clone(),
        url,
        webhook_id: "msg_1".into(),
        attempts: 1,
        first_due_at: 0,
        document: br#"{"id":"r-1","status":"succeeded"}"#.to_vec(),
    }
}

fn sender(secret: &str, receivers: Receivers, names: &[(&'static str, &[&str])]) -> Sender {
    let table = names
        .iter()
        .map(|(name, ips)| (*name, ips.iter().map(|ip| ip.parse().unwrap()).collect()))
        .collect();
    Sender::new(
        Secret::parse(secret).unwrap(),
        receivers,
        Arc::new(Fixed(table)),
    )
    .unwrap()
}

fn permanent(answer: &Answer) -> &str {
    match answer {
        Answer::Permanent(error) => error,
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_without_the_opt_in_and_never_connected() {
    let secret = generate_secret();
    let (port, connections) = receiver(&secret, StatusCode::NO_CONTENT, Duration::ZERO).await;
    let names: &[(&str, &[&str])] = &[
        ("receiver.test", &["127.0.0.1"]),
        ("mixed.test", &["93.184.216.34", "127.0.0.1"]),
        ("private.test", &["10.0.0.1"]),
        ("mapped.test", &["::ffff:127.0.0.1"]),
    ];
    let public = sender(&secret, Receivers::Public, names);
    for name in ["receiver.test", "mixed.test", "private.test", "mapped.test"] {
        let answer = public
            .send(&due(format!("https://{name}:{port}/hook")))
            .await;
        assert!(
            permanent(&answer).contains("not a public address"),
            "{name}: {answer:?}"
        );
    }
    // The opt-in is for loopback: a private address stays refused.
    let loopback = sender(&secret, Receivers::AlsoLoopback, names);
    let answer = loopback
        .send(&due(format!("https://private.test:{port}/hook")))
        .await;
    assert!(permanent(&answer).contains("10.0.0.1"), "{answer:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 0, "nothing connected");
}

#[tokio::test]
async fn with_the_opt_in_a_loopback_receiver_gets_the_signed_document_at_the_checked_address() {
    let secret = generate_secret();
    let (port, connections) = receiver(&secret, StatusCode::NO_CONTENT, Duration::ZERO).await;
    let sender = sender(
        &secret,
        Receivers::AlsoLoopback,
        &[("localhost", &["127.0.0.1"])],
    );
    for url in [
        format!("http://localhost:{port}/hook"),
        format!("http://127.0.0.1:{port}/hook"),
    ] {
        assert_eq!(
            sender.send(&due(url.clone())).await,
            Answer::Delivered,
            "{url}"
        );
    }
    assert!(connections.load(Ordering::SeqCst) >= 1);
    // Without it, the same URLs are refused before any lookup.
    let strict = sender_public(&secret);
    let answer = strict
        .send(&due(format!("http://127.0.0.1:{port}/hook")))
        .await;
    assert!(permanent(&answer).contains("this machine"), "{answer:?}");
}

fn sender_public(secret: &str) -> Sender {
    sender(secret, Receivers::Public, &[])
}

#[tokio::test]
async fn a_5xx_is_retried_with_its_retry_after_and_a_4xx_is_permanent() {
    let secret = generate_secret();
    let loopback = |port| {
        (
            sender(&secret, Receivers::AlsoLoopback, &[]),
            due(format!("http://127.0.0.1:{port}/hook")),
        )
    };
    let (port, _) = receiver(&secret, StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO).await;
    let (sender, due_) = loopback(port);
    assert!(
        matches!(sender.send(&due_).await, Answer::Retry { after: Some(after), .. } if after == Duration::from_secs(7))
    );
    let (port, _) = receiver(&secret, StatusCode::GONE, Duration::ZERO).await;
    let (sender, due_) = loopback(port);
    assert!(permanent(&sender.send(&due_).await).contains("410"));
}

#[tokio::test]
async fn a_receiver_that_hangs_is_given_up_on_at_the_timeout_and_retried() {
    let secret = generate_secret();
    let (port, _) = receiver(&secret, StatusCode::NO_CONTENT, Duration::from_secs(60)).await;
    let sender = sender(&secret, Receivers::AlsoLoopback, &[]);
    let started = Instant::now();
    let answer = sender
        .send(&due(format!("http://127.0.0.1:{port}/hook")))
        .await;
    let took = started.elapsed();
    assert!(matches!(answer, Answer::Retry { .. }), "{answer:?}");
    assert!(
        (TIMEOUT..TIMEOUT + Duration::from_secs(2)).contains(&took),
        "{took:?}"
    );
}
