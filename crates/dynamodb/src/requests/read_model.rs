//! The console's read model over a DynamoDB table: Scans, filtered and counted here. Meant
//! for the development table of `cargo xtask dev --lambda`: a Scan reads the whole table,
//! which on a production table is the dashboard's job (CloudWatch), not a page's.

use storefirst_domain::{Status, now_millis};
use storefirst_pipeline::{
    Item, StoreFault,
    ports::{self, DeadLetter, ItemQuery, ReadModel, Second, StatusCounts, Waiting},
};

use super::{DynamoRequests, live};
use crate::ShardLedger;

/// The table's items, and the dead letters of the local stream ledger, if there is one.
#[derive(Clone)]
pub struct DynamoReadModel {
    pub requests: DynamoRequests,
    pub ledger: Option<ShardLedger>,
}

impl DynamoReadModel {
    /// The items GET would find.
    async fn live(&self) -> Result<Vec<storefirst_lambda::item::Stored>, StoreFault> {
        let now_secs = now_millis() / 1000;
        let mut items = self.requests.scan(|scan| scan).await?;
        items.retain(|item| live(item, now_secs));
        Ok(items)
    }
}

impl ReadModel for DynamoReadModel {
    async fn counts(&self) -> Result<StatusCounts, StoreFault> {
        let mut counts = StatusCounts::default();
        for item in self.live().await? {
            counts.add(&item.status, 1);
        }
        Ok(counts)
    }

    async fn items(&self, query: ItemQuery) -> Result<Vec<Item>, StoreFault> {
        let mut items = self.live().await?;
        items.retain(|item| query.admits(&item.status, &item.id, item.created_at));
        items.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        items.truncate(query.limit);
        Ok(items
            .into_iter()
            .map(storefirst_lambda::item::Stored::shown)
            .collect())
    }

    /// DynamoDB Streams cannot say how many records follow a position without reading
    /// them: only the pending requests are counted.
    async fn backlog(&self) -> Result<Waiting, StoreFault> {
        let waiting: Vec<i64> = self
            .live()
            .await?
            .into_iter()
            .filter(|item| item.status == Status::Pending.as_str() && item.attempts == 0)
            .map(|item| item.created_at)
            .collect();
        Ok(Waiting {
            requests: waiting.len() as u64,
            oldest_created_at: waiting.iter().min().copied(),
            stream_records: None,
        })
    }

    async fn activity(&self, since: i64) -> Result<Vec<Second>, StoreFault> {
        let items = self.live().await?;
        Ok(ports::seconds(
            items
                .iter()
                .map(|item| (item.created_at, item.updated_at, item.attempts)),
            since,
        ))
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter<String>>, StoreFault> {
        match &self.ledger {
            Some(ledger) => ledger.dead_letters().await,
            None => Ok(Vec::new()),
        }
    }
}
