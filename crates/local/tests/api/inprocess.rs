//! The runtime in this process, with a scripted processor: for the semantics tests.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use storefirst_domain::{PendingRequest, ProcessError, Processor};
use storefirst_pipeline::{Config, Runtime};
use storefirst_sqlite::SqliteStore;

use crate::{API_KEY, eventually};

/// Behaves as the body's `behaviour` says, and counts the calls per id.
#[derive(Clone, Default)]
pub struct Scripted {
    calls: Arc<Mutex<HashMap<String, u32>>>,
    /// While false, `panic` and `hang` behave as `ok`: the processor has been fixed.
    fixed: Arc<AtomicBool>,
}

impl Scripted {
    pub fn fix(&self) {
        self.fixed.store(true, Ordering::SeqCst);
    }

    pub fn calls(&self, id: &str) -> u32 {
        self.calls.lock().unwrap().get(id).copied().unwrap_or(0)
    }
}

impl Processor for Scripted {
    async fn process(&self, request: &PendingRequest) -> Result<Value, ProcessError> {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let count = calls.entry(request.id.to_string()).or_default();
            *count += 1;
            *count
        };
        let body: Value = serde_json::from_str(&request.body).unwrap();
        match body["behaviour"].as_str().unwrap() {
            "ok" => Ok(json!({ "call": call })),
            "reject" => Err(ProcessError::Rejected("not on the menu".into())),
            "flaky" if call <= body["failures"].as_u64().unwrap() as u32 => Err(
                ProcessError::Unavailable(format!("kitchen offline (call {call})")),
            ),
            "flaky" => Ok(json!({ "call": call })),
            "down" => Err(ProcessError::Unavailable("kitchen offline".into())),
            "panic" | "hang" if self.fixed.load(Ordering::SeqCst) => Ok(json!({ "call": call })),
            "panic" => panic!("poisoned order"),
            "hang" => futures::future::pending().await,
            other => panic!("unscripted behaviour {other}"),
        }
    }
}

pub struct App {
    pub runtime: Runtime<SqliteStore>,
    client: reqwest::Client,
}

/// A configuration on a free port with short retries and record timeouts, then `tune`d.
pub fn config(db: &Path, tune: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::new(
        db.to_owned(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        API_KEY.into(),
    );
    config.retry_backoff = Duration::from_millis(10);
    config.stream.record_timeout = Duration::from_millis(300);
    tune(&mut config);
    config
}

pub async fn start(db: &Path, processor: Scripted, tune: impl FnOnce(&mut Config)) -> App {
    let runtime = storefirst_sqlite::start(config(db, tune), std::sync::Arc::new(processor))
        .await
        .unwrap();
    App {
        runtime,
        client: reqwest::Client::new(),
    }
}

impl App {
    pub fn url(&self, id: &str) -> String {
        format!("http://{}/requests/{id}", self.runtime.addr())
    }

    pub async fn put(&self, id: &str, behaviour: &str, extra: Value) -> Value {
        let mut body = json!({ "behaviour": behaviour });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let response = self.try_put(id, &body).await;
        assert_eq!(response.status(), 202);
        body
    }

    pub async fn try_put(&self, id: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(id))
            .header("x-api-key", API_KEY)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, id: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(id))
            .header("x-api-key", API_KEY)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    pub async fn wait_for(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(Duration::from_secs(20), &format!("{id} {what}"), || async {
            let (status, item) = self.get(id).await;
            status == 200 && check(&item)
        })
        .await;
        self.get(id).await.1
    }

    pub async fn dead_lettered(&self) -> Vec<String> {
        let letters = self.runtime.store().dead_letters().await.unwrap();
        letters.into_iter().flat_map(|l| l.request_ids).collect()
    }
}
