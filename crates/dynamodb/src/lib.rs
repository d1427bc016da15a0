//! The second backend: a DynamoDB table and its stream (moto server locally, or a real
//! table on AWS). The HTTP API makes the calls API Gateway's mapping templates make
//! (`infra/src/stack/vtl/`), the poller reads the table's DynamoDB Streams shards as the
//! event source mapping does, and outcomes are written by `storefirst_lambda::DynamoStore`,
//! in-process or from the `bootstrap`. The place in the stream and the dead letters are
//! kept in a local SQLite file, so a restart resumes.

mod ledger;
mod record;
mod stuck;

use std::{
    collections::{HashMap, HashSet},
    fmt,
    path::Path,
    sync::Arc,
    time::Duration,
};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::{
    error::{DisplayErrorContext, SdkError},
    operation::{put_item::PutItemError, update_item::UpdateItemError},
    types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
        ReturnValuesOnConditionCheckFailure, ScalarAttributeType, StreamSpecification,
        StreamViewType,
    },
};
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde_json::Value;
use storefirst_domain::{ChangeEvent, RequestBody, RequestId, Status, now_millis};
use storefirst_lambda::{
    DecodeError, DynamoStore, decode,
    item::{self, Stored},
};

pub use ledger::ShardLedger;
use record::compare_sequence_numbers;
use storefirst_lambda::stream_record::lambda_record;
pub use stuck::DynamoStuck;

use storefirst_pipeline::{
    Accepted, Item, StoreFault,
    ports::{Access, BoxedError, ChangeStream, DeadLetter, Ingest, StreamBatch, StreamRow, Wakeup},
};

/// How often the stream is polled, as Lambda's poller does (4 times a second).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    #[error(
        "{call} on table {table} failed: {message}; check the table name, AWS_ENDPOINT_URL, \
         AWS_REGION and the credentials (or pass --create-table to create it)"
    )]
    Call {
        call: &'static str,
        table: String,
        message: String,
    },
    #[error(
        "table {0} has no stream: enable DynamoDB Streams with NEW_AND_OLD_IMAGES on it, as the stack does"
    )]
    NoStream(String),
    #[error(
        "cannot open the stream ledger {path}: {source}; check that its directory exists and is writable"
    )]
    Ledger {
        path: String,
        source: rusqlite::Error,
    },
}

/// A requests table with its stream.
#[derive(Clone)]
pub struct DynamoTable {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub name: String,
    pub stream_arn: String,
}

impl DynamoTable {
    /// Finds the table and its stream; with `create`, creates the table as the stack
    /// defines it when it does not exist.
    pub async fn connect(aws: &SdkConfig, name: &str, create: bool) -> Result<Self, DynamoError> {
        let dynamodb = aws_sdk_dynamodb::Client::new(aws);
        let fail = |call, error: String| DynamoError::Call {
            call,
            table: name.to_owned(),
            message: error,
        };
        let described = dynamodb.describe_table().table_name(name).send().await;
        let description = match described {
            Ok(out) => out.table,
            Err(error)
                if create
                    && error
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                tracing::info!(table = name, "creating the table");
                create_table(&dynamodb, name)
                    .await
                    .map_err(|e| fail("CreateTable", e))?
            }
            Err(error) => {
                return Err(fail(
                    "DescribeTable",
                    DisplayErrorContext(&error).to_string(),
                ));
            }
        };
        let stream_arn = description
            .and_then(|table| table.latest_stream_arn)
            .ok_or_else(|| DynamoError::NoStream(name.to_owned()))?;
        Ok(Self {
            dynamodb,
            streams: aws_sdk_dynamodbstreams::Client::new(aws),
            name: name.to_owned(),
            stream_arn,
        })
    }

    /// The outcome store the Lambda function uses.
    pub fn outcomes(&self) -> DynamoStore {
        DynamoStore::new(self.dynamodb.clone(), &self.name)
    }

    pub fn requests(&self) -> DynamoRequests {
        DynamoRequests {
            client: self.dynamodb.clone(),
            table: self.name.clone().into(),
        }
    }

    /// The stream reader, keeping its place in the SQLite file `checkpoints`.
    pub fn stream(&self, ledger: &Path) -> Result<DynamoStream, DynamoError> {
        Ok(DynamoStream {
            table: self.clone(),
            ledger: self.ledger(ledger)?,
            iterator: Arc::default(),
        })
    }

    pub fn ledger(&self, path: &Path) -> Result<ShardLedger, DynamoError> {
        ShardLedger::open(path, &self.stream_arn).map_err(|source| DynamoError::Ledger {
            path: path.display().to_string(),
            source,
        })
    }
}

