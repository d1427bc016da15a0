//! The SQLite schema: the items, the change stream the triggers write in the same
//! transaction, the poller's checkpoint and the dead letters.

use std::{
    any::Any,
    path::{Path, PathBuf},
    sync::Weak,
    time::Duration,
};

use rusqlite::{Connection, Row, types::FromSql};
use storefirst_pipeline::ports::DeadLetter;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS requests (
    id          TEXT PRIMARY KEY,
    request     TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    result      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    expires_at  INTEGER
);
CREATE INDEX IF NOT EXISTS requests_expiry ON requests (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS requests_pending ON requests (status) WHERE status = 'pending';

-- The change stream, like DynamoDB Streams with NEW_AND_OLD_IMAGES reduced to what the
-- processor reads. Triggers write it in the item's own transaction, so no change is
-- committed without its record.
CREATE TABLE IF NOT EXISTS stream (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_name  TEXT NOT NULL,
    id          TEXT NOT NULL,
    request     TEXT,
    created_at  INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS stream_insert AFTER INSERT ON requests BEGIN
    INSERT INTO stream (event_name, id, request, created_at)
    VALUES ('INSERT', NEW.id, NEW.request, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
CREATE TRIGGER IF NOT EXISTS stream_modify AFTER UPDATE ON requests BEGIN
    INSERT INTO stream (event_name, id, request, created_at)
    VALUES ('MODIFY', NEW.id, NEW.request, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
CREATE TRIGGER IF NOT EXISTS stream_remove AFTER DELETE ON requests BEGIN
    INSERT INTO stream (event_name, id, request, created_at)
    VALUES ('REMOVE', OLD.id, NULL, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TABLE IF NOT EXISTS checkpoints (
    consumer    TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL
);

-- Like the on-failure destination's message: which stretch of the stream was given up
-- on and why. The items themselves stay `pending` with their last error.
CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    reason      TEXT NOT NULL,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    request_ids TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Webhooks: a request's callback (x-callback-url) and its delivery, beside the item rather
-- than in it, so that delivery writes add no stream record. Created when missing, so an
-- older database file gains it at its next start. `due_at` is when the next attempt is
-- due (NULL until the request finishes, and once delivered or given up on); a claimed
-- attempt moves it to the end of its lease.
CREATE TABLE IF NOT EXISTS callbacks (
    id           TEXT PRIMARY KEY,
    url          TEXT NOT NULL,
    webhook_id   TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    due_at       INTEGER,
    first_due_at INTEGER
);
CREATE INDEX IF NOT EXISTS callbacks_due ON callbacks (due_at) WHERE due_at IS NOT NULL;
-- The claim's walk: receiver by receiver (the URL up to the `/` after its host; URLs are
-- stored parsed, so there always is one), each one's oldest due first. A claim costs a
-- seek per receiver with deliveries scheduled, however many are due.
CREATE INDEX IF NOT EXISTS callbacks_receiver_due
    ON callbacks (substr(url, 1, instr(substr(url, 9), '/') + 8), due_at)
    WHERE due_at IS NOT NULL;
-- The outcome makes the delivery due in its own transaction: no finished request is
-- missed, whichever process wrote it (the poller, redrive).
CREATE TRIGGER IF NOT EXISTS callbacks_finished AFTER UPDATE OF status ON requests
WHEN OLD.status = 'pending' AND NEW.status IN ('succeeded', 'failed') BEGIN
    UPDATE callbacks SET
        due_at = CAST(unixepoch('subsec') * 1000 AS INTEGER),
        first_due_at = CAST(unixepoch('subsec') * 1000 AS INTEGER)
    WHERE id = NEW.id AND status = 'pending' AND due_at IS NULL;
END;
CREATE TRIGGER IF NOT EXISTS callbacks_remove AFTER DELETE ON requests BEGIN
    DELETE FROM callbacks WHERE id = OLD.id;
END;

-- What the runtime keeps between starts: the webhook signing secret.
CREATE TABLE IF NOT EXISTS settings (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
"#;

/// How long a connection waits for a lock another one holds.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the database with the durability settings every connection needs: WAL, and
/// `synchronous = FULL` so a commit is on disk before it returns.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // WAL checkpoints run on their own thread (`spawn_wal_checkpointer`), not inside a commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // A WAL that grew while a reader held it back shrinks to this at its next restart.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(conn)
}

/// Opens the database and creates what is missing.
pub fn open_and_migrate(path: &Path) -> rusqlite::Result<Connection> {
    let conn = open(path)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// Copies the WAL into the database every [`CHECKPOINT_INTERVAL`] without blocking the
/// writer (PASSIVE), so that the fsync of the database file never delays a 202. Stops when
/// `owner` is dropped.
pub fn spawn_wal_checkpointer(path: PathBuf, owner: Weak<impl Any + Send + Sync>) {
    let run = move || {
        let mut conn = None;
        while owner.strong_count() > 0 {
            std::thread::sleep(CHECKPOINT_INTERVAL);
            if conn.is_none() {
                conn = open(&path).ok();
            }
            let Some(c) = &conn else { continue };
            if let Err(error) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(%error, "WAL checkpoint failed; retrying");
                conn = None;
            }
        }
    };
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(run)
        .expect("spawning the checkpoint thread");
}

/// A dead letter from a row of `reason, first, last, request_ids` (a JSON array), whatever
/// the cursor's type: this store's `seq`, or a DynamoDB sequence number.
pub fn dead_letter<C: FromSql>(row: &Row) -> rusqlite::Result<DeadLetter<C>> {
    let ids: String = row.get(3)?;
    Ok(DeadLetter {
        reason: row.get(0)?,
        first_seq: row.get(1)?,
        last_seq: row.get(2)?,
        request_ids: serde_json::from_str(&ids).unwrap_or_default(),
    })
}
