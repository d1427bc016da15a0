//! `AWS::IAM::Role`, `AWS::IAM::Policy` and `AWS::IAM::OIDCProvider`, with typed policy
//! documents.

use serde::Serialize;
use serde_json::Value;

use crate::model::{Expr, ResourceType};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Role {
    pub assume_role_policy_document: PolicyDocument,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub managed_policy_arns: Vec<Expr>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<InlinePolicy>,
}

impl ResourceType for Role {
    const TYPE: &'static str = "AWS::IAM::Role";
    const ATTRIBUTES: &'static [&'static str] = &["Arn", "RoleId"];
}

impl Role {
    /// A role that `service` (e.g. `lambda.amazonaws.com`) may assume.
    pub fn for_service(service: &str) -> Self {
        Self {
            assume_role_policy_document: PolicyDocument::new(vec![Statement {
                effect: "Allow",
                principal: Some(Principal::service(service)),
                action: vec!["sts:AssumeRole"],
                resource: Vec::new(),
                condition: None,
            }]),
            managed_policy_arns: Vec::new(),
            policies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InlinePolicy {
    pub policy_name: &'static str,
    pub policy_document: PolicyDocument,
}

/// A policy attached to roles as its own resource, so others can depend on it being in
/// force.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Policy {
    pub policy_name: Expr,
    pub policy_document: PolicyDocument,
    pub roles: Vec<Expr>,
}

impl ResourceType for Policy {
    const TYPE: &'static str = "AWS::IAM::Policy";
    const ATTRIBUTES: &'static [&'static str] = &["Id"];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

impl PolicyDocument {
    pub fn new(statement: Vec<Statement>) -> Self {
        Self {
            version: "2012-10-17",
            statement,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub effect: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    pub action: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource: Vec<Expr>,
    /// `{"StringEquals": {"key": value}, ...}`, as IAM writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
}

impl Statement {
    pub fn allow(action: Vec<&'static str>, resource: Vec<Expr>) -> Self {
        Self {
            effect: "Allow",
            principal: None,
            action,
            resource,
            condition: None,
        }
    }

    /// An explicit deny: it wins over every allow of every policy.
    pub fn deny(action: Vec<&'static str>, resource: Vec<Expr>) -> Self {
        Self {
            effect: "Deny",
            ..Self::allow(action, resource)
        }
    }

    /// Applies only when `condition` (an IAM condition block) holds.
    pub fn when(mut self, condition: Value) -> Self {
        self.condition = Some(condition);
        self
    }
}

/// Who may assume a role: an AWS service, or the users of an identity provider.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Principal {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Expr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federated: Option<Expr>,
}

impl Principal {
    pub fn service(service: impl Into<Expr>) -> Self {
        Self {
            service: Some(service.into()),
            federated: None,
        }
    }

    /// The users of an OIDC or SAML provider, by the provider's ARN.
    pub fn federated(provider: Expr) -> Self {
        Self {
            service: None,
            federated: Some(provider),
        }
    }
}

/// An OpenID Connect identity provider of the account (e.g. GitHub Actions'); `Ref` is its
/// ARN. One per URL per account.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OidcProvider {
    pub url: &'static str,
    pub client_id_list: Vec<&'static str>,
}

impl ResourceType for OidcProvider {
    const TYPE: &'static str = "AWS::IAM::OIDCProvider";
    const ATTRIBUTES: &'static [&'static str] = &["Arn"];
}
