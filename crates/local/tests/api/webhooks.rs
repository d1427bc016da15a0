//! Webhooks against the binary: a receiver on 127.0.0.1 (allowed with
//! --allow-loopback-webhooks) checks every signature with the Standard Webhooks library's
//! own verification, and counts what arrives. The receiver and the API client serve the
//! Lambda mode's tests too (`dynamo_webhooks`).

use std::{
    collections::HashMap,
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use storefirst_harness::Listening;

use crate::{API_KEY, eventually, spawn_local_with, stdout_of_success};

pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub webhook_id: String,
    pub document: Value,
    pub at: Instant,
}

/// Answers by path: `/ok` 204, `/flaky` 503 with `Retry-After: 1` once then 204, `/gone`
/// 400 until healed, `/hang` never within the sender's timeout, `/stall` not the first
/// time.
#[derive(Clone, Default)]
pub struct Receiver {
    seen: Arc<Mutex<HashMap<String, Vec<Delivery>>>>,
    pub healed: Arc<Mutex<bool>>,
}

impl Receiver {
    pub async fn start() -> (Self, String) {
        let receiver = Receiver::default();
        let app = Router::new()
            .route("/{path}", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, base)
    }

    pub fn seen(&self, path: &str) -> Vec<Delivery> {
        self.seen
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    pub fn total(&self) -> usize {
        self.seen.lock().unwrap().values().map(Vec::len).sum()
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The specification's verification, not the code under test.
    let verified = standardwebhooks::Webhook::new(SECRET)
        .unwrap()
        .verify(&body, &headers);
    assert!(
        verified.is_ok(),
        "a delivery to /{path} fails verification: {verified:?}"
    );
    let delivery = Delivery {
        webhook_id: headers["webhook-id"].to_str().unwrap().to_owned(),
        document: serde_json::from_slice(&body).unwrap(),
        at: Instant::now(),
    };
    let earlier = {
        let mut seen = receiver.seen.lock().unwrap();
        let list = seen.entry(path.clone()).or_default();
        list.push(delivery);
        list.len() - 1
    };
    match path.as_str() {
        "flaky" if earlier == 0 => {
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")]).into_response()
        }
        "gone" if !*receiver.healed.lock().unwrap() => StatusCode::BAD_REQUEST.into_response(),
        // The first attempt never gets an answer (the sender dies meanwhile), later ones do.
        "stall" if earlier == 0 => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::NO_CONTENT.into_response()
        }
        "hang" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

fn spawn(db: &Path, loopback: bool) -> Listening {
    let mut args = vec!["--webhook-secret", SECRET, "--webhook-retry-ms", "200"];
    if loopback {
        args.push("--allow-loopback-webhooks");
    }
    spawn_local_with(db, "warn", Stdio::inherit(), &args, &[])
}

pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    pub fn of(local: &Listening) -> Self {
        Self {
            base: format!("http://{}", local.addr()),
            client: reqwest::Client::new(),
        }
    }

    /// POSTs an order with `callback` as `x-callback-url`; answers the status and body.
    pub async fn post(&self, callback: Option<&str>) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}/requests", self.base))
            .header("x-api-key", API_KEY)
            .json(&json!({ "restaurant": "Roma", "items": [{ "dish": "margherita", "quantity": 1 }] }));
        if let Some(url) = callback {
            request = request.header("x-callback-url", url);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    pub async fn put(&self, id: &str, callback: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .put(format!("{}/requests/{id}", self.base))
            .header("x-api-key", API_KEY)
            .header("x-callback-url", callback)
            .json(&json!({ "restaurant": "Roma", "items": [{ "dish": "margherita", "quantity": 1 }] }))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    pub async fn get(&self, id: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}/requests/{id}", self.base))
            .header("x-api-key", API_KEY)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    pub async fn callback_of(&self, id: &str, status: &str) -> Value {
        let what = format!("the webhook of {id} is {status}");
        storefirst_harness::until_some(Duration::from_secs(30), &what, || async {
            let item = self.get(id).await.1;
            (item["callback"]["status"] == status).then_some(item)
        })
        .await
    }
}

pub fn id_of(accepted: &Value) -> String {
    accepted["id"].as_str().expect("an id").to_owned()
}

/// POSTs one request with a callback to `url` and one without: answers their ids.
pub async fn with_and_without_callback(api: &Api, url: &str) -> (String, String) {
    let (status, accepted) = api.post(Some(url)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let (_, silent) = api.post(None).await;
    (id_of(&accepted), id_of(&silent))
}

/// The request `silent` has no callback, and after `settle` the receiver still has only
/// the `delivered` webhooks.
pub async fn silent_is_not_delivered(
    api: &Api,
    receiver: &Receiver,
    silent: &str,
    settle: Duration,
    delivered: usize,
) -> Value {
    let (_, other) = api.get(silent).await;
    assert!(other.get("callback").is_none(), "{other}");
    tokio::time::sleep(settle).await;
    assert_eq!(
        receiver.total(),
        delivered,
        "only the requests with a callback are delivered"
    );
    other
}

/// Waits for `id`'s webhook to be delivered with `attempts` attempts recorded; answers the
/// two deliveries the receiver saw at `path`, one webhook twice.
pub async fn delivered_twice(
    api: &Api,
    receiver: &Receiver,
    id: &str,
    path: &str,
    attempts: u32,
) -> Vec<Delivery> {
    let item = api.callback_of(id, "delivered").await;
    assert_eq!(item["callback"]["attempts"], attempts, "{item}");
    let seen = receiver.seen(path);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0].webhook_id, seen[1].webhook_id,
        "the same webhook again"
    );
    seen
}

/// A 503 with `Retry-After: 1` from `local`'s receiver is retried after it, as the same
/// webhook.
pub async fn a_503_is_retried_after_its_retry_after(local: &Listening) {
    let api = Api::of(local);
    let (receiver, base) = Receiver::start().await;

    let id = id_of(&api.post(Some(&format!("{base}/flaky"))).await.1);
    let seen = delivered_twice(&api, &receiver, &id, "flaky", 2).await;
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}, not Retry-After"
    );
}

