//! `storefirst-deploy`: what `cargo xtask deploy | diff | destroy | logs | test-e2e |
//! deploy-ci-role` run.

use std::{collections::BTreeMap, path::PathBuf, str::FromStr, time::Duration};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use storefirst_deploy::{
    Asset, Aws, CiRole, Connection, Console, Deployment, RequireApproval, bootstrap, e2e, logs,
};
use storefirst_infra::{
    ci_role::DEPLOY_ROLE_OUTPUT,
    stack::{ARTIFACT_BUCKET, NOTIFIER_KEY, STREAM_PROCESSOR_KEY},
};

/// Deploys storefirst to AWS with CloudFormation, like `cdk deploy`, and tests it.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Show the whole story of a failure, e.g. every place the AWS SDK looked for
    /// credentials (also with RUST_LOG=debug).
    #[arg(long, global = true)]
    verbose: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Upload the function zips (`cargo xtask build` makes them) that are not there yet,
    /// and create or update the stack through a change set; writes the outputs to
    /// <outputs-dir>/<stack>-outputs.json.
    Deploy {
        #[command(flatten)]
        stack: StackArgs,
        /// Replace or remove the table or the queue without asking; delete and create again
        /// a stack (or bootstrap stack) left in ROLLBACK_COMPLETE by a failed first create;
        /// approve the security changes --require-approval asks about.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        approval: ApprovalArgs,
    },
    /// Show what a deploy would change, without changing anything: each resource with its
    /// changed properties, and the security changes.
    Diff {
        #[command(flatten)]
        stack: StackArgs,
        /// Only the security changes (IAM statements, the API's authorization), from the
        /// deployed template and the synthesized one: no change set.
        #[arg(long)]
        security_only: bool,
    },
    /// Delete the stack; the table and the queue are retained.
    Destroy {
        #[command(flatten)]
        aws: AwsArgs,
        #[command(flatten)]
        role: RoleArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Follow one request through the stack's logs: print the CloudWatch Logs Insights
    /// query that finds the API's access log line and the stream processor's lines about
    /// it, run it, and print what it found, oldest first.
    Logs(LogsArgs),
    /// Run the HTTP contract suite against a deployed stack (the default), a URL, or a
    /// local runtime, then probe what only a deployed API can confirm (each assumption
    /// confirmed or contradicted).
    TestE2e(E2eArgs),
    /// Create or update the CI role stack: GitHub Actions' OIDC provider and the role the
    /// release workflow assumes (its DeployRoleArn output is AWS_DEPLOY_ROLE_ARN), trusted
    /// only from the repository's v* tags and production environment.
    DeployCiRole(CiRoleArgs),
}

#[derive(Args)]
struct CiRoleArgs {
    /// The GitHub repository whose workflows may assume the role, as OWNER/NAME.
    #[arg(long)]
    repo: String,
    /// The CI role stack.
    #[arg(long, default_value = storefirst_infra::ci_role::DEFAULT_STACK)]
    stack: String,
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The account's GitHub OIDC provider, when it already has one (one per account);
    /// without it, the stack creates it.
    #[arg(long)]
    oidc_provider_arn: Option<String>,
    /// The stack that holds the assets bucket the role may upload to; created if absent.
    #[arg(long, env = "STOREFIRST_BOOTSTRAP_STACK", default_value = bootstrap::DEFAULT_STACK)]
    bootstrap_stack: String,
    /// Where the outputs file goes.
    #[arg(long, default_value = "target/storefirst")]
    outputs_dir: PathBuf,
    /// Replace or remove resources, and approve security changes, without asking.
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    approval: ApprovalArgs,
}

#[derive(Args)]
struct ApprovalArgs {
    /// Which security changes stop the deploy to ask (never, broadening, any-change):
    /// broadening asks when an IAM change or the API's authorization grants more than the
    /// deployed stack does. Without a terminal, a deploy that would ask fails (--yes
    /// approves).
    #[arg(long, default_value = "broadening", value_parser = RequireApproval::from_str)]
    require_approval: RequireApproval,
}

