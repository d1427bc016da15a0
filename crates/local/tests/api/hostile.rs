//! Arbitrary methods, paths, headers and bodies: never a panic, never a 5xx, and nothing
//! stored unless it was answered 202.

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use axum::{body::Body, http::Request};
use proptest::{prelude::*, test_runner::TestRunner};
use storefirst_pipeline::api;
use storefirst_sqlite::SqliteStore;
use tower::ServiceExt;

use crate::API_KEY;

const LIMIT: usize = 2048;

#[derive(Debug, Clone)]
struct Input {
    method: String,
    path: String,
    key: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The HTTP API in process over a new SQLite store at `db`, with a small body limit.
fn app(db: &std::path::Path) -> axum::Router {
    let store = SqliteStore::open(db).unwrap();
    api::app(api::AppState::new(
        store,
        API_KEY,
        LIMIT,
        Duration::from_secs(5),
    ))
}

fn input() -> impl Strategy<Value = Input> {
    // Weighted towards the valid choices, so that many cases reach the store.
    let method = prop_oneof![
        1 => Just("GET".to_owned()),
        4 => Just("POST".to_owned()),
        4 => Just("PUT".to_owned()),
        1 => Just("DELETE".to_owned()),
        1 => Just("PATCH".to_owned()),
        1 => Just("HEAD".to_owned()),
        1 => Just("OPTIONS".to_owned()),
        1 => "[A-Z]{1,12}",
    ];
    let path = prop_oneof![
        3 => Just("/requests".to_owned()),
        3 => "[A-Za-z0-9._-]{1,130}".prop_map(|id| format!("/requests/{id}")),
        1 => any::<String>().prop_map(|id| format!("/requests/{}", percent_encode(&id))),
        1 => any::<String>().prop_map(|p| format!("/{}", percent_encode(&p))),
        1 => Just("/requests/a/b".to_owned()),
        1 => Just("/requests/".to_owned()),
    ];
    let key = prop_oneof![
        1 => Just(None),
        4 => Just(Some(API_KEY.to_owned())),
        1 => "[ -~]{0,40}".prop_map(Some)
    ];
    let content_type = prop_oneof![
        1 => Just(None),
        2 => Just(Some("application/json".to_owned())),
        2 => Just(Some("application/json; charset=utf-8".to_owned())),
        1 => Just(Some("text/plain".to_owned())),
        1 => "[ -~]{0,40}".prop_map(Some),
    ];
    let json_object = (any::<String>(), any::<String>(), 0..20usize).prop_map(|(k, v, depth)| {
        let inner = serde_json::json!({ k: v }).to_string();
        format!("{}{}{}", r#"{"x":"#.repeat(depth), inner, "}".repeat(depth))
    });
    let body = prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..3000),
        3 => json_object.prop_map(String::into_bytes),
        1 => "[\\[\\]{}\",:0-9a-z ]{0,200}".prop_map(String::into_bytes),
        1 => (1usize..3000).prop_map(|n| format!(r#"{{"pad":"{}"}}"#, "x".repeat(n)).into_bytes()),
    ];
    (method, path, key, content_type, body).prop_map(|(method, path, key, content_type, body)| {
        Input {
            method,
            path,
            key,
            content_type,
            body,
        }
    })
}

#[test]
fn arbitrary_requests_never_panic_never_5xx_and_store_only_what_was_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = app(&dir.path().join("hostile.db"));
    let accepted = std::cell::RefCell::new(BTreeSet::new());
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 600,
        failure_persistence: None,
        ..ProptestConfig::default()
    });

    runner
        .run(&input(), |input| {
            let mut request = Request::builder()
                .method(input.method.as_str())
                .uri(input.path.as_str());
            if let Some(key) = &input.key {
                request = request.header("x-api-key", key.as_str());
            }
            if let Some(content_type) = &input.content_type {
                request = request.header("content-type", content_type.as_str());
            }
            let Ok(request) = request.body(Body::from(input.body.clone())) else {
                return Ok(()); // not expressible as HTTP at all
            };
            let (status, body) = rt.block_on(async {
                let response = app.clone().oneshot(request).await.unwrap();
                let status = response.status();
                (
                    status,
                    axum::body::to_bytes(response.into_body(), usize::MAX)
                        .await
                        .unwrap(),
                )
            });
            prop_assert!(!status.is_server_error(), "{status} for {input:?}");
            if input.method != "HEAD" {
                let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
                    TestCaseError::fail(format!("{status} without JSON for {input:?}"))
                })?;
                if status.as_u16() == 202 {
                    prop_assert!(matches!(input.method.as_str(), "POST" | "PUT"), "{input:?}");
                    prop_assert_eq!(input.key.as_deref(), Some(API_KEY));
                    let sent: serde_json::Value = serde_json::from_slice(&input.body)
                        .map_err(|_| TestCaseError::fail("accepted a body that is not JSON"))?;
                    prop_assert!(sent.is_object() && input.body.len() <= LIMIT, "{input:?}");
                    accepted
                        .borrow_mut()
                        .insert(json["id"].as_str().unwrap().to_owned());
                } else if !status.is_success() {
                    prop_assert!(
                        json["message"].is_string(),
                        "{status} without a message for {input:?}"
                    );
                }
            }
            Ok(())
        })
        .unwrap();

    let conn = rusqlite::Connection::open(dir.path().join("hostile.db")).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM requests").unwrap();
    let stored: BTreeSet<String> = stmt
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let accepted = accepted.into_inner();
    let unexpected: Vec<_> = stored.symmetric_difference(&accepted).take(5).collect();
    assert!(
        unexpected.is_empty(),
        "stored without a 202, or a 202 not stored: {unexpected:?}"
    );
    assert!(
        !accepted.is_empty(),
        "the generator produced some valid requests"
    );
}

