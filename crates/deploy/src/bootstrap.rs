//! The bootstrap stack, like `cdk bootstrap`: what belongs to the account and region rather
//! than to one app. An assets bucket that every deploy uploads its function zips (and
//! templates too large to send inline) to, and the role API Gateway writes CloudWatch Logs
//! as, which [`ensure`] makes the account's setting when the account has none.

use std::time::Duration;

use aws_sdk_apigateway::{
    error::SdkError,
    operation::update_account::UpdateAccountError,
    types::{Op, PatchOperation},
};
use serde_json::{Value, json};

use crate::{
    Aws, Console, Error, RequireApproval,
    aws::{code, failed},
    change_set::{self, Plan},
    stack,
};

/// The bootstrap stack's default name (`--bootstrap-stack`).
pub const DEFAULT_STACK: &str = "storefirst-bootstrap";
const BUCKET: &str = "AssetsBucket";
const LOGS_ROLE: &str = "ApiGatewayLogsRole";

/// A versioned, encrypted bucket with public access blocked, TLS required, and old
/// versions expired; and API Gateway's CloudWatch Logs role. Both retained on delete:
/// stacks deployed from it still name the bucket's objects, and the account's API Gateway
/// setting may still name the role.
pub fn template() -> Value {
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "storefirst bootstrap: the bucket cargo xtask deploy uploads function zips and large templates to, and the role API Gateway writes CloudWatch Logs as",
        "Resources": {
            // Named by CloudFormation after the stack (storefirst-bootstrap-...): the CI
            // roles may pass storefirst* roles only.
            LOGS_ROLE: {
                "Type": "AWS::IAM::Role",
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": {
                    "Description": "API Gateway writes the execution and access logs of the account's REST APIs in this region as this role",
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Principal": {"Service": "apigateway.amazonaws.com"},
                            "Action": "sts:AssumeRole"
                        }]
                    },
                    "ManagedPolicyArns": [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}]
                }
            },
            "AssetsBucket": {
                "Type": "AWS::S3::Bucket",
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": {
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": true,
                        "BlockPublicPolicy": true,
                        "IgnorePublicAcls": true,
                        "RestrictPublicBuckets": true
                    },
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                    "LifecycleConfiguration": {
                        "Rules": [{
                            "Id": "ExpireOldVersions",
                            "Status": "Enabled",
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}
                        }]
                    }
                }
            },
            "AssetsBucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "AssetsBucket"},
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [
                                {"Fn::GetAtt": ["AssetsBucket", "Arn"]},
                                {"Fn::Sub": "${AssetsBucket.Arn}/*"}
                            ],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
                        }]
                    }
                }
            }
        },
        "Outputs": {
            BUCKET: {
                "Description": "Function zips and large templates, named by content hash",
                "Value": {"Ref": "AssetsBucket"}
            },
            "ApiGatewayLogsRoleArn": {
                "Description": "The role API Gateway writes CloudWatch Logs as, unless the account had one",
                "Value": {"Fn::GetAtt": [LOGS_ROLE, "Arn"]}
            }
        }
    })
}

/// The bucket of a deployed bootstrap stack; `None` when the stack does not exist.
pub(crate) async fn find(aws: &Aws, name: &str) -> Result<Option<String>, Error> {
    if stack::describe(aws, name).await?.is_none() {
        return Ok(None);
    }
    physical_id(aws, name, BUCKET).await.map(Some)
}

/// Read from the resource rather than the outputs: emulators (moto 5.2) leave the outputs
/// of a stack created by a change set empty.
async fn physical_id(aws: &Aws, name: &str, logical_id: &'static str) -> Result<String, Error> {
    let described = aws
        .cloudformation
        .describe_stack_resource()
        .stack_name(name)
        .logical_resource_id(logical_id)
        .send()
        .await
        .map_err(failed("CloudFormation DescribeStackResource"))?;
    described
        .stack_resource_detail()
        .and_then(|r| r.physical_resource_id())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Error::BadBootstrap {
            stack: name.to_owned(),
            resource: logical_id,
        })
}

/// Creates or updates the bootstrap stack (a no-op when it is current; a stack left by a
/// failed first create is deleted first, once approved as `yes` says), makes sure API
/// Gateway has a CloudWatch Logs role; returns the bucket.
pub(crate) async fn ensure(
    aws: &Aws,
    name: &str,
    as_deploy_role: bool,
    yes: bool,
    require_approval: RequireApproval,
    console: &Console,
) -> Result<String, Error> {
    // The bootstrap stack belongs to the account, not to the app: made with the caller's
    // own permissions (`deploy-ci-role` creates it with administrator credentials). A
    // deploy that runs as a deploy role (CI) may not create its IAM role, so it only
    // checks that the stack is current.
    let stack_id = if as_deploy_role {
        let current = stack::describe(aws, name).await?;
        let stale = match &current {
            None => "missing",
            Some(_) if stack::deployed_template(aws, name).await? != Some(template()) => {
                "older than this version of storefirst"
            }
            Some(_) => "",
        };
        match current {
            Some(current) if stale.is_empty() => current.id,
            _ => {
                return Err(Error::StaleBootstrap {
                    stack: name.to_owned(),
                    why: stale,
                });
            }
        }
    } else {
        stack::clear_failed_create(aws, name, None, yes, console).await?;
        let plan = Plan {
            stack: name,
            template: &template(),
            parameters: &Default::default(),
            template_bucket: None,
            yes,
            require_approval,
            execution_role: None,
        };
        change_set::apply(aws, &plan, console).await?.current.id
    };
    let role = role_arn(&stack_id, &physical_id(aws, name, LOGS_ROLE).await?);
    ensure_logs_role(aws, &role, console).await?;
    physical_id(aws, name, BUCKET).await
}

