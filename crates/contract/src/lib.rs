//! The HTTP contract of storefirst as one suite of checks. The same code runs against the
//! local runtime (in the tests) and against a deployed stack (`cargo xtask test-e2e`), so
//! the two cannot disagree on what the API does; every answer either sees must also be
//! one the API's OpenAPI document allows (`openapi`).

use std::{
    collections::BTreeSet,
    sync::Mutex,
    time::{Duration, Instant},
};

use futures::{FutureExt, future::BoxFuture};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use storefirst_domain::DEFAULT_BODY_LIMIT;

/// Where the suite sends its requests, and what it saw accepted.
pub struct Target {
    base_url: String,
    api_key: String,
    client: reqwest::Client,
    settle_timeout: Duration,
    run_id: String,
    accepted: Mutex<BTreeSet<String>>,
    cors: probes::Cors,
}

/// One check's name and verdict.
#[derive(Debug)]
pub struct CheckReport {
    pub name: &'static str,
    pub result: Result<(), String>,
    pub elapsed: Duration,
}

struct Response {
    status: StatusCode,
    location: Option<String>,
    json: Value,
}

type Check = for<'a> fn(&'a Target) -> BoxFuture<'a, Result<(), String>>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

// After the macro, which it uses.
pub mod openapi;
pub mod probes;
pub use openapi::Contract;
pub use probes::{ProbeReport, Storage, Throttling, Verdict, render_probes};

