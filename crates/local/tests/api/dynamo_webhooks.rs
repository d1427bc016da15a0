//! Webhooks in the Lambda mode on moto: the deployable notifier zip (arm64, under qemu)
//! fed by the table's stream and the delivery queue the mode creates, delivering to the
//! receiver of the SQLite mode's tests, which verifies every signature with the Standard
//! Webhooks library.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use aws_sdk_sqs::types::QueueAttributeName;
use reqwest::StatusCode;
use storefirst_contract::{
    Target, Throttling, Verdict,
    probes::{self, Webhooks},
    render_probes,
};
use storefirst_harness::{Listening, lambda_mode, moto_url, sdk_config, unique};

use crate::{
    eventually, spawn_local_with,
    webhooks::{Api, Receiver, SECRET, id_of, latencies},
};

/// Set by `cargo xtask test` to the notifier zip it built.
const NOTIFIER_ZIP_VAR: &str = "STOREFIRST_TEST_NOTIFIER_ZIP";

/// The Lambda mode with the notifier, on a table of its own: arguments and environment.
fn lambda_args(table: &str, extra: &[&str]) -> (Vec<String>, Vec<(&'static str, String)>) {
    let zip = std::env::var(NOTIFIER_ZIP_VAR).unwrap_or_else(|_| {
        panic!(
            "{NOTIFIER_ZIP_VAR} is not set: run the tests with `cargo xtask test`, which builds \
             target/lambda/notifier/bootstrap.zip"
        )
    });
    let (mut args, envs) = lambda_mode(table);
    args.extend(["--notifier-zip", &zip, "--allow-loopback-webhooks"].map(String::from));
    args.extend(extra.iter().map(|a| a.to_string()));
    (args, envs)
}

/// With the receiver's secret.
fn spawn(db: &Path, table: &str, extra: &[&str]) -> Listening {
    let (args, envs) = lambda_args(table, &[&["--webhook-secret", SECRET], extra].concat());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_local_with(db, "warn", Stdio::inherit(), &args, &envs)
}

/// Messages waiting in `table`'s dead-letter queue.
async fn dead_letters(table: &str) -> usize {
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&moto_url()).await);
    let url = sqs
        .get_queue_url()
        .queue_name(format!("{table}-webhook-dead-letters"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    attributes[&QueueAttributeName::ApproximateNumberOfMessages]
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_request_is_delivered_signed_and_one_without_callback_is_not() {
    let (dir, table) = (tempfile::tempdir().unwrap(), unique("hooks"));
    let local = spawn(&dir.path().join("l.db"), &table, &[]);
    let api = Api::of(&local);
    let (receiver, base) = Receiver::start().await;

    let (status, accepted) = api.post(Some(&format!("{base}/ok"))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = id_of(&accepted);
    let (_, silent) = api.post(None).await;
    let (status, body) = api.put("same", &format!("{base}/ok")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = api.put("same", &format!("{base}/other")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let item = api.callback_of(&id, "delivered").await;
    assert_eq!(item["callback"]["attempts"], 1, "{item}");
    assert_eq!(item["callback"]["url"], format!("{base}/ok"));
    api.callback_of("same", "delivered").await;
    let delivered = receiver.seen("ok");
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    let document = &delivered
        .iter()
        .find(|d| d.document["id"] == id.as_str())
        .expect("the POSTed request's webhook")
        .document;
    assert_eq!(document["status"], item["status"]);
    assert_eq!(document["result"], item["result"]);
    assert_eq!(document["request"], item["request"]);

    let (_, other) = api.get(&id_of(&silent)).await;
    assert_eq!(other["status"], "succeeded", "{other}");
    assert!(other.get("callback").is_none(), "{other}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        receiver.total(),
        2,
        "only the requests with a callback are delivered"
    );
    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_is_retried_after_its_retry_after_with_the_same_webhook_id() {
    let (dir, table) = (tempfile::tempdir().unwrap(), unique("hooks"));
    let local = spawn(&dir.path().join("l.db"), &table, &[]);
    let api = Api::of(&local);
    let (receiver, base) = Receiver::start().await;

    let id = id_of(&api.post(Some(&format!("{base}/flaky"))).await.1);
    let item = api.callback_of(&id, "delivered").await;
    assert_eq!(item["callback"]["attempts"], 2, "{item}");
    let seen = receiver.seen("flaky");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].webhook_id, seen[1].webhook_id);
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}, not Retry-After"
    );
    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_4xx_is_given_up_dead_lettered_and_redriven() {
    let (dir, table) = (tempfile::tempdir().unwrap(), unique("hooks"));
    let db = dir.path().join("l.db");
    let local = spawn(&db, &table, &[]);
    let api = Api::of(&local);
    let (receiver, base) = Receiver::start().await;

    let id = id_of(&api.post(Some(&format!("{base}/gone"))).await.1);
    let item = api.callback_of(&id, "failed").await;
    assert_eq!(item["callback"]["attempts"], 1, "not retried: {item}");
    let error = item["callback"]["error"].as_str().unwrap();
    assert!(error.contains("400"), "{error}");
    eventually(
        Duration::from_secs(10),
        "the delivery is in the dead letters",
        || async { dead_letters(&table).await == 1 },
    )
    .await;

    *receiver.healed.lock().unwrap() = true;
    let (_, envs) = lambda_args(&table, &[]);
    let redrive = Command::new(env!("CARGO_BIN_EXE_storefirst-local"))
        .args([
            "redrive",
            "--log",
            "warn",
            "--dynamodb-table",
            &table,
            "--db",
        ])
        .arg(&db)
        .envs(envs)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&redrive.stdout);
    assert!(
        redrive.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&redrive.stderr)
    );
    assert!(said.contains("1 given-up webhooks are due again"), "{said}");
    let item = api.callback_of(&id, "delivered").await;
    assert_eq!(item["callback"]["attempts"], 1, "{item}");
    let seen = receiver.seen("gone");
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].webhook_id, seen[1].webhook_id,
        "the same message again"
    );
    assert_eq!(dead_letters(&table).await, 0);
    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_in_flight_when_the_process_is_killed_still_arrives() {
    let (dir, table) = (tempfile::tempdir().unwrap(), unique("hooks"));
    let db = dir.path().join("l.db");
    // A delivery received and not settled comes back after 5 s.
    let visibility = ["--webhook-visibility-timeout-secs", "5"];
    let local = spawn(&db, &table, &visibility);
    let api = Api::of(&local);
    let (receiver, base) = Receiver::start().await;

    let id = id_of(&api.post(Some(&format!("{base}/stall"))).await.1);
    eventually(
        Duration::from_secs(30),
        "the first attempt reaches the receiver",
        || async { !receiver.seen("stall").is_empty() },
    )
    .await;
    // The whole machine goes down: the functions' processes too, or one of them would
    // settle the attempt itself once the receiver times out.
    // Each thread lists the children it started.
    let tasks = std::fs::read_dir(format!("/proc/{}/task", local.id())).expect("Linux /proc");
    let children: Vec<String> = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|pids| {
            pids.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!children.is_empty(), "the functions run as child processes");
    for child in &children {
        let _ = Command::new("kill").args(["-KILL", child]).status();
    }
    local.kill();

    let local = spawn(&db, &table, &visibility);
    let api = Api::of(&local);
    // Received and never settled, the delivery comes back after the visibility timeout,
    // as it was: the attempt the crash cut short was never recorded.
    let item = api.callback_of(&id, "delivered").await;
    assert_eq!(item["callback"]["attempts"], 1, "{item}");
    let seen = receiver.seen("stall");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0].webhook_id, seen[1].webhook_id,
        "the same webhook again"
    );
    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_receiver_does_not_delay_a_healthy_one() {
    let (dir, table) = (tempfile::tempdir().unwrap(), unique("hooks"));
    let local = spawn(&dir.path().join("l.db"), &table, &[]);
    let api = Api::of(&local);
    let (healthy, base) = Receiver::start().await;
    let (hanging, stuck) = Receiver::start().await;

    let alone = latencies(&api, &healthy, "ok", &format!("{base}/ok"), 10).await;
    for _ in 0..20 {
        api.post(Some(&format!("{stuck}/hang"))).await;
    }
    eventually(
        Duration::from_secs(30),
        "the hanging receiver holds attempts",
        || async { !hanging.seen("hang").is_empty() },
    )
    .await;
    let beside = latencies(&api, &healthy, "ok", &format!("{base}/ok"), 10).await;
    let worst = |all: &[Duration]| all.iter().max().copied().unwrap();
    println!(
        "healthy receiver in the Lambda mode, 202 to receipt, worst of 10: alone {:?}, \
         beside a hanging one {:?}",
        worst(&alone),
        worst(&beside)
    );
    // A hanging attempt holds its batch for the sender's 5 s timeout: a healthy delivery
    // never waits for one.
    assert!(
        worst(&beside) < worst(&alone) + Duration::from_secs(3),
        "{beside:?} against {alone:?}"
    );
    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_secret_is_kept_in_secrets_manager_and_printed_again() {
    let (dir, table) = (tempfile::tempdir().unwrap(), unique("hooks"));
    let db = dir.path().join("l.db");
    let (args, envs) = lambda_args(&table, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let start = || spawn_local_with(&db, "warn", Stdio::inherit(), &args, &envs);
    let local = start();
    let lines: Vec<String> = (0..6).map(|_| local.next_line()).collect();
    let announced = lines
        .iter()
        .find(|l| l.contains("generated"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    let secret = announced
        .split_whitespace()
        .find(|word| word.starts_with("whsec_"))
        .expect("the secret itself");
    assert!(announced.contains("Secrets Manager"), "{announced}");
    assert!(
        announced.contains(&format!("webhook-secret --dynamodb-table {table}")),
        "{announced}"
    );
    // Serving (and so past installing its signal handlers) before it is stopped.
    assert_eq!(Api::of(&local).get("none").await.0, StatusCode::NOT_FOUND);
    assert!(local.terminate());

    let printed = Command::new(env!("CARGO_BIN_EXE_storefirst-local"))
        .args([
            "webhook-secret",
            "--log",
            "warn",
            "--dynamodb-table",
            &table,
        ])
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(String::from_utf8_lossy(&printed.stdout).trim(), secret);

    let again = start();
    let lines: Vec<String> = (0..6).map(|_| again.next_line()).collect();
    assert!(
        lines.iter().any(|l| l.contains("kept in Secrets Manager"))
            && !lines.concat().contains(secret),
        "{lines:?}"
    );
    assert_eq!(Api::of(&again).get("none").await.0, StatusCode::NOT_FOUND);
    assert!(again.terminate());
}

/// The probes of what only a deployed stack can confirm hold through both zips too
/// (throttling aside: no usage plan here), a webhook to a receiver on this machine
/// included.
#[tokio::test(flavor = "multi_thread")]
async fn the_aws_assumptions_hold_through_the_lambda_zips() {
    let (dir, table) = (tempfile::tempdir().unwrap(), unique("probes"));
    let local = spawn(&dir.path().join("l.db"), &table, &[]);
    let target = Target::new(&local.url, crate::API_KEY);
    let webhooks = Webhooks::Loopback {
        secret: SECRET.to_owned(),
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
    assert!(local.terminate());
}
