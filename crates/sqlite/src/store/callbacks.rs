//! Webhooks in SQLite: a request's callback beside its item (`callbacks`), scheduled by a
//! trigger in the outcome's own transaction, claimed and settled by the notifier.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use storefirst_domain::{Callback, CallbackStatus, CallbackUrl, RequestId, now_millis};
use storefirst_pipeline::{Item, StoreFault, ports::Ingest};
use storefirst_webhooks::{Due, Outbox, Settled};
use tokio::sync::watch;

use super::SqliteStore;

/// A callback's receiver, as the claim's index `callbacks_receiver_due` computes it.
const RECEIVER: &str = "substr(url, 1, instr(substr(url, 9), '/') + 8)";

/// The first receiver after `?1` with a delivery scheduled.
fn next_receiver() -> String {
    format!(
        "SELECT {RECEIVER} FROM callbacks WHERE {RECEIVER} > ?1 AND due_at IS NOT NULL
         ORDER BY {RECEIVER} LIMIT 1"
    )
}

/// The receiver `?1`'s oldest `?3` deliveries due by `?2`.
fn oldest_due() -> String {
    format!(
        "SELECT id, due_at FROM callbacks WHERE {RECEIVER} = ?1 AND due_at <= ?2
         ORDER BY due_at LIMIT ?3"
    )
}

/// Records the callback of a request just inserted.
pub(super) fn insert(conn: &Connection, id: &RequestId, url: &CallbackUrl) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO callbacks (id, url, webhook_id)
         VALUES (?1, ?2, 'msg_' || lower(hex(randomblob(16))))",
    )?
    .execute(params![id.as_str(), url.as_str()])?;
    Ok(())
}

/// The callback URL a request was accepted with, if any.
pub(super) fn url(conn: &Connection, id: &RequestId) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT url FROM callbacks WHERE id = ?1")?
        .query_row([id.as_str()], |row| row.get(0))
        .optional()
}

/// The item with its callback's delivery state.
pub(super) fn with_callback(conn: &Connection, mut item: Item) -> rusqlite::Result<Item> {
    item.callback = conn
        .prepare_cached("SELECT url, status, attempts, error FROM callbacks WHERE id = ?1")?
        .query_row([&item.id], |row| {
            let status: String = row.get(1)?;
            Ok(Callback {
                url: row.get(0)?,
                status: status.parse().map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        1,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?,
                attempts: row.get(2)?,
                error: row.get(3)?,
            })
        })
        .optional()?;
    Ok(item)
}

impl SqliteStore {
    /// Makes every given-up webhook due again (redrive), with its attempts counted anew
    /// and its webhook id unchanged; answers how many.
    pub async fn redeliver_failed_webhooks(&self) -> Result<usize, StoreFault> {
        self.writer
            .write(|conn| {
                conn.execute(
                    "UPDATE callbacks SET status = 'pending', attempts = 0, error = NULL,
                         due_at = ?1, first_due_at = ?1
                     WHERE status = 'failed'",
                    [now_millis()],
                )
            })
            .await
    }
}