/// POSTs a request with a callback to the receiver's `/gone` at `base` and waits for its
/// webhook to be given up after the one attempt: answers its id.
pub async fn given_up(api: &Api, base: &str) -> String {
    let id = id_of(&api.post(Some(&format!("{base}/gone"))).await.1);
    let item = api.callback_of(&id, "failed").await;
    assert_eq!(item["callback"]["attempts"], 1, "not retried: {item}");
    let error = item["callback"]["error"].as_str().unwrap();
    assert!(error.contains("400"), "{error}");
    id
}

/// `storefirst-local redrive` with `args` (and `envs`) on `db`: one given-up webhook is due
/// again.
pub fn redrive(args: &[&str], db: &Path, envs: &[(&str, String)]) {
    let redrive = Command::new(env!("CARGO_BIN_EXE_storefirst-local"))
        .args(["redrive", "--log", "warn"])
        .args(args)
        .arg("--db")
        .arg(db)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let said = stdout_of_success(&redrive);
    assert!(said.contains("1 given-up webhooks are due again"), "{said}");
}

/// POSTs a request with a callback to the receiver's `/stall` at `base` and waits (up to
/// `within`) for its first attempt, which gets no answer: answers its id.
pub async fn stalled(api: &Api, receiver: &Receiver, base: &str, within: Duration) -> String {
    let id = id_of(&api.post(Some(&format!("{base}/stall"))).await.1);
    eventually(within, "the first attempt reaches the receiver", || async {
        !receiver.seen("stall").is_empty()
    })
    .await;
    id
}

