//! `test-e2e`: the HTTP contract suite (storefirst-contract, the same code that tests the
//! local runtime) against a deployed stack, an explicit URL, or a local runtime it starts,
//! then the probes of what only a deployed API can confirm.

use std::{collections::BTreeSet, path::Path, process::Stdio, time::Duration};

use aws_sdk_dynamodb::{
    error::DisplayErrorContext,
    types::{AttributeValue, ReturnValue},
};
use serde_json::Value;
use storefirst_contract::{
    CheckReport, ProbeReport, Storage, Target, Throttling,
    probes::{BoxFuture, Cors, Webhooks},
    render, render_probes,
};
use storefirst_infra::stack::{api::THROTTLE_BURST, cors};
use storefirst_pipeline::listening::listening_url;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{Aws, Console, Error, aws::failed, outputs_path};

/// A deployed API answers a request once the function has run: cold starts and the stream's
/// delay take longer than the local runtime.
const DEPLOYED_SETTLE_TIMEOUT: Duration = Duration::from_secs(90);
const LOCAL_API_KEY: &str = "storefirst-e2e";

/// What a run found: the suite's checks, then the probes.
#[derive(Debug)]
pub struct E2eRun {
    pub checks: Vec<CheckReport>,
    pub probes: Vec<ProbeReport>,
}

impl E2eRun {
    async fn of(
        target: &Target,
        storage: Option<&dyn Storage>,
        throttling: Throttling,
        webhooks: &Webhooks,
    ) -> Self {
        // The probes after the suite: the throttling burst would refuse its requests.
        let checks = target.run().await;
        let probes = target.probe(storage, throttling, webhooks).await;
        Self { checks, probes }
    }

    pub fn render(&self) -> String {
        format!("{}\n{}", render(&self.checks), render_probes(&self.probes))
    }

    /// What failed, as a sentence, or `None` when every check passed and no probe was
    /// contradicted.
    pub fn failures(&self) -> Option<String> {
        let checks = self.checks.iter().filter(|c| c.result.is_err()).count();
        let probes = self
            .probes
            .iter()
            .filter(|p| p.verdict.is_contradicted())
            .count();
        (checks + probes > 0).then(|| {
            format!(
                "{checks} contract checks failed and {probes} assumptions were contradicted: \
                 see the reasons above"
            )
        })
    }
}

/// The table itself, for the probes' "nothing stored": DeleteItem with `ALL_OLD` tells
/// whether an item was there (and removes it) with the one permission the deploy role
/// has on the table.
pub struct Table<'a> {
    pub aws: &'a Aws,
    pub name: &'a str,
}

impl Storage for Table<'_> {
    fn holds<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let deleted = self
                .aws
                .dynamodb
                .delete_item()
                .table_name(self.name)
                .key("id", AttributeValue::S(id.to_owned()))
                .return_values(ReturnValue::AllOld)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "DynamoDB DeleteItem {id:?} on {}: {}",
                        self.name,
                        DisplayErrorContext(&e)
                    )
                })?;
            Ok(deleted.attributes.is_some_and(|item| !item.is_empty()))
        })
    }
}

/// The usage plan's throttling, as the stack synthesizes it.
const DEPLOYED: Throttling = Throttling::Deployed {
    burst: THROTTLE_BURST,
};

/// What the suite needs from a deployed stack.
#[derive(Debug, Clone)]
pub struct StackApi {
    pub url: String,
    pub api_key: String,
    pub table: String,
    /// The allowed origins, from the CorsOrigins output (unknown to a stack without it).
    pub cors: Cors,
}

/// The stack's URL and table from the outputs file `deploy` wrote, and the API key's value
/// from API Gateway (the outputs hold only its id).
pub async fn stack_api(aws: &Aws, stack: &str, outputs_dir: &Path) -> Result<StackApi, Error> {
    let path = outputs_path(outputs_dir, stack);
    let problem = |reason: String| Error::Outputs {
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        problem(format!(
            "{e}: deploy the stack first with `cargo xtask deploy --stack {stack}`"
        ))
    })?;
    let json: Value = serde_json::from_str(&text).map_err(|e| {
        problem(format!(
            "not JSON ({e}): deploy again with `cargo xtask deploy --stack {stack}`"
        ))
    })?;
    let output = |key: &str| {
        json[stack][key]
            .as_str()
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                problem(format!(
                    "no {key} output for {stack}: deploy again with `cargo xtask deploy --stack {stack}`"
                ))
            })
    };
    let key_id = output("ApiKeyId")?;
    let key = aws
        .apigateway
        .get_api_key()
        .api_key(&key_id)
        .include_value(true)
        .send()
        .await
        .map_err(failed("API Gateway GetApiKey"))?;
    let api_key = key
        .value()
        .ok_or_else(|| {
            problem(format!(
                "API Gateway returned no value for the key {key_id}"
            ))
        })?
        .to_owned();
    Ok(StackApi {
        url: output("ApiUrl")?,
        api_key,
        table: output("TableName")?,
        cors: match json[stack]["CorsOrigins"].as_str() {
            None => Cors::Unknown,
            Some(cors::STAGE_NONE) => Cors::None,
            Some(cors::STAGE_ANY) => Cors::Any,
            Some(list) => Cors::Allows(list.split(',').next().unwrap_or_default().to_owned()),
        },
    })
}

/// The delivery probe's receiver that the user runs, for a runtime that delivers to public
/// names only: the notifier's queue and cold start take about as long as the processing.
fn remote(receiver: &str) -> Webhooks {
    Webhooks::Remote {
        url: receiver.to_owned(),
        within: DEPLOYED_SETTLE_TIMEOUT,
    }
}

