//! The Lambda mode's invoker: hands the poller's batches to the function, run in a local
//! execution environment ([`storefirst_lambda_env`]), as the event source mapping does,
//! and reads its `batchItemFailures`. A failed invocation (timeout, crash, init error)
//! fails the batch; the poller then retries, bisects and dead-letters as with any failed
//! batch.

use std::{collections::HashSet, sync::Arc};

use serde_json::{Value, json};
use storefirst_domain::StreamSettings;
use storefirst_lambda_env::LambdaFunction;

use storefirst_pipeline::ports::{Invoker, StreamRow};

/// Delivers batches to a [`LambdaFunction`] as the event source mapping does, and reads
/// its `batchItemFailures`.
pub struct LambdaInvoker {
    pub function: Arc<LambdaFunction>,
}

impl<C: Sync> Invoker<C, Value> for LambdaInvoker {
    async fn invoke(
        &self,
        rows: &[StreamRow<C, Value>],
        _settings: &StreamSettings,
    ) -> Vec<String> {
        let every = || -> Vec<String> {
            rows.iter()
                .map(|row| row.record.sequence_number.clone())
                .collect()
        };
        let records: Vec<Value> = rows.iter().map(|row| row.source.clone()).collect();
        let body = match self.function.invoke(json!({ "Records": records })).await {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(%error, records = rows.len(), "the invocation failed: the whole batch is retried");
                return every();
            }
        };
        match failures(&body, &every().into_iter().collect()) {
            Some(failures) => failures,
            None => {
                tracing::warn!(
                    body,
                    "the response is no valid batchItemFailures: the whole batch is retried"
                );
                every()
            }
        }
    }
}

/// The item identifiers a response names (sequence numbers, or SQS message ids), or `None`
/// when it names a record that is not in the batch or none at all, which Lambda treats as
/// a failure of the whole batch.
pub(crate) fn failures(body: &str, batch: &HashSet<String>) -> Option<Vec<String>> {
    let response: Value = if body.trim().is_empty() || body.trim() == "null" {
        return Some(Vec::new());
    } else {
        serde_json::from_str(body).ok()?
    };
    let Some(items) = response.get("batchItemFailures") else {
        return Some(Vec::new());
    };
    items
        .as_array()?
        .iter()
        .map(|item| {
            let id = item.get("itemIdentifier")?.as_str()?;
            batch.contains(id).then(|| id.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expected: Option<&[&str]>) {
        let batch: HashSet<String> = ["1", "2", "3"].map(String::from).into();
        let expected = expected.map(|ids| ids.iter().map(|id| id.to_string()).collect());
        assert_eq!(failures(body, &batch), expected, "{body}");
    }

    #[test]
    fn batch_item_failures() {
        check(r#"{"batchItemFailures":[]}"#, Some(&[]));
        check(
            r#"{"batchItemFailures":[{"itemIdentifier":"2"}]}"#,
            Some(&["2"]),
        );
        check("", Some(&[]));
        check("null", Some(&[]));
        check("{}", Some(&[]));
        // Lambda fails the whole batch for an identifier it does not know, or none.
        check(r#"{"batchItemFailures":[{"itemIdentifier":"9"}]}"#, None);
        check(r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#, None);
        check(r#"{"batchItemFailures":[{}]}"#, None);
        check("not json", None);
    }
}
