//! Every error status the API answers is a complete answer with a JSON `{"message"}` body,
//! including the head limits (414, 431) and the requests hyper cannot parse, which hyper
//! itself answers with an empty body.
//! 503 is walked where it happens: faults.rs (a full disk) and semantics.rs (back pressure).

use std::{sync::Arc, time::Duration};

use storefirst_app::RestaurantOrders;
use storefirst_pipeline::{Config, api};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::API_KEY;

struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Sends `request` as is and reads one whole answer (the head and `Content-Length` bytes).
async fn send(addr: std::net::SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map(|value| value.trim().parse().unwrap())
                    .unwrap_or_else(|| panic!("the answer has a Content-Length: {head}"));
                if received.len() >= end + 4 + length {
                    let status = head[9..12].parse().unwrap();
                    let body = received[end + 4..end + 4 + length].to_vec();
                    return Answer { status, head, body };
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "the connection closed within an answer: {received:?}"
            );
            received.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer within 10 s")
}

fn request(method: &str, target: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\n{headers}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn keyed() -> String {
    format!("x-api-key: {API_KEY}\r\ncontent-type: application/json\r\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_is_a_complete_json_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(
        dir.path().join("errors.db"),
        ([127, 0, 0, 1], 0).into(),
        API_KEY.into(),
    );
    config.body_timeout = Duration::from_millis(500);
    let runtime = storefirst_sqlite::start(config, Arc::new(RestaurantOrders))
        .await
        .unwrap();
    let addr = runtime.addr();
    let order = r#"{"restaurant":"Roma","items":[{"dish":"espresso","quantity":1}]}"#;
    let other = r#"{"restaurant":"Milano","items":[{"dish":"espresso","quantity":1}]}"#;
    let created = send(addr, &request("PUT", "/requests/taken", &keyed(), order)).await;
    assert_eq!(created.status, 202);

    let long_target = format!("/requests/{}", "a".repeat(api::URI_LIMIT));
    let long_header = format!("{}x-padding: {}\r\n", keyed(), "a".repeat(api::HEAD_LIMIT));
    let huge_header = format!(
        "{}x-padding: {}\r\n",
        keyed(),
        "a".repeat(4 * api::HEAD_LIMIT)
    );
    let cases: Vec<(u16, &str, Vec<u8>)> = vec![
        (400, "not JSON", request("POST", "/requests", &keyed(), "{")),
        (
            400,
            "an invalid id",
            request("PUT", "/requests/a%20b", &keyed(), order),
        ),
        (
            400,
            "an id that is no UTF-8",
            request("GET", "/requests/%FF", &keyed(), ""),
        ),
        (403, "no key", request("GET", "/requests/taken", "", "")),
        (
            404,
            "an unknown id",
            request("GET", "/requests/unknown", &keyed(), ""),
        ),
        (
            404,
            "an unknown route",
            request("GET", "/elsewhere", &keyed(), ""),
        ),
        (
            405,
            "a method the route has not",
            request("DELETE", "/requests/taken", &keyed(), ""),
        ),
        (
            408,
            "a body that does not arrive",
            format!(
                "POST /requests HTTP/1.1\r\nHost: x\r\n{}content-length: 100\r\n\r\n{{",
                keyed()
            )
            .into_bytes(),
        ),
        (
            409,
            "another body for a taken id",
            request("PUT", "/requests/taken", &keyed(), other),
        ),
        (
            413,
            "a body over the limit",
            request(
                "POST",
                "/requests",
                &keyed(),
                &" ".repeat(storefirst_domain::DEFAULT_BODY_LIMIT + 1),
            ),
        ),
        (
            414,
            "a long target",
            request("GET", &long_target, &keyed(), ""),
        ),
        (
            415,
            "another content type",
            request(
                "POST",
                "/requests",
                &format!("x-api-key: {API_KEY}\r\ncontent-type: text/plain\r\n"),
                order,
            ),
        ),
        (
            431,
            "long headers",
            request("GET", "/requests/taken", &long_header, ""),
        ),
        // hyper's own answers, given their JSON body by the server's socket.
        (400, "a malformed request line", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        (400, "a header without a colon", b"GET / HTTP/1.1\r\nHost x\r\n\r\n".to_vec()),
        (
            400,
            "two different lengths",
            b"POST /requests HTTP/1.1\r\nHost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n{}".to_vec(),
        ),
        (431, "headers past hyper's cap", request("GET", "/requests/taken", &huge_header, "")),
    ];
    let mut documented = 0;
    let cases_count = cases.len();
    for (status, case, bytes) in cases {
        let answer = send(addr, &bytes).await;
        // Where the request is an operation of the OpenAPI document, the document lists
        // the answer for it.
        let line =
            String::from_utf8_lossy(&bytes[..bytes.iter().position(|&b| b == b'\r').unwrap()])
                .into_owned();
        let (method, target) = line.split_once(' ').unwrap();
        let target = target.split(' ').next().unwrap();
        let contract = storefirst_contract::Contract::published();
        if contract.documents(method, target) {
            let headers: reqwest::header::HeaderMap = answer
                .head
                .lines()
                .skip(1)
                .filter_map(|line| line.split_once(':'))
                .map(|(name, value)| (name.trim().parse().unwrap(), value.trim().parse().unwrap()))
                .collect();
            let seen = storefirst_contract::openapi::Answer {
                status: answer.status,
                headers: &headers,
                body: &answer.body,
            };
            contract
                .check(method, target, &seen)
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            documented += 1;
        }
        assert_eq!(answer.status, status, "{case}: {}", answer.head);
        assert!(
            answer.head.contains("content-type: application/json"),
            "{case}: {}",
            answer.head
        );
        let body: serde_json::Value = serde_json::from_slice(&answer.body)
            .unwrap_or_else(|e| panic!("{case}: the body is no JSON ({e}): {:?}", answer.body));
        assert!(body["message"].is_string(), "{case}: {body}");
    }
    // All but the unknown route, the unknown method and two unparsable request lines.
    assert_eq!(documented, cases_count - 4);
    runtime.shutdown().await;
}
