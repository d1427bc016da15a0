//! moto server: its URL from the environment, an SDK configuration for it, fresh names, and
//! a requests table with its stream, its items and the stream's records.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicUsize, Ordering},
};

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig};
use aws_sdk_dynamodb::{config::Credentials, types::AttributeValue};
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use storefirst_dynamodb::DynamoTable;
use storefirst_lambda::item;

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

/// The item of `id` in the requests table `table`, read consistently; a test fails when it
/// is missing.
pub async fn get_item(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
) -> HashMap<String, AttributeValue> {
    dynamodb
        .get_item()
        .table_name(table)
        .set_key(Some(item::key(id)))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem on moto")
        .item
        .unwrap_or_else(|| panic!("item {id} is missing"))
}

/// Every record of the stream `stream_arn` from `TRIM_HORIZON`, shard by shard, as an
/// event source mapping reads them.
pub async fn stream_records(
    streams: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
) -> Vec<Record> {
    let shards = streams
        .describe_stream()
        .stream_arn(stream_arn)
        .send()
        .await
        .expect("DescribeStream on moto")
        .stream_description
        .and_then(|stream| stream.shards)
        .unwrap_or_default();
    let mut records = Vec::new();
    for shard in shards {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard.shard_id.expect("a shard has an id"))
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator on moto")
            .shard_iterator;
        while let Some(current) = iterator {
            let page = streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .expect("GetRecords on moto");
            let got = page.records.unwrap_or_default();
            // An open shard always hands out a next iterator: stop at the first empty page.
            if got.is_empty() {
                break;
            }
            records.extend(got);
            iterator = page.next_shard_iterator;
        }
    }
    records
}

/// Set by `cargo xtask test` to the deployable zip it built.
pub const LAMBDA_ZIP_VAR: &str = "STOREFIRST_TEST_LAMBDA_ZIP";

/// The arguments and environment of `storefirst-local` in the Lambda mode on moto: the
/// deployable zip itself, a new `table` it creates, dummy credentials, one attempt per call.
pub fn lambda_mode(table: &str) -> (Vec<String>, Vec<(&'static str, String)>) {
    let zip = std::env::var(LAMBDA_ZIP_VAR).unwrap_or_else(|_| {
        panic!(
            "{LAMBDA_ZIP_VAR} is not set: run the tests with `cargo xtask test`, which builds \
             the zip"
        )
    });
    let args = [
        "--dynamodb-table",
        table,
        "--create-table",
        "--lambda",
        &zip,
    ];
    let envs = [
        ("AWS_ENDPOINT_URL", moto_url()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_MAX_ATTEMPTS", "1".into()),
    ];
    (args.map(String::from).into(), envs.into())
}
