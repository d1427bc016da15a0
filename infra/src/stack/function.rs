//! A function as the stack deploys each one: arm64 on `provided.al2023` from a zip in the
//! assets bucket, JSON logs in a log group of its own, and a role of its own whose policy
//! grants what the function calls and the writes to that log group.

use std::{collections::BTreeMap, time::Duration};

use storefirst_app::function::MEMORY_MB;

use crate::model::{
    Expr, Logical, Resource, Template,
    iam::{Policy, PolicyDocument, Role, Statement},
    lambda::{Code, Environment, Function, LoggingConfig},
    logs::LogGroup,
};

/// Where the function's code comes from: the S3 object `deploy` uploads.
pub struct Artifact {
    pub bucket: Expr,
    pub key: Expr,
}

/// A function to add: its logical ids, code, environment, timeout and permissions.
pub struct Spec {
    /// The function's logical id.
    pub id: &'static str,
    /// The logical ids of its role, policy and log group: `{prefix}Role`, `{prefix}Policy`,
    /// `{prefix}Logs`.
    pub prefix: &'static str,
    /// The policy's name after the stack's: `${AWS::StackName}-{policy_name}`.
    pub policy_name: &'static str,
    pub artifact: Artifact,
    pub environment: BTreeMap<&'static str, Expr>,
    pub timeout: Duration,
    /// What the function calls; the log writes are added.
    pub statements: Vec<Statement>,
}

pub struct Added {
    pub function: Logical,
    pub policy: Logical,
    pub logs: Logical,
}

/// Adds the function, its log group, role and policy.
pub fn add(template: &mut Template, spec: Spec) -> Added {
    let logs = template.add(
        &format!("{}Logs", spec.prefix),
        Resource::new(LogGroup {
            log_group_name: None,
            retention_in_days: 30,
        }),
    );
    let role = template.add(
        &format!("{}Role", spec.prefix),
        Resource::new(Role::for_service("lambda.amazonaws.com")),
    );
    let mut statements = spec.statements;
    statements.push(Statement::allow(
        vec!["logs:CreateLogStream", "logs:PutLogEvents"],
        vec![logs.get_att("Arn")],
    ));
    let policy = template.add(
        &format!("{}Policy", spec.prefix),
        Resource::new(Policy {
            policy_name: Expr::sub(format!("${{AWS::StackName}}-{}", spec.policy_name)),
            policy_document: PolicyDocument::new(statements),
            roles: vec![role.r#ref()],
        }),
    );
    let function = template.add(
        spec.id,
        Resource::new(Function {
            runtime: "provided.al2023",
            architectures: vec!["arm64"],
            handler: "bootstrap",
            code: Code {
                s3_bucket: spec.artifact.bucket,
                s3_key: spec.artifact.key,
            },
            role: role.get_att("Arn"),
            memory_size: MEMORY_MB,
            timeout: spec.timeout.as_secs(),
            environment: Environment {
                variables: spec.environment,
            },
            logging_config: LoggingConfig {
                log_format: "JSON",
                application_log_level: "INFO",
                system_log_level: "WARN",
                log_group: logs.r#ref(),
            },
        })
        // Its first log lines need the log permissions.
        .depends_on(&policy),
    );
    Added {
        function,
        policy,
        logs,
    }
}
