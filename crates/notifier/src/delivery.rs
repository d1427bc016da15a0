//! The delivery message: one webhook delivery as it waits in the delivery queue (and, once
//! given up on, in the dead-letter queue). Only this crate reads it.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use storefirst_domain::{InvalidRequestId, RequestId};
use storefirst_lambda::item::{NotAnItem, Stored};
use storefirst_webhooks::Due;

/// One delivery: what to POST where, and how far it got.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub url: String,
    /// Derived from the stream record's eventID: a record enqueued twice keeps its id, so
    /// receivers can deduplicate.
    pub webhook_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the delivery was first enqueued (epoch ms): the retry policy's age counts from it.
    pub first_due_at: i64,
    /// No attempt before this (epoch ms): a wait longer than SQS's longest delay (15
    /// minutes) is served in several delays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
    /// Why it was given up on, in the dead-letter queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The document GET answered when the request finished, as the exact JSON text signed.
    pub document: Box<RawValue>,
}

/// Why a stream record holds no delivery. Permanent: the same record always fails alike,
/// so it is logged, never retried.
#[derive(Debug, thiserror::Error)]
pub enum NotADelivery {
    #[error("its NewImage is not a requests table item: {0}")]
    NotAnItem(#[from] NotAnItem),
    #[error("its item has no callback_url (the event filter should have left it out)")]
    NoCallback,
    #[error("the record has no eventID to derive the webhook id from")]
    NoEventId,
}

/// A message whose body is no delivery: written by something else than this function.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("the message is not a webhook delivery: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Id(#[from] InvalidRequestId),
}

impl Delivery {
    /// The delivery a finished item's stream record asks for: the document from its
    /// NewImage, built as GET builds it, enqueued at `now` (epoch ms).
    pub fn of_record(record: &EventRecord, now: i64) -> Result<Self, NotADelivery> {
        if record.event_id.is_empty() {
            return Err(NotADelivery::NoEventId);
        }
        let image: HashMap<String, AttributeValue> = record.change.new_image.clone().into();
        let stored = Stored::from_item(&image)?;
        let url = stored
            .callback
            .as_ref()
            .map(|callback| callback.url.clone())
            .ok_or(NotADelivery::NoCallback)?;
        let id = stored.id.clone();
        let document = serde_json::to_string(&stored.shown()).expect("an item serializes");
        Ok(Self {
            id,
            url,
            webhook_id: format!("msg_{}", record.event_id),
            attempts: 0,
            first_due_at: now,
            not_before: None,
            error: None,
            document: RawValue::from_string(document).expect("serde_json wrote JSON"),
        })
    }

    pub fn parse(body: &str) -> Result<Self, Unreadable> {
        let delivery: Self = serde_json::from_str(body)?;
        RequestId::parse(&delivery.id)?;
        Ok(delivery)
    }

    pub fn body(&self) -> String {
        serde_json::to_string(self).expect("a delivery serializes")
    }

    /// The next attempt, as the webhooks sender and retry policy take it.
    pub fn due(&self) -> Due {
        Due {
            id: RequestId::parse(&self.id).expect("checked by Delivery::parse"),
            url: self.url.clone(),
            receiver: receiver(&self.url).to_owned(),
            webhook_id: self.webhook_id.clone(),
            attempts: self.attempts + 1,
            first_due_at: self.first_due_at,
            document: self.document.get().as_bytes().to_vec(),
        }
    }
}

/// The URL's scheme, host and port: up to the `/` after the host.
fn receiver(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    url[after_scheme..]
        .find('/')
        .map_or(url, |at| &url[..after_scheme + at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receiver_is_the_url_up_to_its_path() {
        assert_eq!(
            receiver("https://hooks.example.com:8443/a/b?c"),
            "https://hooks.example.com:8443"
        );
        assert_eq!(
            receiver("https://hooks.example.com"),
            "https://hooks.example.com"
        );
    }

    #[test]
    fn the_document_is_carried_byte_for_byte() {
        let body = r#"{"id":"r-1","url":"https://hooks.example.com/x","webhook_id":"msg_e1","attempts":2,"first_due_at":5,"document":{"z":1,"a":"é \"q\""}}"#;
        let delivery = Delivery::parse(body).unwrap();
        assert_eq!(
            delivery.due().document,
            r#"{"z":1,"a":"é \"q\""}"#.as_bytes()
        );
        assert_eq!(delivery.due().attempts, 3);
        assert_eq!(delivery.body(), body);
        assert!(Delivery::parse(r#"{"id":"bad id!"}"#).is_err());
    }
}
