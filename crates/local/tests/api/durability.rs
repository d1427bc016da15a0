//! Nothing that got a 202 is lost when the process is killed.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use rusqlite::Connection;

use crate::{API_KEY, LocalProcess, eventually};

const CLIENTS: usize = 32;
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

#[tokio::test(flavor = "multi_thread")]
async fn every_accepted_request_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("durable.db");
    let acked = Arc::new(Mutex::new(BTreeSet::new()));

    for round in 0..3 {
        let local = LocalProcess::spawn(&db);
        let load = tokio::spawn(load(local.url.clone(), acked.clone()));
        let before = acked.lock().unwrap().len();
        eventually(
            Duration::from_secs(30),
            "requests are being accepted",
            || async { acked.lock().unwrap().len() >= before + 500 },
        )
        .await;
        local.kill();
        load.await.unwrap();
        println!(
            "round {round}: {} acknowledged so far",
            acked.lock().unwrap().len()
        );
    }

    let local = LocalProcess::spawn(&db);
    let acked = acked.lock().unwrap().clone();
    let conn = Connection::open(&db).unwrap();
    let stored = |sql: &str| -> BTreeSet<String> {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let present = stored("SELECT id FROM requests");
    let missing: Vec<&String> = acked.difference(&present).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged requests lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    eventually(
        Duration::from_secs(60),
        "every acknowledged request succeeds",
        || async {
            acked.is_subset(&stored(
                "SELECT id FROM requests WHERE status = 'succeeded'",
            ))
        },
    )
    .await;
    let client = reqwest::Client::new();
    for id in acked.iter().step_by(50) {
        let response = client
            .get(format!("{}/requests/{id}", local.url))
            .header("x-api-key", API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{id}");
    }
    println!("{} acknowledged, 0 lost", acked.len());
}
