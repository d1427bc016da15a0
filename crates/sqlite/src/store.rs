//! The SQLite store: writes through the group-commit [`Writer`], reads through a small pool
//! of read connections (WAL lets them run beside the writer).

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use storefirst_domain::{
    CallbackUrl, ChangeEvent, ChangeRecord, Outcome, OutcomeStore, RequestBody, RequestId, Status,
    StoreError, UnknownStatus, Written, now_millis,
};
use storefirst_pipeline::{
    Accepted, Behind, DEFAULT_MAX_BACKLOG, Item, StoreFault, Stuck,
    ports::{ChangeStream, DeadLetter, Ingest, StreamBatch, StreamRow, Wakeup},
};

use crate::{db, writer::Writer};

mod callbacks;

mod read_model;

/// How far the poller's checkpoint trails the newest accepted request, so that ingest
/// cannot outrun processing without bound: past the limit, a new request waits for the
/// poller to advance, and is refused when it does not within the wait.
struct Backlog {
    limit: AtomicI64,
    wait: Mutex<Duration>,
    accepted: AtomicI64,
    read: AtomicI64,
    advanced: tokio::sync::Notify,
}

impl Backlog {
    fn behind(&self) -> i64 {
        (self.accepted.load(Ordering::Acquire) - self.read.load(Ordering::Acquire)).max(0)
    }

    fn within(&self) -> Result<(), Behind> {
        let (behind, limit) = (self.behind(), self.limit.load(Ordering::Relaxed));
        if behind <= limit {
            Ok(())
        } else {
            Err(Behind { behind, limit })
        }
    }

    async fn admit(&self) -> Result<(), Behind> {
        if self.within().is_ok() {
            return Ok(());
        }
        let wait = *self.wait.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let advanced = self.advanced.notified();
            tokio::pin!(advanced);
            // Registered before the check, so an advance in between is not missed.
            advanced.as_mut().enable();
            let refused = match self.within() {
                Ok(()) => return Ok(()),
                Err(refused) => refused,
            };
            if tokio::time::timeout_at(deadline, advanced).await.is_err() {
                return Err(refused);
            }
        }
    }

    fn read_up_to(&self, seq: i64) {
        self.read.fetch_max(seq, Ordering::AcqRel);
        self.advanced.notify_waiters();
    }
}

/// The `seq` of the newest stream record ever written (AUTOINCREMENT keeps it), 0 before
/// the first.
const NEWEST_SEQ: &str =
    "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'stream'), 0)";

/// Most items, and most stream records, one sweep deletes.
pub const SWEEP_CHUNK: usize = 1000;

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub expired: usize,
    pub trimmed: usize,
}

impl Swept {
    /// Whether a chunk was full, so more may be waiting.
    pub fn more(&self) -> bool {
        self.expired >= SWEEP_CHUNK || self.trimmed >= SWEEP_CHUNK
    }
}

/// The checkpoint's name in the `checkpoints` table.
pub const CONSUMER: &str = "processor";

#[derive(Clone)]
pub struct SqliteStore {
    writer: Writer,
    reads: Arc<Reads>,
    backlog: Arc<Backlog>,
}

/// Read connections beside the writer: at most [`READERS`] at a time, kept for reuse.
struct Reads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection that may be open: a burst of readers waits for one
    /// instead of opening a connection each (and keeping them all).
    slots: tokio::sync::Semaphore,
    /// Connections opened so far, for the pool's test.
    opened: AtomicUsize,
}

/// Read connections at most: reads are short, and a few per core keep the cores busy.
const READERS: usize = 8;

