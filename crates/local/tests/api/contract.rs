use std::{collections::BTreeSet, path::Path};

use rusqlite::Connection;
use storefirst_contract::{Target, Throttling, Verdict, probes, render, render_probes};

use crate::{API_KEY, spawn_local};

/// The HTTP contract suite against the real binary with a fresh database.
#[tokio::test(flavor = "multi_thread")]
async fn the_contract_holds_against_the_local_binary() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("contract.db");
    let local = spawn_local(&db);
    let target = Target::new(&local.url, API_KEY);

    let reports = target.run().await;

    let report = render(&reports);
    println!("{report}");
    assert!(
        reports.iter().all(|r| r.result.is_ok()),
        "contract failures:\n{report}"
    );
    // Nothing refused was stored: the table holds exactly the ids that got a 202.
    assert_eq!(stored_ids(&db), target.accepted_ids());
}

fn stored_ids(db: &Path) -> BTreeSet<String> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM requests").unwrap();
    stmt.query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The probes of what only a deployed stack can confirm hold against the local runtime
/// too (throttling aside: it has no usage plan), and store nothing they refuse.
#[tokio::test(flavor = "multi_thread")]
async fn the_aws_assumptions_hold_against_the_local_binary() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("probes.db");
    let local = spawn_local(&db);
    let target = Target::new(&local.url, API_KEY);

    let reports = target.probe(None, Throttling::Local).await;

    let report = render_probes(&reports);
    println!("{report}");
    for probe in &reports {
        let expected = if probe.assumption == probes::THROTTLED {
            Verdict::NotApplicableLocally
        } else {
            Verdict::Confirmed
        };
        assert_eq!(probe.verdict, expected, "{}\n{report}", probe.assumption);
    }
    assert_eq!(stored_ids(&db), target.accepted_ids());
}
