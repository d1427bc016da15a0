//! The callback in the DynamoDB item, against moto server: stored with the request, part of
//! it for a retry, shown by GET; and refused by the API of a runtime over DynamoDB, which
//! delivers no webhooks yet.

use std::time::Duration;

use storefirst_domain::{
    Callback, CallbackStatus, CallbackUrl, DEFAULT_BODY_LIMIT, Receivers, RequestBody, RequestId,
};
use storefirst_harness::requests_table;
use storefirst_pipeline::{Accepted, api, ports::Ingest};

fn body() -> RequestBody {
    RequestBody::parse(br#"{"a":1}"#, DEFAULT_BODY_LIMIT).unwrap()
}

fn url(text: &str) -> CallbackUrl {
    CallbackUrl::parse(text, Receivers::Public).unwrap()
}

#[tokio::test]
async fn the_callback_is_stored_with_the_item_and_is_part_of_the_request() {
    let table = requests_table("callbacks").await;
    let requests = table.requests();
    let first = url("https://hooks.example.com/a");
    let id = RequestId::parse("with-callback").unwrap();
    let put = |callback: Option<CallbackUrl>| requests.accept(id.clone(), body(), callback);

    assert_eq!(put(Some(first.clone())).await.unwrap(), Accepted::Created);
    assert_eq!(put(Some(first.clone())).await.unwrap(), Accepted::Created);
    let other = url("https://hooks.example.com/b");
    assert_eq!(put(Some(other)).await.unwrap(), Accepted::Conflict);
    assert_eq!(put(None).await.unwrap(), Accepted::Conflict);
    let item = requests.get(id.clone()).await.unwrap().unwrap();
    assert_eq!(
        item.callback,
        Some(Callback {
            url: first.as_str().to_owned(),
            status: CallbackStatus::Pending,
            attempts: 0,
            error: None,
        })
    );

    // Without a callback, one on a retry is another request.
    let plain = RequestId::parse("without").unwrap();
    assert_eq!(
        requests.accept(plain.clone(), body(), None).await.unwrap(),
        Accepted::Created
    );
    assert_eq!(
        requests
            .accept(plain.clone(), body(), Some(first.clone()))
            .await
            .unwrap(),
        Accepted::Conflict
    );
    assert_eq!(requests.get(plain).await.unwrap().unwrap().callback, None);

    // POST's PutItem stores it too.
    let posted = RequestId::parse("posted").unwrap();
    requests
        .accept_new(posted.clone(), body(), Some(first.clone()))
        .await
        .unwrap();
    let item = requests.get(posted).await.unwrap().unwrap();
    assert_eq!(
        item.callback.map(|c| c.url),
        Some(first.as_str().to_owned())
    );
}

#[tokio::test]
async fn the_api_over_dynamodb_refuses_a_callback_it_would_not_deliver() {
    let table = requests_table("no-webhooks").await;
    let state = api::AppState::new(
        table.requests(),
        crate::API_KEY,
        DEFAULT_BODY_LIMIT,
        Duration::from_secs(5),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api::app(state)).await });
    let response = reqwest::Client::new()
        .put(format!("http://{addr}/requests/refused"))
        .header("x-api-key", crate::API_KEY)
        .header("x-callback-url", "https://hooks.example.com/a")
        .json(&serde_json::json!({ "a": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let message = response.json::<serde_json::Value>().await.unwrap()["message"].to_string();
    assert!(message.contains("does not deliver webhooks"), "{message}");
    let nothing = table
        .requests()
        .get(RequestId::parse("refused").unwrap())
        .await
        .unwrap();
    assert!(nothing.is_none(), "nothing stored");
}
