//! CORS, rule by rule: the preflight (answered without the key, never touching the store),
//! the headers on every other answer to an allowed origin, none for any other origin, and
//! the configuration from the command line.

use std::{
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode},
};
use http_body_util::BodyExt;
use serde_json::Value;
use storefirst_domain::{RequestBody, RequestId};
use storefirst_pipeline::{
    Accepted, Item, StoreFault,
    api::{self, AppState},
    cors::AllowedOrigins,
    ports::Ingest,
};
use tower::ServiceExt;

use crate::{API_KEY, spawn_local_with};

const PAGE: &str = "http://127.0.0.1:8081";
const OTHER: &str = "http://127.0.0.1:8082";
const LIMIT: usize = 1024;

/// Answers by id (`conflict`, `broken`, `known`, anything else new) and counts its calls.
#[derive(Clone, Default)]
struct Scripted {
    calls: Arc<AtomicUsize>,
}

impl Scripted {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Ingest for Scripted {
    async fn accept(
        &self,
        id: RequestId,
        _: RequestBody,
        _: Option<storefirst_domain::CallbackUrl>,
    ) -> Result<Accepted, StoreFault> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match id.as_str() {
            "conflict" => Ok(Accepted::Conflict),
            "broken" => Err(StoreFault::write("PutItem", "the disk is full")),
            _ => Ok(Accepted::Created),
        }
    }

    async fn get(&self, id: RequestId) -> Result<Option<Item>, StoreFault> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok((id.as_str() == "known").then(|| Item {
            id: "known".into(),
            status: "pending".into(),
            request: "{\"a\":1}".into(),
            result: None,
            error: None,
            attempts: 0,
            created_at: 1,
            updated_at: 1,
            callback: None,
        }))
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Every `Access-Control-*` header, sorted.
    fn cors_headers(&self) -> Vec<(String, String)> {
        let mut found: Vec<_> = self
            .headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("access-control-"))
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
        found.sort();
        found
    }

    fn message(&self) -> String {
        let json: Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("a JSON body ({e}): {:?}", self.body));
        json["message"].as_str().expect("a message").to_owned()
    }
}

/// The API in process over `store`, allowing `origins`.
async fn call(store: &Scripted, origins: &[&str], request: Request<Body>) -> Answer {
    let state = AppState::new(store.clone(), API_KEY, LIMIT, Duration::from_secs(5))
        .with_cors(AllowedOrigins::parse(origins).unwrap());
    let response = api::app(state).oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}

fn preflight(path: &str, origin: Option<&str>, method: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().method(Method::OPTIONS).uri(path);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(method) = method {
        request = request
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type,x-api-key");
    }
    request.body(Body::empty()).unwrap()
}

fn expected_preflight(origin: &str, methods: &str) -> Vec<(String, String)> {
    let mut expected: Vec<(String, String)> = [
        (
            "access-control-allow-headers",
            "content-type, x-api-key, x-callback-url",
        ),
        ("access-control-allow-methods", methods),
        ("access-control-allow-origin", origin),
        ("access-control-max-age", "600"),
    ]
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .into();
    expected.sort();
    expected
}

#[tokio::test]
async fn an_allowed_preflight_is_204_with_the_methods_of_its_resource() {
    let store = Scripted::default();
    for (path, method, methods) in [
        ("/requests", "POST", "POST, OPTIONS"),
        ("/requests/my-order", "PUT", "GET, PUT, OPTIONS"),
        ("/requests/my-order", "GET", "GET, PUT, OPTIONS"),
    ] {
        let answer = call(
            &store,
            &[OTHER, PAGE],
            preflight(path, Some(PAGE), Some(method)),
        )
        .await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{path}");
        assert_eq!(answer.cors_headers(), expected_preflight(PAGE, methods));
        assert_eq!(answer.header("vary"), Some("Origin"));
        assert!(answer.body.is_empty(), "no body: {:?}", answer.body);
    }
    assert_eq!(store.calls(), 0, "a preflight never touches the store");
}

