//! Expires succeeded items whose TTL has passed, as DynamoDB TTL does, and trims the
//! stream to the 24 hours DynamoDB Streams keeps.

use std::time::Duration;

use tokio::sync::watch;

use crate::store::SqliteStore;

const STREAM_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

pub async fn run(store: SqliteStore, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let keep_ms = i64::try_from(STREAM_RETENTION.as_millis()).unwrap_or(i64::MAX);
    while !*shutdown.borrow() {
        match store.sweep(keep_ms).await {
            Ok(0) => {}
            Ok(expired) => tracing::debug!(expired, "expired items removed"),
            Err(fault) => tracing::warn!(%fault, "sweep failed; trying again later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}
