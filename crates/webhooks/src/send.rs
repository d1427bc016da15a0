//! One attempt: check the URL again, resolve the name, refuse addresses that are not
//! public, connect to a checked one, POST the signed document, classify the answer.

use std::{
    error::Error as _,
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime},
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use storefirst_domain::{Answer, CallbackUrl, Receivers, retry_after_seconds};
// The names the OpenAPI document's callback gives them.
use storefirst_pipeline::openapi::{
    WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER,
};

use crate::{Due, Secret};

/// Most time one attempt may take, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves a receiver's name: the system's resolver, or a fixed one in tests.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system's resolver (`getaddrinfo`, through tokio).
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|addr| addr.ip())
                .collect())
        })
    }
}

/// A receiver this runtime may not reach.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the receiver {host} resolves to {ip}, which is not a public address; webhooks are \
     not delivered to loopback, private, link-local or unique-local addresses"
)]
pub struct Refused {
    pub host: String,
    pub ip: IpAddr,
}

/// reqwest's resolver: every address a name resolves to is checked, and a name with any
/// refused address is refused whole (a name that mixes public and private addresses is
/// no receiver). The connection then goes to an address checked here, never re-resolved.
struct Guard {
    receivers: Receivers,
    lookup: Arc<dyn Lookup>,
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let (receivers, lookup) = (self.receivers, self.lookup.clone());
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let ips = lookup.lookup(host.clone()).await?;
            if let Some(ip) = ips.iter().find(|ip| !receivers.allows(**ip)) {
                return Err(Refused { host, ip: *ip }.into());
            }
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Sends attempts; cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    secret: Arc<Secret>,
    receivers: Receivers,
}

impl Sender {
    pub fn new(
        secret: Secret,
        receivers: Receivers,
        lookup: Arc<dyn Lookup>,
    ) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            // A redirect would leave the checked URL; a 3xx is a permanent failure.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect to the receiver on our behalf, unchecked.
            .no_proxy()
            .user_agent(concat!("storefirst-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(Guard { receivers, lookup }))
            .build()?;
        Ok(Self {
            client,
            secret: Arc::new(secret),
            receivers,
        })
    }

    /// One attempt of `due`: delivered, to be retried, or permanently refused.
    pub async fn send(&self, due: &Due) -> Answer {
        let url = match CallbackUrl::parse(&due.url, self.receivers) {
            Ok(url) => url,
            Err(refused) => return Answer::Permanent(refused.to_string()),
        };
        // A literal is not resolved, so it is checked here (only loopback ones parse).
        if let Ok(ip) = url.host().trim_matches(['[', ']']).parse::<IpAddr>()
            && !self.receivers.allows(ip)
        {
            return Answer::Permanent(
                Refused {
                    host: url.host(),
                    ip,
                }
                .to_string(),
            );
        }
        let timestamp = unix_seconds(SystemTime::now());
        let signature = self.secret.sign(&due.webhook_id, timestamp, &due.document);
        let sent = self
            .client
            .post(url.as_str())
            .header("content-type", "application/json")
            .header(WEBHOOK_ID_HEADER, &due.webhook_id)
            .header(WEBHOOK_TIMESTAMP_HEADER, timestamp.to_string())
            .header(WEBHOOK_SIGNATURE_HEADER, signature)
            .body(due.document.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok())
                    .and_then(retry_after);
                Answer::of_status(response.status().as_u16(), retry_after)
            }
            Err(error) => failed(&error),
        }
    }
}

/// A failed send: refused by the guard (permanent), or a timeout or connection error
/// (retried).
fn failed(error: &reqwest::Error) -> Answer {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return Answer::Permanent(refused.to_string());
        }
        source = cause.source();
    }
    let what = if error.is_timeout() {
        format!("no answer within {TIMEOUT:?}")
    } else {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        text
    };
    Answer::Retry {
        error: what,
        after: None,
    }
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    retry_after_seconds(value).or_else(|| {
        let at = httpdate::parse_http_date(value.trim()).ok()?;
        Some(at.duration_since(SystemTime::now()).unwrap_or_default())
    })
}

fn unix_seconds(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        let soon = SystemTime::now() + Duration::from_secs(120);
        let waited = retry_after(&httpdate::fmt_http_date(soon)).unwrap();
        assert!((Duration::from_secs(118)..=Duration::from_secs(120)).contains(&waited));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
