//! The table's DynamoDB Stream as the poller reads it: shards in lineage order, each from
//! the ledger's position, as the event source mapping reads them.

use std::{collections::HashSet, fmt, sync::Arc};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde_json::Value;
use storefirst_domain::{ChangeEvent, now_millis};
use storefirst_lambda::{DecodeError, decode, filter::Pattern, stream_record::lambda_record};
use storefirst_pipeline::{
    StoreFault,
    ports::{Access, ChangeStream, DeadLetter, StreamBatch, StreamRow, Wakeup},
};

use crate::{DynamoTable, POLL_INTERVAL, Sdk, ShardLedger, record::compare_sequence_numbers};

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
    /// The event source mapping's filter: records it does not let through are passed
    /// over (and checkpointed past) as Lambda drops them.
    filter: Option<Pattern>,
    /// The next iterator of the last read, and the position it starts after: the next
    /// read from there continues without a GetShardIterator.
    iterator: Arc<std::sync::Mutex<Option<(Position, String)>>>,
}

impl DynamoStream {
    pub(crate) fn new(table: DynamoTable, ledger: ShardLedger) -> Self {
        Self {
            table,
            ledger,
            filter: None,
            iterator: Arc::default(),
        }
    }

    /// Reads only the records `filter` lets through, as a mapping with `FilterCriteria`.
    pub fn filtered(mut self, filter: Pattern) -> Self {
        self.filter = Some(filter);
        self
    }

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
        if self
            .filter
            .as_ref()
            .is_some_and(|filter| !filter.matches(&source))
        {
            return None;
        }
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