impl CiRoleArgs {
    async fn run(self, console: &Console) -> anyhow::Result<()> {
        let deployment = CiRole {
            repo: self.repo,
            stack: self.stack,
            oidc_provider_arn: self.oidc_provider_arn,
            bootstrap_stack: self.bootstrap_stack,
            outputs_dir: self.outputs_dir,
            yes: self.yes,
            require_approval: self.approval.require_approval,
        }
        .deployment()?;
        let aws = self.connection.connect().await?;
        let deployed = storefirst_deploy::deploy(&aws, &deployment, console).await?;
        if let Some(arn) = deployed.outputs.get(DEPLOY_ROLE_OUTPUT) {
            console.say(format!(
                "set the repository's AWS_DEPLOY_ROLE_ARN (an Actions variable) to {arn}"
            ));
        }
        Ok(())
    }
}

#[derive(Args)]
struct AwsArgs {
    /// The CloudFormation stack.
    #[arg(long, env = "STOREFIRST_STACK", default_value = "storefirst")]
    stack: String,
    #[command(flatten)]
    connection: ConnectionArgs,
}

impl AwsArgs {
    async fn connect(&self) -> anyhow::Result<Aws> {
        self.connection.connect().await
    }
}

/// Where the AWS calls go and as whom.
#[derive(Args)]
struct ConnectionArgs {
    /// AWS region [default: AWS_REGION, or the profile's region].
    #[arg(long)]
    region: Option<String>,
    /// Named profile of ~/.aws/config [default: AWS_PROFILE, or the default profile].
    #[arg(long)]
    profile: Option<String>,
    /// Send every AWS call here, e.g. to moto server [default: AWS_ENDPOINT_URL].
    #[arg(long)]
    endpoint_url: Option<String>,
}

impl ConnectionArgs {
    async fn connect(&self) -> anyhow::Result<Aws> {
        Ok(Aws::connect(&Connection {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
        })
        .await?)
    }
}

/// The role CloudFormation acts as.
#[derive(Args)]
struct RoleArgs {
    /// The role CloudFormation creates, updates and deletes the stack's resources as (the
    /// CI role stack's ExecutionRoleArn) [default: the caller's own permissions].
    #[arg(long, env = "STOREFIRST_ROLE_ARN")]
    role_arn: Option<String>,
}

#[derive(Args)]
struct StackArgs {
    #[command(flatten)]
    aws: AwsArgs,
    #[command(flatten)]
    role: RoleArgs,
    /// A template parameter as KEY=VALUE, repeatable; e.g. StreamProcessing=disabled on an
    /// emulator. Parameters not given keep their deployed value.
    #[arg(long = "parameter", value_name = "KEY=VALUE", value_parser = key_value)]
    parameters: Vec<(String, String)>,
    /// The stack that holds the assets bucket; created on the first deploy.
    #[arg(long, env = "STOREFIRST_BOOTSTRAP_STACK", default_value = bootstrap::DEFAULT_STACK)]
    bootstrap_stack: String,
    /// Where `cargo xtask build` writes <function>/bootstrap.zip.
    #[arg(long, default_value = "target/lambda")]
    lambda_dir: PathBuf,
    /// Where the outputs file goes.
    #[arg(long, default_value = "target/storefirst")]
    outputs_dir: PathBuf,
}