/// The ARN of the role named `role` in the account and partition of the stack `stack_id`
/// (`arn:PARTITION:cloudformation:REGION:ACCOUNT:stack/...`); the template sets no path.
fn role_arn(stack_id: &str, role: &str) -> String {
    let mut parts = stack_id.split(':').skip(1);
    let partition = parts.next().unwrap_or("aws");
    let account = parts.nth(2).unwrap_or_default();
    format!("arn:{partition}:iam::{account}:role/{role}")
}

/// API Gateway writes every REST API's CloudWatch logs in the region as the one role of
/// this account setting: set to `ours` when the account has none, never replaced. One line
/// says which.
async fn ensure_logs_role(aws: &Aws, ours: &str, console: &Console) -> Result<(), Error> {
    let account = aws
        .apigateway
        .get_account()
        .send()
        .await
        .map_err(failed("API Gateway GetAccount"))?;
    let line = match account.cloudwatch_role_arn().filter(|arn| !arn.is_empty()) {
        Some(current) if current == ours => {
            format!("API Gateway's CloudWatch Logs role is already {ours}")
        }
        Some(other) => format!(
            "API Gateway's CloudWatch Logs role: left the account's existing role {other} \
             (other APIs of the region log as it; {ours} stays unused)"
        ),
        None => {
            set_logs_role(aws, ours, console).await?;
            format!("API Gateway's CloudWatch Logs role: set to {ours} (the account had none)")
        }
    };
    console.say(line);
    Ok(())
}

/// Between attempts while IAM propagates a new role to API Gateway: about two minutes in
/// all, as long as Terraform's AWS provider waits for the same error.
const PROPAGATION_WAITS: [Duration; 6] = [
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
    Duration::from_secs(30),
    Duration::from_secs(60),
];

async fn set_logs_role(aws: &Aws, role: &str, console: &Console) -> Result<(), Error> {
    let mut waits = PROPAGATION_WAITS.iter();
    loop {
        let result = aws
            .apigateway
            .update_account()
            .patch_operations(
                PatchOperation::builder()
                    .op(Op::Replace)
                    .path("/cloudwatchRoleArn")
                    .value(role)
                    .build(),
            )
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        let Some(wait) = waits.next().filter(|_| is_propagating(&error)) else {
            return Err(failed("API Gateway UpdateAccount")(error));
        };
        console.note(format!(
            "API Gateway does not accept {role} yet (IAM propagates a new role within a \
             minute or two): retrying in {} s",
            wait.as_secs()
        ));
        tokio::time::sleep(*wait).await;
    }
}

/// API Gateway's answers for a role that IAM has not propagated yet: not documented, as
/// reported by CDK and Serverless users and retried by Terraform's AWS provider.
fn is_propagating<R>(error: &SdkError<UpdateAccountError, R>) -> bool {
    use aws_sdk_apigateway::error::ProvideErrorMetadata;
    code(error) == Some("BadRequestException")
        && error
            .as_service_error()
            .and_then(|e| e.message())
            .is_some_and(propagating_message)
}

fn propagating_message(message: &str) -> bool {
    [
        "role ARN does not have required permissions",
        "could not successfully write to CloudWatch Logs using the ARN specified",
    ]
    .iter()
    .any(|known| message.contains(known))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_arn_takes_the_stacks_partition_and_account() {
        assert_eq!(
            role_arn(
                "arn:aws-cn:cloudformation:cn-north-1:123456789012:stack/storefirst-bootstrap/5a8e",
                "storefirst-bootstrap-ApiGatewayLogsRole-1X2Y3Z"
            ),
            "arn:aws-cn:iam::123456789012:role/storefirst-bootstrap-ApiGatewayLogsRole-1X2Y3Z"
        );
    }

    #[test]
    fn only_the_propagation_errors_are_retried() {
        assert!(propagating_message(
            "The role ARN does not have required permissions set to API Gateway"
        ));
        assert!(propagating_message(
            "The role ARN does not have required permissions configured. Please grant trust \
             permission for API Gateway and add the required role policy."
        ));
        assert!(propagating_message(
            "API Gateway could not successfully write to CloudWatch Logs using the ARN specified"
        ));
        assert!(!propagating_message("The role ARN is not well formed"));
    }
}