impl Target {
    pub fn new(base_url: &str, api_key: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a client without custom TLS settings builds"),
            settle_timeout: Duration::from_secs(30),
            run_id: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
            accepted: Mutex::new(BTreeSet::new()),
            cors: probes::Cors::None,
        }
    }

    /// The target's allowed origins, for the CORS probes (default: none, as a runtime
    /// starts).
    pub fn with_cors(mut self, cors: probes::Cors) -> Self {
        self.cors = cors;
        self
    }

    /// How long a request may stay `pending` before a check gives up on it.
    pub fn with_settle_timeout(mut self, timeout: Duration) -> Self {
        self.settle_timeout = timeout;
        self
    }

    /// Every id that got a 202 during the run.
    pub fn accepted_ids(&self) -> BTreeSet<String> {
        self.accepted
            .lock()
            .expect("no panics while holding the lock")
            .clone()
    }

    /// Runs every check, concurrently, and reports each.
    pub async fn run(&self) -> Vec<CheckReport> {
        let checks: &[(&'static str, Check)] = &[
            ("POST is accepted and the order succeeds", |t| {
                post_then_succeeds(t).boxed()
            }),
            ("a rejected order fails with its reason", |t| {
                rejected_order_fails(t).boxed()
            }),
            ("PUT twice with one body is processed once", |t| {
                put_is_idempotent(t).boxed()
            }),
            ("PUT of a known id with another body is 409", |t| {
                put_conflict(t).boxed()
            }),
            ("GET of an unknown id is 404", |t| unknown_id(t).boxed()),
            ("a missing or wrong API key is 403", |t| {
                api_key_required(t).boxed()
            }),
            (
                "bad input is refused with a JSON message and stores nothing",
                |t| bad_input(t).boxed(),
            ),
            ("bodies round-trip byte for byte", |t| verbatim(t).boxed()),
            (
                "a callback URL that is not https to a public name is 400 and stores nothing",
                |t| bad_callback(t).boxed(),
            ),
        ];
        let runs = checks.iter().map(|(name, check)| async move {
            let started = Instant::now();
            let result = check(self).await;
            CheckReport {
                name,
                result,
                elapsed: started.elapsed(),
            }
        });
        futures::future::join_all(runs).await
    }

    fn id(&self, name: &str) -> String {
        format!("contract-{}-{name}", self.run_id)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Response, String> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.client.request(method.clone(), &url).body(body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        self.receive(&method, &url, request.send().await).await
    }

    /// The answer to a request, whose body must be JSON.
    async fn receive(
        &self,
        method: &Method,
        url: &str,
        sent: reqwest::Result<reqwest::Response>,
    ) -> Result<Response, String> {
        let (status, headers, text) = self.read(method, url, sent).await?;
        let location = headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let json = serde_json::from_str(&text).map_err(|_| {
            format!("{method} {url} answered {status} with a body that is not JSON: {text:?}")
        })?;
        Ok(Response {
            status,
            location,
            json,
        })
    }

    /// Any answer the suite sees: its status, headers and body, once the OpenAPI document
    /// allows them.
    async fn read(
        &self,
        method: &Method,
        url: &str,
        sent: reqwest::Result<reqwest::Response>,
    ) -> Result<(StatusCode, header::HeaderMap, String), String> {
        let response = sent.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("{method} {url}: reading the body: {e}"))?;
        let target = url.strip_prefix(&self.base_url).unwrap_or(url);
        let answer = openapi::Answer {
            status: status.as_u16(),
            headers: &headers,
            body: &body,
        };
        Contract::published().check(method.as_str(), target, &answer)?;
        Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
    }

    async fn post(&self, body: &str) -> Result<Response, String> {
        self.write(Method::POST, "/requests", body).await
    }

    async fn put(&self, id: &str, body: &str) -> Result<Response, String> {
        self.write(Method::PUT, &format!("/requests/{id}"), body)
            .await
    }

    /// A POST or PUT with the key and a JSON body; notes the id when it is accepted.
    async fn write(&self, method: Method, path: &str, body: &str) -> Result<Response, String> {
        let key = Some(self.api_key.as_str());
        let response = self
            .send(method, path, key, Some("application/json"), body.into())
            .await?;
        self.note_accepted(&response);
        Ok(response)
    }

    /// A PUT of `body` naming `callback` in `x-callback-url`.
    async fn put_with_callback(
        &self,
        id: &str,
        body: &str,
        callback: &str,
    ) -> Result<Response, String> {
        let url = format!("{}/requests/{id}", self.base_url);
        let request = self
            .client
            .put(&url)
            .header("x-api-key", &self.api_key)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-callback-url", callback)
            .body(body.to_owned());
        let response = self
            .receive(&Method::PUT, &url, request.send().await)
            .await?;
        self.note_accepted(&response);
        Ok(response)
    }

    async fn get(&self, id: &str) -> Result<Response, String> {
        self.send(
            Method::GET,
            &format!("/requests/{id}"),
            Some(&self.api_key),
            None,
            Vec::new(),
        )
        .await
    }

    fn note_accepted(&self, response: &Response) {
        if let Some(id) = response.json["id"].as_str()
            && response.status == StatusCode::ACCEPTED
        {
            self.accepted
                .lock()
                .expect("no panics while holding the lock")
                .insert(id.to_owned());
        }
    }

    /// Polls GET until the request leaves `pending`.
    async fn settled(&self, id: &str) -> Result<Value, String> {
        let deadline = Instant::now() + self.settle_timeout;
        loop {
            let response = self.get(id).await?;
            ensure!(
                response.status == StatusCode::OK,
                "GET {id} answered {}: {}",
                response.status,
                response.json
            );
            if response.json["status"] != "pending" {
                return Ok(response.json);
            }
            ensure!(
                Instant::now() < deadline,
                "{id} still pending after {:?}: {}",
                self.settle_timeout,
                response.json
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A 202 for a new request, with the contract's shape; returns the id.
fn expect_accepted(response: &Response, id: Option<&str>) -> Result<String, String> {
    expect_accepted_as(response, id, &["pending"])
}

/// A 202 that answers the stored status, one of `statuses`: a retry after the outcome
/// says so.
fn expect_accepted_as(
    response: &Response,
    id: Option<&str>,
    statuses: &[&str],
) -> Result<String, String> {
    ensure!(
        response.status == StatusCode::ACCEPTED,
        "expected 202, got {}: {}",
        response.status,
        response.json
    );
    let got = response.json["id"]
        .as_str()
        .ok_or(format!("202 without an id: {}", response.json))?;
    if let Some(id) = id {
        ensure!(got == id, "202 for id {got}, expected {id}");
    }
    ensure!(
        statuses
            .iter()
            .any(|status| response.json["status"] == *status),
        "202 with status {}, expected one of {statuses:?}",
        response.json["status"]
    );
    let location = format!("/requests/{got}");
    ensure!(
        response
            .location
            .as_deref()
            .is_some_and(|l| l.ends_with(&location)),
        "Location {:?} should end with {location}",
        response.location
    );
    Ok(got.to_owned())
}

fn expect_error(response: &Response, status: StatusCode, what: &str) -> Result<(), String> {
    ensure!(
        response.status == status,
        "{what}: expected {status}, got {}: {}",
        response.status,
        response.json
    );
    ensure!(
        response.json["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {status} without a JSON message: {}",
        response.json
    );
    Ok(())
}

const ORDER: &str = r#"{"restaurant":"Roma","items":[{"dish":"margherita","quantity":2},{"dish":"espresso","quantity":3}],"note":"ring twice"}"#;

async fn post_then_succeeds(t: &Target) -> Result<(), String> {
    let id = expect_accepted(&t.post(ORDER).await?, None)?;
    let item = t.settled(&id).await?;
    ensure!(item["status"] == "succeeded", "expected succeeded: {item}");
    ensure!(
        item["result"] == json!({"total_cents": 2300, "items": 2}),
        "wrong result: {item}"
    );
    ensure!(item["request"] == ORDER, "request not verbatim: {item}");
    ensure!(item["id"] == id.as_str(), "wrong id: {item}");
    ensure!(
        item["attempts"].as_i64() >= Some(1),
        "attempts not counted: {item}"
    );
    ensure!(
        item.get("error").is_none_or(Value::is_null),
        "error on success: {item}"
    );
    let (created, updated) = (item["created_at"].as_i64(), item["updated_at"].as_i64());
    ensure!(
        created.is_some() && updated >= created,
        "timestamps wrong: {item}"
    );
    Ok(())
}

async fn rejected_order_fails(t: &Target) -> Result<(), String> {
    let order = r#"{"restaurant":"Roma","items":[{"dish":"sushi","quantity":1}]}"#;
    let id = expect_accepted(&t.post(order).await?, None)?;
    let item = t.settled(&id).await?;
    ensure!(item["status"] == "failed", "expected failed: {item}");
    let error = item["error"].as_str().unwrap_or_default();
    ensure!(
        error.contains("unknown dish") && error.contains("sushi"),
        "reason should name the dish: {item}"
    );
    ensure!(
        item.get("result").is_none_or(Value::is_null),
        "result on failure: {item}"
    );
    Ok(())
}

async fn put_is_idempotent(t: &Target) -> Result<(), String> {
    let id = t.id("idempotent");
    expect_accepted(&t.put(&id, ORDER).await?, Some(&id))?;
    // The retry may come after the outcome: it answers the stored status.
    expect_accepted_as(
        &t.put(&id, ORDER).await?,
        Some(&id),
        &["pending", "succeeded"],
    )?;
    let item = t.settled(&id).await?;
    ensure!(item["status"] == "succeeded", "expected succeeded: {item}");
    ensure!(item["attempts"] == 1, "processed more than once: {item}");
    expect_accepted_as(&t.put(&id, ORDER).await?, Some(&id), &["succeeded"])?;
    let again = t.get(&id).await?.json;
    ensure!(
        again == item,
        "a retry after success changed the item: {item} -> {again}"
    );
    Ok(())
}

async fn put_conflict(t: &Target) -> Result<(), String> {
    let id = t.id("conflict");
    expect_accepted(&t.put(&id, ORDER).await?, Some(&id))?;
    let other = r#"{"restaurant":"Roma","items":[{"dish":"tiramisu","quantity":1}]}"#;
    expect_error(
        &t.put(&id, other).await?,
        StatusCode::CONFLICT,
        "PUT with another body",
    )?;
    let item = t.get(&id).await?.json;
    ensure!(
        item["request"] == ORDER,
        "the conflicting body replaced the stored one: {item}"
    );
    Ok(())
}

/// Refused wherever the runtime stands on webhooks: a runtime that delivers them refuses
/// these URLs, one that does not refuses every callback.
async fn bad_callback(t: &Target) -> Result<(), String> {
    let id = t.id("bad-callback");
    for callback in [
        "http://example.com/hook",
        "https://10.0.0.1/hook",
        "https://user:secret@example.com/hook",
        "hook",
    ] {
        expect_error(
            &t.put_with_callback(&id, ORDER, callback).await?,
            StatusCode::BAD_REQUEST,
            &format!("PUT with x-callback-url {callback}"),
        )?;
    }
    expect_error(
        &t.get(&id).await?,
        StatusCode::NOT_FOUND,
        "GET after refused callbacks",
    )
}

async fn unknown_id(t: &Target) -> Result<(), String> {
    expect_error(
        &t.get(&t.id("never-written")).await?,
        StatusCode::NOT_FOUND,
        "GET unknown id",
    )
}

async fn api_key_required(t: &Target) -> Result<(), String> {
    let id = t.id("no-key");
    for key in [None, Some("wrong-key"), Some("")] {
        for (method, path) in [
            (Method::POST, "/requests".to_owned()),
            (Method::PUT, format!("/requests/{id}")),
        ] {
            let what = format!("{method} {path} with key {key:?}");
            let response = t
                .send(method, &path, key, Some("application/json"), ORDER.into())
                .await?;
            expect_error(&response, StatusCode::FORBIDDEN, &what)?;
        }
        let response = t
            .send(
                Method::GET,
                &format!("/requests/{id}"),
                key,
                None,
                Vec::new(),
            )
            .await?;
        expect_error(
            &response,
            StatusCode::FORBIDDEN,
            &format!("GET with key {key:?}"),
        )?;
    }
    expect_error(
        &t.get(&id).await?,
        StatusCode::NOT_FOUND,
        "GET after refused writes",
    )
}

async fn bad_input(t: &Target) -> Result<(), String> {
    let json = Some("application/json");
    let limit = DEFAULT_BODY_LIMIT;
    let padded = |size: usize| format!(r#"{{"pad":"{}"}}"#, "x".repeat(size - 10)).into_bytes();
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000)).into_bytes();
    let cases: Vec<(&str, Option<&str>, Vec<u8>, StatusCode)> = vec![
        ("empty body", json, Vec::new(), StatusCode::BAD_REQUEST),
        (
            "blank body",
            json,
            b"  \n ".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "not JSON",
            json,
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "invalid UTF-8",
            json,
            b"{\"a\":\"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a JSON array",
            json,
            b"[1,2,3]".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a JSON string",
            json,
            b"\"order\"".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a JSON number",
            json,
            b"42".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        ("JSON null", json, b"null".to_vec(), StatusCode::BAD_REQUEST),
        (
            "an empty object",
            json,
            b" {\n} ".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        ("deeply nested JSON", json, deep, StatusCode::BAD_REQUEST),
        (
            "one byte over the limit",
            json,
            padded(limit + 1),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "text/plain",
            Some("text/plain"),
            ORDER.into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "form data",
            Some("application/x-www-form-urlencoded"),
            ORDER.into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (index, (what, content_type, body, status)) in cases.into_iter().enumerate() {
        let id = t.id(&format!("bad-{index}"));
        let path = format!("/requests/{id}");
        let key = Some(t.api_key.as_str());
        let put = t
            .send(Method::PUT, &path, key, content_type, body.clone())
            .await?;
        expect_error(&put, status, &format!("PUT {what}"))?;
        let post = t
            .send(Method::POST, "/requests", key, content_type, body)
            .await?;
        expect_error(&post, status, &format!("POST {what}"))?;
        expect_error(
            &t.get(&id).await?,
            StatusCode::NOT_FOUND,
            &format!("GET after {what}"),
        )?;
    }
    for id in ["has space", "slash%2Fin", &"x".repeat(129), "caf%C3%A9"] {
        expect_error(
            &t.put(id, ORDER).await?,
            StatusCode::BAD_REQUEST,
            &format!("PUT invalid id {id:?}"),
        )?;
        expect_error(
            &t.get(id).await?,
            StatusCode::BAD_REQUEST,
            &format!("GET invalid id {id:?}"),
        )?;
    }
    // The limit itself is allowed, and the server is still healthy after all of the above.
    let at_limit = String::from_utf8(padded(limit)).expect("ASCII");
    let id = t.id("at-limit");
    expect_accepted(&t.put(&id, &at_limit).await?, Some(&id))?;
    let item = t.settled(&id).await?;
    ensure!(
        item["request"] == at_limit.as_str(),
        "the largest body did not round-trip"
    );
    Ok(())
}

async fn verbatim(t: &Target) -> Result<(), String> {
    let bodies = [
        r#"{"note":"it's Ana's order, isn't it?"}"#,
        r#"{"path":"C:\\temp\\new","quote":"\"quoted\"","tab":"\t"}"#,
        "{\"lines\":\"one\\ntwo\",\n  \"spaced\" :  true\n}",
        r#"{"emoji":"🍕🍝","accents":"café ñandú","escaped":"\u00e9\ud83c\udf55"}"#,
        r#"{"nested":{"a":[1,2,{"b":null,"c":[true,false]}],"d":{"e":{"f":-1.5e3}}}}"#,
        r##"{"html":"<script>alert('x')</script>","dollar":"$input.body","hash":"#set($x = 1)"}"##,
    ];
    for (index, body) in bodies.iter().enumerate() {
        let id = t.id(&format!("verbatim-{index}"));
        expect_accepted(&t.put(&id, body).await?, Some(&id))?;
        let item = t.settled(&id).await?;
        ensure!(
            item["request"] == *body,
            "body {index} changed: sent {body:?}, got {}",
            item["request"]
        );
    }
    Ok(())
}

/// A readable report: one line per check, failures with their reason, and a total.
pub fn render(reports: &[CheckReport]) -> String {
    let mut out = String::new();
    for report in reports {
        let mark = if report.result.is_ok() {
            "ok  "
        } else {
            "FAIL"
        };
        out.push_str(&format!(
            "{mark} {} ({:.1?})\n",
            report.name, report.elapsed
        ));
        if let Err(reason) = &report.result {
            out.push_str(&format!("     {reason}\n"));
        }
    }
    let failed = reports.iter().filter(|r| r.result.is_err()).count();
    out.push_str(&format!(
        "{} checks, {} passed, {failed} failed\n",
        reports.len(),
        reports.len() - failed
    ));
    out
}
