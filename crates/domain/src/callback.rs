//! Webhooks: the callback URL a client names with `x-callback-url`, the delivery state GET
//! shows, which addresses a delivery may reach, and when a failed delivery is tried again.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
    time::Duration,
};

use serde::Serialize;
use url::{Host, Url};

/// The longest callback URL accepted, in bytes.
pub const CALLBACK_URL_LIMIT: usize = 2048;

/// Which receivers a runtime may deliver to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Receivers {
    /// `https` URLs of names that resolve to public addresses only.
    #[default]
    Public,
    /// Also `http` and `https` on this machine (`localhost`, `127.0.0.1`, `[::1]`): the local
    /// runtime's explicit opt-in for development and tests.
    AlsoLoopback,
}

impl Receivers {
    /// Whether a delivery may connect to `ip` (an address the receiver's name resolved to,
    /// or an IP literal of the URL).
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            Receivers::AlsoLoopback if ip.to_canonical().is_loopback() => true,
            _ => is_public(ip),
        }
    }
}

/// Whether `ip` is a public unicast address: not loopback, private (RFC 1918), shared
/// (RFC 6598), link-local, unique-local, unspecified, multicast, broadcast, documentation
/// or otherwise reserved. IPv4-mapped and NAT64-embedded addresses count as their IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            // 64:ff9b::/96 (NAT64) carries an IPv4 address in its last 32 bits.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., a, b, c, d] = v6.octets();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10: carrier-grade NAT, private to a provider's network.
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24: protocol assignments.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // 198.18.0.0/15: benchmarking.
        || (a == 198 && (b == 18 || b == 19))
        // 240.0.0.0/4: reserved.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // fc00::/7: unique local.
        || (first & 0xfe00) == 0xfc00
        // fe80::/10: link-local.
        || (first & 0xffc0) == 0xfe80
        // fec0::/10: the deprecated site-local.
        || (first & 0xffc0) == 0xfec0
        // 2001:db8::/32: documentation.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// A receiver's URL as the client named it in `x-callback-url`, checked: absolute, `https`
/// (or loopback `http` where allowed), no user info, at most [`CALLBACK_URL_LIMIT`] bytes, a
/// DNS name rather than an IP literal unless it is loopback and loopback is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCallback {
    #[error("x-callback-url is longer than {CALLBACK_URL_LIMIT} bytes; send a shorter URL")]
    TooLong,
    #[error("x-callback-url is not an absolute URL ({0}); send e.g. https://example.com/hook")]
    NotAbsolute(String),
    #[error("x-callback-url must be https, not {0}; send an https URL")]
    Scheme(String),
    #[error("x-callback-url must not carry user info; authenticate by the webhook's signature")]
    UserInfo,
    #[error(
        "x-callback-url names the IP address {0}; name the receiver by a DNS name that \
         resolves to a public address"
    )]
    IpLiteral(String),
    #[error(
        "x-callback-url names this machine ({0}); webhooks go to public receivers only \
         (the local runtime allows loopback receivers with --allow-loopback-webhooks)"
    )]
    Loopback(String),
    #[error("send at most one x-callback-url header")]
    Repeated,
    #[error(
        "this runtime does not deliver webhooks (the DynamoDB mode of storefirst-local); \
         leave out x-callback-url, or use the SQLite mode"
    )]
    NotDelivered,
}

