//! The webhook signing secret: given, or generated once and kept in the database.

use std::path::Path;

use storefirst_webhooks::{InvalidSecret, Secret, generate_secret};

use crate::db;

/// Where the signing secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOrigin {
    /// `--webhook-secret` / `STOREFIRST_WEBHOOK_SECRET`.
    Given,
    /// Generated at an earlier start and kept in the database.
    Kept,
    /// Generated now, and kept in the database from now on.
    Generated,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Invalid(#[from] InvalidSecret),
    #[error("cannot keep the webhook secret in the database {path}: {source}")]
    Database {
        path: String,
        source: rusqlite::Error,
    },
}

/// The secret webhooks are signed with: `given`, else the one kept in the database at
/// `path`, else a new one, kept from now on.
pub fn webhook_secret(
    path: &Path,
    given: Option<&str>,
) -> Result<(Secret, SecretOrigin), SecretError> {
    if let Some(given) = given {
        return Ok((Secret::parse(given)?, SecretOrigin::Given));
    }
    let database = |source| SecretError::Database {
        path: path.display().to_string(),
        source,
    };
    let conn = db::open_and_migrate(path).map_err(database)?;
    let inserted = conn
        .execute(
            "INSERT INTO settings (name, value) VALUES ('webhook_secret', ?1)
             ON CONFLICT (name) DO NOTHING",
            [generate_secret()],
        )
        .map_err(database)?;
    let kept: String = conn
        .query_row(
            "SELECT value FROM settings WHERE name = 'webhook_secret'",
            [],
            |row| row.get(0),
        )
        .map_err(database)?;
    let origin = match inserted {
        1 => SecretOrigin::Generated,
        _ => SecretOrigin::Kept,
    };
    Ok((Secret::parse(&kept)?, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_generated_once_and_kept_unless_one_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let (first, origin) = webhook_secret(&path, None).unwrap();
        assert_eq!(origin, SecretOrigin::Generated);
        let (again, origin) = webhook_secret(&path, None).unwrap();
        assert_eq!(
            (again.as_str(), origin),
            (first.as_str(), SecretOrigin::Kept)
        );
        let given = storefirst_webhooks::generate_secret();
        let (used, origin) = webhook_secret(&path, Some(&given)).unwrap();
        assert_eq!(
            (used.as_str(), origin),
            (given.as_str(), SecretOrigin::Given)
        );
        assert!(webhook_secret(&path, Some("not-a-secret")).is_err());
    }
}
