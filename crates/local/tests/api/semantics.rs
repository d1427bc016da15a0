//! Processing semantics with an injected processor, in process.

use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;

use crate::{
    eventually,
    inprocess::{Scripted, start},
};

/// Waits until the poller's checkpoint reaches the stream's last record as of now.
async fn stream_read_to_the_end(conn: &Connection) {
    let query = |sql: &str| -> i64 { conn.query_row(sql, [], |row| row.get(0)).unwrap() };
    let last_seq = query("SELECT max(seq) FROM stream");
    eventually(
        Duration::from_secs(20),
        "the poller reads the whole stream",
        || async { query("SELECT seq FROM checkpoints") >= last_seq },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_are_retried_until_they_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let processor = Scripted::default();
    let app = start(&dir.path().join("t.db"), processor.clone(), |_| {}).await;

    app.put("flaky", "flaky", json!({ "failures": 2 })).await;

    let item = app
        .wait_for("flaky", "succeeds", |item| item["status"] == "succeeded")
        .await;
    assert_eq!(item["attempts"], 3, "{item}");
    assert_eq!(item["result"], json!({ "call": 3 }));
    assert_eq!(processor.calls("flaky"), 3);
    assert!(app.dead_lettered().await.is_empty());
    app.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_always_fails_is_dead_lettered_without_blocking_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let processor = Scripted::default();
    let app = start(&dir.path().join("t.db"), processor.clone(), |c| {
        c.stream.maximum_retry_attempts = 2
    })
    .await;

    app.put("poison", "down", json!({})).await;
    let others: Vec<String> = (0..20).map(|i| format!("after-{i}")).collect();
    futures::future::join_all(others.iter().map(|id| app.put(id, "ok", json!({})))).await;

    for id in &others {
        app.wait_for(id, "succeeds", |item| item["status"] == "succeeded")
            .await;
    }
    eventually(
        Duration::from_secs(20),
        "the poison record is dead-lettered",
        || async { app.dead_lettered().await.contains(&"poison".to_owned()) },
    )
    .await;
    let (_, poison) = app.get("poison").await;
    assert_eq!(poison["status"], "pending", "{poison}");
    assert_eq!(poison["attempts"], 3, "one run plus two retries: {poison}");
    assert_eq!(poison["error"], "kitchen offline");
    assert_eq!(processor.calls("poison"), 3);
    app.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn panics_and_hangs_are_transient_failures() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(&dir.path().join("t.db"), Scripted::default(), |c| {
        c.stream.maximum_retry_attempts = 1
    })
    .await;

    app.put("panics", "panic", json!({})).await;
    app.put("hangs", "hang", json!({})).await;
    app.put("fine", "ok", json!({})).await;

    app.wait_for("fine", "succeeds", |item| item["status"] == "succeeded")
        .await;
    for (id, error) in [
        ("panics", "panicked: poisoned order"),
        ("hangs", "ran past the record timeout"),
    ] {
        let item = app
            .wait_for(id, "has failed twice", |item| item["attempts"] == 2)
            .await;
        assert_eq!(item["status"], "pending", "{item}");
        assert!(item["error"].as_str().unwrap().contains(error), "{item}");
    }
    // Once retried out they are dead-lettered like any transient failure (above); redrive
    // of dead letters is poison.rs's.
    app.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_delivery_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let processor = Scripted::default();
    let app = start(&db, processor.clone(), |_| {}).await;
    app.put("good", "ok", json!({})).await;
    app.put("bad", "reject", json!({})).await;
    let good = app
        .wait_for("good", "succeeds", |item| item["status"] == "succeeded")
        .await;
    let bad = app
        .wait_for("bad", "fails", |item| item["status"] == "failed")
        .await;
    app.runtime.shutdown().await;

    // Rewind the checkpoint: the whole stream is delivered again, as after a crash.
    let conn = Connection::open(&db).unwrap();
    conn.execute("UPDATE checkpoints SET seq = 0", []).unwrap();
    let app = start(&db, processor.clone(), |_| {}).await;
    stream_read_to_the_end(&conn).await;

    assert_eq!(processor.calls("good"), 2, "the INSERT was delivered again");
    assert_eq!(app.get("good").await.1, good);
    assert_eq!(app.get("bad").await.1, bad);
    app.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_inserts_reach_the_processor_and_succeeded_items_expire() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let processor = Scripted::default();
    let app = start(&db, processor.clone(), |c| {
        c.stream.succeeded_retention = Duration::from_secs(1);
        c.sweep_interval = Duration::from_millis(100);
    })
    .await;

    app.put("short-lived", "ok", json!({})).await;
    app.wait_for("short-lived", "succeeds", |item| {
        item["status"] == "succeeded"
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "GET answers 404 after expiry",
        || async { app.get("short-lived").await.0 == 404 },
    )
    .await;

    let conn = Connection::open(&db).unwrap();
    let events = || -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT event_name FROM stream WHERE id = 'short-lived' ORDER BY seq")
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    eventually(
        Duration::from_secs(10),
        "the sweeper deletes the item",
        || async { events().last().map(String::as_str) == Some("REMOVE") },
    )
    .await;
    assert_eq!(events(), ["INSERT", "MODIFY", "REMOVE"]);
    // Let the poller read the MODIFY and REMOVE records before counting calls.
    stream_read_to_the_end(&conn).await;
    assert_eq!(processor.calls("short-lived"), 1);
    app.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_waits_for_a_processor_far_behind_and_is_refused_past_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(&dir.path().join("t.db"), Scripted::default(), |c| {
        c.max_backlog = 4;
        c.admission_wait = Duration::from_millis(100);
    })
    .await;
    // Holds the poller: its batch is retried (300 ms timeouts) before it is dead-lettered.
    app.put("stuck", "hang", json!({})).await;

    let mut refused = None;
    for i in 0..20 {
        let id = format!("queued-{i}");
        let response = app.try_put(&id, &json!({ "behaviour": "ok" })).await;
        match response.status().as_u16() {
            202 => continue,
            503 => {
                refused = Some((id, response));
                break;
            }
            other => panic!("PUT {id} answered {other}"),
        }
    }
    let (id, response) = refused.expect("a request past the backlog limit is refused");
    assert_eq!(response.headers()["retry-after"], "1");
    let message = response.json::<serde_json::Value>().await.unwrap()["message"].to_string();
    assert!(message.contains("stream records behind"), "{message}");
    assert_eq!(app.get(&id).await.0, 404, "a refused request is not stored");

    // Once the stuck record is dead-lettered, the poller moves on and ingest resumes.
    eventually(
        Duration::from_secs(20),
        "a new request is accepted",
        || async {
            let response = app.try_put("later", &json!({ "behaviour": "ok" })).await;
            response.status() == 202
        },
    )
    .await;
    app.wait_for("later", "succeeds", |item| item["status"] == "succeeded")
        .await;
    app.runtime.shutdown().await;
}