impl CallbackUrl {
    /// Checks `text` as a callback URL for a runtime that delivers to `receivers`.
    pub fn parse(text: &str, receivers: Receivers) -> Result<Self, InvalidCallback> {
        if text.len() > CALLBACK_URL_LIMIT {
            return Err(InvalidCallback::TooLong);
        }
        let url = Url::parse(text).map_err(|e| InvalidCallback::NotAbsolute(e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidCallback::UserInfo);
        }
        let loopback = match url.host() {
            None => return Err(InvalidCallback::NotAbsolute("no host".into())),
            // RFC 6761: localhost names are this machine whatever a resolver says.
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.');
                name == "localhost" || name.ends_with(".localhost")
            }
            Some(Host::Ipv4(ip)) => literal(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => literal(IpAddr::V6(ip))?,
        };
        if loopback && receivers != Receivers::AlsoLoopback {
            return Err(InvalidCallback::Loopback(
                url.host_str().unwrap_or_default().to_owned(),
            ));
        }
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            other => return Err(InvalidCallback::Scheme(other.to_owned())),
        }
        // The parsed form, so that two spellings of one URL compare equal.
        let normal = url.to_string();
        if normal.len() > CALLBACK_URL_LIMIT {
            return Err(InvalidCallback::TooLong);
        }
        Ok(Self(normal))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host as the URL has it: a name, or a bracketed IPv6 literal.
    pub fn host(&self) -> String {
        Url::parse(&self.0)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// An IP literal: only a loopback one may be allowed (see [`Receivers::AlsoLoopback`]).
fn literal(ip: IpAddr) -> Result<bool, InvalidCallback> {
    if ip.to_canonical().is_loopback() {
        Ok(true)
    } else {
        Err(InvalidCallback::IpLiteral(ip.to_string()))
    }
}

impl fmt::Display for CallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a webhook's delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallbackStatus {
    /// Not delivered yet: the request is still pending, or a delivery is due or retried.
    Pending,
    Delivered,
    /// Given up on; `cargo xtask redrive` delivers it again.
    Failed,
}

impl CallbackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackStatus::Pending => "pending",
            CallbackStatus::Delivered => "delivered",
            CallbackStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown callback status {0:?}: expected pending, delivered or failed")]
pub struct UnknownCallbackStatus(pub String);

impl FromStr for CallbackStatus {
    type Err = UnknownCallbackStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(CallbackStatus::Pending),
            "delivered" => Ok(CallbackStatus::Delivered),
            "failed" => Ok(CallbackStatus::Failed),
            other => Err(UnknownCallbackStatus(other.to_owned())),
        }
    }
}

/// The callback as GET shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Callback {
    pub url: String,
    pub status: CallbackStatus,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a receiver's answer (or its absence) means for the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Delivered,
    /// Worth another try, no sooner than `after` when the receiver said so (`Retry-After`).
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Another try would get the same answer.
    Permanent(String),
}

impl Answer {
    /// A receiver's HTTP status: 2xx delivered; 408, 429 and 5xx retried; anything else
    /// (other 4xx, and redirects, which are not followed) permanent.
    pub fn of_status(status: u16, retry_after: Option<Duration>) -> Self {
        match status {
            200..=299 => Answer::Delivered,
            408 | 429 | 500..=599 => Answer::Retry {
                error: format!("the receiver answered {status}"),
                after: retry_after,
            },
            _ => Answer::Permanent(format!("the receiver answered {status}")),
        }
    }
}

/// A `Retry-After` value in seconds (an HTTP date is read by the caller, which has a clock).
pub fn retry_after_seconds(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// When failed deliveries are tried again, and when they are given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// No attempt starts later than this after the first one was due.
    pub max_age: Duration,
    /// The wait after the first failure; it doubles with each further one.
    pub base: Duration,
    /// The longest wait between two attempts (a `Retry-After` may ask for more, up to
    /// `max_age`).
    pub cap: Duration,
}

impl RetryPolicy {
    pub const DEFAULT: Self = Self {
        max_attempts: 8,
        max_age: Duration::from_secs(24 * 60 * 60),
        base: Duration::from_secs(1),
        cap: Duration::from_secs(10 * 60),
    };

    /// After `attempts` attempts (the latest failed, retryably), how long to wait before
    /// the next, or `None` to give up. `jitter` in `[0, 1)` spreads retries out ("equal
    /// jitter": between half and all of the backoff), `age` is how long ago the first
    /// attempt was due.
    pub fn next(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        age: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doubled = self
            .base
            .saturating_mul(1 << attempts.saturating_sub(1).min(30))
            .min(self.cap);
        let backoff = doubled.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0);
        let wait = retry_after.map_or(backoff, |asked| asked.max(backoff));
        (age.saturating_add(wait) <= self.max_age).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CallbackUrl, InvalidCallback> {
        CallbackUrl::parse(text, Receivers::Public)
    }

    #[test]
    fn an_https_url_of_a_name_is_accepted_in_its_parsed_form() {
        let url = parse("https://Hooks.Example.com/a?b=1").unwrap();
        assert_eq!(url.as_str(), "https://hooks.example.com/a?b=1");
        assert_eq!(url.host(), "hooks.example.com");
    }

