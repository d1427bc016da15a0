//! DynamoDB Streams records as read with the SDK, turned into what Lambda hands a
//! function: the JSON of a `Records` entry, which [`decode`](crate::decode) reads.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record};
use serde_json::{Value, json};

/// The Lambda event record of `record`, read from the stream `stream_arn`.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let change = record.dynamodb.as_ref();
    // serde_dynamo turns the SDK's attribute maps into DynamoDB JSON.
    let image = |attributes: Option<&HashMap<String, AttributeValue>>| {
        attributes.map(|attributes| {
            serde_json::to_value(serde_dynamo::Item::from(attributes.clone()))
                .expect("DynamoDB JSON serializes")
        })
    };
    let mut dynamodb = json!({
        // Lambda's types want a number (epoch seconds) and a size.
        "ApproximateCreationDateTime": change
            .and_then(|c| c.approximate_creation_date_time)
            .map_or(0, |at| at.secs()),
        "Keys": image(change.and_then(|c| c.keys.as_ref())),
        "SequenceNumber": change.and_then(|c| c.sequence_number.as_deref()),
        "SizeBytes": change.and_then(|c| c.size_bytes).unwrap_or_default(),
        "StreamViewType": change.and_then(|c| c.stream_view_type.as_ref()).map(|v| v.as_str()),
    });
    for (name, attributes) in [
        ("NewImage", change.and_then(|c| c.new_image.as_ref())),
        ("OldImage", change.and_then(|c| c.old_image.as_ref())),
    ] {
        if let Some(image) = image(attributes) {
            dynamodb[name] = image;
        }
    }
    json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|name| name.as_str()),
        "eventVersion": record.event_version,
        "eventSource": record.event_source,
        "awsRegion": record.aws_region,
        "eventSourceARN": stream_arn,
        "dynamodb": dynamodb,
    })
}
