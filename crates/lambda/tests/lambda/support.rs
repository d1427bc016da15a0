//! What the test areas share: a processor with a transient failure, and moto server's
//! DynamoDB and DynamoDB Streams as the API and the event source mapping would use them.

use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event;
use aws_sdk_dynamodbstreams::types::Record;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use storefirst_app::RestaurantOrders;
use storefirst_domain::{PendingRequest, ProcessError, Processor, now_millis};
pub use storefirst_harness::{REGION, moto_url};
use storefirst_harness::{get_item, requests_table, stream_records};
use storefirst_lambda::stream_record::lambda_record;

/// The sample processor, except that orders for the restaurant `offline-kitchen` fail
/// transiently, as when a dependency is down.
pub struct Kitchen;

impl Processor for Kitchen {
    async fn process(&self, request: &PendingRequest) -> Result<Value, ProcessError> {
        let order: Value = serde_json::from_str(&request.body).unwrap_or_default();
        if order["restaurant"] == "offline-kitchen" {
            return Err(ProcessError::Unavailable("the kitchen is offline".into()));
        }
        RestaurantOrders::price(&request.body)
    }
}

pub fn order(restaurant: &str, lines: &[(&str, u32)]) -> String {
    let items: Vec<Value> = lines
        .iter()
        .map(|(dish, quantity)| json!({ "dish": dish, "quantity": quantity }))
        .collect();
    json!({ "restaurant": restaurant, "items": items }).to_string()
}

/// A requests table with its stream, as the stack defines it.
pub struct Table {
    pub name: String,
    pub stream_arn: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
}

/// An item with every attribute the store may hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredItem {
    pub id: String,
    pub request: String,
    pub status: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl StoredItem {
    pub fn pending(id: &str, request: &str) -> Self {
        let now = now_millis();
        Self {
            id: id.to_owned(),
            request: request.to_owned(),
            status: "pending".to_owned(),
            attempts: 0,
            error: None,
            result: None,
            created_at: now,
            updated_at: now,
            expires_at: None,
        }
    }
}

impl Table {
    pub async fn create() -> Self {
        let table = requests_table("requests").await;
        Self {
            name: table.name,
            stream_arn: table.stream_arn,
            dynamodb: table.dynamodb,
            streams: table.streams,
        }
    }

    /// Writes a new request as `POST /requests` does: PutItem, only if the id is new.
    pub async fn post(&self, id: &str, request: &str) {
        let item = serde_dynamo::to_item(StoredItem::pending(id, request)).unwrap();
        self.dynamodb
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .expect("PutItem on moto");
    }

    pub async fn item(&self, id: &str) -> StoredItem {
        let item = get_item(&self.dynamodb, &self.name, id).await;
        serde_dynamo::from_item(item).expect("the item has the store's attributes")
    }

    /// Every record of the table's stream from `TRIM_HORIZON`, as the event source mapping
    /// reads them.
    pub async fn stream_records(&self) -> Vec<Record> {
        stream_records(&self.streams, &self.stream_arn).await
    }

    /// The stream records wrapped as Lambda delivers them, in Lambda's JSON.
    pub fn lambda_event(&self, records: &[Record]) -> Value {
        let records: Vec<Value> = records
            .iter()
            .map(|record| lambda_record(record, &self.stream_arn))
            .collect();
        json!({ "Records": records })
    }
}

pub fn event(json: Value) -> Event {
    serde_json::from_value(json).expect("a Lambda DynamoDB event")
}

/// The sequence numbers a response asks to deliver again.
pub fn failures(response: &aws_lambda_events::streams::DynamoDbEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|failure| {
            failure
                .item_identifier
                .clone()
                .expect("a failure names its record")
        })
        .collect()
}

/// The sequence numbers of the INSERT records of `id`.
pub fn inserts_of(records: &[Record], id: &str) -> Vec<String> {
    records
        .iter()
        .filter(|record| {
            record
                .event_name
                .as_ref()
                .is_some_and(|name| name.as_str() == "INSERT")
        })
        .filter_map(|record| record.dynamodb.as_ref())
        .filter(|change| {
            change
                .keys
                .as_ref()
                .and_then(|keys| keys.get("id"))
                .and_then(|key| key.as_s().ok())
                .is_some_and(|key| key == id)
        })
        .filter_map(|change| change.sequence_number.clone())
        .collect()
}

pub const TIMEOUT: Duration = Duration::from_secs(60);
