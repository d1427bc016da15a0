//! The bootstrap stack, like `cdk bootstrap`: one assets bucket per account and region that
//! every deploy uploads its function zips (and templates too large to send inline) to.

use serde_json::{Value, json};

use crate::{Aws, Console, Error, aws::failed, stack};

/// The bootstrap stack's default name (`--bootstrap-stack`).
pub const DEFAULT_STACK: &str = "storefirst-bootstrap";
const BUCKET: &str = "AssetsBucket";

/// A versioned, encrypted bucket with public access blocked, TLS required, and old
/// versions expired. Retained on delete: stacks deployed from it still name its objects.
pub fn template() -> Value {
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "storefirst bootstrap: the bucket cargo xtask deploy uploads function zips and large templates to",
        "Resources": {
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
            }
        }
    })
}

/// The bucket of a deployed bootstrap stack; `None` when the stack does not exist. Read
/// from the resource rather than the output: emulators (moto 5.2) leave the outputs of a
/// stack created by a change set empty.
pub(crate) async fn find(aws: &Aws, name: &str) -> Result<Option<String>, Error> {
    if stack::describe(aws, name).await?.is_none() {
        return Ok(None);
    }
    bucket(aws, name).await.map(Some)
}

async fn bucket(aws: &Aws, name: &str) -> Result<String, Error> {
    let described = aws
        .cloudformation
        .describe_stack_resource()
        .stack_name(name)
        .logical_resource_id(BUCKET)
        .send()
        .await
        .map_err(failed("CloudFormation DescribeStackResource"))?;
    described
        .stack_resource_detail()
        .and_then(|r| r.physical_resource_id())
        .filter(|bucket| !bucket.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Error::BadBootstrap(name.to_owned()))
}

/// Creates or updates the bootstrap stack (a no-op when it is current); returns its bucket.
pub(crate) async fn ensure(aws: &Aws, name: &str, console: &Console) -> Result<String, Error> {
    let plan = crate::deploy::Plan {
        stack: name,
        template: &template(),
        parameters: &Default::default(),
        template_bucket: None,
        yes: true,
        // The assets bucket belongs to the account, not to the app: made with the caller's
        // own permissions (`deploy-ci-role` creates it with administrator credentials).
        execution_role: None,
    };
    crate::deploy::apply(aws, &plan, console).await?;
    bucket(aws, name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_is_versioned_encrypted_private_and_retained() {
        let template = template();
        let bucket = &template["Resources"]["AssetsBucket"];
        let properties = &bucket["Properties"];
        assert_eq!(properties["VersioningConfiguration"]["Status"], "Enabled");
        assert_eq!(
            properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
                ["SSEAlgorithm"],
            "AES256"
        );
        let block = &properties["PublicAccessBlockConfiguration"];
        for setting in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            assert_eq!(block[setting], true, "{setting}");
        }
        assert_eq!(bucket["DeletionPolicy"], "Retain");
        assert_eq!(template["Outputs"][BUCKET]["Value"]["Ref"], "AssetsBucket");
    }
}
