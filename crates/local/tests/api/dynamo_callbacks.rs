//! The callback in the DynamoDB item, against moto server: stored with the request, part of
//! it for a retry, shown by GET; refused by the API of a runtime over DynamoDB where no
//! notifier delivers it; and which of the stream's records the notifier's filter passes.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use storefirst_domain::{
    Callback, CallbackStatus, CallbackUrl, DEFAULT_BODY_LIMIT, Outcome, OutcomeStore, Receivers,
    RequestBody, RequestId,
};
use storefirst_harness::requests_table;
use storefirst_lambda::{filter::Pattern, item, stream_record::lambda_record};
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

/// Every record of the table's stream so far, as Lambda hands them to a function.
async fn stream_records(table: &storefirst_dynamodb::DynamoTable) -> Vec<serde_json::Value> {
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    let described = table
        .streams
        .describe_stream()
        .stream_arn(&table.stream_arn)
        .send()
        .await
        .unwrap();
    let mut records = Vec::new();
    for shard in described
        .stream_description
        .unwrap()
        .shards
        .unwrap_or_default()
    {
        let mut iterator = table
            .streams
            .get_shard_iterator()
            .stream_arn(&table.stream_arn)
            .shard_id(shard.shard_id.unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(at) = iterator {
            let page = table
                .streams
                .get_records()
                .shard_iterator(at)
                .send()
                .await
                .unwrap();
            let got = page.records.unwrap_or_default();
            if got.is_empty() {
                break;
            }
            records.extend(got.iter().map(|r| lambda_record(r, &table.stream_arn)));
            iterator = page.next_shard_iterator;
        }
    }
    records
}

/// The notifier's own writes, as it makes them: the delivery state of an item that exists.
async fn set_callback(table: &storefirst_dynamodb::DynamoTable, id: &str, status: &str) {
    let update = "SET #callback_status = :status, #callback_attempts = :attempts";
    let condition = "attribute_exists(#id)";
    table
        .dynamodb
        .update_item()
        .table_name(&table.name)
        .set_key(Some(item::key(id)))
        .update_expression(update)
        .condition_expression(condition)
        .set_expression_attribute_names(Some(item::names(&[update, condition])))
        .expression_attribute_values(":status", AttributeValue::S(status.into()))
        .expression_attribute_values(":attempts", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn only_the_write_that_finishes_an_item_with_a_callback_passes_the_notifiers_filter() {
    let table = requests_table("filter").await;
    let (requests, outcomes) = (table.requests(), table.outcomes());
    let id = |text| RequestId::parse(text).unwrap();
    let hook = url("https://hooks.example.com/a");

    // An item with a callback through its whole life: accepted, a failed attempt (still
    // pending), the outcome, the notifier's delivery state, a redrive, the TTL's delete.
    requests
        .accept(id("hooked"), body(), Some(hook.clone()))
        .await
        .unwrap();
    let transient = Outcome::Transient {
        error: "try again".into(),
    };
    outcomes
        .record_outcome(&id("hooked"), &transient)
        .await
        .unwrap();
    let succeeded = Outcome::Succeeded {
        result: serde_json::json!({ "ok": true }),
        expires_at: 4_000_000_000,
    };
    outcomes
        .record_outcome(&id("hooked"), &succeeded)
        .await
        .unwrap();
    set_callback(&table, "hooked", "failed").await;
    set_callback(&table, "hooked", "pending").await;
    table
        .dynamodb
        .delete_item()
        .table_name(&table.name)
        .set_key(Some(item::key("hooked")))
        .send()
        .await
        .unwrap();
    // Rejected with a callback: it passes too. Finished without one: it does not.
    requests
        .accept_new(id("rejected"), body(), Some(hook))
        .await
        .unwrap();
    let rejected = Outcome::Rejected { error: "no".into() };
    outcomes
        .record_outcome(&id("rejected"), &rejected)
        .await
        .unwrap();
    requests.accept(id("plain"), body(), None).await.unwrap();
    outcomes
        .record_outcome(&id("plain"), &succeeded)
        .await
        .unwrap();

    let records = stream_records(&table).await;
    let events = |id: &str| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["dynamodb"]["Keys"]["id"]["S"] == id)
            .map(|r| r["eventName"].as_str().unwrap().to_owned())
            .collect()
    };
    // moto streams every write: an UpdateItem that creates also a key-only INSERT first.
    let hooked = events("hooked");
    assert_eq!(
        hooked.iter().filter(|e| *e == "MODIFY").count(),
        4,
        "{hooked:?}"
    );
    assert_eq!(
        hooked.last().map(String::as_str),
        Some("REMOVE"),
        "{hooked:?}"
    );

    let filter = Pattern::parse(&item::notifier_filter_pattern()).unwrap();
    let passed: Vec<(String, String)> = records
        .iter()
        .filter(|r| filter.matches(r))
        .map(|r| {
            let image = &r["dynamodb"]["NewImage"];
            (
                image["id"]["S"].as_str().unwrap().to_owned(),
                image["status"]["S"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        passed,
        [
            ("hooked".to_owned(), "succeeded".to_owned()),
            ("rejected".to_owned(), "failed".to_owned())
        ],
        "only the finishing writes of items with a callback"
    );
}