async fn create_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<Option<aws_sdk_dynamodb::types::TableDescription>, String> {
    let built = |e: aws_sdk_dynamodb::error::BuildError| e.to_string();
    dynamodb
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(item::ID)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(built)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(item::ID)
                .key_type(KeyType::Hash)
                .build()
                .map_err(built)?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(built)?,
        )
        .send()
        .await
        .map(|out| out.table_description)
        .map_err(|e| DisplayErrorContext(&e).to_string())
}

/// An SDK error as a fault's source: its message is the whole context, as the SDK's own
/// says only "service error".
#[derive(Debug)]
struct Sdk<E>(E);

impl<E: std::error::Error> fmt::Display for Sdk<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", DisplayErrorContext(&self.0))
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Sdk<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A failed call of `access` on `table`.
fn fault<E, R>(access: Access, call: &str, table: &str, error: SdkError<E, R>) -> StoreFault
where
    E: std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    StoreFault {
        operation: format!("{call} on table {table}"),
        access,
        source: Box::new(Sdk(error)),
    }
}

fn string(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn number(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The HTTP API's calls, made as API Gateway's mapping templates make them.
#[derive(Clone)]
pub struct DynamoRequests {
    client: aws_sdk_dynamodb::Client,
    table: Arc<str>,
}

/// put-request.vtl's UpdateItem: every SET keeps what is there.
const PUT_UPDATE: &str = "SET #request = if_not_exists(#request, :request), #status = if_not_exists(#status, :pending), #attempts = if_not_exists(#attempts, :zero), #created_at = if_not_exists(#created_at, :now), #updated_at = if_not_exists(#updated_at, :now)";
/// put-request.vtl's condition: a new id, or a same-body retry of an item not expired.
const PUT_CONDITION: &str = "attribute_not_exists(#id) OR (#request = :request AND (attribute_not_exists(#expires_at) OR #expires_at > :now_seconds))";
/// post-request.vtl's condition: never over an existing item.
const POST_CONDITION: &str = "attribute_not_exists(#id)";
/// Pending after a failed attempt, or too old for the stream to deliver.
const STUCK_FILTER: &str = "#status = :pending AND (#attempts > :zero OR #created_at < :too_old)";

impl DynamoRequests {
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
        let mut stuck = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&*self.table)
                .filter_expression(STUCK_FILTER)
                .set_expression_attribute_names(Some(item::names(&[STUCK_FILTER])))
                .expression_attribute_values(":pending", string(Status::Pending.as_str()))
                .expression_attribute_values(":zero", number(0))
                .expression_attribute_values(":too_old", number(created_before))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| fault(Access::Read, "Scan", &self.table, e))?;
            for found in page.items.unwrap_or_default() {
                let stored = Stored::from_item(&found)
                    .map_err(|e| StoreFault::read(format!("scanning table {}", self.table), e))?;
                if let Ok(id) = RequestId::parse(&stored.id) {
                    stuck.push((stored.created_at, id, stored.request));
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        stuck.sort_by_key(|(created_at, ..)| *created_at);
        Ok(stuck.into_iter().map(|(_, id, body)| (id, body)).collect())
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
    /// PUT: put-request.vtl's UpdateItem. A same-body retry changes nothing and answers
    /// the stored status; DynamoDB does not say whether it created the item, so a pending
    /// one answers `Created` either way (the same 202).
    async fn accept(&self, id: RequestId, body: RequestBody) -> Result<Accepted, StoreFault> {
        let updated = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(item::key(id.as_str())))
            .update_expression(PUT_UPDATE)
            .condition_expression(PUT_CONDITION)
            .set_expression_attribute_names(Some(item::names(&[PUT_UPDATE, PUT_CONDITION])))
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
    async fn accept_new(&self, id: RequestId, body: RequestBody) -> Result<Accepted, StoreFault> {
        let put = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item::new_request(
                id.as_str(),
                body.as_str(),
                now_millis(),
            )))
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
            .filter(|item| item.expires_at.is_none_or(|at| at > now_secs))
            .map(|item| Item {
                id: item.id,
                status: item.status,
                request: item.request,
                result: item
                    .result
                    .map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text))),
                error: item.error,
                attempts: item.attempts,
                created_at: item.created_at,
                updated_at: item.updated_at,
            }))
    }
}

