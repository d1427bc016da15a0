//! The crate's one error type, each variant worded as what to do next.

use std::{fmt, path::PathBuf};

/// What went wrong, worded as what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no AWS region: pass --region, set AWS_REGION, or add `region = ...` to your AWS profile"
    )]
    NoRegion,
    /// `why` is the SDK's account of every source it tried: long, and only useful when the
    /// advice is not enough, so it is shown with `--verbose` ([`Error::detail`]).
    #[error(
        "no AWS credentials found: run `aws configure`, or `aws sso login --profile NAME` and \
         pass --profile NAME, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (--verbose \
         shows where the AWS SDK looked)"
    )]
    NoCredentials { why: String },
    #[error(
        "the AWS session token has expired: log in again (`aws sso login`, or fetch fresh \
         temporary credentials) and run the command again"
    )]
    ExpiredToken,
    #[error(
        "AWS refused the credentials ({0}): check the access key or the --profile, and run \
         the command again"
    )]
    BadCredentials(String),
    #[error(
        "{operation} was denied ({message}): the deployer needs the IAM permissions listed \
         in the README's \"Deploy to AWS\" section"
    )]
    AccessDenied {
        operation: &'static str,
        message: String,
    },
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
    #[error(
        "{} is missing: run `cargo xtask build` (it installs cargo-lambda and zig under \
         target/tools/), or deploy with `cargo xtask deploy`, which builds first",
        path.display()
    )]
    MissingAsset { path: PathBuf },
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parameter {name} is not declared by the template (it declares: {declared})")]
    UnknownParameter { name: String, declared: String },
    #[error(
        "the template's parameter {name} has no default and no previous value: pass \
         --parameter {name}=VALUE"
    )]
    MissingParameter { name: String },
    #[error("stack {stack} is {status}: {hint}")]
    NotDeployable {
        stack: String,
        status: String,
        hint: String,
    },
    #[error("{}", failed_stack(stack, status, failures, hint))]
    StackFailed {
        stack: String,
        status: String,
        failures: Vec<ResourceFailure>,
        hint: String,
    },
    #[error("CloudFormation could not create the change set for {stack}: {reason}")]
    ChangeSetFailed { stack: String, reason: String },
    #[error(
        "{what}, which needs approval: nothing was changed; run again with --yes, or at a \
         terminal to be asked"
    )]
    NotApproved { what: String },
    #[error(
        "the change set for {stack} {what} (see the security changes above), and \
         --require-approval {level} asks first: nothing was changed. Run it at a terminal to \
         be asked, approve with --yes, or pass --require-approval never"
    )]
    SecurityNotApproved {
        stack: String,
        what: &'static str,
        level: crate::RequireApproval,
    },
    #[error(
        "the template is {size} bytes, over the 51,200 bytes CloudFormation takes inline, and \
         there is no assets bucket to send it through: deploy once to create the bootstrap stack"
    )]
    TemplateTooLarge { size: usize },
    #[error(
        "the bootstrap stack {stack} has no {resource}: delete it with \
         `cargo xtask destroy --stack {stack}` and deploy again"
    )]
    BadBootstrap {
        stack: String,
        resource: &'static str,
    },
    #[error(
        "the bootstrap stack {stack} is {why}: it holds an IAM role, which the deploy role may \
         not create or change. Run `cargo xtask deploy-ci-role --repo OWNER/NAME` once with \
         administrator credentials (it brings the bootstrap stack up to date), then deploy again"
    )]
    StaleBootstrap { stack: String, why: &'static str },
    #[error(
        "the bootstrap stack {0} does not exist: deploy first (`cargo xtask deploy`, with the \
         same --bootstrap-stack)"
    )]
    NoBootstrap(String),
    #[error("{}: {reason}", path.display())]
    Outputs { path: PathBuf, reason: String },
    #[error("the local runtime: {0}")]
    Local(String),
    #[error(
        "--id {0:?} is no request id, extended request id or X-Ray trace id: pass the id the \
         API answered (POST's `id`, PUT's path), or an id from the access log"
    )]
    NotARequestId(String),
    #[error(
        "there is no stack {0} in this account and region: check --stack, --region and \
         --profile"
    )]
    NoStack(String),
    #[error(
        "stack {stack} has no {logical_id} log group: deploy this version first \
         (`cargo xtask deploy --stack {stack}`)"
    )]
    NoLogGroup {
        stack: String,
        logical_id: &'static str,
    },
    #[error("the Logs Insights query ended {status}: run the command again")]
    QueryFailed { status: String },
    #[error(
        "the Logs Insights query ran past {seconds} s and was stopped: look back less far \
         (--hours)"
    )]
    QueryTimedOut { seconds: u64 },
}

impl Error {
    /// What the one-line message leaves out, for `--verbose`.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::NoCredentials { why } => Some(why),
            _ => None,
        }
    }
}

/// One resource that failed, with CloudFormation's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceFailure {
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: String,
}

impl fmt::Display for ResourceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) {}: {}",
            self.logical_id, self.resource_type, self.status, self.reason
        )
    }
}

fn failed_stack(stack: &str, status: &str, failures: &[ResourceFailure], hint: &str) -> String {
    let mut text = format!("stack {stack} ended in {status}");
    if failures.is_empty() {
        text.push_str(" (CloudFormation reported no failed resource)");
    }
    for failure in failures {
        text.push_str(&format!("\n  {failure}"));
    }
    text.push_str(&format!("\n{hint}"));
    text
}
