//! The single writer: one thread owns the write connection and commits whatever jobs are
//! waiting in one transaction (group commit). Each job's caller gets its answer only after
//! that commit is on disk, so a 202 is durable, and concurrent requests share one fsync.

use std::{
    cell::Cell,
    path::PathBuf,
    sync::{
        Arc,
        mpsc::{self, Receiver, SyncSender},
    },
    time::Duration,
};

use rusqlite::{Connection, hooks::Wal};
use tokio::sync::{oneshot, watch};

use storefirst_pipeline::StoreFault;

use crate::db;

/// Most jobs in one transaction; bounds the latency a large group adds to its first job.
const MAX_GROUP: usize = 512;
/// Jobs waiting beyond this make callers wait for room (back pressure).
const QUEUE: usize = 8192;
/// WAL frames after which the writer restarts the log. The background checkpointer copies
/// frames into the database but cannot restart the log while commits keep coming, so
/// without this the WAL grows for as long as the load lasts.
const RESTART_FRAMES: i32 = 4096;
/// How long a restart may wait for readers of old snapshots before it is tried again later.
const RESTART_WAIT: Duration = Duration::from_millis(20);

thread_local! {
    /// Frames in the WAL after the writer thread's last commit.
    static WAL_FRAMES: Cell<i32> = const { Cell::new(0) };
}

trait Job: Send {
    fn apply(&mut self, conn: &Connection) -> rusqlite::Result<()>;
    fn finish(self: Box<Self>, committed: Result<(), Failed>);
}

/// Why a group was not committed. Every job of the group gets it as its fault's source,
/// so the one error is shared.
#[derive(Debug, Clone)]
struct Failed {
    operation: &'static str,
    error: Arc<rusqlite::Error>,
}

impl Failed {
    fn at(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |error| Self {
            operation,
            error: Arc::new(error),
        }
    }
}

impl From<Failed> for StoreFault {
    fn from(failed: Failed) -> Self {
        StoreFault::write(failed.operation, failed.error)
    }
}

struct Typed<T, F> {
    work: Option<F>,
    value: Option<T>,
    reply: oneshot::Sender<Result<T, StoreFault>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send,
{
    fn apply(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if let Some(work) = self.work.take() {
            self.value = Some(work(conn)?);
        }
        Ok(())
    }

    fn finish(self: Box<Self>, committed: Result<(), Failed>) {
        let Typed { value, reply, .. } = *self;
        let answer = match committed {
            Ok(()) => value.ok_or_else(|| {
                StoreFault::write("the group commit", "the transaction was rolled back")
            }),
            Err(failed) => Err(failed.into()),
        };
        // The caller may have gone (client disconnected); the commit stands regardless.
        let _ = reply.send(answer);
    }
}

/// A handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: SyncSender<Box<dyn Job>>,
    commits: watch::Receiver<u64>,
}

impl Writer {
    /// Starts the writer thread on `path`, which must already hold the schema.
    pub fn start(path: PathBuf) -> Self {
        let (jobs, queue) = mpsc::sync_channel(QUEUE);
        let (commits_tx, commits) = watch::channel(0);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&path, &queue, &commits_tx))
            .expect("spawning the writer thread");
        Self { jobs, commits }
    }

    /// Runs `work` inside the next group transaction and answers once it is committed.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreFault>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Typed {
            work: Some(work),
            value: None,
            reply,
        });
        let jobs = self.jobs.clone();
        // A full queue blocks, so hand it to the blocking pool only then.
        let job = match jobs.try_send(job) {
            Ok(()) => None,
            Err(mpsc::TrySendError::Full(job)) => Some(job),
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(stopped()),
        };
        if let Some(job) = job {
            tokio::task::spawn_blocking(move || jobs.send(job))
                .await
                .map_err(|_| stopped())?
                .map_err(|_| stopped())?;
        }
        answer.await.map_err(|_| stopped())?
    }

    /// Changes after every commit; the poller waits on it instead of polling a timer.
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }
}

fn stopped() -> StoreFault {
    StoreFault::write(
        "handing the write to the writer thread",
        "the writer has stopped",
    )
}

fn run(path: &std::path::Path, queue: &Receiver<Box<dyn Job>>, commits: &watch::Sender<u64>) {
    let mut conn: Option<Connection> = None;
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let committed = commit(&mut conn, path, &mut group);
        if let Err(failed) = &committed {
            tracing::error!(operation = failed.operation, error = %failed.error, jobs = group.len(), "group commit failed");
            // Reopen next time: the fault may have left the connection unusable.
            conn = None;
        }
        for job in group {
            job.finish(committed.clone());
        }
        if committed.is_ok() {
            commits.send_modify(|n| *n += 1);
        }
    }
}

fn commit(
    slot: &mut Option<Connection>,
    path: &std::path::Path,
    group: &mut [Box<dyn Job>],
) -> Result<(), Failed> {
    if slot.is_none() {
        *slot = Some(open(path).map_err(Failed::at("opening the database"))?);
    }
    let conn = slot.as_ref().expect("opened above");
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(Failed::at("beginning the group commit"))?;
    let applied = group.iter_mut().try_for_each(|job| job.apply(conn));
    let result = applied.and_then(|()| conn.execute_batch("COMMIT"));
    if let Err(e) = result {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(Failed::at("the group commit")(e));
    }
    if WAL_FRAMES.get() >= RESTART_FRAMES {
        restart_wal(conn);
    }
    Ok(())
}

/// Opens the writer's connection, which counts the WAL's frames at each commit.
fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = db::open(path)?;
    conn.wal_hook(Some(count_frames));
    Ok(conn)
}

fn count_frames(_: &Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(frames);
    Ok(())
}

/// Copies what the checkpointer has not yet copied and waits for readers to leave the
/// log, so the next commit writes the WAL from its start again. When a reader stays, the
/// next commit tries again; the transaction is committed either way.
fn restart_wal(conn: &Connection) {
    let restarted = conn.busy_timeout(RESTART_WAIT).and_then(|()| {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
            row.get::<_, i64>(0)
        })
    });
    let _ = conn.busy_timeout(db::BUSY_TIMEOUT);
    match restarted {
        Ok(0) => WAL_FRAMES.set(0),
        Ok(_) => tracing::debug!("WAL restart deferred: readers still in the log"),
        Err(error) => tracing::warn!(%error, "WAL restart failed; trying again later"),
    }
}
