//! The delivery state on the item: one conditional UpdateItem per outcome, through the
//! item schema's attribute names.

use std::collections::HashMap;

use aws_sdk_dynamodb::{Client, types::AttributeValue};
use storefirst_domain::CallbackStatus;
use storefirst_lambda::update_if;

/// A delivered webhook is recorded on any item still there (past its TTL, DynamoDB may
/// not have deleted it yet, and GET no longer shows it).
const EXISTS: &str = "attribute_exists(#id)";
/// A retry or a give-up is recorded only on an item not delivered meanwhile: a duplicate
/// of a delivered message (SQS is at-least-once) changes nothing and is not sent again.
const UNDELIVERED: &str = "attribute_exists(#id) AND #callback_status <> :delivered";

/// Records an outcome: its status, the attempts so far, and no error.
const SETTLE: &str =
    "SET #callback_status = :status, #callback_attempts = :attempts REMOVE #callback_error";
const RETRY: &str = "SET #callback_attempts = :attempts, #callback_error = :error";
const GIVE_UP: &str =
    "SET #callback_status = :status, #callback_attempts = :attempts, #callback_error = :error";

/// One outcome's UpdateItem: the update, its condition, and the status it records (where
/// the update sets one).
#[derive(Clone, Copy)]
struct Write(&'static str, &'static str, CallbackStatus);

const DELIVERED: Write = Write(SETTLE, EXISTS, CallbackStatus::Delivered);
const RETRIED: Write = Write(RETRY, UNDELIVERED, CallbackStatus::Pending);
const FAILED: Write = Write(GIVE_UP, UNDELIVERED, CallbackStatus::Failed);
const REDRIVEN: Write = Write(SETTLE, EXISTS, CallbackStatus::Pending);

/// A write DynamoDB did not make: the message is delivered again to record it.
#[derive(Debug, thiserror::Error)]
#[error("UpdateItem of {id}'s webhook state on table {table} failed: {reason}")]
pub struct StateError {
    pub id: String,
    pub table: String,
    pub reason: String,
}

/// The requests table, as the notifier writes it.
#[derive(Debug, Clone)]
pub struct DeliveryState {
    client: Client,
    table: String,
}

/// What a write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Applied,
    /// The item is gone (expired), or delivered already: nothing more to do.
    Skipped,
}

impl DeliveryState {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub async fn delivered(&self, id: &str, attempts: u32) -> Result<Recorded, StateError> {
        self.write(&DELIVERED, id, attempts, None).await
    }

    /// A retry is coming: the attempts so far and the last error; the status stays pending.
    pub async fn retried(
        &self,
        id: &str,
        attempts: u32,
        error: &str,
    ) -> Result<Recorded, StateError> {
        self.write(&RETRIED, id, attempts, Some(error)).await
    }

    pub async fn failed(
        &self,
        id: &str,
        attempts: u32,
        error: &str,
    ) -> Result<Recorded, StateError> {
        self.write(&FAILED, id, attempts, Some(error)).await
    }

    /// Back to pending with no attempts, for a redriven delivery.
    pub async fn redriven(&self, id: &str) -> Result<Recorded, StateError> {
        self.write(&REDRIVEN, id, 0, None).await
    }

    async fn write(
        &self,
        write: &Write,
        id: &str,
        attempts: u32,
        error: Option<&str>,
    ) -> Result<Recorded, StateError> {
        let Write(update, condition, status) = *write;
        let mut values = HashMap::from([(
            ":attempts".to_owned(),
            AttributeValue::N(attempts.to_string()),
        )]);
        // DynamoDB refuses values an expression does not use.
        if update.contains(":status") {
            values.insert(
                ":status".to_owned(),
                AttributeValue::S(status.as_str().to_owned()),
            );
        }
        if condition.contains(":delivered") {
            values.insert(
                ":delivered".to_owned(),
                AttributeValue::S(CallbackStatus::Delivered.as_str().to_owned()),
            );
        }
        if let Some(error) = error {
            values.insert(":error".to_owned(), AttributeValue::S(error.to_owned()));
        }
        let applied = update_if(&self.client, &self.table, id, update, condition, values)
            .await
            .map_err(|reason| StateError {
                id: id.to_owned(),
                table: self.table.clone(),
                reason,
            })?;
        Ok(if applied {
            Recorded::Applied
        } else {
            Recorded::Skipped
        })
    }
}

#[cfg(test)]
mod tests {
    use storefirst_lambda::item;

    use super::*;

    #[test]
    fn every_write_names_only_schema_attributes() {
        for write in [DELIVERED, RETRIED, FAILED, REDRIVEN] {
            let Write(update, condition, _) = write;
            let names = item::names(&[update, condition]);
            assert!(names.contains_key("#callback_attempts"), "{update}");
            assert!(names.contains_key("#id"), "{condition}");
        }
    }
}
