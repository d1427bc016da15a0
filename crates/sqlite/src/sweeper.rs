//! Expires succeeded items whose TTL has passed, as DynamoDB TTL does, and trims the
//! stream to the 24 hours DynamoDB Streams keeps.

use std::time::Duration;

use tokio::sync::watch;

use crate::store::SqliteStore;

const STREAM_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

pub async fn run(store: SqliteStore, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let keep_ms = storefirst_domain::millis(STREAM_RETENTION);
    while !*shutdown.borrow() {
        let more = match store.sweep(keep_ms).await {
            Ok(swept) => {
                if swept.expired > 0 {
                    tracing::debug!(swept.expired, swept.trimmed, "expired items removed");
                }
                swept.more()
            }
            Err(fault) => {
                tracing::warn!(%fault, "sweep failed; trying again later");
                false
            }
        };
        // A full chunk: go on at once, each chunk its own short transaction.
        if more {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}
