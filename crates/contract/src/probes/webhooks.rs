//! The webhook probes: a bad `x-callback-url` is refused on every runtime; where the
//! runtime can reach a receiver on this machine, the probe starts one on 127.0.0.1 and a
//! finished request's webhook must arrive there, signed with the runtime's secret (checked
//! with the Standard Webhooks library's own verification), its body the GET document. A
//! deployed stack delivers only to public names: given a receiver the user runs, the probe
//! names it and waits for the item to show the webhook delivered.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    http::{HeaderMap, Uri},
};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use storefirst_domain::CALLBACK_URL_LIMIT;
use tokio::task::JoinHandle;

use super::{Body, JSON, ORDER, Probes};
use crate::{Target, expect_accepted};

/// Whether the target's webhooks can reach a receiver the probes start on 127.0.0.1, or
/// one the user runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Webhooks {
    /// It delivers to receivers on this machine (`storefirst-local
    /// --allow-loopback-webhooks`), signed with this `whsec_` secret.
    Loopback { secret: String },
    /// It delivers to public names only (a deployed stack), and the user runs a receiver
    /// at this https URL that answers 2xx: the item must show the webhook delivered
    /// `within` this long.
    Remote { url: String, within: Duration },
    /// It cannot reach this machine: a deployed stack delivers only to public names, and no
    /// receiver was named.
    Unreachable,
    /// Not known (a bare URL, no secret given): the delivery probe is skipped.
    Unknown,
}

pub const BAD_CALLBACK: &str = "x-callback-url over http to a public name, with user info, or \
     over 2,048 bytes is 400 with a JSON message and stores nothing";
pub const DELIVERED: &str = "a finished request's webhook (POST succeeded, PUT failed) arrives at \
     its x-callback-url on 127.0.0.1, signed per Standard Webhooks with the runtime's secret, its \
     body the GET document";
pub const DELIVERED_REMOTE: &str = "a finished request's webhook (POST succeeded) is delivered \
     to the receiver at its public x-callback-url: GET shows the callback delivered after at \
     least one attempt (the notifier's filtered stream mapping, queue and function)";

/// How often the remote probe reads the item: the notifier's queue and a cold start take
/// seconds.
const REMOTE_POLL: Duration = Duration::from_secs(2);

/// An order the processor refuses: the PUT's request ends `failed`.
const REJECTED: &str = r#"{"restaurant":"Roma","items":[{"dish":"sushi","quantity":1}]}"#;

/// Refused wherever the runtime stands on webhooks: one that delivers them refuses these
/// URLs, one that does not refuses every callback.
pub(super) async fn bad_callback(p: &Probes<'_>) -> Result<(), String> {
    let long = format!("https://example.com/{}", "a".repeat(CALLBACK_URL_LIMIT));
    let mut seen = Vec::new();
    for (what, url) in [
        ("http to a public name", "http://example.com/hook"),
        ("user info", "https://user:secret@example.com/hook"),
        ("over 2048 bytes", long.as_str()),
    ] {
        let refused = p
            .refused_with(
                &format!("x-callback-url {what}"),
                &[("x-callback-url", url)],
                || Body::Sized(ORDER.into()),
                StatusCode::BAD_REQUEST,
            )
            .await;
        seen.extend(refused.err());
    }
    ensure!(seen.is_empty(), "{}", seen.join("; "));
    Ok(())
}