/// Raw bytes on the socket, below HTTP: the server answers or closes, and keeps serving.
#[test]
fn garbage_on_the_wire_does_not_hurt_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = storefirst_pipeline::Config::new(
        dir.path().join("wire.db"),
        ([127, 0, 0, 1], 0).into(),
        API_KEY.into(),
    );
    let runtime = rt
        .block_on(storefirst_sqlite::start(
            config,
            std::sync::Arc::new(storefirst_app::RestaurantOrders),
        ))
        .unwrap();
    let addr = runtime.addr();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let prefix = prop_oneof![
        Just(Vec::new()),
        Just(b"GET /requests/x HTTP/1.1\r\n".to_vec()),
        Just(b"POST /requests HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n".to_vec())
    ];

    runner
        .run(
            &(prefix, proptest::collection::vec(any::<u8>(), 0..4096)),
            |(prefix, garbage)| {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(15)))
                    .unwrap();
                let _ = stream.write_all(&prefix);
                let _ = stream.write_all(&garbage);
                let _ = stream.write_all(b"\r\n\r\n");
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
                let text = String::from_utf8_lossy(&answer);
                prop_assert!(!text.starts_with("HTTP/1.1 5"), "{text}");
                Ok(())
            },
        )
        .unwrap();

    let mut healthy = TcpStream::connect(addr).unwrap();
    write!(healthy, "GET /requests/none HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    healthy.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    rt.block_on(runtime.shutdown());
}

/// The key counts only when it is sent once: with two `x-api-key` headers, which one a
/// proxy in front would pass on is a guess.
#[tokio::test]
async fn a_request_with_two_keys_is_refused_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir.path().join("keys.db"));
    let put = |keys: &[&str]| {
        let mut request =
            Request::put("/requests/two-keys").header("content-type", "application/json");
        for key in keys {
            request = request.header("x-api-key", *key);
        }
        request.body(Body::from(r#"{"a":1}"#)).unwrap()
    };
    for keys in [[API_KEY, "wrong"], ["wrong", API_KEY], [API_KEY, API_KEY]] {
        let answer = app.clone().oneshot(put(&keys)).await.unwrap();
        assert_eq!(answer.status(), 403, "{keys:?}");
    }
    let get = Request::get("/requests/two-keys")
        .header("x-api-key", API_KEY)
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.clone().oneshot(get).await.unwrap().status(), 404);
    let answer = app.oneshot(put(&[API_KEY])).await.unwrap();
    assert_eq!(answer.status(), 202, "one key is accepted");
}

/// A path the router cannot decode is an invalid id, answered in JSON like every error.
#[tokio::test]
async fn an_undecodable_id_is_a_json_400() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir.path().join("undecodable.db"));
    for (method, body) in [("PUT", r#"{"a":1}"#), ("GET", "")] {
        let request = Request::builder()
            .method(method)
            .uri("/requests/%FF")
            .header("x-api-key", API_KEY)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let answer = app.clone().oneshot(request).await.unwrap();
        assert_eq!(answer.status(), 400, "{method}");
        let bytes = http_body_util::BodyExt::collect(answer.into_body())
            .await
            .unwrap()
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{method}: not JSON ({e}): {bytes:?}"));
        assert!(
            json["message"]
                .as_str()
                .is_some_and(|m| m.contains("invalid request id")),
            "{method}: {json}"
        );
    }
}
