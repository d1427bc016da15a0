//! `AWS::SecretsManager::Secret`.

use serde::Serialize;

use crate::model::{Expr, ResourceType};

/// A secret whose value Secrets Manager generates at create time: the template never holds
/// it. `Ref` is its ARN.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Secret {
    pub name: Expr,
    pub description: &'static str,
    pub generate_secret_string: GenerateSecretString,
}

impl ResourceType for Secret {
    const TYPE: &'static str = "AWS::SecretsManager::Secret";
    const ATTRIBUTES: &'static [&'static str] = &["Id"];
}

/// How the value is generated (Secrets Manager's GetRandomPassword).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateSecretString {
    pub password_length: u32,
    pub exclude_punctuation: bool,
    pub include_space: bool,
}