impl SqliteStore {
    /// Opens (and creates or migrates) the database at `path` and starts its writer.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let store = Self::open_beside(path)?;
        db::spawn_wal_checkpointer(path.to_owned(), Arc::downgrade(&store.reads));
        Ok(store)
    }

    /// Opens a database another process serves, to read it through the ports (the bench):
    /// that process runs the WAL checkpoints, so this one runs none of its own.
    pub fn open_beside(path: &Path) -> rusqlite::Result<Self> {
        let conn = db::open_and_migrate(path)?;
        let newest: i64 = conn.query_row(NEWEST_SEQ, [], |row| row.get(0))?;
        let read: i64 = conn.query_row(
            "SELECT coalesce((SELECT seq FROM checkpoints WHERE consumer = ?1), 0)",
            [CONSUMER],
            |row| row.get(0),
        )?;
        drop(conn);
        let backlog = Arc::new(Backlog {
            limit: AtomicI64::new(DEFAULT_MAX_BACKLOG),
            wait: Mutex::new(Duration::from_secs(1)),
            accepted: AtomicI64::new(newest),
            read: AtomicI64::new(read),
            advanced: tokio::sync::Notify::new(),
        });
        let reads = Arc::new(Reads {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(READERS),
            opened: AtomicUsize::new(0),
        });
        Ok(Self {
            writer: Writer::start(path.to_owned()),
            reads,
            backlog,
        })
    }

    /// How many stream records the poller may trail the newest accepted request by, and
    /// how long a request waits for it to catch up before it is refused with [`Behind`].
    pub fn limit_backlog(&self, records: i64, wait: Duration) {
        self.backlog.limit.store(records, Ordering::Relaxed);
        *self.backlog.wait.lock().unwrap_or_else(|p| p.into_inner()) = wait;
    }

    /// Deletes up to [`SWEEP_CHUNK`] expired items (their REMOVE records enter the stream
    /// like a TTL delete) and up to as many stream records that every consumer has read and
    /// that are older than `keep_ms`. Bounded, so a sweep never holds the writer for long;
    /// a full chunk means there is more.
    pub async fn sweep(&self, keep_ms: i64) -> Result<Swept, StoreFault> {
        self.writer
            .write(move |conn| {
                let now = now_millis();
                let expired = conn
                    .prepare_cached(
                        "DELETE FROM requests WHERE id IN (SELECT id FROM requests
                         WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT ?2)",
                    )?
                    .execute(params![now / 1000, SWEEP_CHUNK])?;
                // The oldest read records by seq (the primary key), never a scan of the
                // whole stream: `created_at` grows with `seq`.
                let trimmed = conn
                    .prepare_cached(
                        "DELETE FROM stream WHERE created_at < ?1 AND seq IN (
                             SELECT seq FROM stream
                             WHERE seq <= (SELECT coalesce(min(seq), 0) FROM checkpoints)
                             ORDER BY seq LIMIT ?2)",
                    )?
                    .execute(params![now - keep_ms, SWEEP_CHUNK])?;
                Ok(Swept { expired, trimmed })
            })
            .await
    }

    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreFault> {
        self.query("reading the dead letters", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT reason, first_seq, last_seq, request_ids FROM dead_letters ORDER BY id",
            )?;
            let rows = stmt.query_map([], db::dead_letter)?;
            rows.collect()
        })
        .await
    }

    /// Runs `work` on a read connection, off the async threads.
    async fn query<T, F>(&self, operation: &'static str, work: F) -> Result<T, StoreFault>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let _slot = self
            .reads
            .slots
            .acquire()
            .await
            .map_err(|e| StoreFault::read(operation, e))?;
        let reads = self.reads.clone();
        tokio::task::spawn_blocking(move || reads.with(work))
            .await
            .map_err(|e| StoreFault::read(operation, e))?
            .map_err(|e| StoreFault::read(operation, e))
    }
}

impl Reads {
    fn with<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                self.opened.fetch_add(1, Ordering::Relaxed);
                conn
            }
        };
        let result = work(&conn);
        // A connection that failed may be broken; open a fresh one next time.
        if result.is_ok() {
            self.idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(conn);
        }
        result
    }
}

impl OutcomeStore for SqliteStore {
    async fn record_outcome(
        &self,
        id: &RequestId,
        outcome: &Outcome,
    ) -> Result<Written, StoreError> {
        let (status, error, result, expires_at) = match outcome {
            Outcome::Succeeded { result, expires_at } => (
                Status::Succeeded,
                None,
                Some(result.to_string()),
                Some(*expires_at),
            ),
            Outcome::Rejected { error } => (Status::Failed, Some(error.clone()), None, None),
            Outcome::Transient { error } => (Status::Pending, Some(error.clone()), None, None),
        };
        let id = id.clone();
        self.writer
            .write(move |conn| {
                let changed = conn
                    .prepare_cached(
                        "UPDATE requests SET status = ?2, error = ?3, result = ?4, expires_at = ?5,
                         attempts = attempts + 1, updated_at = ?6
                         WHERE id = ?1 AND status = 'pending'",
                    )?
                    .execute(params![
                        id.as_str(),
                        status.as_str(),
                        error,
                        result,
                        expires_at,
                        now_millis()
                    ])?;
                Ok(if changed == 1 {
                    Written::Applied
                } else {
                    Written::AlreadyDone
                })
            })
            .await
            .map_err(|fault| StoreError(fault.to_string()))
    }
}