/// Runs the suite and the probes against a deployed stack, then deletes the requests they
/// created. With `receiver` (an https URL the user runs that answers 2xx), the delivery
/// probe checks the stack's notifier end to end; without, it is not applicable.
pub async fn against_stack(
    aws: &Aws,
    stack: &str,
    outputs_dir: &Path,
    receiver: Option<&str>,
    console: &Console,
) -> Result<E2eRun, Error> {
    let api = stack_api(aws, stack, outputs_dir).await?;
    console.note(format!(
        "contract suite and probes against {stack} at {}",
        api.url
    ));
    let target = Target::new(&api.url, &api.api_key)
        .with_settle_timeout(DEPLOYED_SETTLE_TIMEOUT)
        .with_cors(api.cors.clone());
    let table = Table {
        aws,
        name: &api.table,
    };
    let webhooks = receiver.map_or(Webhooks::Unreachable, remote);
    let run = E2eRun::of(&target, Some(&table), DEPLOYED, &webhooks).await;
    let ids = target.accepted_ids();
    remove_requests(aws, &api.table, &ids).await?;
    console.note(format!(
        "removed the {} requests the suite created from {}",
        ids.len(),
        api.table
    ));
    Ok(run)
}

/// Deletes these requests from the table (the `id` key).
pub async fn remove_requests(aws: &Aws, table: &str, ids: &BTreeSet<String>) -> Result<(), Error> {
    for id in ids {
        aws.dynamodb
            .delete_item()
            .table_name(table)
            .key("id", AttributeValue::S(id.clone()))
            .send()
            .await
            .map_err(failed("DynamoDB DeleteItem"))?;
    }
    Ok(())
}

/// Runs the suite and the probes against any deployed URL; what they created stays, since
/// the table is unknown. With `webhook_secret`, the runtime there must deliver webhooks to
/// this machine, signed with it (`storefirst-local --allow-loopback-webhooks`, as `cargo
/// xtask dev` starts it); with `receiver` instead, a receiver the user runs gets the webhook;
/// with neither, the delivery probe is skipped.
pub async fn against_url(
    url: &str,
    api_key: &str,
    webhook_secret: Option<&str>,
    receiver: Option<&str>,
    console: &Console,
) -> E2eRun {
    console.note(format!("contract suite and probes against {url}"));
    let target = Target::new(url, api_key)
        .with_settle_timeout(DEPLOYED_SETTLE_TIMEOUT)
        .with_cors(Cors::Unknown);
    let webhooks = match (webhook_secret, receiver) {
        (Some(secret), _) => Webhooks::Loopback {
            secret: secret.to_owned(),
        },
        (None, Some(receiver)) => remote(receiver),
        (None, None) => Webhooks::Unknown,
    };
    let run = E2eRun::of(&target, None, DEPLOYED, &webhooks).await;
    console.note(format!(
        "the {} requests the suite created stay in the API's table (use --stack to have them \
         removed; succeeded ones expire with their TTL)",
        target.accepted_ids().len()
    ));
    run
}

/// `storefirst-local` in its embedded default runtime: STOREFIRST_* settings of this shell
/// (a DynamoDB table, a Lambda zip, a webhook secret) would switch it to another mode.
fn local_command(binary: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STOREFIRST_") {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    command
}

fn cannot_start(binary: &Path, e: std::io::Error) -> Error {
    Error::Local(format!(
        "cannot start {} ({e}): build it with `cargo build -p storefirst-local`, or pass \
         --local-bin PATH",
        binary.display()
    ))
}

/// Starts `storefirst-local` on port 0 with a fresh database in a temporary directory,
/// delivering webhooks to receivers on this machine too, runs the suite and the probes, and
/// stops it; the directory goes with it.
pub async fn against_local(binary: &Path, console: &Console) -> Result<E2eRun, Error> {
    let dir =
        tempfile::tempdir().map_err(|e| Error::Local(format!("a temporary directory: {e}")))?;
    let db = dir.path().join("e2e.db");
    // The secret as a user learns it: generated into the database, printed on demand.
    let printed = local_command(binary)
        .args(["webhook-secret", "--log", "warn", "--db"])
        .arg(&db)
        .output()
        .await
        .map_err(|e| cannot_start(binary, e))?;
    let secret = String::from_utf8_lossy(&printed.stdout).trim().to_owned();
    if !printed.status.success() || secret.is_empty() {
        return Err(Error::Local(format!(
            "`webhook-secret --db {}` printed no secret: {}",
            db.display(),
            String::from_utf8_lossy(&printed.stderr)
        )));
    }
    let mut child = local_command(binary)
        .args([
            "--port",
            "0",
            "--api-key",
            LOCAL_API_KEY,
            "--log",
            "warn",
            "--allow-loopback-webhooks",
            "--db",
        ])
        .arg(&db)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| cannot_start(binary, e))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    // Its first line names the port it got; the reader lives as long as the child.
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .map_err(|_| Error::Local("it printed no URL within 30 s".into()))?
        .map_err(|e| Error::Local(format!("reading its output: {e}")))?
        .unwrap_or_default();
    let url = listening_url(&first)
        .ok_or_else(|| Error::Local(format!("unexpected first line {first:?}")))?;
    console.note(format!(
        "contract suite and probes against storefirst-local at {url}"
    ));
    let webhooks = Webhooks::Loopback { secret };
    let target = Target::new(url, LOCAL_API_KEY);
    let run = E2eRun::of(&target, None, Throttling::Local, &webhooks).await;
    child
        .kill()
        .await
        .map_err(|e| Error::Local(format!("stopping it: {e}")))?;
    drop(lines);
    Ok(run)
}
