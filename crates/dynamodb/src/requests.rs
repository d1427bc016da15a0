//! The HTTP API's calls on the table, made as API Gateway's mapping templates make them.

use std::{collections::HashMap, sync::Arc};

use aws_sdk_dynamodb::{
    error::SdkError,
    operation::{
        put_item::PutItemError, scan::builders::ScanFluentBuilder, update_item::UpdateItemError,
    },
    types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure},
};
use storefirst_domain::{CallbackUrl, RequestBody, RequestId, Status, now_millis};
use storefirst_lambda::item::{self, Stored};
use storefirst_pipeline::{
    Accepted, Item, StoreFault,
    ports::{Access, BoxedError, Ingest},
};

use crate::{fault, number, string};

mod read_model;

pub use read_model::DynamoReadModel;

/// The HTTP API's calls, made as API Gateway's mapping templates make them.
#[derive(Clone)]
pub struct DynamoRequests {
    client: aws_sdk_dynamodb::Client,
    table: Arc<str>,
    /// Whether a notifier delivers the table's webhooks (the Lambda mode's, or the stack's).
    delivers_webhooks: bool,
}

/// put-request.vtl's UpdateItem: every SET keeps what is there.
const PUT_UPDATE: &str = "SET #request = if_not_exists(#request, :request), #status = if_not_exists(#status, :pending), #attempts = if_not_exists(#attempts, :zero), #created_at = if_not_exists(#created_at, :now), #updated_at = if_not_exists(#updated_at, :now)";
/// put-request.vtl's condition: a new id, or a same-body retry of an item not expired,
/// and here also without a callback (the callback is part of the request).
const PUT_CONDITION: &str = "attribute_not_exists(#id) OR (#request = :request AND attribute_not_exists(#callback_url) AND (attribute_not_exists(#expires_at) OR #expires_at > :now_seconds))";
/// [`PUT_UPDATE`], and a new item's callback, not delivered yet.
const PUT_UPDATE_CALLBACK: &str = "SET #request = if_not_exists(#request, :request), #status = if_not_exists(#status, :pending), #attempts = if_not_exists(#attempts, :zero), #created_at = if_not_exists(#created_at, :now), #updated_at = if_not_exists(#updated_at, :now), #callback_url = if_not_exists(#callback_url, :callback), #callback_status = if_not_exists(#callback_status, :pending), #callback_attempts = if_not_exists(#callback_attempts, :zero)";
/// [`PUT_CONDITION`] with the same callback.
const PUT_CONDITION_CALLBACK: &str = "attribute_not_exists(#id) OR (#request = :request AND #callback_url = :callback AND (attribute_not_exists(#expires_at) OR #expires_at > :now_seconds))";
/// post-request.vtl's condition: never over an existing item.
const POST_CONDITION: &str = "attribute_not_exists(#id)";
/// Pending after a failed attempt, or too old for the stream to deliver.
const STUCK_FILTER: &str = "#status = :pending AND (#attempts > :zero OR #created_at < :too_old)";

impl DynamoRequests {
    pub(crate) fn new(client: aws_sdk_dynamodb::Client, table: &str) -> Self {
        Self {
            client,
            table: table.into(),
            delivers_webhooks: false,
        }
    }

    /// The same calls, for a table whose webhooks a notifier delivers: the API then takes
    /// `x-callback-url`.
    pub fn delivering_webhooks(mut self) -> Self {
        self.delivers_webhooks = true;
        self
    }

    async fn read(&self, id: &str) -> Result<Option<Stored>, StoreFault> {
        let found = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(item::key(id)))
            // As get-request.vtl: a GET right after the 202 sees the item.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| fault(Access::Read, "GetItem", &self.table, e))?;
        found
            .item
            .map(|found| {
                Stored::from_item(&found).map_err(|e| {
                    StoreFault::read(format!("reading item {id} of table {}", self.table), e)
                })
            })
            .transpose()
    }

    /// Ids of items that are still pending after a failed attempt (`attempts > 0`), or
    /// that were created before `created_before` (epoch ms): older than the stream's
    /// maximum record age, the event source mapping gave up on them unprocessed.
    pub async fn failed_pending(
        &self,
        created_before: i64,
    ) -> Result<Vec<(RequestId, String)>, StoreFault> {
        let mut stuck: Vec<_> = self
            .scan(|scan| {
                scan.filter_expression(STUCK_FILTER)
                    .set_expression_attribute_names(Some(item::names(&[STUCK_FILTER])))
                    .expression_attribute_values(":pending", string(Status::Pending.as_str()))
                    .expression_attribute_values(":zero", number(0))
                    .expression_attribute_values(":too_old", number(created_before))
            })
            .await?
            .into_iter()
            .filter_map(|stored| {
                let id = RequestId::parse(&stored.id).ok()?;
                Some((stored.created_at, id, stored.request))
            })
            .collect();
        stuck.sort_by_key(|(created_at, ..)| *created_at);
        Ok(stuck.into_iter().map(|(_, id, body)| (id, body)).collect())
    }

    /// Every item `filter` lets through, page by page (a consistent Scan).
    pub(crate) async fn scan(
        &self,
        filter: impl Fn(ScanFluentBuilder) -> ScanFluentBuilder,
    ) -> Result<Vec<Stored>, StoreFault> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = filter(self.client.scan().table_name(&*self.table))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| fault(Access::Read, "Scan", &self.table, e))?;
            for found in page.items.unwrap_or_default() {
                items.push(
                    Stored::from_item(&found).map_err(|e| {
                        StoreFault::read(format!("scanning table {}", self.table), e)
                    })?,
                );
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// The body of `id` if it is still pending.
    pub async fn pending_body(&self, id: &str) -> Result<Option<String>, StoreFault> {
        Ok(self
            .read(id)
            .await?
            .filter(|item| item.status == Status::Pending.as_str())
            .map(|item| item.request))
    }

    /// A failed accept: a conflict, or an id whose item expired (the condition returns the
    /// old item, as the error response template reads it), or a fault.
    fn refused<R>(
        &self,
        call: &str,
        error: SdkError<R, aws_sdk_dynamodb::config::http::HttpResponse>,
        old_item: impl FnOnce(&R) -> Option<&HashMap<String, AttributeValue>>,
    ) -> Result<Accepted, StoreFault>
    where
        R: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        let Some(service) = error
            .as_service_error()
            .filter(|e| e.code() == Some("ConditionalCheckFailedException"))
        else {
            return Err(fault(Access::Write, call, &self.table, error));
        };
        let now_secs = now_millis() / 1000;
        let expired = old_item(service)
            .and_then(|old| old.get(item::EXPIRES_AT)?.as_n().ok()?.parse::<i64>().ok())
            .is_some_and(|at| at <= now_secs);
        Ok(if expired {
            Accepted::Expired
        } else {
            Accepted::Conflict
        })
    }
}

