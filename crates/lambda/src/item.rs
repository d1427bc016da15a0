//! The requests table's item schema: the attribute names every DynamoDB call uses (the
//! outcome writes here, the local DynamoDB adapter, and API Gateway's mapping templates in
//! `infra/src/stack/vtl/`, which a test in `infra/tests/infra/item_schema.rs` holds to
//! these names). Status values are [`Status::as_str`].

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use storefirst_domain::{Callback, CallbackStatus, Status};
use storefirst_pipeline::Item;

/// The key: the client's request id (S).
pub const ID: &str = "id";
/// The body as the client sent it (S).
pub const REQUEST: &str = "request";
/// pending, succeeded or failed (S).
pub const STATUS: &str = "status";
/// Processing attempts so far (N).
pub const ATTEMPTS: &str = "attempts";
/// Epoch milliseconds (N).
pub const CREATED_AT: &str = "created_at";
/// Epoch milliseconds (N).
pub const UPDATED_AT: &str = "updated_at";
/// The processor's result as JSON text (S), once succeeded.
pub const RESULT: &str = "result";
/// The last error (S): a rejection, or a transient failure while still pending.
pub const ERROR: &str = "error";
/// The TTL attribute, epoch seconds (N), once succeeded.
pub const EXPIRES_AT: &str = "expires_at";
/// The webhook's URL as `x-callback-url` named it, parsed form (S); only on items with one.
pub const CALLBACK_URL: &str = "callback_url";
/// pending, delivered or failed (S): where the webhook's delivery is.
pub const CALLBACK_STATUS: &str = "callback_status";
/// Delivery attempts so far (N).
pub const CALLBACK_ATTEMPTS: &str = "callback_attempts";
/// The last delivery error (S).
pub const CALLBACK_ERROR: &str = "callback_error";

/// API Gateway's `$context.extendedRequestId` of the request that stored the item (S).
pub const REQUEST_ID: &str = "request_id";
/// The X-Ray trace id of that request (S); empty where the stage traced nothing.
pub const TRACE_ID: &str = "trace_id";

/// Every attribute an item may hold.
pub const ALL: [&str; 15] = [
    ID,
    REQUEST,
    STATUS,
    ATTEMPTS,
    CREATED_AT,
    UPDATED_AT,
    RESULT,
    ERROR,
    EXPIRES_AT,
    CALLBACK_URL,
    CALLBACK_STATUS,
    CALLBACK_ATTEMPTS,
    CALLBACK_ERROR,
    REQUEST_ID,
    TRACE_ID,
];

/// The notifier's event filter (Lambda event filtering syntax): only the change that
/// finishes an item with a callback, `pending` to `succeeded` or `failed`. The notifier's
/// own writes of the delivery state change a finished item, so they never pass, and
/// neither do the processor's retries (still `pending`) or a redrive (back to `pending`).
/// Only the `dynamodb` key is filtered on, the one AWS documents for DynamoDB sources: an
/// old and a new image together already mean `MODIFY`.
pub fn notifier_filter_pattern() -> String {
    serde_json::json!({
        "dynamodb": {
            "OldImage": { STATUS: { "S": [Status::Pending.as_str()] } },
            "NewImage": {
                STATUS: { "S": [Status::Succeeded.as_str(), Status::Failed.as_str()] },
                CALLBACK_URL: { "S": [{ "exists": true }] },
            },
        },
    })
    .to_string()
}

/// The `ExpressionAttributeNames` of `expressions`: each placeholder is `#` and the
/// attribute's name, so an expression cannot name an attribute the schema lacks.
///
/// # Panics
///
/// When an expression has a placeholder that is no attribute: the expressions are the
/// code's own constants, and DynamoDB would refuse the call.
pub fn names(expressions: &[&str]) -> HashMap<String, String> {
    expressions
        .iter()
        .flat_map(|expression| expression.split('#').skip(1))
        .map(|rest| {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            assert!(
                ALL.contains(&name),
                "the placeholder #{name} names no attribute of the item schema"
            );
            (format!("#{name}"), name.to_owned())
        })
        .collect()
}

/// The key of the item of `id`.
pub fn key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(ID.to_owned(), AttributeValue::S(id.to_owned()))])
}

/// A new pending request, as `post-request.vtl` puts it.
pub fn new_request(id: &str, body: &str, now_millis: i64) -> HashMap<String, AttributeValue> {
    let now = AttributeValue::N(now_millis.to_string());
    HashMap::from([
        (ID.to_owned(), AttributeValue::S(id.to_owned())),
        (REQUEST.to_owned(), AttributeValue::S(body.to_owned())),
        (
            STATUS.to_owned(),
            AttributeValue::S(Status::Pending.as_str().to_owned()),
        ),
        (ATTEMPTS.to_owned(), AttributeValue::N("0".to_owned())),
        (CREATED_AT.to_owned(), now.clone()),
        (UPDATED_AT.to_owned(), now),
    ])
}

/// An item with every attribute the store may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: String,
    pub status: String,
    pub request: String,
    pub result: Option<String>,
    pub error: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: Option<i64>,
    /// The webhook, on items accepted with `x-callback-url`.
    pub callback: Option<Callback>,
}