impl StackArgs {
    fn deployment(&self, yes: bool, approval: RequireApproval) -> anyhow::Result<Deployment> {
        let template = storefirst_infra::template()
            .to_json()
            .map_err(storefirst_infra::SynthErrors)?;
        Ok(Deployment {
            stack: self.aws.stack.clone(),
            template,
            parameters: self.parameters.iter().cloned().collect::<BTreeMap<_, _>>(),
            bucket_parameter: Some(ARTIFACT_BUCKET.to_owned()),
            assets: vec![
                Asset {
                    parameter: STREAM_PROCESSOR_KEY.to_owned(),
                    path: self.lambda_dir.join("stream-processor/bootstrap.zip"),
                },
                Asset {
                    parameter: NOTIFIER_KEY.to_owned(),
                    path: self.lambda_dir.join("notifier/bootstrap.zip"),
                },
            ],
            bootstrap_stack: self.bootstrap_stack.clone(),
            outputs_dir: self.outputs_dir.clone(),
            yes,
            require_approval: approval,
            execution_role: self.role.role_arn.clone(),
        })
    }
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

#[derive(Args)]
struct LogsArgs {
    #[command(flatten)]
    aws: AwsArgs,
    /// The request's id as the API answered it (POST's `id`, PUT's path), or API Gateway's
    /// extended request id or X-Ray trace id from the access log.
    #[arg(long)]
    id: String,
    /// How many hours back to look.
    #[arg(long, default_value_t = 24)]
    hours: u64,
}

impl LogsArgs {
    async fn run(&self, console: &Console) -> anyhow::Result<()> {
        let aws = self.aws.connect().await?;
        let search = logs::LogSearch {
            id: self.id.clone(),
            window: Duration::from_secs(self.hours * 60 * 60),
        };
        let found = logs::request_logs(&aws, &self.aws.stack, &search, console).await?;
        if found.lines.is_empty() {
            bail!(
                "no log line names {} in the last {} hours: check the id, or look back further \
                 with --hours (lines take a few seconds to reach CloudWatch Logs)",
                self.id,
                self.hours
            );
        }
        for line in &found.lines {
            console.say(format!(
                "{}  {:<9}  {}",
                line.timestamp,
                line.source.as_str(),
                line.message
            ));
        }
        Ok(())
    }
}

#[derive(Args)]
struct E2eArgs {
    #[command(flatten)]
    aws: AwsArgs,
    /// Where `deploy` wrote the outputs file.
    #[arg(long, default_value = "target/storefirst")]
    outputs_dir: PathBuf,
    /// Test this API instead of the stack's (needs --api-key).
    #[arg(long, requires = "api_key", conflicts_with = "local")]
    url: Option<String>,
    /// The API key for --url.
    #[arg(long, requires = "url")]
    api_key: Option<String>,
    /// The webhook secret of the runtime at --url, which must deliver to this machine
    /// (`storefirst-local --allow-loopback-webhooks`; `storefirst-local webhook-secret --db
    /// PATH` prints its secret): the delivery probe's receiver checks the signatures with
    /// it. Without it, that probe is skipped; --local learns its runtime's, --stack needs none.
    #[arg(long, env = "STOREFIRST_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// The https URL of a webhook receiver you run that answers 2xx (e.g. the webhooks
    /// crate's `verify` example behind your own https endpoint): the delivery probe sends a
    /// request with it as x-callback-url and waits up to 90 s for the stack's notifier to
    /// record the webhook delivered. Without it, that probe is not applicable on a stack.
    #[arg(
        long,
        env = "STOREFIRST_WEBHOOK_RECEIVER",
        value_parser = https_url,
        conflicts_with_all = ["local", "webhook_secret"]
    )]
    webhook_receiver: Option<String>,
    /// Start storefirst-local on a free port with a temporary database and test it.
    #[arg(long)]
    local: bool,
    /// The storefirst-local binary for --local [default: the one next to this binary].
    #[arg(long, env = "STOREFIRST_LOCAL_BIN")]
    local_bin: Option<PathBuf>,
}

impl E2eArgs {
    async fn run(&self, console: &Console) -> anyhow::Result<()> {
        let reports = if self.local {
            let binary = match &self.local_bin {
                Some(binary) => binary.clone(),
                None => std::env::current_exe()
                    .context("cannot find this binary's directory: pass --local-bin")?
                    .with_file_name("storefirst-local"),
            };
            e2e::against_local(&binary, console).await?
        } else if let (Some(url), Some(api_key)) = (&self.url, &self.api_key) {
            let secret = self.webhook_secret.as_deref();
            let receiver = self.webhook_receiver.as_deref();
            e2e::against_url(url, api_key, secret, receiver, console).await
        } else {
            let aws = self.aws.connect().await?;
            let receiver = self.webhook_receiver.as_deref();
            e2e::against_stack(&aws, &self.aws.stack, &self.outputs_dir, receiver, console).await?
        };
        print!("{}", reports.render());
        if let Some(failures) = reports.failures() {
            bail!("{failures}");
        }
        Ok(())
    }
}

