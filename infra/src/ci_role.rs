//! The CI role stack (`cargo xtask deploy-ci-role --repo OWNER/NAME`): GitHub Actions'
//! OIDC provider (or a reference to the account's existing one), the role the release
//! workflow assumes (`AWS_DEPLOY_ROLE_ARN`), trusted only from the repository's `v*` tags
//! and its `production` environment, and the CloudFormation execution role that role
//! passes, the CDK way: the GitHub role only runs change sets, uploads assets and runs the
//! contract suite; CloudFormation, as the execution role, creates the app's resources.

use serde_json::json;

use crate::model::{
    Condition, Expr, Parameter, Resource, Template,
    iam::{OidcProvider, Policy, PolicyDocument, Principal, Role, Statement},
};

/// The stack's default name: it starts with `storefirst`, so the app stack's tooling
/// finds it; the GitHub role may not change it (see the deny in [`deploy_statements`]).
pub const DEFAULT_STACK: &str = "storefirst-ci-role";
/// The parameter naming an existing GitHub OIDC provider; empty creates one.
pub const OIDC_PROVIDER_ARN: &str = "OidcProviderArn";
/// The parameter `deploy` fills with the bootstrap stack's assets bucket.
pub const ASSETS_BUCKET: &str = "AssetsBucket";
/// The output the release workflow's `AWS_DEPLOY_ROLE_ARN` takes.
pub const DEPLOY_ROLE_OUTPUT: &str = "DeployRoleArn";
pub const EXECUTION_ROLE_OUTPUT: &str = "ExecutionRoleArn";

pub const GITHUB_OIDC_URL: &str = "https://token.actions.githubusercontent.com";
pub const GITHUB_AUDIENCE: &str = "sts.amazonaws.com";
const CREATE_PROVIDER: &str = "CreateOidcProvider";
/// The names every storefirst stack starts with; the app's resources, named by
/// CloudFormation after their stack, start with it too.
const PREFIX: &str = "storefirst";

/// `repo` is not `OWNER/NAME` as GitHub spells them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a GitHub repository as OWNER/NAME: the owner is 1-39 letters, digits or \
     hyphens (not first), the name 1-100 letters, digits, '.', '-' or '_'"
)]
pub struct InvalidRepo(pub String);

