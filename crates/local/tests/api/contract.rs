use std::{collections::BTreeSet, path::Path, process::Stdio};

use rusqlite::Connection;
use storefirst_contract::{
    Target, Throttling, Verdict,
    probes::{self, Webhooks},
    render, render_probes,
};

use storefirst_harness::Listening;

use crate::{API_KEY, spawn_local, spawn_local_with, webhooks::SECRET};

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

/// The probes of what only a deployed stack can confirm hold against `local` too
/// (throttling aside: no usage plan runs here), webhooks to a receiver on this machine
/// checked with `secret` included; answers the target, which knows what it stored.
pub async fn assumptions_hold(local: &Listening, secret: &str) -> Target {
    let target = Target::new(&local.url, API_KEY);
    let webhooks = Webhooks::Loopback {
        secret: secret.to_owned(),
    };
    let reports = target.probe(None, Throttling::Local, &webhooks).await;
    let report = render_probes(&reports);
    println!("{report}");
    for probe in &reports {
        if probe.assumption == probes::THROTTLED {
            assert!(
                matches!(probe.verdict, Verdict::NotApplicable(_)),
                "{report}"
            );
        } else {
            assert_eq!(
                probe.verdict,
                Verdict::Confirmed,
                "{}\n{report}",
                probe.assumption
            );
        }
    }
    target
}

/// The assumptions hold against the local runtime, which stores nothing they refuse.
#[tokio::test(flavor = "multi_thread")]
async fn the_aws_assumptions_hold_against_the_local_binary() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("probes.db");
    let args = ["--allow-loopback-webhooks", "--webhook-secret", SECRET];
    let local = spawn_local_with(&db, "warn", Stdio::inherit(), &args, &[]);
    let target = assumptions_hold(&local, SECRET).await;
    assert_eq!(stored_ids(&db), target.accepted_ids());

    // Checked against another secret, the same webhooks fail the verification.
    let other = Webhooks::Loopback {
        secret: "whsec_t3wnnnBy743yUyk9KTuy1i3/eilpDW6H".to_owned(),
    };
    let reports = Target::new(&local.url, API_KEY)
        .probe(None, Throttling::Local, &other)
        .await;
    let delivered = reports
        .iter()
        .find(|r| r.assumption == probes::DELIVERED)
        .unwrap();
    assert!(
        matches!(&delivered.verdict, Verdict::Contradicted(seen) if seen.contains("verification")),
        "{delivered:?}"
    );
}