impl Outbox for SqliteStore {
    async fn claim(
        &self,
        now: i64,
        lease_until: i64,
        limit: usize,
        per_receiver: usize,
        in_flight: &HashMap<String, usize>,
    ) -> Result<Vec<Due>, StoreFault> {
        let in_flight = in_flight.clone();
        let claimed = self
            .writer
            .write(move |conn| {
                // Each receiver's oldest due, as many as it has room for; then the oldest of
                // those. The walk seeks from receiver to receiver in `callbacks_receiver_due`
                // (the expression must be the index's), so a backlog costs nothing here.
                let mut next = conn.prepare_cached(&next_receiver())?;
                let mut oldest = conn.prepare_cached(&oldest_due())?;
                let mut candidates: Vec<(i64, String)> = Vec::new();
                let mut after = String::new();
                while let Some(receiver) = next
                    .query_row([&after], |row| row.get::<_, String>(0))
                    .optional()?
                {
                    let busy = in_flight.get(&receiver).copied().unwrap_or(0);
                    let room = per_receiver.saturating_sub(busy);
                    if room > 0 {
                        let rows = oldest.query_map(
                            params![receiver, now, i64::try_from(room).unwrap_or(i64::MAX)],
                            |row| Ok((row.get::<_, i64>(1)?, row.get::<_, String>(0)?)),
                        )?;
                        for row in rows {
                            candidates.push(row?);
                        }
                    }
                    after = receiver;
                }
                candidates.sort_unstable();
                candidates.truncate(limit);
                let mut lease = conn.prepare_cached(&format!(
                    "UPDATE callbacks SET due_at = ?2, attempts = attempts + 1 WHERE id = ?1
                     RETURNING id, url, webhook_id, attempts, first_due_at, {RECEIVER}"
                ))?;
                candidates
                    .into_iter()
                    .map(|(_, id)| {
                        lease.query_row(params![id, lease_until], |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, String>(2)?,
                                row.get::<_, u32>(3)?,
                                row.get::<_, i64>(4)?,
                                row.get::<_, String>(5)?,
                            ))
                        })
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let mut due = Vec::with_capacity(claimed.len());
        for (id, url, webhook_id, attempts, first_due_at, receiver) in claimed {
            let Ok(id) = RequestId::parse(&id) else {
                continue;
            };
            // The document as GET shows it now, callback state included. An item past its
            // TTL is not delivered; the sweep deletes its callback with it.
            let Some(item) = self.get(id.clone()).await? else {
                continue;
            };
            due.push(Due {
                id,
                url,
                receiver,
                webhook_id,
                attempts,
                first_due_at,
                document: serde_json::to_vec(&item).expect("an item serializes"),
            });
        }
        Ok(due)
    }

    async fn settle(&self, due: &Due, settled: Settled) -> Result<(), StoreFault> {
        let (id, webhook_id, url, attempts) = (
            due.id.as_str().to_owned(),
            due.webhook_id.clone(),
            due.url.clone(),
            due.attempts,
        );
        self.writer
            .write(move |conn| {
                let (status, due_at, error) = match &settled {
                    Settled::Delivered => (CallbackStatus::Delivered, None, None),
                    Settled::Retry { at, error } => {
                        (CallbackStatus::Pending, Some(*at), Some(error.as_str()))
                    }
                    Settled::GaveUp { error } => (CallbackStatus::Failed, None, Some(error.as_str())),
                };
                // Only the attempt still leased: a redrive may have reset it meanwhile.
                let changed = conn
                    .prepare_cached(
                        "UPDATE callbacks SET status = ?3, due_at = ?4, error = ?5
                         WHERE id = ?1 AND webhook_id = ?2 AND attempts = ?6
                           AND status = 'pending'",
                    )?
                    .execute(params![
                        id,
                        webhook_id,
                        status.as_str(),
                        due_at,
                        error,
                        attempts
                    ])?;
                if changed == 1
                    && let Settled::GaveUp { error } = &settled
                {
                    // Like the stream's dead letters; no stream position (0, 0).
                    let ids = serde_json::to_string(&[&id]).expect("strings serialize");
                    conn.prepare_cached(
                        "INSERT INTO dead_letters (reason, first_seq, last_seq, request_ids, created_at)
                         VALUES (?1, 0, 0, ?2, ?3)",
                    )?
                    .execute(params![
                        format!("webhook to {url} given up after {attempts} attempts: {error}"),
                        ids,
                        now_millis()
                    ])?;
                }
                Ok(())
            })
            .await
    }

    async fn next_due(&self) -> Result<Option<i64>, StoreFault> {
        self.query("reading when the next webhook is due", |conn| {
            conn.prepare_cached("SELECT min(due_at) FROM callbacks WHERE due_at IS NOT NULL")?
                .query_row([], |row| row.get(0))
        })
        .await
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.writer.commits()
    }
}

#[cfg(test)]
mod tests {
    use storefirst_domain::{
        CallbackStatus, DEFAULT_BODY_LIMIT, Outcome, OutcomeStore, Receivers, RequestBody,
    };
    use storefirst_pipeline::ports::Ingest;

    use super::*;

    #[tokio::test]
    async fn a_database_from_before_webhooks_gains_them_and_an_outcome_makes_a_delivery_due() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        // A file as a version without webhooks left it, with an item in it.
        let old = crate::db::open_and_migrate(&path).unwrap();
        old.execute_batch(
            "DROP TRIGGER callbacks_finished; DROP TRIGGER callbacks_remove;
             DROP TABLE callbacks; DROP TABLE settings;
             INSERT INTO requests (id, request, created_at, updated_at)
             VALUES ('old', '{}', 1, 1);",
        )
        .unwrap();
        drop(old);

        let store = SqliteStore::open(&path).unwrap();
        let url = CallbackUrl::parse("https://hooks.example.com/x", Receivers::Public).unwrap();
        let id = RequestId::parse("new").unwrap();
        let body = RequestBody::parse(br#"{"a":1}"#, DEFAULT_BODY_LIMIT).unwrap();
        store
            .accept(id.clone(), body, Some(url.clone()))
            .await
            .unwrap();
        assert_eq!(
            store.next_due().await.unwrap(),
            None,
            "not due while pending"
        );
        let old = store.get(RequestId::parse("old").unwrap()).await.unwrap();
        assert_eq!(old.expect("the old item").callback, None);

        let rejected = Outcome::Rejected { error: "no".into() };
        store.record_outcome(&id, &rejected).await.unwrap();
        let due_at = store.next_due().await.unwrap().expect("due once finished");
        let none = HashMap::new();
        let claimed = store
            .claim(due_at, due_at + 60_000, 10, 10, &none)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].attempts, 1);
        let document: serde_json::Value = serde_json::from_slice(&claimed[0].document).unwrap();
        assert_eq!(document["status"], "failed");
        assert_eq!(document["callback"]["url"], url.as_str());
        assert_eq!(
            store.next_due().await.unwrap(),
            Some(due_at + 60_000),
            "leased"
        );