/// Checks `repo` is `OWNER/NAME`: it goes into the trust policy's `sub` condition, where a
/// `*` or `?` would widen the trust to other repositories.
pub fn validate_repo(repo: &str) -> Result<(), InvalidRepo> {
    let invalid = || InvalidRepo(repo.to_owned());
    let (owner, name) = repo.split_once('/').ok_or_else(invalid)?;
    let owner_ok = (1..=39).contains(&owner.len())
        && !owner.starts_with('-')
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let name_ok = (1..=100).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if owner_ok && name_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// The `sub` claims the deploy role trusts: the repository's `v*` tags (the release
/// workflow's trigger) and its `production` environment (the deploy job's).
pub fn trusted_subjects(repo: &str) -> [String; 2] {
    [
        format!("repo:{repo}:ref:refs/tags/v*"),
        format!("repo:{repo}:environment:production"),
    ]
}

/// The CI role stack for the GitHub repository `repo` (`OWNER/NAME`).
pub fn ci_role_template(repo: &str) -> Result<Template, InvalidRepo> {
    validate_repo(repo)?;
    let mut template = Template::new(format!(
        "storefirst CI role: the role GitHub Actions of {repo} assume (from v* tags and the \
         production environment) to deploy the storefirst stack, and the execution role \
         CloudFormation deploys it as"
    ));
    let existing = template.parameter(
        OIDC_PROVIDER_ARN,
        Parameter {
            default: Some(""),
            allowed_pattern: Some(
                "^(arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\\.actions\\.githubusercontent\\.com)?$",
            ),
            ..Parameter::string(
                "The account's GitHub OIDC provider, if it has one (an account holds one per \
                 URL); empty creates it",
            )
        },
    );
    let bucket = template.parameter(
        ASSETS_BUCKET,
        Parameter {
            allowed_pattern: Some("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
            ..Parameter::string(
                "The bootstrap stack's assets bucket (cargo xtask deploy-ci-role fills it)",
            )
        },
    );
    template.condition(
        CREATE_PROVIDER,
        Condition::Equals(existing.r#ref(), "".into()),
    );
    let provider = template.add(
        "GitHubOidcProvider",
        Resource::new(OidcProvider {
            url: GITHUB_OIDC_URL,
            client_id_list: vec![GITHUB_AUDIENCE],
        })
        .condition(CREATE_PROVIDER),
    );
    let provider_arn = Expr::if_(CREATE_PROVIDER, provider.r#ref(), existing.r#ref());

    let deploy_role = template.add(
        "GitHubDeployRole",
        Resource::new(Role {
            assume_role_policy_document: PolicyDocument::new(vec![Statement {
                principal: Some(Principal::federated(provider_arn)),
                ..Statement::allow(vec!["sts:AssumeRoleWithWebIdentity"], Vec::new()).when(
                    json!({
                        "StringEquals": {"token.actions.githubusercontent.com:aud": GITHUB_AUDIENCE},
                        "StringLike": {"token.actions.githubusercontent.com:sub": trusted_subjects(repo)},
                    }),
                )
            }]),
            managed_policy_arns: Vec::new(),
            policies: Vec::new(),
        }),
    );
    let execution_role = template.add(
        "CloudFormationExecutionRole",
        Resource::new(Role::for_service("cloudformation.amazonaws.com")),
    );
    let bucket_arn = Expr::sub_with(
        "arn:${AWS::Partition}:s3:::${Bucket}",
        [("Bucket", bucket.r#ref())],
    );
    let objects_arn = Expr::sub_with(
        "arn:${AWS::Partition}:s3:::${Bucket}/*",
        [("Bucket", bucket.r#ref())],
    );
    template.add(
        "GitHubDeployPolicy",
        Resource::new(Policy {
            policy_name: Expr::sub("${AWS::StackName}-deploy"),
            policy_document: PolicyDocument::new(deploy_statements(
                execution_role.get_att("Arn"),
                bucket_arn,
                objects_arn.clone(),
            )),
            roles: vec![deploy_role.r#ref()],
        }),
    );
    template.add(
        "CloudFormationExecutionPolicy",
        Resource::new(Policy {
            policy_name: Expr::sub("${AWS::StackName}-execution"),
            policy_document: PolicyDocument::new(execution_statements(
                objects_arn,
                vec![deploy_role.get_att("Arn"), execution_role.get_att("Arn")],
            )),
            roles: vec![execution_role.r#ref()],
        }),
    );
    let outputs = [
        (
            DEPLOY_ROLE_OUTPUT,
            "The role the release workflow assumes: the repository's AWS_DEPLOY_ROLE_ARN",
            deploy_role.get_att("Arn"),
        ),
        (
            EXECUTION_ROLE_OUTPUT,
            "The role CloudFormation deploys the storefirst stack as (CreateChangeSet RoleARN)",
            execution_role.get_att("Arn"),
        ),
        (
            "OidcProviderArn",
            "GitHub Actions' OIDC provider, created here or given",
            Expr::if_(CREATE_PROVIDER, provider.r#ref(), existing.r#ref()),
        ),
    ];
    template.add_outputs(outputs);
    Ok(template)
}

/// The IAM calls that change a role.
const ROLE_CHANGES: &[&str] = &[
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
];

/// An ARN of this account and region for a resource named `storefirst*`.
fn named(service: &str, resource: &str) -> Expr {
    Expr::arn(service, &resource.replace("{prefix}", PREFIX))
}

/// What the GitHub role may do: what `cargo xtask deploy` and `test-e2e --stack` call.
fn deploy_statements(execution_role: Expr, bucket: Expr, objects: Expr) -> Vec<Statement> {
    vec![
        // IAM authorizes the change-set calls on the stack's ARN, not the change set's.
        // DeleteStack: a stack whose first create rolled back (ROLLBACK_COMPLETE) can only
        // be deleted and created again.
        Statement::allow(
            vec![
                "cloudformation:CreateChangeSet",
                "cloudformation:DescribeChangeSet",
                "cloudformation:ExecuteChangeSet",
                "cloudformation:DeleteChangeSet",
                "cloudformation:DeleteStack",
                "cloudformation:DescribeStacks",
                "cloudformation:DescribeStackEvents",
                "cloudformation:DescribeStackResource",
                "cloudformation:ListStackResources",
                "cloudformation:GetTemplate",
            ],
            vec![named("cloudformation", "stack/{prefix}*/*")],
        ),
        // Not this stack: a change set here would let the role rewrite its own trust and
        // permissions.
        Statement::deny(
            vec![
                "cloudformation:CreateChangeSet",
                "cloudformation:ExecuteChangeSet",
                "cloudformation:DeleteStack",
                "cloudformation:UpdateStack",
            ],
            vec![Expr::arn("cloudformation", "stack/${AWS::StackName}/*")],
        ),
        // CloudFormation creates the app's resources as the execution role, never as this
        // one.
        Statement::allow(vec!["iam:PassRole"], vec![execution_role]).when(json!({
            "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
        })),
        // API Gateway's CloudWatch role is an account setting: deploy reads it and, when the
        // account has none, sets the bootstrap stack's logs role (named storefirst* by
        // CloudFormation).
        Statement::allow(
            vec!["apigateway:GET", "apigateway:PATCH"],
            vec![Expr::sub(
                "arn:${AWS::Partition}:apigateway:${AWS::Region}::/account",
            )],
        ),
        Statement::allow(
            vec!["iam:PassRole"],
            vec![Expr::sub(
                "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/storefirst*",
            )],
        )
        .when(json!({
            "StringEquals": {"iam:PassedToService": "apigateway.amazonaws.com"}
        })),
        // Zips and large templates by content hash; HeadObject answers 404 (not 403) for an
        // absent key only with ListBucket.
        Statement::allow(vec!["s3:ListBucket", "s3:GetBucketLocation"], vec![bucket]),
        Statement::allow(vec!["s3:GetObject", "s3:PutObject"], vec![objects]),
        // test-e2e --stack: the API key's value, and removing the requests it created.
        Statement::allow(
            vec!["apigateway:GET"],
            vec![Expr::sub(
                "arn:${AWS::Partition}:apigateway:${AWS::Region}::/apikeys/*",
            )],
        ),
        Statement::allow(
            vec!["dynamodb:DeleteItem"],
            vec![named("dynamodb", "table/{prefix}*")],
        ),
    ]
}

/// What CloudFormation may do as the execution role: create, update and delete the
/// storefirst stack's resources, named `storefirst*` by CloudFormation where AWS names
/// them.
fn execution_statements(objects: Expr, own_roles: Vec<Expr>) -> Vec<Statement> {
    let roles = Expr::sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/storefirst*");
    let functions = named("lambda", "function:{prefix}*");
    vec![
        Statement::allow(
            vec![
                "dynamodb:CreateTable",
                "dynamodb:DeleteTable",
                "dynamodb:DescribeTable",
                "dynamodb:UpdateTable",
                "dynamodb:DescribeTimeToLive",
                "dynamodb:UpdateTimeToLive",
                "dynamodb:DescribeContinuousBackups",
                "dynamodb:UpdateContinuousBackups",
                "dynamodb:DescribeContributorInsights",
                "dynamodb:DescribeKinesisStreamingDestination",
                "dynamodb:GetResourcePolicy",
                "dynamodb:ListTagsOfResource",
                "dynamodb:TagResource",
                "dynamodb:UntagResource",
            ],
            vec![named("dynamodb", "table/{prefix}*")],
        ),
        Statement::allow(
            vec![
                "lambda:CreateFunction",
                "lambda:DeleteFunction",
                "lambda:GetFunction",
                "lambda:GetFunctionCodeSigningConfig",
                "lambda:GetFunctionRecursionConfig",
                "lambda:GetFunctionScalingConfig",
                "lambda:GetRuntimeManagementConfig",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:ListTags",
                "lambda:TagResource",
                "lambda:UntagResource",
            ],
            vec![functions.clone()],
        ),
        // CreateEventSourceMapping has no resource-level permissions (IAM requires "*"); the
        // condition limits it, and the calls on existing mappings, to storefirst functions.
        Statement::allow(
            vec!["lambda:CreateEventSourceMapping"],
            vec!["*".into()],
        )
        .when(json!({"ArnLike": {"lambda:FunctionArn": functions}})),
        Statement::allow(
            vec![
                "lambda:GetEventSourceMapping",
                "lambda:UpdateEventSourceMapping",
                "lambda:DeleteEventSourceMapping",
            ],
            vec![Expr::arn("lambda", "event-source-mapping:*")],
        )
        .when(json!({"ArnLike": {"lambda:FunctionArn": functions}})),
        // The tag calls take no lambda:FunctionArn key (a condition on it would deny them),
        // and mapping ids are random: the account's mappings. CloudFormation tags the
        // mapping it creates with its system tags.
        Statement::allow(
            vec![
                "lambda:ListTags",
                "lambda:TagResource",
                "lambda:UntagResource",
            ],
            vec![Expr::arn("lambda", "event-source-mapping:*")],
        ),
        // Lambda reads the function's zip with the caller's permissions.
        Statement::allow(vec!["s3:GetObject", "s3:GetObjectVersion"], vec![objects]),
        Statement::allow(
            [
                ROLE_CHANGES,
                &[
                    "iam:GetRole",
                    "iam:GetRolePolicy",
                    "iam:ListRolePolicies",
                    "iam:ListAttachedRolePolicies",
                ],
            ]
            .concat(),
            vec![roles.clone()],
        ),
        Statement::allow(vec!["iam:PassRole"], vec![roles]).when(json!({
            "StringEquals": {"iam:PassedToService": ["lambda.amazonaws.com", "apigateway.amazonaws.com"]}
        })),
        // The roles of this stack are storefirst* too: the execution role may not touch them.
        Statement::deny(
            [ROLE_CHANGES, &["iam:PassRole"]].concat(),
            own_roles,
        ),
        Statement::allow(
            vec![
                "sqs:CreateQueue",
                "sqs:DeleteQueue",
                "sqs:GetQueueUrl",
                "sqs:GetQueueAttributes",
                "sqs:SetQueueAttributes",
                "sqs:ListQueueTags",
                "sqs:TagQueue",
                "sqs:UntagQueue",
            ],
            vec![named("sqs", "{prefix}*")],
        ),
        // The stack's secrets, named `<stack>-...` by the stack; the read handler reads the
        // value after every create and update, and the delete handler removes replicas
        // first (the stack has none, but the handler calls it whatever the properties).
        Statement::allow(
            vec![
                "secretsmanager:CreateSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:UpdateSecret",
                "secretsmanager:DeleteSecret",
                "secretsmanager:RemoveRegionsFromReplication",
                "secretsmanager:TagResource",
                "secretsmanager:UntagResource",
            ],
            vec![named("secretsmanager", "secret:{prefix}*")],
        ),
        // GenerateSecretString: GetRandomPassword has no resource-level permissions (IAM
        // requires "*"); it only returns random characters.
        Statement::allow(vec!["secretsmanager:GetRandomPassword"], vec!["*".into()]),
        // The stack's log groups, and API Gateway's execution log group, which API
        // Gateway names after the REST API's random id.
        Statement::allow(
            vec![
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy",
                "logs:GetDataProtectionPolicy",
                "logs:DeleteDataProtectionPolicy",
                "logs:ListTagsForResource",
                "logs:TagResource",
                "logs:UntagResource",
            ],
            vec![
                named("logs", "log-group:{prefix}*"),
                Expr::arn("logs", "log-group:API-Gateway-Execution-Logs_*"),
            ],
        ),
        // Listings of the account and region that take no resource-level permission (IAM
        // requires "*"); the log group handlers call them on every read.
        Statement::allow(
            vec![
                "logs:DescribeLogGroups",
                "logs:DescribeIndexPolicies",
                "logs:DescribeResourcePolicies",
            ],
            vec!["*".into()],
        ),
        Statement::allow(
            vec![
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:ListTagsForResource",
                "cloudwatch:TagResource",
                "cloudwatch:UntagResource",
            ],
            vec![named("cloudwatch", "alarm:{prefix}*")],
        ),
        // A dashboard's ARN has no region: dashboards are global to the account.
        Statement::allow(
            vec![
                "cloudwatch:PutDashboard",
                "cloudwatch:GetDashboard",
                "cloudwatch:DeleteDashboards",
            ],
            vec![Expr::sub(format!(
                "arn:${{AWS::Partition}}:cloudwatch::${{AWS::AccountId}}:dashboard/{PREFIX}*"
            ))],
        ),
        // API Gateway ids are random, not names: its resources are scoped by kind (the
        // account's REST APIs, API keys, usage plans). Its CloudWatch role, an account
        // setting, is deploy's, not the stack's.
        Statement::allow(
            vec![
                "apigateway:GET",
                "apigateway:POST",
                "apigateway:PUT",
                "apigateway:PATCH",
                "apigateway:DELETE",
            ],
            [
                "/restapis",
                "/restapis/*",
                "/apikeys",
                "/apikeys/*",
                "/usageplans",
                "/usageplans/*",
                "/tags/*",
            ]
            .into_iter()
            .map(|path| {
                Expr::sub(format!(
                    "arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}::{path}"
                ))
            })
            .collect(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_owner_slash_name() {
        for good in ["octo-org/storefirst", "a/b", "Me/my.repo_2", "x/.github"] {
            assert_eq!(validate_repo(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "storefirst",
            "a/",
            "/b",
            "a/b/c",
            "-a/b",
            "a/*",
            "*/b",
            "a/b?",
            "a b/c",
            "a/..",
            "a/.",
            &format!("{}/b", "o".repeat(40)),
        ] {
            let error = validate_repo(bad).unwrap_err();
            assert!(error.to_string().contains("OWNER/NAME"), "{bad}: {error}");
        }
        assert!(ci_role_template("a/*").is_err());
    }
}
