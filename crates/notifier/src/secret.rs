//! The signing secret, read from Secrets Manager once per execution environment.

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use storefirst_webhooks::{InvalidSecret, Secret};

use crate::config::SECRET_VAR;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "cannot read the webhook secret {id:?} from Secrets Manager ({reason}): set \
         {SECRET_VAR} to the ARN or name of the stack's secret (stack output \
         WebhookSecretArn), and allow the function secretsmanager:GetSecretValue on it"
    )]
    Unreadable { id: String, reason: String },
    #[error(
        "the webhook secret {id:?} has no SecretString: store the key as text, 64 \
         alphanumeric characters (base64) or a whsec_ string"
    )]
    NotText { id: String },
    #[error("the webhook secret {id:?}: {source}")]
    Invalid { id: String, source: InvalidSecret },
}

/// Reads and checks the secret `id`. Its SecretString is the key's base64, as the stack
/// generates it, or a whole `whsec_` string; either signs as `whsec_` and the base64.
pub async fn read(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<Secret, SecretError> {
    let answer = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|error| SecretError::Unreadable {
            id: id.to_owned(),
            reason: DisplayErrorContext(&error).to_string(),
        })?;
    let text = answer
        .secret_string()
        .map(str::trim)
        .ok_or_else(|| SecretError::NotText { id: id.to_owned() })?;
    Secret::parse_stored(text).map_err(|source| SecretError::Invalid {
        id: id.to_owned(),
        source,
    })
}
