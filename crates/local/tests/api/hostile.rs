//! Arbitrary methods, paths, headers and bodies: every case gets a complete answer within a
//! bound, a 2xx or a 4xx with a JSON `{"message": ...}` for an error, never a panic, and
//! nothing is stored unless it was answered 202.

use std::{
    cell::Cell,
    collections::BTreeSet,
    io::{ErrorKind, Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    http::{Request, StatusCode, header::CONTENT_TYPE},
};
use proptest::{prelude::*, test_runner::TestRunner};
use storefirst_pipeline::api;
use storefirst_sqlite::SqliteStore;
use tower::ServiceExt;

use crate::API_KEY;

const LIMIT: usize = 2048;
/// How long a case may take to be answered in full: a hang fails the case.
const BOUND: Duration = Duration::from_secs(5);

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

/// An error's body: a JSON object with a string `message`, declared as JSON.
fn check_error_body(content_type: Option<&str>, body: &[u8]) -> Result<(), String> {
    if !content_type.is_some_and(|t| t.starts_with("application/json")) {
        return Err(format!("content-type {content_type:?}, not JSON"));
    }
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "a body that is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    })?;
    if json["message"].is_string() {
        Ok(())
    } else {
        Err(format!("JSON without a message: {json}"))
    }
}

#[test]
fn arbitrary_requests_never_panic_never_5xx_and_store_only_what_was_accepted() {
    const CASES: u32 = 600;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = app(&dir.path().join("hostile.db"));
    let accepted = std::cell::RefCell::new(BTreeSet::new());
    let skipped = Cell::new(0u32);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: CASES,
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
                // Not expressible as HTTP at all: counted, and bounded below.
                skipped.set(skipped.get() + 1);
                return Ok(());
            };
            let answered = rt.block_on(async {
                tokio::time::timeout(BOUND, async {
                    let response = app.clone().oneshot(request).await.unwrap();
                    let status = response.status();
                    let content_type = response
                        .headers()
                        .get(CONTENT_TYPE)
                        .and_then(|t| t.to_str().ok())
                        .map(str::to_owned);
                    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                        .await
                        .unwrap();
                    (status, content_type, body)
                })
                .await
            });
            let Ok((status, content_type, body)) = answered else {
                return Err(TestCaseError::fail(format!(
                    "no complete answer within {BOUND:?} for {input:?}"
                )));
            };
            prop_assert!(
                status.is_success() || status.is_client_error(),
                "{status} for {input:?}"
            );
            if input.method == "HEAD" {
                prop_assert!(body.is_empty(), "a body for HEAD: {input:?}");
            } else if status.is_client_error() {
                check_error_body(content_type.as_deref(), &body).map_err(|problem| {
                    TestCaseError::fail(format!("{status} with {problem} for {input:?}"))
                })?;
            } else {
                let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
                    TestCaseError::fail(format!("{status} without JSON for {input:?}"))
                })?;
                prop_assert_eq!(input.key.as_deref(), Some(API_KEY));
                if status == StatusCode::ACCEPTED {
                    prop_assert!(matches!(input.method.as_str(), "POST" | "PUT"), "{input:?}");
                    let sent: serde_json::Value = serde_json::from_slice(&input.body)
                        .map_err(|_| TestCaseError::fail("accepted a body that is not JSON"))?;
                    prop_assert!(sent.is_object() && input.body.len() <= LIMIT, "{input:?}");
                    accepted
                        .borrow_mut()
                        .insert(json["id"].as_str().unwrap().to_owned());
                } else {
                    prop_assert_eq!(status, StatusCode::OK, "{:?}", input);
                    prop_assert_eq!(input.method.as_str(), "GET");
                }
            }
            Ok(())
        })
        .unwrap();

    // The generator makes valid HTTP by construction: a case it cannot build tests
    // nothing, so more than 1% of them would hide what this test is for.
    assert!(
        skipped.get() <= CASES / 100,
        "{} of {CASES} cases could not be built as HTTP requests",
        skipped.get()
    );
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

/// One HTTP/1.1 answer read off the wire.
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// Reads one complete answer, the status line, the headers and the whole body its
/// `Content-Length` announces, within [`BOUND`]; a close, a read error or the bound
/// passing before that is an error that says what had arrived.
fn read_answer(stream: &mut TcpStream) -> Result<Answer, String> {
    let deadline = Instant::now() + BOUND;
    let mut received = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        if let Some(answer) = complete_answer(&received)? {
            return Ok(answer);
        }
        let partial = || String::from_utf8_lossy(&received).into_owned();
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no complete answer within {BOUND:?}, got {:?}",
                partial()
            ));
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return Err(format!("closed after {:?}", partial())),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            // The read timeout: the loop reports the bound.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read failed ({e}) after {:?}", partial())),
        }
    }
}

/// The answer in `received`, once all of it is there.
fn complete_answer(received: &[u8]) -> Result<Option<Answer>, String> {
    let Some(head_end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&received[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3)?.parse().ok())
        .ok_or_else(|| format!("not an HTTP/1.1 status line: {status_line:?}"))?;
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("an answer without a Content-Length: {head:?}"))?;
    let body = &received[head_end + 4..];
    if body.len() < length {
        return Ok(None);
    }
    Ok(Some(Answer {
        status,
        content_type: header("content-type"),
        body: body[..length].to_vec(),
    }))
}

/// The start of what was sent, for a failure's message.
fn shown(sent: &[u8]) -> String {
    String::from_utf8_lossy(&sent[..sent.len().min(120)]).into_owned()
}

/// Raw bytes on the socket, below HTTP: each gets a complete JSON 4xx within the bound,
/// and the server keeps serving.
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
        // A hang costs the whole bound per try: shrink for a while, not for ever.
        max_shrink_time: 30_000,
        ..ProptestConfig::default()
    });
    let prefix = prop_oneof![
        Just(Vec::new()),
        Just(b"GET /requests/x HTTP/1.1\r\n".to_vec()),
        Just(b"POST /requests HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n".to_vec())
    ];

    runner
        .run(
            // At least one byte: line breaks alone are no request, and get no answer.
            &(prefix, proptest::collection::vec(any::<u8>(), 1..4096)),
            |(prefix, garbage)| {
                let mut stream = TcpStream::connect(addr).unwrap();
                let sent = [prefix.as_slice(), &garbage, b"\r\n\r\n"].concat();
                // All of it fits in the socket's buffers: a failed write is a refusal
                // without an answer.
                stream
                    .write_all(&sent)
                    .map_err(|e| TestCaseError::fail(format!("write failed: {e}")))?;
                let answer = read_answer(&mut stream)
                    .map_err(|e| TestCaseError::fail(format!("{e} for {:?}", shown(&sent))))?;
                let text = String::from_utf8_lossy(&answer.body);
                prop_assert!(
                    (400..500).contains(&answer.status),
                    "{} {text} for {:?}",
                    answer.status,
                    shown(&sent)
                );
                check_error_body(answer.content_type.as_deref(), &answer.body).map_err(
                    |problem| {
                        TestCaseError::fail(format!(
                            "{} with {problem} for {:?}",
                            answer.status,
                            shown(&sent)
                        ))
                    },
                )?;
                Ok(())
            },
        )
        .unwrap();

    let mut healthy = TcpStream::connect(addr).unwrap();
    write!(
        healthy,
        "GET /requests/none HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\n\r\n"
    )
    .unwrap();
    let answer = read_answer(&mut healthy).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        answer.status,
        404,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
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