/// A request with a callback to the user's receiver at `url`: once the item's
/// `callback.status` is no longer `pending`, it must be `delivered`.
pub(super) async fn delivered_remotely(
    p: &Probes<'_>,
    url: &str,
    within: Duration,
) -> Result<(), String> {
    let post = p
        .write(
            Method::POST,
            "/requests",
            JSON,
            &[("x-callback-url", url)],
            Body::Sized(ORDER.into()),
        )
        .await?;
    let id =
        expect_accepted(&post, None).map_err(|e| format!("POST with x-callback-url {url}: {e}"))?;
    let deadline = Instant::now() + within;
    loop {
        let item = p.target.get(&id).await?.json;
        let callback = &item["callback"];
        if callback["status"] != "pending" {
            let attempts = callback["attempts"].as_u64().unwrap_or_default();
            ensure!(
                callback["status"] == "delivered" && attempts >= 1,
                "GET {id} shows its webhook to {url} not delivered: callback {callback} (see \
                 why with `cargo xtask logs --id {id}`)"
            );
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        ensure!(
            !left.is_zero(),
            "the notifier did not record a delivery of {id}'s webhook to {url} within \
             {within:?}: GET shows callback {callback}; follow the request with `cargo xtask \
             logs --id {id}`"
        );
        tokio::time::sleep(left.min(REMOTE_POLL)).await;
    }
}

/// One webhook as the receiver got it.
#[derive(Clone)]
struct Delivery {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A receiver on 127.0.0.1 that answers 204 to everything and keeps what it got.
struct Receiver {
    base: String,
    seen: Arc<Mutex<Vec<Delivery>>>,
    task: JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1 for the webhooks: {e}"))?;
        let base = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|e| format!("the receiver's address: {e}"))?
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            log.lock()
                .expect("no panics while holding the lock")
                .push(Delivery {
                    path: uri.path().to_owned(),
                    headers,
                    body,
                });
            async { StatusCode::NO_CONTENT }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { base, seen, task })
    }

    /// The first webhook to `path`, once one arrives within `timeout`.
    async fn first(&self, path: &str, timeout: Duration) -> Option<Delivery> {
        let deadline = Instant::now() + timeout;
        loop {
            let first = self
                .seen
                .lock()
                .expect("no panics while holding the lock")
                .iter()
                .find(|d| d.path == path)
                .cloned();
            if first.is_some() || Instant::now() > deadline {
                return first;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) async fn delivered(p: &Probes<'_>, secret: &str) -> Result<(), String> {
    let verifier = standardwebhooks::Webhook::new(secret)
        .map_err(|e| format!("the runtime's webhook secret is not whsec_ and base64: {e}"))?;
    let receiver = Receiver::start().await?;
    let callback = |path: &str| format!("{}{path}", receiver.base);

    let post = p
        .write(
            Method::POST,
            "/requests",
            JSON,
            &[("x-callback-url", &callback("/post"))],
            Body::Sized(ORDER.into()),
        )
        .await?;
    let posted = expect_accepted(&post, None)
        .map_err(|e| format!("POST with x-callback-url {}: {e}", callback("/post")))?;
    let put = p.target.id("probe-webhook");
    let response = p
        .write(
            Method::PUT,
            &format!("/requests/{put}"),
            JSON,
            &[("x-callback-url", &callback("/put"))],
            Body::Sized(REJECTED.into()),
        )
        .await?;
    expect_accepted(&response, Some(&put))
        .map_err(|e| format!("PUT with x-callback-url {}: {e}", callback("/put")))?;

    let mut seen = Vec::new();
    for (id, path, outcome) in [(posted, "/post", "succeeded"), (put, "/put", "failed")] {
        let arrived = arrived(p.target, &verifier, &receiver, &id, path, outcome).await;
        seen.extend(arrived.err());
    }
    ensure!(seen.is_empty(), "{}", seen.join("; "));
    Ok(())
}

/// The webhook of `id` reached `path`, verifies, and carries the GET document.
async fn arrived(
    t: &Target,
    verifier: &standardwebhooks::Webhook,
    receiver: &Receiver,
    id: &str,
    path: &str,
    outcome: &str,
) -> Result<(), String> {
    let url = format!("{}{path}", receiver.base);
    let delivery = receiver
        .first(path, t.settle_timeout)
        .await
        .ok_or_else(|| {
            format!(
                "no webhook for {id} reached {url} within {:?}",
                t.settle_timeout
            )
        })?;
    verifier
        .verify(&delivery.body, &delivery.headers)
        .map_err(|e| {
            format!("the webhook for {id} fails Standard Webhooks verification with the runtime's secret: {e}")
        })?;
    let content_type = delivery.headers.get("content-type");
    ensure!(
        content_type.is_some_and(|v| v.as_bytes().starts_with(b"application/json")),
        "the webhook for {id} has content-type {content_type:?}, not application/json"
    );
    let sent: Value = serde_json::from_slice(&delivery.body).map_err(|e| {
        format!(
            "the webhook for {id} is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&delivery.body)
        )
    })?;
    // Once the runtime has recorded the delivery, GET shows its final document.
    let deadline = Instant::now() + t.settle_timeout;
    let item = loop {
        let item = t.get(id).await?.json;
        if item["callback"]["status"] == "delivered" {
            break item;
        }
        ensure!(
            Instant::now() < deadline,
            "GET {id} does not show the webhook delivered within {:?}: {item}",
            t.settle_timeout
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ensure!(
        item["status"] == outcome && item["callback"]["url"] == url.as_str(),
        "GET {id} should be {outcome} with the callback {url}: {item}"
    );
    ensure!(
        without_delivery_state(&sent) == without_delivery_state(&item),
        "the webhook for {id} is not the GET document (the callback's delivery state aside): \
         sent {sent}, GET {item}"
    );
    Ok(())
}

/// The document without what its own delivery changes: the callback's status, attempts and
/// error.
fn without_delivery_state(document: &Value) -> Value {
    let mut document = document.clone();
    if let Some(callback) = document.get_mut("callback").and_then(Value::as_object_mut) {
        for field in ["status", "attempts", "error"] {
            callback.remove(field);
        }
    }
    document
}