/// An item without an attribute the schema requires, or with one of another type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the item has no {kind} attribute `{attribute}`: is the table the requests table of \
     this version?"
)]
pub struct NotAnItem {
    pub attribute: &'static str,
    pub kind: &'static str,
}

impl Stored {
    /// Reads an item as GetItem or Scan returns it.
    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self, NotAnItem> {
        let string = |attribute| -> Result<Option<String>, NotAnItem> {
            item.get(attribute)
                .map(|value| {
                    value
                        .as_s()
                        .cloned()
                        .map_err(|_| NotAnItem::string(attribute))
                })
                .transpose()
        };
        let number = |attribute| -> Result<Option<i64>, NotAnItem> {
            item.get(attribute)
                .map(|value| {
                    value
                        .as_n()
                        .ok()
                        .and_then(|n| n.parse().ok())
                        .ok_or(NotAnItem::integer(attribute))
                })
                .transpose()
        };
        let text = |attribute| string(attribute)?.ok_or(NotAnItem::string(attribute));
        let integer = |attribute| number(attribute)?.ok_or(NotAnItem::integer(attribute));
        Ok(Self {
            id: text(ID)?,
            status: text(STATUS)?,
            request: text(REQUEST)?,
            result: string(RESULT)?,
            error: string(ERROR)?,
            attempts: integer(ATTEMPTS)?,
            created_at: integer(CREATED_AT)?,
            updated_at: integer(UPDATED_AT)?,
            expires_at: number(EXPIRES_AT)?,
            callback: string(CALLBACK_URL)?
                .map(|url| -> Result<Callback, NotAnItem> {
                    let status = text(CALLBACK_STATUS)?;
                    Ok(Callback {
                        url,
                        status: status
                            .parse::<CallbackStatus>()
                            .map_err(|_| NotAnItem::string(CALLBACK_STATUS))?,
                        attempts: integer(CALLBACK_ATTEMPTS)?,
                        error: string(CALLBACK_ERROR)?,
                    })
                })
                .transpose()?,
        })
    }

    /// The item as GET shows it: the API's answer over DynamoDB, and the document a
    /// webhook delivers.
    pub fn shown(self) -> Item {
        Item {
            id: self.id,
            status: self.status,
            request: self.request,
            result: self
                .result
                .map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text))),
            error: self.error,
            attempts: self.attempts,
            created_at: self.created_at,
            updated_at: self.updated_at,
            callback: self.callback,
        }
    }
}

/// The attributes of a new request's callback: its URL, not delivered yet.
pub fn callback(url: &str) -> [(String, AttributeValue); 3] {
    [
        (CALLBACK_URL.to_owned(), AttributeValue::S(url.to_owned())),
        (
            CALLBACK_STATUS.to_owned(),
            AttributeValue::S(CallbackStatus::Pending.as_str().to_owned()),
        ),
        (
            CALLBACK_ATTEMPTS.to_owned(),
            AttributeValue::N("0".to_owned()),
        ),
    ]
}

impl NotAnItem {
    fn string(attribute: &'static str) -> Self {
        Self {
            attribute,
            kind: "string",
        }
    }

    fn integer(attribute: &'static str) -> Self {
        Self {
            attribute,
            kind: "integer",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_name_attributes() {
        let names = names(&["SET #status = :s, #error = :e", "#status = :pending"]);
        assert_eq!(
            names,
            HashMap::from([
                ("#status".to_owned(), "status".to_owned()),
                ("#error".to_owned(), "error".to_owned()),
            ])
        );
    }

    #[test]
    fn a_misspelt_placeholder_is_refused() {
        let panic = std::panic::catch_unwind(|| names(&["SET #stauts = :status"]))
            .expect_err("a placeholder that is no attribute is refused");
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        assert!(message.contains("#stauts names no attribute"), "{message}");
    }

    #[test]
    fn a_new_request_reads_back() {
        let stored = Stored::from_item(&new_request("a", "{}", 7)).unwrap();
        assert_eq!(
            stored,
            Stored {
                id: "a".into(),
                status: "pending".into(),
                request: "{}".into(),
                result: None,
                error: None,
                attempts: 0,
                created_at: 7,
                updated_at: 7,
                expires_at: None,
                callback: None,
            }
        );
        let mut with_callback = new_request("a", "{}", 7);
        with_callback.extend(callback("https://hooks.example.com/x"));
        let stored = Stored::from_item(&with_callback).unwrap();
        assert_eq!(
            stored.callback,
            Some(Callback {
                url: "https://hooks.example.com/x".into(),
                status: CallbackStatus::Pending,
                attempts: 0,
                error: None,
            })
        );
        with_callback.remove(CALLBACK_STATUS);
        assert_eq!(
            Stored::from_item(&with_callback),
            Err(NotAnItem::string(CALLBACK_STATUS))
        );
        let mut no_status = new_request("a", "{}", 7);
        no_status.remove(STATUS);
        assert_eq!(
            Stored::from_item(&no_status),
            Err(NotAnItem::string(STATUS))
        );
    }
}