/// A place in a DynamoDB stream: a shard, the last sequence number done in it, and
/// whether the shard is closed and read to its end (then its children come next).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub shard: Option<String>,
    pub after: Option<String>,
    pub shard_done: bool,
}

impl Position {
    /// Before any shard: the oldest shard is read from TRIM_HORIZON.
    pub const START: Position = Position {
        shard: None,
        after: None,
        shard_done: false,
    };
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(shard) = &self.shard else {
            return f.write_str("TRIM_HORIZON");
        };
        f.write_str(shard)?;
        if let Some(after) = &self.after {
            write!(f, " after {after}")?;
        }
        if self.shard_done {
            f.write_str(" (shard done)")?;
        }
        Ok(())
    }
}

/// The poller's view of the table's stream: shards in lineage order, parents before
/// children, one at a time.
pub struct DynamoStream {
    table: DynamoTable,
    ledger: ShardLedger,
    /// The next iterator of the last read, and the position it starts after: the next
    /// read from there continues without a GetShardIterator.
    iterator: Arc<std::sync::Mutex<Option<(Position, String)>>>,
}

impl DynamoStream {
    pub fn ledger(&self) -> &ShardLedger {
        &self.ledger
    }

    fn fault<E, R>(&self, call: &str, error: SdkError<E, R>) -> StoreFault
    where
        E: std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        StoreFault {
            operation: format!("{call} on the stream of table {}", self.table.name),
            access: Access::Read,
            source: Box::new(Sdk(error)),
        }
    }

    /// The first shard not read to its end whose parent is done (or gone), from where it
    /// was left.
    async fn next_shard(&self, after: &Position) -> Result<Option<Position>, StoreFault> {
        let mut finished = self.ledger.finished().await?;
        if let (Some(shard), true) = (&after.shard, after.shard_done) {
            finished.insert(shard.clone());
        }
        let mut shards = Vec::new();
        let mut start = None;
        loop {
            let described = self
                .table
                .streams
                .describe_stream()
                .stream_arn(&self.table.stream_arn)
                .set_exclusive_start_shard_id(start)
                .send()
                .await
                .map_err(|e| self.fault("DescribeStream", e))?;
            let description = described.stream_description;
            start = description
                .as_ref()
                .and_then(|d| d.last_evaluated_shard_id.clone());
            shards.extend(description.and_then(|d| d.shards).unwrap_or_default());
            if start.is_none() {
                break;
            }
        }
        let known: HashSet<&str> = shards
            .iter()
            .filter_map(|s| s.shard_id.as_deref())
            .collect();
        let next = shards.iter().find(|shard| {
            shard
                .shard_id
                .as_ref()
                .is_some_and(|id| !finished.contains(id))
                && shard
                    .parent_shard_id
                    .as_deref()
                    .is_none_or(|parent| finished.contains(parent) || !known.contains(parent))
        });
        let Some(shard) = next.and_then(|shard| shard.shard_id.clone()) else {
            return Ok(None);
        };
        let after = self.ledger.resume_point(shard.clone()).await?;
        Ok(Some(Position {
            shard: Some(shard),
            after,
            shard_done: false,
        }))
    }

    async fn iterator_at(&self, shard: &str, position: &Position) -> Result<String, StoreFault> {
        let cached = self.iterator.lock().expect("not poisoned").take();
        if let Some((at, iterator)) = cached
            && at == *position
        {
            return Ok(iterator);
        }
        let request = self
            .table
            .streams
            .get_shard_iterator()
            .stream_arn(&self.table.stream_arn)
            .shard_id(shard);
        let request = match &position.after {
            Some(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        request
            .send()
            .await
            .map_err(|e| self.fault("GetShardIterator", e))?
            .shard_iterator
            .ok_or_else(|| {
                StoreFault::read(
                    format!("GetShardIterator on shard {shard}"),
                    "the answer has no iterator",
                )
            })
    }

    /// The row of a stream record, or `None` when the filter or the decoder leaves it out.
    fn row(
        &self,
        record: &Record,
        shard: &str,
        after: Option<&str>,
        events: &[ChangeEvent],
    ) -> Option<StreamRow<Position, Value>> {
        let seq = record.dynamodb.as_ref()?.sequence_number.clone()?;
        if after.is_some_and(|after| compare_sequence_numbers(&seq, after).is_le()) {
            return None;
        }
        let event = ChangeEvent::parse(record.event_name.as_ref()?.as_str())?;
        if !events.contains(&event) {
            return None;
        }
        let source = lambda_record(record, &self.table.stream_arn);
        let parsed = serde_json::from_value(source.clone())
            .map_err(|e| e.to_string())
            .and_then(|lambda| {
                decode(lambda).map_err(|e| match e {
                    // moto's key-only INSERT before the full one of an UpdateItem: no request.
                    DecodeError::NoRequest => String::new(),
                    other => other.to_string(),
                })
            });
        let record_change = match parsed {
            Ok(change) => change,
            Err(reason) if reason.is_empty() => {
                tracing::debug!(seq, "passing over an INSERT without a request (key only)");
                return None;
            }
            Err(reason) => {
                tracing::error!(
                    seq,
                    reason,
                    "passing over a stream record that cannot be decoded"
                );
                return None;
            }
        };
        let created_at = record
            .dynamodb
            .as_ref()
            .and_then(|c| c.approximate_creation_date_time)
            .map_or_else(now_millis, |at| at.secs().saturating_mul(1000));
        Some(StreamRow {
            cursor: Position {
                shard: Some(shard.to_owned()),
                after: Some(seq),
                shard_done: false,
            },
            created_at,
            record: record_change,
            source,
        })
    }
}

impl ChangeStream for DynamoStream {
    type Cursor = Position;
    type Source = Value;

    async fn checkpoint(&self) -> Result<Position, StoreFault> {
        self.ledger.current().await
    }

    async fn read(
        &self,
        after: &Position,
        limit: u32,
        events: &'static [ChangeEvent],
    ) -> Result<StreamBatch<Position, Value>, StoreFault> {
        let position = match (&after.shard, after.shard_done) {
            (Some(_), false) => after.clone(),
            _ => match self.next_shard(after).await? {
                Some(position) => position,
                None => {
                    return Ok(StreamBatch {
                        rows: Vec::new(),
                        horizon: after.clone(),
                    });
                }
            },
        };
        let shard = position.shard.clone().expect("a shard was chosen");
        let iterator = self.iterator_at(&shard, &position).await?;
        let page = self
            .table
            .streams
            .get_records()
            .shard_iterator(iterator)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| self.fault("GetRecords", e))?;
        let records = page.records.unwrap_or_default();
        let last = records
            .iter()
            .rev()
            .find_map(|r| r.dynamodb.as_ref()?.sequence_number.clone());
        // No next iterator: the shard is closed and read to its end.
        let horizon = Position {
            shard: Some(shard.clone()),
            after: last.or(position.after.clone()),
            shard_done: page.next_shard_iterator.is_none(),
        };
        *self.iterator.lock().expect("not poisoned") =
            page.next_shard_iterator.map(|next| (horizon.clone(), next));
        let rows = records
            .iter()
            .filter_map(|record| self.row(record, &shard, position.after.as_deref(), events))
            .collect();
        Ok(StreamBatch { rows, horizon })
    }

    async fn advance(
        &self,
        to: Position,
        dead_letter: Option<DeadLetter<Position>>,
    ) -> Result<(), StoreFault> {
        self.ledger.advance(to, dead_letter).await
    }

    fn wakeup(&self) -> Wakeup {
        Wakeup::Every(POLL_INTERVAL)
    }
}
