//! The console's read model over the SQLite file: a few queries on the read pool.

use rusqlite::params;
use storefirst_domain::now_millis;
use storefirst_pipeline::{
    Item, StoreFault,
    ports::{self, DeadLetter, ItemQuery, ReadModel, Second, StatusCounts, Waiting},
};

use super::{CONSUMER, SqliteStore};
use crate::db;

/// Items not past their TTL, as GET sees them (`?1`: now in epoch seconds).
const LIVE: &str = "(expires_at IS NULL OR expires_at > ?1)";

impl ReadModel for SqliteStore {
    async fn counts(&self) -> Result<StatusCounts, StoreFault> {
        self.query("counting the items", |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT status, count(*) FROM requests WHERE {LIVE} GROUP BY status"
            ))?;
            let mut counts = StatusCounts::default();
            for row in stmt.query_map([now_millis() / 1000], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })? {
                let (status, n) = row?;
                counts.add(&status, n.unsigned_abs());
            }
            Ok(counts)
        })
        .await
    }

    async fn items(&self, query: ItemQuery) -> Result<Vec<Item>, StoreFault> {
        self.query("listing the items", move |conn| {
            let (after_at, after_id) = query.after.map_or((i64::MAX, String::new()), |after| {
                (after.created_at, after.id)
            });
            // Within the cursor's millisecond the id decides; `substr` keeps a prefix literal
            // (LIKE would read `%` and `_` in it).
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT id, status, request, result, error, attempts, created_at, updated_at
                 FROM requests WHERE {LIVE}
                 AND (?2 IS NULL OR status = ?2)
                 AND substr(id, 1, length(?3)) = ?3
                 AND (created_at < ?4 OR (created_at = ?4 AND id < ?5))
                 ORDER BY created_at DESC, id DESC LIMIT ?6"
            ))?;
            let rows = stmt.query_map(
                params![
                    now_millis() / 1000,
                    query.status.map(|s| s.as_str()),
                    query.id_prefix,
                    after_at,
                    after_id,
                    query.limit,
                ],
                super::item,
            )?;
            // With each one's webhook, as GET shows it.
            rows.map(|item| super::callbacks::with_callback(conn, item?))
                .collect()
        })
        .await
    }

    async fn backlog(&self) -> Result<Waiting, StoreFault> {
        self.query("reading the backlog", |conn| {
            let (requests, oldest): (i64, Option<i64>) = conn
                .prepare_cached(
                    "SELECT count(*), min(created_at) FROM requests
                     WHERE status = 'pending' AND attempts = 0",
                )?
                .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            let records: i64 = conn
                .prepare_cached(
                    "SELECT count(*) FROM stream WHERE seq > coalesce(
                         (SELECT seq FROM checkpoints WHERE consumer = ?1), 0)",
                )?
                .query_row([CONSUMER], |row| row.get(0))?;
            Ok(Waiting {
                requests: requests.unsigned_abs(),
                oldest_created_at: oldest,
                stream_records: Some(records.unsigned_abs()),
            })
        })
        .await
    }

    async fn activity(&self, since: i64) -> Result<Vec<Second>, StoreFault> {
        self.query("reading the activity", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT created_at, updated_at, attempts FROM requests
                 WHERE created_at >= ?1 OR updated_at >= ?1",
            )?;
            let rows = stmt
                .query_map([since], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(ports::seconds(rows, since))
        })
        .await
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter<String>>, StoreFault> {
        self.query("reading the dead letters", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT reason, CAST(first_seq AS TEXT), CAST(last_seq AS TEXT), request_ids
                 FROM dead_letters ORDER BY id",
            )?;
            stmt.query_map([], db::dead_letter)?.collect()
        })
        .await
    }
}