/// A webhook receiver's URL: a stack delivers only over https.
fn https_url(text: &str) -> Result<String, String> {
    match text.strip_prefix("https://") {
        Some(rest) if !rest.is_empty() => Ok(text.to_owned()),
        _ => Err(format!(
            "{text:?} is not an https URL: a stack delivers webhooks over https only, e.g. \
             https://hooks.example.com/storefirst"
        )),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let verbose = cli.verbose
        || std::env::var("RUST_LOG")
            .is_ok_and(|log| log.contains("debug") || log.contains("trace"));
    let result = run(cli.command).await;
    if let Err(error) = &result
        && verbose
        && let Some(detail) = error
            .downcast_ref::<storefirst_deploy::Error>()
            .and_then(storefirst_deploy::Error::detail)
    {
        eprintln!("{detail}");
    }
    result
}

async fn run(command: Command) -> anyhow::Result<()> {
    let console = Console::terminal();
    match command {
        Command::Deploy {
            stack,
            yes,
            approval,
        } => {
            let deployment = stack.deployment(yes, approval.require_approval)?;
            let aws = stack.aws.connect().await?;
            storefirst_deploy::deploy(&aws, &deployment, &console).await?;
        }
        Command::Diff {
            stack,
            security_only,
        } => {
            // A diff asks nothing: the approval settings do not matter.
            let deployment = stack.deployment(false, RequireApproval::Never)?;
            let aws = stack.aws.connect().await?;
            storefirst_deploy::diff(&aws, &deployment, security_only, &console).await?;
        }
        Command::Destroy {
            aws: args,
            role,
            yes,
        } => {
            let aws = args.connect().await?;
            let role = role.role_arn.as_deref();
            storefirst_deploy::destroy(&aws, &args.stack, role, yes, &console).await?;
        }
        Command::Logs(args) => args.run(&console).await?,
        Command::TestE2e(args) => args.run(&console).await?,
        Command::DeployCiRole(args) => args.run(&console).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    fn receiver(args: &[&str]) -> Result<Option<String>, String> {
        let cli =
            Cli::try_parse_from([["storefirst-deploy", "test-e2e"].as_slice(), args].concat())
                .map_err(|e| e.to_string())?;
        match cli.command {
            Command::TestE2e(e2e) => Ok(e2e.webhook_receiver),
            _ => unreachable!("test-e2e parses as TestE2e"),
        }
    }

    #[test]
    fn test_e2e_takes_an_https_webhook_receiver_for_a_stack_or_a_url() {
        let url = "https://hooks.example.com/storefirst";
        assert_eq!(
            receiver(&["--stack", "demo", "--webhook-receiver", url]),
            Ok(Some(url.to_owned()))
        );
        assert_eq!(
            receiver(&[
                "--url",
                "https://api.example.com",
                "--api-key",
                "k",
                "--webhook-receiver",
                url
            ]),
            Ok(Some(url.to_owned()))
        );
        assert_eq!(receiver(&["--stack", "demo"]), Ok(None));
        let http = receiver(&["--webhook-receiver", "http://hooks.example.com/storefirst"]);
        assert!(
            http.as_ref().is_err_and(|e| e.contains("not an https URL")),
            "{http:?}"
        );
        for other in [["--local"].as_slice(), &["--webhook-secret", "whsec_x"]] {
            let both = receiver(&[other, &["--webhook-receiver", url]].concat());
            assert!(
                both.as_ref()
                    .is_err_and(|e| e.contains("cannot be used with")),
                "{both:?}"
            );
        }
    }
}
