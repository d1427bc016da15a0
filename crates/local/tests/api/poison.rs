//! Redrive: requests left stuck by a poison record (dead-lettered, still pending) are
//! processed once the processor is fixed, and nothing else is run again. How they got
//! stuck (retries, dead letters, the stream flowing past them) is semantics.rs's.

use std::{process::Command, sync::Arc, time::Duration};

use rusqlite::Connection;
use serde_json::json;
use storefirst_domain::StreamSettings;
use storefirst_pipeline::redrive;

use crate::{
    eventually,
    inprocess::{Scripted, start},
    stdout_of_success,
};

#[tokio::test(flavor = "multi_thread")]
async fn dead_lettered_requests_are_redriven_once_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let processor = Scripted::default();
    let app = start(&dir.path().join("p.db"), processor.clone(), |c| {
        c.stream.maximum_retry_attempts = 2;
    })
    .await;
    app.put("panics", "panic", json!({})).await;
    app.put("hangs", "hang", json!({})).await;
    let others: Vec<String> = (0..10).map(|i| format!("flowing-{i}")).collect();
    for id in &others {
        app.put(id, "ok", json!({})).await;
    }
    for id in &others {
        app.wait_for(id, "succeeds", |item| item["status"] == "succeeded")
            .await;
    }
    eventually(
        Duration::from_secs(30),
        "both poison records are dead-lettered",
        || async {
            let dead = app.dead_lettered().await;
            dead.contains(&"panics".to_owned()) && dead.contains(&"hangs".to_owned())
        },
    )
    .await;
    let calls_before: Vec<u32> = others.iter().map(|id| processor.calls(id)).collect();

    processor.fix();
    let settings = StreamSettings {
        record_timeout: Duration::from_millis(300),
        ..StreamSettings::DEFAULT
    };
    let report = redrive(app.runtime.store(), Arc::new(processor.clone()), &settings)
        .await
        .unwrap();

    assert_eq!(
        (report.found, report.succeeded, report.still_failing),
        (2, 2, 0),
        "{report:?}"
    );
    for id in ["panics", "hangs"] {
        let (_, item) = app.get(id).await;
        assert_eq!(
            (item["status"].as_str(), item["attempts"].as_i64()),
            (Some("succeeded"), Some(4)),
            "one run plus two retries, then the redrive: {item}"
        );
    }
    assert!(
        app.dead_lettered().await.is_empty(),
        "redriven dead letters are cleared"
    );
    let calls_after: Vec<u32> = others.iter().map(|id| processor.calls(id)).collect();
    assert_eq!(
        calls_before, calls_after,
        "redrive runs only the stuck requests"
    );
    app.runtime.shutdown().await;
}

/// `storefirst-local redrive`, which `cargo xtask redrive` runs, on a stuck order.
#[test]
fn the_redrive_command_processes_stuck_requests() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stuck.db");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_storefirst-local"))
            .args(["redrive", "--log", "warn", "--db"])
            .arg(&db)
            .output()
            .unwrap()
    };
    assert!(run().status.success(), "redrive on an empty database");
    let conn = Connection::open(&db).unwrap();
    let order = r#"{"restaurant":"Roma","items":[{"dish":"tiramisu","quantity":2}]}"#;
    conn.execute(
        "INSERT INTO requests (id, request, attempts, error, created_at, updated_at)
         VALUES ('stuck', ?1, 4, 'kitchen offline', 0, 0)",
        [order],
    )
    .unwrap();

    let stdout = stdout_of_success(&run());
    assert!(stdout.contains("1 stuck requests, 1 succeeded"), "{stdout}");
    let (status, result, attempts): (String, String, i64) = conn
        .query_row(
            "SELECT status, result, attempts FROM requests WHERE id = 'stuck'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), attempts), ("succeeded", 5));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&result).unwrap(),
        json!({"total_cents": 1100, "items": 1})
    );
}
