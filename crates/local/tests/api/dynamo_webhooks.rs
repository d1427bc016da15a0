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
use storefirst_harness::{Listening, lambda_mode, moto_url, sdk_config, unique};

use crate::{
    contract::assumptions_hold,
    eventually, spawn_local_with,
    sqs_mapping::attributes,
    webhooks::{
        Api, Beside, Receiver, SECRET, a_503_is_retried_after_its_retry_after, delivered_twice,
        generated, given_up, printed_secret, redrive, restarted_on_the_kept_secret,
        silent_is_not_delivered, stalled, with_and_without_callback, worst,
    },
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
    let name = QueueAttributeName::ApproximateNumberOfMessages;
    attributes(&sqs, &url, name.clone()).await[&name]
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_request_is_delivered_signed_and_one_without_callback_is_not() {
    let (dir, table) = (tempfile::tempdir().unwrap(), unique("hooks"));
    let local = spawn(&dir.path().join("l.db"), &table, &[]);
    let api = Api::of(&local);
    let (receiver, base) = Receiver::start().await;

    let (id, silent) = with_and_without_callback(&api, &format!("{base}/ok")).await;
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

    let other = silent_is_not_delivered(&api, &receiver, &silent, Duration::from_secs(1), 2).await;
    assert_eq!(other["status"], "succeeded", "{other}");
    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_is_retried_after_its_retry_after_with_the_same_webhook_id() {
    let (dir, table) = (tempfile::tempdir().unwrap(), unique("hooks"));
    let local = spawn(&dir.path().join("l.db"), &table, &[]);
    a_503_is_retried_after_its_retry_after(&local).await;
    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_4xx_is_given_up_dead_lettered_and_redriven() {
    let (dir, table) = (tempfile::tempdir().unwrap(), unique("hooks"));
    let db = dir.path().join("l.db");
    let local = spawn(&db, &table, &[]);
    let api = Api::of(&local);
    let (receiver, base) = Receiver::start().await;

    let id = given_up(&api, &base).await;
    eventually(
        Duration::from_secs(10),
        "the delivery is in the dead letters",
        || async { dead_letters(&table).await == 1 },
    )
    .await;

    *receiver.healed.lock().unwrap() = true;
    let (_, envs) = lambda_args(&table, &[]);
    redrive(&["--dynamodb-table", &table], &db, &envs);
    delivered_twice(&api, &receiver, &id, "gone", 1).await;
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

    let id = stalled(&api, &receiver, &base, Duration::from_secs(30)).await;
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
    delivered_twice(&api, &receiver, &id, "stall", 1).await;
    assert!(local.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_receiver_does_not_delay_a_healthy_one() {
    let (dir, table) = (tempfile::tempdir().unwrap(), unique("hooks"));
    let local = spawn(&dir.path().join("l.db"), &table, &[]);
    let api = Api::of(&local);

    let Beside { alone, beside, .. } =
        Beside::measure(&api, "Lambda mode", 10, 20, 1, Duration::from_secs(30)).await;
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
    let start = || {
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        spawn_local_with(&db, "warn", Stdio::inherit(), &args, &envs)
    };
    let local = start();
    let lines: Vec<String> = (0..6).map(|_| local.next_line()).collect();
    let (announced, secret) = generated(&lines);
    assert!(announced.contains("Secrets Manager"), "{announced}");
    assert!(
        announced.contains(&format!("webhook-secret --dynamodb-table {table}")),
        "{announced}"
    );
    // Serving (and so past installing its signal handlers) before it is stopped.
    assert_eq!(Api::of(&local).get("none").await.0, StatusCode::NOT_FOUND);
    assert!(local.terminate());

    assert_eq!(printed_secret(&["--dynamodb-table", &table], &envs), secret);

    restarted_on_the_kept_secret(start(), 6, "kept in Secrets Manager", secret).await;
}

/// The probes hold through both zips too, a webhook to a receiver on this machine
/// included.
#[tokio::test(flavor = "multi_thread")]
async fn the_aws_assumptions_hold_through_the_lambda_zips() {
    let (dir, table) = (tempfile::tempdir().unwrap(), unique("probes"));
    let local = spawn(&dir.path().join("l.db"), &table, &[]);
    assumptions_hold(&local, SECRET).await;
    assert!(local.terminate());
}