    #[test]
    fn what_is_refused_says_why() {
        let long = format!("https://example.com/{}", "a".repeat(CALLBACK_URL_LIMIT));
        let cases = [
            (long.as_str(), InvalidCallback::TooLong),
            (
                "/relative",
                InvalidCallback::NotAbsolute("relative URL without a base".into()),
            ),
            (
                "http://example.com/",
                InvalidCallback::Scheme("http".into()),
            ),
            ("ftp://example.com/", InvalidCallback::Scheme("ftp".into())),
            ("https://user:pw@example.com/", InvalidCallback::UserInfo),
            ("https://user@example.com/", InvalidCallback::UserInfo),
            (
                "https://10.0.0.1/",
                InvalidCallback::IpLiteral("10.0.0.1".into()),
            ),
            (
                "https://93.184.216.34/",
                InvalidCallback::IpLiteral("93.184.216.34".into()),
            ),
            (
                "https://[fd00::1]/",
                InvalidCallback::IpLiteral("fd00::1".into()),
            ),
            (
                "https://0x7f.1/",
                InvalidCallback::Loopback("127.0.0.1".into()),
            ),
            (
                "https://127.0.0.1/",
                InvalidCallback::Loopback("127.0.0.1".into()),
            ),
            ("https://[::1]/", InvalidCallback::Loopback("[::1]".into())),
            (
                "https://localhost/",
                InvalidCallback::Loopback("localhost".into()),
            ),
            (
                "https://a.localhost./",
                InvalidCallback::Loopback("a.localhost.".into()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Err(expected), "{text}");
        }
    }

    #[test]
    fn loopback_receivers_need_the_opt_in_and_may_be_plain_http() {
        for text in [
            "http://127.0.0.1:8080/hook",
            "http://localhost:8080/hook",
            "http://[::1]:8080/hook",
            "https://localhost/hook",
        ] {
            assert!(parse(text).is_err(), "{text}");
            assert!(
                CallbackUrl::parse(text, Receivers::AlsoLoopback).is_ok(),
                "{text}"
            );
        }
        // The opt-in is for loopback only.
        for text in [
            "http://example.com/",
            "https://10.0.0.1/",
            "http://192.168.1.1/",
        ] {
            assert!(
                CallbackUrl::parse(text, Receivers::AlsoLoopback).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn only_public_unicast_addresses_are_reachable() {
        let refused = [
            "127.0.0.1",
            "127.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ];
        for text in refused {
            let ip: IpAddr = text.parse().unwrap();
            assert!(!is_public(ip), "{text}");
            assert!(!Receivers::Public.allows(ip), "{text}");
        }
        for text in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "64:ff9b::5db8:d822",
        ] {
            assert!(is_public(text.parse().unwrap()), "{text}");
        }
        let loopback = ["127.0.0.1", "::1", "::ffff:127.0.0.1"];
        for text in loopback {
            assert!(
                Receivers::AlsoLoopback.allows(text.parse().unwrap()),
                "{text}"
            );
        }
        assert!(!Receivers::AlsoLoopback.allows("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn answers_are_delivered_retried_or_permanent_by_status() {
        let after = Some(Duration::from_secs(3));
        assert_eq!(Answer::of_status(204, None), Answer::Delivered);
        for status in [408, 429, 500, 503, 599] {
            assert!(
                matches!(Answer::of_status(status, after), Answer::Retry { after: a, .. } if a == after),
                "{status}"
            );
        }
        for status in [301, 400, 401, 404, 410, 413] {
            assert!(
                matches!(Answer::of_status(status, None), Answer::Permanent(_)),
                "{status}"
            );
        }
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_honour_retry_after_and_end() {
        let policy = RetryPolicy::DEFAULT;
        let young = Duration::ZERO;
        assert_eq!(
            policy.next(1, None, young, 0.0),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            policy.next(3, None, young, 0.0),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            policy.next(4, None, young, 1.0),
            Some(Duration::from_secs(8))
        );
        // Capped.
        let patient = RetryPolicy {
            max_attempts: 40,
            ..policy
        };
        assert_eq!(patient.next(12, None, young, 1.0), Some(policy.cap));
        assert_eq!(patient.next(39, None, young, 1.0), Some(policy.cap));
        // Retry-After asks for more than the backoff, and gets it.
        let asked = Duration::from_secs(120);
        assert_eq!(policy.next(1, Some(asked), young, 0.5), Some(asked));
        // Bounded by attempts and by age.
        assert_eq!(policy.next(8, None, young, 0.5), None);
        assert_eq!(policy.next(2, None, policy.max_age, 0.5), None);
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(retry_after_seconds(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
