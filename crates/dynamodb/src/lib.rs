//! The second backend: a DynamoDB table and its stream (moto server locally, or a real
//! table on AWS). The HTTP API makes the calls API Gateway's mapping templates make
//! (`infra/src/stack/vtl/`), the poller reads the table's DynamoDB Streams shards as the
//! event source mapping does, and outcomes are written by `storefirst_lambda::DynamoStore`,
//! in-process or from the `bootstrap`. The place in the stream and the dead letters are
//! kept in a local SQLite file, so a restart resumes.

mod ledger;
mod record;
mod requests;
mod stream;
mod stuck;

use std::{fmt, path::Path, time::Duration};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::{
    error::{DisplayErrorContext, SdkError},
    types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
        ScalarAttributeType, StreamSpecification, StreamViewType,
    },
};
use storefirst_lambda::{DynamoStore, item};
use storefirst_pipeline::{StoreFault, ports::Access};

pub use ledger::ShardLedger;
pub use requests::{DynamoReadModel, DynamoRequests};
pub use stream::{DynamoStream, Position};
pub use stuck::DynamoStuck;

/// How often the stream is polled, as Lambda's poller does (4 times a second).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    #[error(
        "{call} on table {table} failed: {message}; check the table name, AWS_ENDPOINT_URL, \
         AWS_REGION and the credentials (or pass --create-table to create it)"
    )]
    Call {
        call: &'static str,
        table: String,
        message: String,
    },
    #[error(
        "table {0} has no stream: enable DynamoDB Streams with NEW_AND_OLD_IMAGES on it, as the stack does"
    )]
    NoStream(String),
    #[error(
        "cannot open the stream ledger {path}: {source}; check that its directory exists and is writable"
    )]
    Ledger {
        path: String,
        source: rusqlite::Error,
    },
}

/// A requests table with its stream.
#[derive(Clone)]
pub struct DynamoTable {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub name: String,
    pub stream_arn: String,
}

impl DynamoTable {
    /// Finds the table and its stream; with `create`, creates the table as the stack
    /// defines it when it does not exist.
    pub async fn connect(aws: &SdkConfig, name: &str, create: bool) -> Result<Self, DynamoError> {
        let dynamodb = aws_sdk_dynamodb::Client::new(aws);
        let fail = |call, error: String| DynamoError::Call {
            call,
            table: name.to_owned(),
            message: error,
        };
        let described = dynamodb.describe_table().table_name(name).send().await;
        let description = match described {
            Ok(out) => out.table,
            Err(error)
                if create
                    && error
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                tracing::info!(table = name, "creating the table");
                create_table(&dynamodb, name)
                    .await
                    .map_err(|e| fail("CreateTable", e))?
            }
            Err(error) => {
                return Err(fail(
                    "DescribeTable",
                    DisplayErrorContext(&error).to_string(),
                ));
            }
        };
        let stream_arn = description
            .and_then(|table| table.latest_stream_arn)
            .ok_or_else(|| DynamoError::NoStream(name.to_owned()))?;
        Ok(Self {
            dynamodb,
            streams: aws_sdk_dynamodbstreams::Client::new(aws),
            name: name.to_owned(),
            stream_arn,
        })
    }

    /// The outcome store the Lambda function uses.
    pub fn outcomes(&self) -> DynamoStore {
        DynamoStore::new(self.dynamodb.clone(), &self.name)
    }

    pub fn requests(&self) -> DynamoRequests {
        DynamoRequests::new(self.dynamodb.clone(), &self.name)
    }

    /// The stream reader, keeping its place in the ledger file `ledger`.
    pub fn stream(&self, ledger: &Path) -> Result<DynamoStream, DynamoError> {
        Ok(DynamoStream::new(self.clone(), self.ledger(ledger)?))
    }

    pub fn ledger(&self, path: &Path) -> Result<ShardLedger, DynamoError> {
        ShardLedger::open(path, &self.stream_arn).map_err(|source| DynamoError::Ledger {
            path: path.display().to_string(),
            source,
        })
    }
}

async fn create_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<Option<aws_sdk_dynamodb::types::TableDescription>, String> {
    let built = |e: aws_sdk_dynamodb::error::BuildError| e.to_string();
    dynamodb
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(item::ID)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(built)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(item::ID)
                .key_type(KeyType::Hash)
                .build()
                .map_err(built)?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(built)?,
        )
        .send()
        .await
        .map(|out| out.table_description)
        .map_err(|e| DisplayErrorContext(&e).to_string())
}

/// An SDK error as a fault's source: its message is the whole context, as the SDK's own
/// says only "service error".
#[derive(Debug)]
struct Sdk<E>(E);

impl<E: std::error::Error> fmt::Display for Sdk<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", DisplayErrorContext(&self.0))
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Sdk<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A failed call of `access` on `table`.
fn fault<E, R>(access: Access, call: &str, table: &str, error: SdkError<E, R>) -> StoreFault
where
    E: std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    StoreFault {
        operation: format!("{call} on table {table}"),
        access,
        source: Box::new(Sdk(error)),
    }
}

fn string(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn number(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
