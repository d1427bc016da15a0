//! The connection to AWS: the SDK clients a deploy uses, the region and credentials
//! checked up front, and SDK errors turned into errors that say what to do.

use std::{error::Error as StdError, fmt::Debug, time::SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudformation::{
    config::ProvideCredentials,
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
};

use crate::Error;

/// Where to deploy: each `None` falls back to the AWS SDK's usual sources (`AWS_REGION`,
/// `AWS_PROFILE`, `AWS_ENDPOINT_URL`, `~/.aws/config`, SSO, instance roles).
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// Every call goes here instead of AWS, e.g. an emulator such as moto server.
    pub endpoint_url: Option<String>,
}

/// The clients a deploy needs, with a region and working credentials.
#[derive(Clone)]
pub struct Aws {
    pub(crate) cloudformation: aws_sdk_cloudformation::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) apigateway: aws_sdk_apigateway::Client,
    pub(crate) dynamodb: aws_sdk_dynamodb::Client,
    pub(crate) logs: aws_sdk_cloudwatchlogs::Client,
    region: String,
}

impl Aws {
    /// Loads the SDK configuration the way the AWS CLI does, with the given overrides.
    pub async fn connect(connection: &Connection) -> Result<Self, Error> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &connection.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &connection.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &connection.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Self::new(&loader.load().await).await
    }

    /// Checks the region and the credentials up front, so a deploy never stops halfway on
    /// them.
    pub async fn new(config: &SdkConfig) -> Result<Self, Error> {
        let region = config.region().ok_or(Error::NoRegion)?.to_string();
        let provider = config
            .credentials_provider()
            .ok_or_else(|| Error::NoCredentials {
                why: "no credentials provider is set".into(),
            })?;
        let credentials = provider.provide_credentials().await.map_err(|e| {
            let reason = DisplayErrorContext(e).to_string();
            // An SSO session or a cached token past its end: a login fixes it.
            if reason.to_lowercase().contains("expired") {
                Error::ExpiredToken
            } else {
                Error::NoCredentials { why: reason }
            }
        })?;
        if credentials
            .expiry()
            .is_some_and(|expiry| expiry <= SystemTime::now())
        {
            return Err(Error::ExpiredToken);
        }
        // Emulators answer on one host name: S3's virtual-hosted buckets cannot resolve there.
        let emulator = config.endpoint_url().is_some();
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(emulator)
            .build();
        Ok(Self {
            cloudformation: aws_sdk_cloudformation::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            apigateway: aws_sdk_apigateway::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            region,
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }
}

/// The error code of a failed call, if AWS sent one.
pub(crate) fn code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    error.as_service_error().and_then(|e| e.code())
}

/// Turns an SDK error into an [`Error`] that says what to do about it.
pub(crate) fn failed<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    move |error| {
        let message = error
            .as_service_error()
            .and_then(|e| e.message())
            .map_or_else(|| DisplayErrorContext(&error).to_string(), str::to_owned);
        match code(&error) {
            Some("ExpiredToken" | "ExpiredTokenException" | "RequestExpired") => {
                Error::ExpiredToken
            }
            Some(
                "InvalidClientTokenId"
                | "UnrecognizedClientException"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch",
            ) => Error::BadCredentials(message),
            Some("AccessDenied" | "AccessDeniedException") => {
                Error::AccessDenied { operation, message }
            }
            _ => Error::Aws { operation, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_cloudformation::config::Credentials;

    use super::*;

    fn config(region: Option<&str>, credentials: Option<Credentials>) -> SdkConfig {
        let mut builder = SdkConfig::builder().behavior_version(BehaviorVersion::latest());
        if let Some(region) = region {
            builder = builder.region(Region::new(region.to_owned()));
        }
        if let Some(credentials) = credentials {
            builder = builder.credentials_provider(
                aws_sdk_cloudformation::config::SharedCredentialsProvider::new(credentials),
            );
        }
        builder.build()
    }

    fn credentials(expiry: Option<SystemTime>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("token".into()),
            expiry,
            "test",
        )
    }

    #[tokio::test]
    async fn no_region_says_how_to_set_one() {
        let error = Aws::new(&config(None, Some(credentials(None))))
            .await
            .err()
            .expect("no region is an error");
        assert!(matches!(error, Error::NoRegion));
        assert!(error.to_string().contains("--region"), "{error}");
    }

    #[tokio::test]
    async fn no_credentials_say_how_to_log_in() {
        let error = Aws::new(&config(Some("eu-west-1"), None))
            .await
            .err()
            .expect("no credentials is an error");
        assert!(matches!(error, Error::NoCredentials { .. }));
        assert!(error.to_string().contains("aws configure"), "{error}");
    }

    #[tokio::test]
    async fn an_expired_token_says_to_log_in_again() {
        let past = SystemTime::now() - Duration::from_secs(60);
        let error = Aws::new(&config(Some("eu-west-1"), Some(credentials(Some(past)))))
            .await
            .err()
            .expect("expired credentials are an error");
        assert!(matches!(error, Error::ExpiredToken), "{error}");
    }

    #[tokio::test]
    async fn an_expired_sso_session_says_to_log_in_again() {
        let provider = aws_credential_types::credential_fn::provide_credentials_fn(|| async {
            Err(
                aws_credential_types::provider::error::CredentialsError::provider_error(
                    "the SSO session has expired or is invalid",
                ),
            )
        });
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(
                aws_sdk_cloudformation::config::SharedCredentialsProvider::new(provider),
            )
            .build();
        let error = Aws::new(&config).await.err().expect("an error");
        assert!(matches!(error, Error::ExpiredToken), "{error}");
    }

    #[tokio::test]
    async fn valid_credentials_and_a_region_connect() {
        let future = SystemTime::now() + Duration::from_secs(3600);
        let aws = Aws::new(&config(Some("eu-west-1"), Some(credentials(Some(future)))))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(aws.region(), "eu-west-1");
    }
}