impl Ingest for SqliteStore {
    /// Waits while the poller is too far behind; see [`SqliteStore::limit_backlog`].
    async fn admit(&self) -> Result<(), Behind> {
        self.backlog.admit().await
    }

    async fn accept(
        &self,
        id: RequestId,
        body: RequestBody,
        callback: Option<CallbackUrl>,
    ) -> Result<Accepted, StoreFault> {
        let (accepted, seq) = self
            .writer
            .write(move |conn| {
                let inserted = conn
                    .prepare_cached(
                        "INSERT INTO requests (id, request, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?3) ON CONFLICT (id) DO NOTHING",
                    )?
                    .execute(params![id.as_str(), body.as_str(), now_millis()])?;
                if inserted == 1 {
                    if let Some(url) = &callback {
                        callbacks::insert(conn, &id, url)?;
                    }
                    // The trigger's stream record is the newest one.
                    let seq = conn
                        .prepare_cached(NEWEST_SEQ)?
                        .query_row([], |row| row.get(0))?;
                    return Ok((Accepted::Created, seq));
                }
                let (stored, status, expires_at): (String, String, Option<i64>) = conn
                    .prepare_cached(
                        "SELECT request, status, expires_at FROM requests WHERE id = ?1",
                    )?
                    .query_row([id.as_str()], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })?;
                let accepted = if expires_at.is_some_and(|at| at <= now_millis() / 1000) {
                    Accepted::Expired
                } else if stored == body.as_str()
                    && callbacks::url(conn, &id)?.as_deref()
                        == callback.as_ref().map(CallbackUrl::as_str)
                {
                    Accepted::Duplicate(status.parse().map_err(|e: UnknownStatus| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    })?)
                } else {
                    Accepted::Conflict
                };
                Ok((accepted, 0))
            })
            .await?;
        self.backlog.accepted.fetch_max(seq, Ordering::AcqRel);
        Ok(accepted)
    }

    /// The item, unless it is unknown or its TTL has passed.
    async fn get(&self, id: RequestId) -> Result<Option<Item>, StoreFault> {
        self.query("reading the item", move |conn| {
            conn.prepare_cached(
                "SELECT id, status, request, result, error, attempts, created_at, updated_at
                 FROM requests WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
            )?
            .query_row(params![id.as_str(), now_millis() / 1000], item)
            .optional()?
            .map(|found| callbacks::with_callback(conn, found))
            .transpose()
        })
        .await
    }
}

/// An item from `id, status, request, result, error, attempts, created_at, updated_at`.
fn item(row: &rusqlite::Row) -> rusqlite::Result<Item> {
    let result: Option<String> = row.get(3)?;
    Ok(Item {
        id: row.get(0)?,
        status: row.get(1)?,
        request: row.get(2)?,
        result: result
            .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))),
        error: row.get(4)?,
        attempts: row.get(5)?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
        callback: None,
    })
}

impl Stuck for SqliteStore {
    type Outcomes = SqliteStore;

    fn outcomes(&self) -> Arc<SqliteStore> {
        Arc::new(self.clone())
    }

    /// Pending items that failed before or were dead-lettered, with their bodies.
    async fn stuck_pending(&self) -> Result<Vec<(RequestId, String)>, StoreFault> {
        self.query("reading the stuck items", |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, request FROM requests WHERE status = 'pending' AND (attempts > 0
                 OR id IN (SELECT value FROM dead_letters, json_each(dead_letters.request_ids)))
                 ORDER BY created_at",
            )?;
            let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))?;
            let mut stuck = Vec::new();
            for row in rows {
                let (id, body) = row?;
                // Ids were validated before they were stored; skip rather than fail on one.
                if let Ok(id) = RequestId::parse(&id) {
                    stuck.push((id, body));
                }
            }
            Ok(stuck)
        })
        .await
    }

    /// Drops dead letters none of whose items is still pending.
    async fn clear_finished_dead_letters(&self) -> Result<usize, StoreFault> {
        self.writer
            .write(|conn| {
                conn.execute(
                    "DELETE FROM dead_letters WHERE NOT EXISTS (
                         SELECT 1 FROM json_each(dead_letters.request_ids) AS dead
                         JOIN requests ON requests.id = dead.value
                         WHERE requests.status = 'pending')",
                    [],
                )
            })
            .await
    }
}

