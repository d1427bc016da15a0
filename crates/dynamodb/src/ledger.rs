//! Where the DynamoDB backend keeps its place in the stream and its dead letters: a small
//! SQLite file (`--db`), so a restart resumes where the last run stopped. Sequence numbers
//! are kept as the decimal strings DynamoDB hands out (they overflow i64).

use std::{
    collections::HashSet,
    path::Path,
    sync::{Arc, Mutex},
};

use rusqlite::{Connection, OptionalExtension, params};
use storefirst_domain::now_millis;

use super::Position;
use storefirst_pipeline::{
    StoreFault,
    ports::{Access, BoxedError, DeadLetter},
};
use storefirst_sqlite::db;

const SCHEMA: &str = r#"
-- One row per shard of a stream: the last sequence number done, and whether the shard is
-- closed and read to its end.
CREATE TABLE IF NOT EXISTS shard_checkpoints (
    stream_arn      TEXT NOT NULL,
    shard_id        TEXT NOT NULL,
    sequence_number TEXT,
    finished        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (stream_arn, shard_id)
);
CREATE TABLE IF NOT EXISTS shard_dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_arn  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    first       TEXT NOT NULL,
    last        TEXT NOT NULL,
    request_ids TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
"#;

#[derive(Clone)]
pub struct ShardLedger {
    conn: Arc<Mutex<Connection>>,
    stream_arn: Arc<str>,
}

impl ShardLedger {
    pub fn open(path: &Path, stream_arn: &str) -> rusqlite::Result<Self> {
        let conn = db::open(path)?;
        // No checkpointer thread here: the few writes per batch can fold the WAL themselves.
        conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            stream_arn: stream_arn.into(),
        })
    }

    /// Runs `work` on the file's connection, off the async threads; a failure is the
    /// [`Access`] `access` of `operation`.
    async fn with<T: Send + 'static>(
        &self,
        (access, operation): (Access, &'static str),
        work: impl FnOnce(&mut Connection, &str) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreFault> {
        let fault = |source: BoxedError| StoreFault {
            operation: format!("{operation} in the checkpoint file"),
            access,
            source,
        };
        let (conn, arn) = (self.conn.clone(), self.stream_arn.clone());
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut conn, &arn)
        })
        .await
        .map_err(|e| fault(e.into()))?
        .map_err(|e| fault(e.into()))
    }

    /// The unfinished shard to resume, or [`Position::START`] when there is none.
    pub async fn current(&self) -> Result<Position, StoreFault> {
        self.with((Access::Read, "reading the position"), |conn, arn| {
            let row = conn
                .query_row(
                    "SELECT shard_id, sequence_number FROM shard_checkpoints
                     WHERE stream_arn = ?1 AND finished = 0 ORDER BY rowid LIMIT 1",
                    [arn],
                    |row| Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?)),
                )
                .optional()?;
            Ok(row.map_or(Position::START, |(shard, after)| Position {
                shard: Some(shard),
                after,
                shard_done: false,
            }))
        })
        .await
    }

    /// The shards read to their end.
    pub async fn finished(&self) -> Result<HashSet<String>, StoreFault> {
        self.with(
            (Access::Read, "reading the finished shards"),
            |conn, arn| {
                let mut stmt = conn.prepare(
                    "SELECT shard_id FROM shard_checkpoints WHERE stream_arn = ?1 AND finished = 1",
                )?;
                stmt.query_map([arn], |row| row.get(0))?.collect()
            },
        )
        .await
    }

    /// Where `shard` was left, if it was started.
    pub async fn resume_point(&self, shard: String) -> Result<Option<String>, StoreFault> {
        self.with((Access::Read, "reading the shard's position"), move |conn, arn| {
            conn.query_row(
                "SELECT sequence_number FROM shard_checkpoints WHERE stream_arn = ?1 AND shard_id = ?2",
                params![arn, shard],
                |row| row.get(0),
            )
            .optional()
            .map(Option::flatten)
        })
        .await
    }

    pub async fn advance(
        &self,
        to: Position,
        dead_letter: Option<DeadLetter<Position>>,
    ) -> Result<(), StoreFault> {
        let Some(shard) = to.shard else {
            return Ok(());
        };
        self.with((Access::Write, "moving the checkpoint"), move |conn, arn| {
            let tx = conn.transaction()?;
            if let Some(letter) = dead_letter {
                let ids = serde_json::to_string(&letter.request_ids).expect("strings serialize");
                tx.execute(
                    "INSERT INTO shard_dead_letters (stream_arn, reason, first, last, request_ids, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        arn,
                        letter.reason,
                        letter.first_seq.to_string(),
                        letter.last_seq.to_string(),
                        ids,
                        now_millis()
                    ],
                )?;
            }
            tx.execute(
                "INSERT INTO shard_checkpoints (stream_arn, shard_id, sequence_number, finished)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (stream_arn, shard_id) DO UPDATE SET
                     sequence_number = coalesce(excluded.sequence_number, sequence_number),
                     finished = excluded.finished",
                params![arn, shard, to.after, to.shard_done],
            )?;
            tx.commit()
        })
        .await
    }

    /// Every dead letter of this stream, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter<String>>, StoreFault> {
        self.with((Access::Read, "reading the dead letters"), |conn, arn| {
            let mut stmt = conn.prepare(
                "SELECT reason, first, last, request_ids FROM shard_dead_letters
                 WHERE stream_arn = ?1 ORDER BY id",
            )?;
            stmt.query_map([arn], db::dead_letter)?.collect()
        })
        .await
    }

    /// Drops the dead letters none of whose items is in `still_pending`.
    pub async fn clear_dead_letters(
        &self,
        still_pending: HashSet<String>,
    ) -> Result<usize, StoreFault> {
        self.with(
            (Access::Write, "clearing dead letters"),
            move |conn, arn| {
                let tx = conn.transaction()?;
                let letters: Vec<(i64, String)> = tx
                    .prepare(
                        "SELECT id, request_ids FROM shard_dead_letters WHERE stream_arn = ?1",
                    )?
                    .query_map([arn], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut cleared = 0;
                for (id, ids) in letters {
                    let ids: Vec<String> = serde_json::from_str(&ids).unwrap_or_default();
                    if !ids.iter().any(|id| still_pending.contains(id)) {
                        cleared +=
                            tx.execute("DELETE FROM shard_dead_letters WHERE id = ?1", [id])?;
                    }
                }
                tx.commit()?;
                Ok(cleared)
            },
        )
        .await
    }
}
