//! Nothing that got a 202 is lost when the process is killed, every outcome is written
//! once however often a record is delivered, and a kill re-runs at most the batch it
//! interrupted.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::File,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use rusqlite::Connection;
use storefirst_domain::StreamSettings;

use crate::{API_KEY, eventually, spawn_local, spawn_local_logging};

const CLIENTS: usize = 32;
const ROUNDS: usize = 5;
/// Where the in-process invoker logs each batch's `runs=N` at debug level.
const RUNS_LOG: &str = "storefirst_pipeline::ports=debug";
const ORDER: &str = r#"{"restaurant":"Roma","items":[{"dish":"marinara","quantity":1}]}"#;

/// Posts from `CLIENTS` concurrent clients until the server stops answering.
async fn load(url: String, acked: Arc<Mutex<BTreeSet<String>>>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let clients = (0..CLIENTS).map(|_| {
        let (client, url, acked) = (client.clone(), url.clone(), acked.clone());
        tokio::spawn(async move {
            loop {
                let sent = client
                    .post(format!("{url}/requests"))
                    .header("x-api-key", API_KEY)
                    .header("content-type", "application/json")
                    .body(ORDER)
                    .send()
                    .await;
                let Ok(response) = sent else { return };
                if response.status() != 202 {
                    continue;
                }
                let Ok(body) = response.json::<serde_json::Value>().await else {
                    return;
                };
                acked
                    .lock()
                    .unwrap()
                    .insert(body["id"].as_str().unwrap().to_owned());
            }
        })
    });
    futures::future::join_all(clients).await;
}

/// A kill moment between 100 and 1600 ms into the load, different every round and run.
fn random_moment() -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Duration::from_millis(100 + u64::from(nanos % 1500))
}

fn ids(conn: &Connection, sql: &str) -> BTreeSet<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Processor runs that the invoker logged (`runs=N` per batch) before it stopped.
fn logged_runs(log: &Path) -> u64 {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.split_whitespace()
        .filter_map(|word| word.strip_prefix("runs=")?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_accepted_request_survives_sigkill_and_is_processed_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("durable.db");
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut runs = 0;

    for round in 0..ROUNDS {
        let log = dir.path().join(format!("round-{round}.log"));
        let local = spawn_local_logging(&db, RUNS_LOG, File::create(&log).unwrap());
        let load = tokio::spawn(load(local.url.clone(), acked.clone()));
        tokio::time::sleep(random_moment()).await;
        local.kill();
        load.await.unwrap();
        runs += logged_runs(&log);

        // Restart on the same database: everything acknowledged is there and gets done.
        let local = spawn_local_logging(&db, RUNS_LOG, File::create(&log).unwrap());
        let acked_now = acked.lock().unwrap().clone();
        let conn = Connection::open(&db).unwrap();
        let present = ids(&conn, "SELECT id FROM requests");
        let missing: Vec<&String> = acked_now.difference(&present).collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} acknowledged requests lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        eventually(
            Duration::from_secs(60),
            "every acknowledged request succeeds",
            || async {
                acked_now.is_subset(&ids(
                    &conn,
                    "SELECT id FROM requests WHERE status = 'succeeded'",
                ))
            },
        )
        .await;
        // Stopped cleanly, so that the last batches' runs are logged too.
        assert!(local.terminate(), "storefirst-local exits 0 on SIGTERM");
        runs += logged_runs(&log);
        println!(
            "round {round}: {} acknowledged so far, none lost",
            acked_now.len()
        );
    }

    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= ROUNDS * 10,
        "the load hardly ran: {} acknowledged",
        acked.len()
    );
    // Every applied outcome write leaves one MODIFY record in the stream.
    let conn = Connection::open(&db).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, count(*) FROM stream WHERE event_name = 'MODIFY' GROUP BY id")
        .unwrap();
    let writes: BTreeMap<String, i64> = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let twice: Vec<_> = writes.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "outcomes written more than once: {twice:?}"
    );
    // Requests committed just before a kill may never have had their 202 delivered.
    let written: BTreeSet<String> = writes.keys().cloned().collect();
    assert!(
        acked.is_subset(&written),
        "{} acknowledged requests have no outcome",
        acked.difference(&written).count()
    );
    // At least once: every outcome comes from a processor run. A kill can cut off a run's
    // log line, but then also its checkpoint, which comes after: the record runs again.
    let (runs, writes) = (runs as usize, writes.len());
    assert!(
        runs >= writes,
        "{runs} processor runs logged for {writes} outcomes: is `runs=` still logged at {RUNS_LOG}?"
    );
    println!(
        "{} acknowledged, {writes} outcomes, {runs} processor runs",
        acked.len()
    );
    // Bounded re-runs: only the batch in flight at a kill is delivered again.
    let batch = StreamSettings::DEFAULT.batch_size as usize;
    assert!(
        runs <= writes + ROUNDS * batch,
        "{runs} processor runs for {writes} outcomes and {ROUNDS} kills: more than one batch of \
         {batch} records re-ran per kill"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_stops_cleanly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("graceful.db");
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let local = spawn_local(&db);
    let load = tokio::spawn(load(local.url.clone(), acked.clone()));
    tokio::time::sleep(Duration::from_millis(700)).await;

    let clean = tokio::task::spawn_blocking(move || local.terminate())
        .await
        .unwrap();

    assert!(clean, "storefirst-local exits 0 on SIGTERM");
    load.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    let _restarted = spawn_local(&db);
    let conn = Connection::open(&db).unwrap();
    eventually(
        Duration::from_secs(60),
        "every acknowledged request succeeds",
        || async {
            acked.is_subset(&ids(
                &conn,
                "SELECT id FROM requests WHERE status = 'succeeded'",
            ))
        },
    )
    .await;
    // Every request was processed to its outcome exactly once.
    let twice: i64 = conn
        .query_row(
            "SELECT count(*) FROM requests WHERE attempts != 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(twice, 0);
}
