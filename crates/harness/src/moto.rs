//! moto server: its URL from the environment, an SDK configuration for it, fresh names, and
//! a requests table with its stream.

use std::sync::atomic::{AtomicUsize, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig};
use aws_sdk_dynamodb::config::Credentials;
use storefirst_dynamodb::DynamoTable;

/// Set by `cargo xtask test` (xtask/src/tools.rs) to the URL of the moto server it started.
pub const MOTO_URL_VAR: &str = "STOREFIRST_MOTO_URL";
/// The region every test speaks to moto in.
pub const REGION: &str = "us-east-1";

/// The moto server of this test run; a test that needs it fails without it.
pub fn moto_url() -> String {
    std::env::var(MOTO_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{MOTO_URL_VAR} is not set: this test needs moto server. Run the tests with \
             `cargo xtask test`, which installs and starts moto and sets {MOTO_URL_VAR}"
        )
    })
}

/// An SDK configuration for `endpoint` (moto, or a proxy in front of it) with dummy
/// credentials, and one attempt per call: a moto crash is an HTML 500 the SDK would retry.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await
}

/// `prefix` and a suffix no other test or run uses on the same moto server.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    format!(
        "{prefix}-{nanos:x}-{:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A new requests table with its stream on moto, created as `storefirst-local
/// --create-table` creates it; one per test, since tests share one moto server.
pub async fn requests_table(prefix: &str) -> DynamoTable {
    DynamoTable::connect(&sdk_config(&moto_url()).await, &unique(prefix), true)
        .await
        .unwrap_or_else(|e| panic!("CreateTable on moto: {e}"))
}
