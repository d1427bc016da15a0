//! The signing secret: `whsec_` and the base64 of its key, as Standard Webhooks has it.

use base64::Engine;
use rand::RngCore;

const PREFIX: &str = "whsec_";

/// A secret that signs: checked when made, so signing cannot fail on it.
pub struct Secret {
    text: String,
    key: standardwebhooks::Webhook,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the webhook secret is not whsec_ followed by base64 ({0}); set one like those \
     storefirst-local generates, or none to have one generated"
)]
pub struct InvalidSecret(String);

impl Secret {
    pub fn parse(text: &str) -> Result<Self, InvalidSecret> {
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| InvalidSecret("no whsec_ prefix".into()))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| InvalidSecret(e.to_string()))?;
        if key.len() < 24 {
            return Err(InvalidSecret(format!(
                "{} bytes of key; use at least 24",
                key.len()
            )));
        }
        Ok(Self {
            text: text.to_owned(),
            key: standardwebhooks::Webhook::from_bytes(key)
                .map_err(|e| InvalidSecret(e.to_string()))?,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Reads a secret as Secrets Manager keeps it: the key's base64 alone (as the stack
    /// generates it) or a whole `whsec_` string; either signs as `whsec_` and the base64.
    pub fn parse_stored(text: &str) -> Result<Self, InvalidSecret> {
        if text.starts_with(PREFIX) {
            Self::parse(text)
        } else {
            Self::parse(&format!("{PREFIX}{text}"))
        }
    }

    /// The key's base64 without `whsec_`: the form the stack stores.
    pub fn stored(&self) -> &str {
        self.text.strip_prefix(PREFIX).unwrap_or(&self.text)
    }

    /// The `webhook-signature` header's value for this message.
    pub fn sign(&self, webhook_id: &str, timestamp: i64, payload: &[u8]) -> String {
        // Payloads are JSON documents, always UTF-8: the only way `sign` fails.
        self.key
            .sign(webhook_id, timestamp, payload)
            .expect("a JSON document is UTF-8")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A new secret: 32 random bytes.
pub fn generate_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_specifications_test_vector() {
        // The Standard Webhooks reference libraries' vector; its key is 24 bytes.
        let secret = Secret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            secret.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn generated_secrets_parse_and_differ() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        assert_eq!(Secret::parse(&a).unwrap().as_str(), a);
    }

    #[test]
    fn a_bad_secret_says_what_a_good_one_is() {
        for bad in ["C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "whsec_!!", "whsec_YWJj"] {
            let error = Secret::parse(bad).unwrap_err().to_string();
            assert!(error.contains("whsec_"), "{error}");
        }
    }

    #[test]
    fn the_stacks_stored_form_and_a_whsec_string_sign_alike() {
        // 64 alphanumeric characters, as GenerateSecretString makes them: 48 bytes of base64.
        let generated = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz01";
        let bare = Secret::parse_stored(generated).unwrap();
        let full = Secret::parse_stored(&format!("whsec_{generated}")).unwrap();
        assert_eq!(bare.as_str(), full.as_str());
        assert_eq!(bare.stored(), generated);
        assert_eq!(bare.sign("msg_1", 1, b"{}"), full.sign("msg_1", 1, b"{}"));
        assert!(Secret::parse_stored("not base64!").is_err());
    }
}
