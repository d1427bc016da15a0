//! The local API serves its OpenAPI document at `/openapi.json` without the API key (a
//! client generator fetches it before it has one), with the CORS headers of any other
//! answer, and the answer is one the document itself allows.

use std::time::Duration;

use storefirst_contract::{Contract, openapi::Answer};
use storefirst_domain::DEFAULT_BODY_LIMIT;
use storefirst_pipeline::{api, cors::AllowedOrigins, openapi};
use storefirst_sqlite::SqliteStore;

#[tokio::test]
async fn the_document_is_served_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("openapi.db")).unwrap();
    let state = api::AppState::new(store, "key", DEFAULT_BODY_LIMIT, Duration::from_secs(10))
        .with_cors(AllowedOrigins::Any);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}{}",
        listener.local_addr().unwrap(),
        openapi::ROUTE
    );
    tokio::spawn(async move { axum::serve(listener, api::app(state)).await });

    let client = reqwest::Client::new();
    for key in [None, Some("wrong")] {
        let mut request = client.get(&url).header("origin", "https://app.example.com");
        if let Some(key) = key {
            request = request.header(openapi::API_KEY_HEADER, key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap();
        assert_eq!(
            status,
            200,
            "key {key:?}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(headers["access-control-allow-origin"], "*");
        let answer = Answer {
            status,
            headers: &headers,
            body: &body,
        };
        Contract::published()
            .check("GET", openapi::ROUTE, &answer)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&body[..], openapi::text().as_bytes());
    }
    // Another method is refused in JSON, as on every other route.
    let refused = client.post(&url).send().await.unwrap();
    let status = refused.status();
    let body = refused.text().await.unwrap();
    assert_eq!(status, 405, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(json["message"].is_string(), "{body}");
}
