use rusqlite::Connection;
use storefirst_contract::{Target, render};

use crate::{API_KEY, LocalProcess};

/// The HTTP contract suite against the real binary with a fresh database.
#[tokio::test(flavor = "multi_thread")]
async fn the_contract_holds_against_the_local_binary() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("contract.db");
    let local = LocalProcess::spawn(&db);
    let target = Target::new(&local.url, API_KEY);

    let reports = target.run().await;

    let report = render(&reports);
    println!("{report}");
    assert!(
        reports.iter().all(|r| r.result.is_ok()),
        "contract failures:\n{report}"
    );
    // Nothing refused was stored: the table holds exactly the ids that got a 202.
    let conn = Connection::open(&db).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM requests").unwrap();
    let stored: std::collections::BTreeSet<String> = stmt
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(stored, target.accepted_ids());
}