impl ChangeStream for SqliteStore {
    type Cursor = i64;
    type Source = ();

    async fn checkpoint(&self) -> Result<i64, StoreFault> {
        self.query("reading the stream checkpoint", move |conn| {
            conn.query_row(
                "SELECT seq FROM checkpoints WHERE consumer = ?1",
                [CONSUMER],
                |row| row.get(0),
            )
            .optional()
            .map(Option::unwrap_or_default)
        })
        .await
    }

    /// Up to `limit` records of the given events after `after`, oldest first, as the event
    /// source mapping's filter sees them: other events are passed over, not returned.
    async fn read(
        &self,
        after: &i64,
        limit: u32,
        events: &'static [ChangeEvent],
    ) -> Result<StreamBatch<i64>, StoreFault> {
        let after = *after;
        let wanted: String = events
            .iter()
            .map(|e| format!(",{}", e.as_str()))
            .collect::<String>()
            + ",";
        self.query("reading the stream", move |conn| {
            // One snapshot for both queries, so the horizon never passes an unread record.
            let tx = conn.unchecked_transaction()?;
            let mut stmt = tx.prepare_cached(
                "SELECT seq, event_name, id, request, created_at FROM stream
                 WHERE seq > ?1 AND instr(?3, ',' || event_name || ',') > 0 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![after, limit, wanted], |row| {
                    let seq: i64 = row.get(0)?;
                    let event: String = row.get(1)?;
                    let id: String = row.get(2)?;
                    let invalid = |what: String| {
                        rusqlite::Error::FromSqlConversionFailure(
                            0,
                            rusqlite::types::Type::Text,
                            what.into(),
                        )
                    };
                    let event = ChangeEvent::parse(&event)
                        .ok_or_else(|| invalid(format!("event {event}")))?;
                    let id = RequestId::parse(&id).map_err(|e| invalid(e.to_string()))?;
                    Ok(StreamRow {
                        cursor: seq,
                        created_at: row.get(4)?,
                        record: ChangeRecord {
                            sequence_number: seq.to_string(),
                            event,
                            id,
                            body: row.get(3)?,
                            correlation: Default::default(),
                        },
                        source: (),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let horizon = match rows.last() {
                Some(last) if rows.len() >= limit as usize => last.cursor,
                _ => tx
                    .prepare_cached("SELECT coalesce(max(seq), 0) FROM stream")?
                    .query_row([], |row| row.get::<_, i64>(0))?
                    .max(after),
            };
            drop(stmt);
            tx.commit()?;
            Ok(StreamBatch { rows, horizon })
        })
        .await
    }

    /// Moves the checkpoint to `seq`, recording a dead letter in the same transaction.
    async fn advance(&self, seq: i64, dead_letter: Option<DeadLetter>) -> Result<(), StoreFault> {
        self.writer
            .write(move |conn| {
                if let Some(letter) = dead_letter {
                    let ids = serde_json::to_string(&letter.request_ids).expect("strings serialize");
                    conn.prepare_cached(
                        "INSERT INTO dead_letters (reason, first_seq, last_seq, request_ids, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![letter.reason, letter.first_seq, letter.last_seq, ids, now_millis()])?;
                }
                conn.prepare_cached(
                    "INSERT INTO checkpoints (consumer, seq) VALUES (?1, ?2)
                     ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
                )?
                .execute(params![CONSUMER, seq])?;
                Ok(())
            })
            .await?;
        self.backlog.read_up_to(seq);
        Ok(())
    }

    fn wakeup(&self) -> Wakeup {
        Wakeup::Commits(self.writer.commits())
    }
}

#[cfg(test)]
mod tests {
    use futures::future::try_join_all;
    use storefirst_domain::DEFAULT_BODY_LIMIT;

    use super::*;

    async fn accept(store: &SqliteStore, ids: std::ops::Range<usize>) {
        try_join_all(ids.map(|i| {
            let id = RequestId::parse(&format!("item-{i}")).unwrap();
            store.accept(
                id,
                RequestBody::parse(br#"{"a":1}"#, DEFAULT_BODY_LIMIT).unwrap(),
                None,
            )
        }))
        .await
        .unwrap();
    }

    async fn count(store: &SqliteStore, sql: &'static str) -> i64 {
        store
            .query("counting", move |c| c.query_row(sql, [], |r| r.get(0)))
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_of_readers_shares_a_bounded_pool_of_connections() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        accept(&store, 0..10).await;
        // Each read holds its connection a while, so the burst really overlaps.
        let reads = (0..50).map(|_| {
            store.query("a slow read", |c| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                c.query_row("SELECT count(*) FROM requests", [], |r| r.get::<_, i64>(0))
            })
        });
        let counts = try_join_all(reads).await.unwrap();
        assert!(counts.iter().all(|n| *n == 10), "{counts:?}");
        let opened = store.reads.opened.load(Ordering::Relaxed);
        assert!(
            (1..=READERS).contains(&opened),
            "{opened} read connections for 50 readers"
        );
        assert!(store.reads.idle.lock().unwrap().len() <= READERS);
    }

    #[tokio::test]
    async fn a_failed_write_keeps_the_sqlite_error_as_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let fault = store
            .writer
            .write(|c| c.execute("INSERT INTO nowhere VALUES (1)", []))
            .await
            .unwrap_err();
        assert_eq!(fault.access, storefirst_pipeline::ports::Access::Write);
        let source = std::error::Error::source(&fault).expect("a source");
        let sqlite = source
            .downcast_ref::<Arc<rusqlite::Error>>()
            .expect("the writer's rusqlite error");
        assert!(sqlite.to_string().contains("no such table"), "{sqlite}");
        assert!(fault.to_string().contains("nothing was stored"), "{fault}");
    }

    #[tokio::test]
    async fn sweeps_trim_read_records_in_chunks_and_keep_unread_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        accept(&store, 0..2 * SWEEP_CHUNK + 500).await;
        let read_up_to = i64::try_from(2 * SWEEP_CHUNK + 200).unwrap();
        store.advance(read_up_to, None).await.unwrap();

        // Every record is older than a retention of 0 ms once the clock has moved on.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let mut trimmed = Vec::new();
        for _ in 0..4 {
            trimmed.push(store.sweep(0).await.unwrap().trimmed);
        }
        assert_eq!(trimmed, [SWEEP_CHUNK, SWEEP_CHUNK, 200, 0]);
        assert_eq!(
            count(&store, "SELECT min(seq) FROM stream").await,
            read_up_to + 1,
            "unread records stay"
        );
        // Records younger than the retention stay even when read.
        store.advance(i64::MAX, None).await.unwrap();
        assert_eq!(store.sweep(60_000).await.unwrap().trimmed, 0);
    }

    #[tokio::test]
    async fn sweeps_expire_items_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        accept(&store, 0..SWEEP_CHUNK + 10).await;
        store
            .writer
            .write(|c| c.execute("UPDATE requests SET expires_at = 1", []))
            .await
            .unwrap();
        let first = store.sweep(i64::MAX).await.unwrap();
        assert_eq!(first.expired, SWEEP_CHUNK);
        assert!(first.more());
        let second = store.sweep(i64::MAX).await.unwrap();
        assert_eq!(second.expired, 10);
        assert!(!second.more());
        assert_eq!(count(&store, "SELECT count(*) FROM requests").await, 0);
    }

    #[tokio::test]
    async fn the_wal_stays_bounded_under_continuous_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = SqliteStore::open(&path).unwrap();
        // 16 KiB bodies: each commit writes a dozen pages (item and stream record).
        let body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(16 * 1024));
        let body = RequestBody::parse(body.as_bytes(), DEFAULT_BODY_LIMIT).unwrap();
        let wal = dir.path().join("db-wal");
        let mut largest = 0;
        for i in 0..1500 {
            let id = RequestId::parse(&format!("item-{i}")).unwrap();
            store.accept(id, body.clone(), None).await.unwrap();
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        // Without restarts this is ~70 MiB; restarts keep it near 4096 frames (16 MiB).
        let bound = 24 * 1024 * 1024;
        assert!(largest < bound, "the WAL reached {largest} bytes");
    }
}
