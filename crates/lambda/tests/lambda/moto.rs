//! The handler against moto server's DynamoDB and DynamoDB Streams: the records a real
//! stream produces, turned into the Lambda event, processed with the real SDK calls.

use std::{collections::HashMap, sync::Arc};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use storefirst_app::RestaurantOrders;
use storefirst_domain::{StreamSettings, now_millis};
use storefirst_lambda::{DynamoStore, StreamHandler};

use crate::support::{Kitchen, StoredItem, Table, event, failures, inserts_of, order};

fn handler(table: &Table) -> StreamHandler<Kitchen, DynamoStore> {
    let store = DynamoStore::new(table.dynamodb.clone(), &table.name);
    StreamHandler::new(Arc::new(Kitchen), Arc::new(store), StreamSettings::DEFAULT)
}

#[tokio::test]
async fn outcomes_land_on_the_items() {
    let table = Table::create().await;
    let good = order("Roma", &[("margherita", 2), ("espresso", 1)]);
    let tricky = r#"{"restaurant":"L'Osteria \"Nonna\" \\ 🍕","items":[{"dish":"tiramisu","quantity":20}],"note":"it's été"}"#;
    let bad = order("Roma", &[("sushi", 1)]);
    let down = order("offline-kitchen", &[("espresso", 1)]);
    for (id, body) in [
        ("good", good.as_str()),
        ("tricky", tricky),
        ("bad", bad.as_str()),
        ("down", down.as_str()),
    ] {
        table.post(id, body).await;
    }
    let records = table.stream_records().await;
    assert_eq!(records.len(), 4, "one INSERT per request");
    let handler = handler(&table);
    let before = now_millis();

    let response = handler.handle(event(table.lambda_event(&records))).await;
    assert_eq!(
        failures(&response),
        inserts_of(&records, "down"),
        "only the transient failure is retried"
    );

    let retention = i64::try_from(StreamSettings::DEFAULT.succeeded_retention.as_secs()).unwrap();
    for (id, body, total_cents) in [("good", good.as_str(), 1900), ("tricky", tricky, 11000)] {
        let item = table.item(id).await;
        assert_eq!(
            (item.status.as_str(), item.attempts, &item.error),
            ("succeeded", 1, &None),
            "{id}"
        );
        assert_eq!(item.request, body, "{id}: the body is kept verbatim");
        let result: Value =
            serde_json::from_str(item.result.as_deref().expect("a result")).unwrap();
        assert_eq!(
            result,
            json!({ "total_cents": total_cents, "items": 1 + usize::from(id == "good") })
        );
        let expires_at = item.expires_at.expect("a succeeded item expires");
        // The TTL counts from the next whole second after the batch started.
        let next_second = |millis: i64| (millis + 999) / 1000;
        assert!(
            (next_second(before) + retention..=next_second(now_millis()) + retention)
                .contains(&expires_at),
            "{id}: {expires_at}"
        );
        assert!(
            item.updated_at >= before && item.created_at <= before,
            "{id}: {item:?}"
        );
    }
    let bad_item = table.item("bad").await;
    assert_eq!(
        (
            bad_item.status.as_str(),
            bad_item.attempts,
            bad_item.expires_at
        ),
        ("failed", 1, None)
    );
    assert!(
        bad_item
            .error
            .as_deref()
            .unwrap()
            .contains("unknown dish \"sushi\""),
        "{bad_item:?}"
    );
    let down_item = table.item("down").await;
    assert_eq!(
        (
            down_item.status.as_str(),
            down_item.attempts,
            down_item.expires_at
        ),
        ("pending", 1, None)
    );
    assert_eq!(down_item.error.as_deref(), Some("the kitchen is offline"));

    // The handler's own updates are MODIFY records on the stream: the filter drops them.
    let all = table.stream_records().await;
    let updates = &all[records.len()..];
    assert_eq!(updates.len(), 4, "one MODIFY per outcome written");
    let response = handler.handle(event(table.lambda_event(updates))).await;
    assert_eq!(failures(&response), Vec::<String>::new());

    // Streams deliver at least once: the same batch again changes no finished item, and the
    // pending one is tried again.
    let snapshot: Vec<StoredItem> = items(&table, &["good", "tricky", "bad"]).await;
    let response = handler.handle(event(table.lambda_event(&records))).await;
    assert_eq!(failures(&response), inserts_of(&records, "down"));
    assert_eq!(
        items(&table, &["good", "tricky", "bad"]).await,
        snapshot,
        "a duplicate delivery changes nothing"
    );
    assert_eq!(
        table.item("down").await.attempts,
        2,
        "the retry counts its attempt"
    );

    // The kitchen is back (the sample processor accepts the order): the next retry succeeds
    // and clears the error of the earlier attempts.
    let store = DynamoStore::new(table.dynamodb.clone(), &table.name);
    let recovered = StreamHandler::new(
        Arc::new(RestaurantOrders),
        Arc::new(store),
        StreamSettings::DEFAULT,
    );
    let response = recovered.handle(event(table.lambda_event(&records))).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    let down_item = table.item("down").await;
    assert_eq!(
        (
            down_item.status.as_str(),
            down_item.attempts,
            down_item.error
        ),
        ("succeeded", 3, None)
    );
}

async fn items(table: &Table, ids: &[&str]) -> Vec<StoredItem> {
    let mut items = Vec::new();
    for id in ids {
        items.push(table.item(id).await);
    }
    items
}

#[tokio::test]
async fn an_item_created_by_update_item_is_processed_once() {
    // moto (unlike AWS) emits two INSERT records for an UpdateItem that creates the item,
    // the first with the key alone: it must neither fail the request nor be retried.
    let table = Table::create().await;
    let body = order("Roma", &[("marinara", 1)]);
    let item: HashMap<String, AttributeValue> =
        serde_dynamo::to_item(StoredItem::pending("upserted", &body)).unwrap();
    let attributes: Vec<&String> = item.keys().filter(|name| *name != "id").collect();
    let sets: Vec<String> = attributes
        .iter()
        .map(|name| format!("#{name} = :{name}"))
        .collect();
    let names = attributes
        .iter()
        .map(|name| (format!("#{name}"), name.to_string()))
        .collect();
    let values = attributes
        .iter()
        .map(|name| (format!(":{name}"), item[*name].clone()))
        .collect();
    table
        .dynamodb
        .update_item()
        .table_name(&table.name)
        .set_key(Some(
            serde_dynamo::to_item(json!({ "id": "upserted" })).unwrap(),
        ))
        .update_expression(format!("SET {}", sets.join(", ")))
        .condition_expression("attribute_not_exists(id)")
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .send()
        .await
        .expect("UpdateItem on moto");
    let records = table.stream_records().await;
    assert_eq!(inserts_of(&records, "upserted").len(), 2);
    let response = handler(&table)
        .handle(event(table.lambda_event(&records)))
        .await;
    assert_eq!(failures(&response), Vec::<String>::new());
    let item = table.item("upserted").await;
    assert_eq!(
        (item.status.as_str(), item.attempts),
        ("succeeded", 1),
        "{item:?}"
    );
}
