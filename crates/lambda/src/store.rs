//! The Lambda function's outcome writes: one conditional UpdateItem per record, through the
//! item schema.

use std::collections::HashMap;

use aws_sdk_dynamodb::{Client, error::DisplayErrorContext, types::AttributeValue};
use serde::Serialize;
use storefirst_domain::{
    Outcome, OutcomeStore, RequestId, Status, StoreError, Written, now_millis,
};

use crate::item;

/// The requests table on DynamoDB. Outcome writes are conditional on `status = pending`,
/// so a duplicate delivery (streams are at-least-once) changes nothing.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// The expression values of one outcome write; the fields an outcome does not use are
/// left out, since DynamoDB refuses unused values.
#[derive(Serialize)]
struct Values<'a> {
    #[serde(rename = ":pending")]
    pending: &'static str,
    #[serde(rename = ":one")]
    one: u32,
    #[serde(rename = ":now")]
    now: i64,
    #[serde(rename = ":status", skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(rename = ":result", skip_serializing_if = "Option::is_none")]
    result: Option<String>,
    #[serde(rename = ":expires_at", skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(rename = ":error", skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

const CONDITION: &str = "#status = :pending";

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// The update expression and values that write `outcome` and count one attempt.
fn update(outcome: &Outcome, now: i64) -> (&'static str, Values<'_>) {
    let mut values = Values {
        pending: Status::Pending.as_str(),
        one: 1,
        now,
        status: None,
        result: None,
        expires_at: None,
        error: None,
    };
    let expression = match outcome {
        Outcome::Succeeded { result, expires_at } => {
            values.status = Some(Status::Succeeded.as_str());
            values.result = Some(result.to_string());
            values.expires_at = Some(*expires_at);
            // The error of an earlier transient attempt no longer applies.
            "SET #status = :status, #result = :result, #expires_at = :expires_at, #updated_at = :now REMOVE #error ADD #attempts :one"
        }
        Outcome::Rejected { error } => {
            values.status = Some(Status::Failed.as_str());
            values.error = Some(error);
            "SET #status = :status, #error = :error, #updated_at = :now ADD #attempts :one"
        }
        Outcome::Transient { error } => {
            values.error = Some(error);
            "SET #error = :error, #updated_at = :now ADD #attempts :one"
        }
    };
    (expression, values)
}

impl OutcomeStore for DynamoStore {
    async fn record_outcome(
        &self,
        id: &RequestId,
        outcome: &Outcome,
    ) -> Result<Written, StoreError> {
        let (expression, values) = update(outcome, now_millis());
        let values: HashMap<String, AttributeValue> = serde_dynamo::to_item(values)
            .map_err(|error| StoreError(format!("could not convert the update: {error}")))?;
        let applied = update_if(
            &self.client,
            &self.table,
            id.as_str(),
            expression,
            CONDITION,
            values,
        )
        .await
        .map_err(|reason| {
            StoreError(format!(
                "UpdateItem on table {} failed: {reason}",
                self.table
            ))
        })?;
        Ok(if applied {
            Written::Applied
        } else {
            Written::AlreadyDone
        })
    }
}

/// One UpdateItem of the item `id`, if `condition` holds: whether it applied (`false`:
/// the condition did not hold and nothing changed), or why DynamoDB did not answer.
pub async fn update_if(
    client: &Client,
    table: &str,
    id: &str,
    update: &str,
    condition: &str,
    values: HashMap<String, AttributeValue>,
) -> Result<bool, String> {
    let written = client
        .update_item()
        .table_name(table)
        .set_key(Some(item::key(id)))
        .update_expression(update)
        .condition_expression(condition)
        // Placeholders for every attribute, as `status` and `result` are reserved words
        // in DynamoDB expressions; only those used, as DynamoDB refuses unused names.
        .set_expression_attribute_names(Some(item::names(&[update, condition])))
        .set_expression_attribute_values(Some(values))
        .send()
        .await;
    match written {
        Ok(_) => Ok(true),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(error) => Err(DisplayErrorContext(&error).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_update_names_only_schema_attributes() {
        let outcomes = [
            Outcome::Succeeded {
                result: serde_json::json!({}),
                expires_at: 1,
            },
            Outcome::Rejected { error: "no".into() },
            Outcome::Transient {
                error: "later".into(),
            },
        ];
        for outcome in &outcomes {
            let (expression, _) = update(outcome, 0);
            let names = item::names(&[expression, CONDITION]);
            for counted in [item::STATUS, item::ATTEMPTS, item::UPDATED_AT] {
                assert!(names.values().any(|name| name == counted), "{expression}");
            }
        }
    }
}