/// The line of `lines` that announces a generated secret, and the secret.
pub fn generated(lines: &[String]) -> (&str, &str) {
    let announced = lines
        .iter()
        .find(|l| l.contains("generated"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    let secret = announced
        .split_whitespace()
        .find(|word| word.starts_with("whsec_"))
        .expect("the secret itself");
    (announced, secret)
}

/// What `storefirst-local webhook-secret` with `args` (and `envs`) prints.
pub fn printed_secret(args: &[&str], envs: &[(&str, String)]) -> String {
    let printed = Command::new(env!("CARGO_BIN_EXE_storefirst-local"))
        .args(["webhook-secret", "--log", "warn"])
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    stdout_of_success(&printed).trim().to_owned()
}

/// `local`, started again on a kept secret: its first `n` lines say where it is `kept` and
/// not the secret; it serves and stops.
pub async fn restarted_on_the_kept_secret(local: Listening, n: usize, kept: &str, secret: &str) {
    let lines: Vec<String> = (0..n).map(|_| local.next_line()).collect();
    assert!(
        lines.iter().any(|l| l.contains(kept)) && !lines.concat().contains(secret),
        "{lines:?}"
    );
    // Serving (and so past installing its signal handlers) before it is stopped.
    assert_eq!(Api::of(&local).get("none").await.0, StatusCode::NOT_FOUND);
    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_request_is_delivered_signed_once_and_one_without_callback_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let local = spawn(&dir.path().join("w.db"), true);
    let api = Api::of(&local);
    let (receiver, base) = Receiver::start().await;

    let (id, silent) = with_and_without_callback(&api, &format!("{base}/ok")).await;
    let item = api.callback_of(&id, "delivered").await;
    assert_eq!(item["callback"]["attempts"], 1, "{item}");
    assert_eq!(item["callback"]["url"], format!("{base}/ok"));
    let delivered = receiver.seen("ok");
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let document = &delivered[0].document;
    assert_eq!(document["id"], id.as_str());
    assert_eq!(document["status"], item["status"]);
    assert_eq!(document["result"], item["result"]);
    assert_eq!(document["callback"]["url"], format!("{base}/ok"));

    // The callback is part of the request: another one is a conflict, the same a retry.
    let (status, body) = api.put("same", &format!("{base}/same")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        api.put("same", &format!("{base}/same")).await.0,
        StatusCode::ACCEPTED
    );
    let (status, body) = api.put("same", &format!("{base}/ok")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("callback URL"),
        "{body}"
    );
    api.callback_of("same", "delivered").await;

    silent_is_not_delivered(&api, &receiver, &silent, Duration::from_millis(500), 2).await;
    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_is_retried_after_its_retry_after_with_the_same_webhook_id() {
    let dir = tempfile::tempdir().unwrap();
    let local = spawn(&dir.path().join("w.db"), true);
    a_503_is_retried_after_its_retry_after(&local).await;
    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_4xx_is_given_up_dead_lettered_and_redriven() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let local = spawn(&db, true);
    let api = Api::of(&local);
    let (receiver, base) = Receiver::start().await;

    let id = given_up(&api, &base).await;
    let dead: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT group_concat(reason || request_ids) FROM dead_letters",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(dead.contains("webhook") && dead.contains(&id), "{dead}");

    *receiver.healed.lock().unwrap() = true;
    redrive(&[], &db, &[]);
    delivered_twice(&api, &receiver, &id, "gone", 1).await;
    assert!(local.terminate());
}

/// 202 to receipt for each of `n` requests to `url`.
pub async fn latencies(
    api: &Api,
    receiver: &Receiver,
    path: &str,
    url: &str,
    n: usize,
) -> Vec<Duration> {
    let before = receiver.seen(path).len();
    let mut sent = HashMap::new();
    for _ in 0..n {
        let started = Instant::now();
        sent.insert(id_of(&api.post(Some(url)).await.1), started);
    }
    eventually(
        Duration::from_secs(20),
        "every healthy delivery",
        || async { receiver.seen(path).len() >= before + n },
    )
    .await;
    receiver.seen(path)[before..]
        .iter()
        .map(|d| d.at - sent[d.document["id"].as_str().unwrap()])
        .collect()
}

/// A healthy receiver beside a hanging one (another port, never answering in time).
pub struct Beside {
    /// 202 to receipt of `n` deliveries to the healthy receiver alone.
    pub alone: Vec<Duration>,
    /// And of `n` more once the hanging receiver holds its attempts.
    pub beside: Vec<Duration>,
    pub hanging: Receiver,
}

impl Beside {
    /// `n` deliveries alone, then `hangs` requests to the hanging receiver and, once it holds
    /// `held` attempts (within `within`), `n` deliveries beside it; prints the worst of each
    /// for `mode`.
    pub async fn measure(
        api: &Api,
        mode: &str,
        n: usize,
        hangs: usize,
        held: usize,
        within: Duration,
    ) -> Self {
        let (healthy, base) = Receiver::start().await;
        let (hanging, stuck) = Receiver::start().await;
        let alone = latencies(api, &healthy, "ok", &format!("{base}/ok"), n).await;
        for _ in 0..hangs {
            api.post(Some(&format!("{stuck}/hang"))).await;
        }
        eventually(
            within,
            "the hanging receiver holds its attempts",
            || async { hanging.seen("hang").len() >= held },
        )
        .await;
        let beside = latencies(api, &healthy, "ok", &format!("{base}/ok"), n).await;
        println!(
            "healthy receiver in the {mode}, 202 to receipt, worst of {n}: alone {:?}, beside \
             a hanging one {:?}",
            worst(&alone),
            worst(&beside)
        );
        Self {
            alone,
            beside,
            hanging,
        }
    }
}

pub fn worst(latencies: &[Duration]) -> Duration {
    latencies.iter().max().copied().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_receiver_does_not_delay_a_healthy_one() {
    let dir = tempfile::tempdir().unwrap();
    let local = spawn(&dir.path().join("w.db"), true);
    let api = Api::of(&local);
    // More than there are attempts at once (64): the hanging receiver gets its share (8).
    let Beside {
        alone,
        beside,
        hanging,
    } = Beside::measure(&api, "SQLite mode", 20, 100, 8, Duration::from_secs(10)).await;
    // The hanging receiver holds each of its attempts for the 5 s timeout, and never more
    // than its share of them at once.
    assert!(
        worst(&beside) < Duration::from_secs(1),
        "{beside:?} against {alone:?}"
    );
    // Within one timeout of the first attempt, no second round of attempts can start.
    let seen = hanging.seen("hang");
    let first = seen[0].at;
    let held = seen
        .iter()
        .filter(|d| d.at < first + Duration::from_secs(4))
        .count();
    assert_eq!(held, 8, "attempts to the hanging receiver at once");
    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_or_loopback_callbacks_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let local = spawn(&dir.path().join("w.db"), false);
    let api = Api::of(&local);
    let (receiver, base) = Receiver::start().await;

    let long = format!("https://example.com/{}", "a".repeat(2048));
    for url in [
        format!("{base}/ok"),
        "https://localhost/hook".to_owned(),
        "https://127.0.0.1/hook".to_owned(),
        "https://[::1]/hook".to_owned(),
        "https://10.0.0.1/hook".to_owned(),
        "http://example.com/hook".to_owned(),
        "https://user:pw@example.com/hook".to_owned(),
        "/relative".to_owned(),
        long,
    ] {
        let (status, body) = api.post(Some(&url)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("x-callback-url"),
            "{body}"
        );
        let (status, body) = api.put("refused", &url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
    }
    assert_eq!(
        api.get("refused").await.0,
        StatusCode::NOT_FOUND,
        "nothing stored"
    );
    assert_eq!(receiver.total(), 0);

    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_in_flight_when_the_process_is_killed_arrives_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let local = spawn(&db, true);
    let api = Api::of(&local);
    let (receiver, base) = Receiver::start().await;

    let id = stalled(&api, &receiver, &base, Duration::from_secs(20)).await;
    local.kill();

    let local = spawn(&db, true);
    let api = Api::of(&local);
    // Claimed attempts are leased (15 s): the restarted runtime tries again after it.
    delivered_twice(&api, &receiver, &id, "stall", 2).await;
    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_secret_is_printed_kept_and_printed_again_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let args = ["--allow-loopback-webhooks"];
    let local = spawn_local_with(&db, "warn", Stdio::inherit(), &args, &[]);
    let lines: Vec<String> = (0..3).map(|_| local.next_line()).collect();
    let (announced, secret) = generated(&lines);
    assert!(announced.contains("webhook-secret --db"), "{announced}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("--allow-loopback-webhooks")),
        "the opt-in is announced: {lines:?}"
    );
    assert_eq!(Api::of(&local).get("none").await.0, StatusCode::NOT_FOUND);
    assert!(local.terminate());

    assert_eq!(printed_secret(&["--db", db.to_str().unwrap()], &[]), secret);

    let again = spawn_local_with(&db, "warn", Stdio::inherit(), &[], &[]);
    restarted_on_the_kept_secret(again, 2, "kept in the database", secret).await;
}