#[tokio::test]
async fn star_allows_any_origin_with_a_star() {
    let store = Scripted::default();
    let answer = call(
        &store,
        &["*"],
        preflight("/requests", Some("https://anywhere.example"), Some("POST")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(
        answer.cors_headers(),
        expected_preflight("*", "POST, OPTIONS")
    );
    let post = call(&store, &["*"], order("/requests", Some(PAGE), "{\"a\":1}")).await;
    assert_eq!(post.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn any_other_preflight_is_403_naming_the_fix_without_cors_headers() {
    let store = Scripted::default();
    for (origins, origin, method) in [
        (&[PAGE][..], Some(OTHER), Some("POST")),
        (&[PAGE], None, Some("POST")),
        // An OPTIONS that asks for no method is no preflight.
        (&[PAGE], Some(PAGE), None),
        // Nothing configured: same-origin only.
        (&[], Some(PAGE), Some("POST")),
    ] {
        let answer = call(&store, origins, preflight("/requests/x", origin, method)).await;
        let case = format!("{origins:?} {origin:?} {method:?}");
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{case}");
        assert_eq!(answer.cors_headers(), [], "{case}");
        assert!(answer.message().contains("--cors-origin"), "{case}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
    }
    assert_eq!(store.calls(), 0, "a preflight never touches the store");
    let unconfigured = call(
        &store,
        &[],
        preflight("/requests", Some(PAGE), Some("POST")),
    )
    .await;
    assert_eq!(
        unconfigured.header("vary"),
        None,
        "no CORS, no CORS header at all"
    );
}

#[tokio::test]
async fn a_preflight_needs_no_key_but_other_options_do() {
    let store = Scripted::default();
    // Not a resource of the API: the router answers, behind the key.
    let answer = call(
        &store,
        &[PAGE],
        preflight("/requests/a/b", Some(PAGE), Some("GET")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        answer.message().contains("x-api-key"),
        "{}",
        answer.message()
    );
    assert_eq!(answer.header("access-control-allow-origin"), Some(PAGE));
}

fn order(path: &str, origin: Option<&str>, body: &str) -> Request<Body> {
    let method = if path == "/requests" { "POST" } else { "PUT" };
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("x-api-key", API_KEY)
        .header("content-type", "application/json");
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

fn get(path: &str, origin: &str) -> Request<Body> {
    Request::get(path)
        .header("x-api-key", API_KEY)
        .header("origin", origin)
        .body(Body::empty())
        .unwrap()
}

/// Every kind of answer the local runtime gives, from `origin`.
fn every_answer(origin: &str) -> Vec<(StatusCode, Request<Body>)> {
    let mut no_key = order("/requests", Some(origin), "{\"a\":1}");
    no_key.headers_mut().remove("x-api-key");
    let mut text = order("/requests", Some(origin), "{\"a\":1}");
    text.headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    let mut delete = get("/requests/known", origin);
    *delete.method_mut() = Method::DELETE;
    vec![
        (
            StatusCode::ACCEPTED,
            order("/requests", Some(origin), "{\"a\":1}"),
        ),
        (
            StatusCode::ACCEPTED,
            order("/requests/mine", Some(origin), "{\"a\":1}"),
        ),
        (StatusCode::OK, get("/requests/known", origin)),
        (
            StatusCode::BAD_REQUEST,
            order("/requests", Some(origin), "{}"),
        ),
        (StatusCode::FORBIDDEN, no_key),
        (StatusCode::NOT_FOUND, get("/requests/unknown", origin)),
        (StatusCode::METHOD_NOT_ALLOWED, delete),
        (
            StatusCode::CONFLICT,
            order("/requests/conflict", Some(origin), "{\"a\":1}"),
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            order(
                "/requests",
                Some(origin),
                &format!("{{\"a\":\"{}\"}}", "x".repeat(LIMIT)),
            ),
        ),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, text),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            order("/requests/broken", Some(origin), "{\"a\":1}"),
        ),
    ]
}

#[tokio::test]
async fn every_answer_to_an_allowed_origin_carries_the_headers() {
    let store = Scripted::default();
    for (status, request) in every_answer(PAGE) {
        let case = format!("{} {}", request.method(), request.uri());
        let answer = call(&store, &[PAGE], request).await;
        assert_eq!(answer.status, status, "{case}");
        let mut expected = vec![
            ("access-control-allow-origin".to_owned(), PAGE.to_owned()),
            (
                "access-control-expose-headers".to_owned(),
                "Location, Retry-After".to_owned(),
            ),
        ];
        expected.sort();
        assert_eq!(answer.cors_headers(), expected, "{case}");
        assert_eq!(answer.header("vary"), Some("Origin"), "{case}");
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(answer.header("retry-after"), Some("1"));
        }
    }
}

#[tokio::test]
async fn another_origin_gets_no_cors_header_and_is_still_processed() {
    let store = Scripted::default();
    for (status, request) in every_answer(OTHER) {
        let case = format!("{} {}", request.method(), request.uri());
        let answer = call(&store, &[PAGE], request).await;
        assert_eq!(answer.status, status, "{case}: processed as without CORS");
        assert_eq!(answer.cors_headers(), [], "{case}");
    }
    let no_origin = call(&store, &[PAGE], order("/requests", None, "{\"a\":1}")).await;
    assert_eq!(no_origin.status, StatusCode::ACCEPTED);
    assert_eq!(no_origin.cors_headers(), []);
    // Nothing configured: not even Vary.
    let unconfigured = call(&store, &[], order("/requests", Some(PAGE), "{\"a\":1}")).await;
    assert_eq!(unconfigured.cors_headers(), []);
    assert_eq!(unconfigured.header("vary"), None);
}

/// The binary with `args` and `envs`: its preflight answer from each origin.
fn preflights_through_the_binary(
    args: &[&str],
    envs: &[(&str, &str)],
    origins: &[&str],
) -> Vec<u16> {
    let dir = tempfile::tempdir().unwrap();
    let local = spawn_local_with(
        &dir.path().join("cors.db"),
        "warn",
        Stdio::inherit(),
        args,
        envs,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    origins
        .iter()
        .map(|origin| {
            runtime.block_on(async {
                client
                    .request(Method::OPTIONS, format!("{}/requests", local.url))
                    .header("origin", *origin)
                    .header("access-control-request-method", "POST")
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect()
}

#[test]
fn the_flag_repeats_and_the_variable_takes_a_list() {
    let third = "https://app.example.com";
    assert_eq!(
        preflights_through_the_binary(
            &["--cors-origin", PAGE, "--cors-origin", third],
            &[],
            &[PAGE, third, OTHER]
        ),
        [204, 204, 403]
    );
    assert_eq!(
        preflights_through_the_binary(
            &[],
            &[("STOREFIRST_CORS_ORIGINS", &format!("{PAGE},{third}"))],
            &[PAGE, third, OTHER]
        ),
        [204, 204, 403]
    );
    assert_eq!(
        preflights_through_the_binary(&[], &[], &[PAGE]),
        [403],
        "none by default"
    );
}

#[test]
fn a_bad_origin_stops_the_start_with_the_fix() {
    for (origin, says) in [
        (
            "http://127.0.0.1:8081/",
            "without a path or a trailing slash",
        ),
        ("https://App.example.com", "lowercase"),
        (&format!("*,{PAGE}"), "give it alone"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_storefirst-local"))
            .args(["--port", "0", "--db"])
            .arg(dir.path().join("cors.db"))
            .env("STOREFIRST_CORS_ORIGINS", origin)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{origin}: refused");
        assert!(stderr.contains(says), "{origin}: {stderr}");
    }
}