        let gave_up = Settled::GaveUp {
            error: "the receiver answered 410".into(),
        };
        store.settle(&claimed[0], gave_up).await.unwrap();
        let item = store.get(id.clone()).await.unwrap().unwrap();
        let callback = item.callback.expect("a callback");
        assert_eq!(callback.status, CallbackStatus::Failed);
        assert_eq!(callback.error.as_deref(), Some("the receiver answered 410"));
        let letters = store.dead_letters().await.unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].request_ids, ["new"]);
        assert_eq!(store.next_due().await.unwrap(), None);

        assert_eq!(store.redeliver_failed_webhooks().await.unwrap(), 1);
        assert!(
            store
                .next_due()
                .await
                .unwrap()
                .is_some_and(|at| at <= now_millis())
        );
        let again = store
            .claim(now_millis(), now_millis() + 1, 10, 10, &none)
            .await
            .unwrap();
        assert_eq!(
            again[0].webhook_id, claimed[0].webhook_id,
            "the same message"
        );
        assert_eq!(again[0].attempts, 1, "counted anew");
    }

    #[tokio::test]
    async fn a_claim_leaves_a_receiver_no_more_than_its_room() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let finished = Outcome::Rejected { error: "no".into() };
        for (id, url) in [
            ("a1", "https://a.example.com/x"),
            ("a2", "https://a.example.com/y"),
            ("a3", "https://a.example.com:8443/x"),
            ("b1", "https://b.example.com/x"),
            ("b2", "https://b.example.com/x"),
            ("b3", "https://b.example.com/x"),
        ] {
            let id = RequestId::parse(id).unwrap();
            let body = RequestBody::parse(br#"{"a":1}"#, DEFAULT_BODY_LIMIT).unwrap();
            let url = CallbackUrl::parse(url, Receivers::Public).unwrap();
            store.accept(id.clone(), body, Some(url)).await.unwrap();
            store.record_outcome(&id, &finished).await.unwrap();
        }
        // a.example.com has one attempt under way; its port 8443 is another receiver.
        let running = HashMap::from([("https://a.example.com/".to_owned(), 1)]);
        let now = now_millis();
        let claimed = store
            .claim(now, now + 60_000, 10, 2, &running)
            .await
            .unwrap();
        let mut ids: Vec<&str> = claimed.iter().map(|due| due.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["a1", "a3", "b1", "b2"]);
        let receivers: Vec<&str> = claimed.iter().map(|due| due.receiver.as_str()).collect();
        assert!(
            receivers.contains(&"https://a.example.com:8443/"),
            "{receivers:?}"
        );
        // The limit counts too.
        let rest = store
            .claim(now, now + 60_000, 1, 8, &HashMap::new())
            .await
            .unwrap();
        assert_eq!(rest.len(), 1);
    }

    #[tokio::test]
    async fn a_backlog_at_one_receiver_leaves_the_others_their_turn_and_is_walked_by_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let finished = Outcome::Rejected { error: "no".into() };
        let busy = (0..200).map(|n| (format!("a{n}"), "https://a.example.com/x"));
        for (id, url) in busy.chain([("b1".to_owned(), "https://b.example.com/x")]) {
            let id = RequestId::parse(&id).unwrap();
            let body = RequestBody::parse(br#"{"a":1}"#, DEFAULT_BODY_LIMIT).unwrap();
            let url = CallbackUrl::parse(url, Receivers::Public).unwrap();
            store.accept(id.clone(), body, Some(url)).await.unwrap();
            store.record_outcome(&id, &finished).await.unwrap();
        }
        let now = now_millis() + 1;
        let claimed = store
            .claim(now, now + 60_000, 64, 8, &HashMap::new())
            .await
            .unwrap();
        let b = claimed.iter().filter(|due| due.id.as_str() == "b1").count();
        assert_eq!((claimed.len(), b), (9, 1), "8 of a's 200 and b's one");

        let plans = store
            .writer
            .write(|conn| {
                let plan = |sql: String, args: &[&dyn rusqlite::ToSql]| {
                    let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let rows = plan.query_map(args, |row| row.get::<_, String>(3))?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                        .map(|rows| rows.join("; "))
                };
                Ok([
                    plan(next_receiver(), &[&""])?,
                    plan(oldest_due(), &[&"x", &1, &8])?,
                ])
            })
            .await
            .unwrap();
        for plan in plans {
            assert!(
                plan.contains("INDEX callbacks_receiver_due") && !plan.contains("TEMP B-TREE"),
                "{plan}"
            );
        }
    }
}
