//! Waiting until something holds, with a deadline that fails the test and says what it
//! waited for.

use std::time::{Duration, Instant};

/// How often a condition is checked again.
const INTERVAL: Duration = Duration::from_millis(50);

/// Polls `check` until it returns a value, failing the test with `what` after `timeout`.
pub async fn until_some<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Polls `condition` until it holds, failing the test with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    until_some(timeout, what, || {
        let holds = condition();
        async move { holds.await.then_some(()) }
    })
    .await
}