impl Ingest for DynamoRequests {
    /// Only where a notifier runs ([`DynamoRequests::delivering_webhooks`]); elsewhere the
    /// API refuses `x-callback-url` rather than store a callback nobody delivers.
    fn delivers_webhooks(&self) -> bool {
        self.delivers_webhooks
    }

    /// PUT: put-request.vtl's UpdateItem. A same-body retry changes nothing and answers
    /// the stored status; DynamoDB does not say whether it created the item, so a pending
    /// one answers `Created` either way (the same 202).
    async fn accept(
        &self,
        id: RequestId,
        body: RequestBody,
        callback: Option<CallbackUrl>,
    ) -> Result<Accepted, StoreFault> {
        let (update, condition) = match callback {
            Some(_) => (PUT_UPDATE_CALLBACK, PUT_CONDITION_CALLBACK),
            None => (PUT_UPDATE, PUT_CONDITION),
        };
        let updated = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(item::key(id.as_str())))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(item::names(&[update, condition])))
            .set_expression_attribute_values(
                callback.map(|url| HashMap::from([(":callback".to_owned(), string(url.as_str()))])),
            )
            .expression_attribute_values(":request", string(body.as_str()))
            .expression_attribute_values(":pending", string(Status::Pending.as_str()))
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":now", number(now_millis()))
            .expression_attribute_values(":now_seconds", number(now_millis() / 1000))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let updated = match updated {
            Ok(updated) => updated,
            Err(error) => {
                return self.refused("UpdateItem", error, |e| match e {
                    UpdateItemError::ConditionalCheckFailedException(failed) => failed.item(),
                    _ => None,
                });
            }
        };
        let status = updated
            .attributes
            .as_ref()
            .and_then(|stored| stored.get(item::STATUS)?.as_s().ok());
        // The write is done; what failed is reading its answer, and a retry is idempotent.
        let unreadable = |source: BoxedError| {
            StoreFault::read(
                format!(
                    "reading the answer of UpdateItem on table {} for {id}",
                    self.table
                ),
                source,
            )
        };
        match status.map(|status| status.parse::<Status>()) {
            Some(Ok(Status::Pending)) => Ok(Accepted::Created),
            Some(Ok(finished)) => Ok(Accepted::Duplicate(finished)),
            Some(Err(e)) => Err(unreadable(e.into())),
            None => Err(unreadable("it has no status".into())),
        }
    }

    /// POST: post-request.vtl's PutItem, never over an existing item.
    async fn accept_new(
        &self,
        id: RequestId,
        body: RequestBody,
        callback: Option<CallbackUrl>,
    ) -> Result<Accepted, StoreFault> {
        let mut new = item::new_request(id.as_str(), body.as_str(), now_millis());
        if let Some(url) = &callback {
            new.extend(item::callback(url.as_str()));
        }
        let put = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(new))
            .condition_expression(POST_CONDITION)
            .set_expression_attribute_names(Some(item::names(&[POST_CONDITION])))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Accepted::Created),
            Err(error) => self.refused("PutItem", error, |e| match e {
                PutItemError::ConditionalCheckFailedException(failed) => failed.item(),
                _ => None,
            }),
        }
    }

    /// GET: get-request.vtl's GetItem; an item past its TTL is gone.
    async fn get(&self, id: RequestId) -> Result<Option<Item>, StoreFault> {
        let now_secs = now_millis() / 1000;
        Ok(self
            .read(id.as_str())
            .await?
            .filter(|item| live(item, now_secs))
            .map(Stored::shown))
    }
}

/// Whether `item` is not past its TTL at `now_secs`, as GET sees it.
fn live(item: &Stored, now_secs: i64) -> bool {
    item.expires_at.is_none_or(|at| at > now_secs)
}
