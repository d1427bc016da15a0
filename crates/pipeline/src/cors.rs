//! CORS: which other origins a browser may call the API from. The preflight is answered
//! here, before the API key is checked (a browser sends it without the key) and without
//! touching the store; every other answer to an allowed origin gets the headers that let
//! the page read it. The server only withholds headers: the browser enforces CORS.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// The origins a browser may call the API from. None by default: same-origin only, and no
/// CORS header is ever sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AllowedOrigins {
    #[default]
    None,
    /// `*`, chosen explicitly: any origin (the key is a header, never a cookie, so no
    /// credentials are involved).
    Any,
    /// These origins exactly, as a browser sends them in `Origin`.
    Exact(Vec<String>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CorsError {
    #[error(
        "invalid CORS origin {0:?}: write it as scheme://host[:port], e.g. https://app.example.com \
         or http://127.0.0.1:8081, without a path or a trailing slash"
    )]
    Malformed(String),
    #[error(
        "invalid CORS origin {0:?}: write it in lowercase and without the scheme's default port, \
         as a browser sends it in Origin"
    )]
    NotAsSent(String),
    #[error("the CORS origin * allows every origin: give it alone, not with other origins")]
    AnyAmongOthers,
}

impl AllowedOrigins {
    /// Checks each origin; `*` must be the only one. An empty list allows none.
    pub fn parse<S: AsRef<str>>(origins: &[S]) -> Result<Self, CorsError> {
        let origins: Vec<&str> = origins.iter().map(|o| o.as_ref().trim()).collect();
        match origins.as_slice() {
            [] => Ok(Self::None),
            ["*"] => Ok(Self::Any),
            _ if origins.contains(&"*") => Err(CorsError::AnyAmongOthers),
            _ => origins
                .iter()
                .map(|&origin| check_origin(origin).map(|()| origin.to_owned()))
                .collect::<Result<_, _>>()
                .map(Self::Exact),
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    fn allow(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let origin = origin?;
        match self {
            Self::None => None,
            Self::Any => Some(HeaderValue::from_static("*")),
            Self::Exact(allowed) => allowed
                .iter()
                .any(|a| a.as_bytes() == origin.as_bytes())
                .then(|| origin.clone()),
        }
    }
}

/// `scheme://host[:port]` as a browser serialises an origin: http or https, a lowercase
/// host name or IP address, a port only when it is not the scheme's default.
fn check_origin(origin: &str) -> Result<(), CorsError> {
    let malformed = || CorsError::Malformed(origin.to_owned());
    let (scheme, rest) = origin.split_once("://").ok_or_else(malformed)?;
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {
            return Err(CorsError::NotAsSent(origin.to_owned()));
        }
        _ => return Err(malformed()),
    };
    // An IPv6 host is bracketed and holds colons of its own.
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && if let Some(ip) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            ip.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            host.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
    });
    if !host_ok || !port_ok {
        return Err(malformed());
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) || port == Some(default_port) {
        return Err(CorsError::NotAsSent(origin.to_owned()));
    }
    Ok(())
}

/// The middleware: answers preflights, and adds the CORS headers to every other answer.
pub async fn cors(
    State(origins): State<Arc<AllowedOrigins>>,
    request: Request,
    next: Next,
) -> Response {
    let allowed = origins.allow(request.headers().get(header::ORIGIN));
    if request.method() == Method::OPTIONS
        && let Some(methods) = preflight_methods(request.uri().path())
    {
        let requested = request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        return match allowed {
            Some(origin) if requested => preflight(&origins, origin, methods),
            _ => refused(&origins),
        };
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    vary(&origins, headers);
    if let Some(origin) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Location, Retry-After"),
        );
    }
    response
}

/// The methods of the resource a preflight asks about, or `None` when the path is no
/// resource of the API (then it is an ordinary request, answered by the router).
fn preflight_methods(path: &str) -> Option<&'static str> {
    match path.strip_prefix("/requests")? {
        "" => Some("POST, OPTIONS"),
        id if id.len() > 1 && id.starts_with('/') && !id[1..].contains('/') => {
            Some("GET, PUT, OPTIONS")
        }
        _ => None,
    }
}

fn preflight(origins: &AllowedOrigins, origin: HeaderValue, methods: &'static str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, x-api-key, x-callback-url"),
    );
    // Ten minutes: Chromium's own cap is two hours, and a changed list should not take
    // longer to reach the pages.
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    vary(origins, headers);
    response
}

fn refused(origins: &AllowedOrigins) -> Response {
    let message = "CORS preflight refused: the Origin is missing or not in the allowed origins; \
                   add it with --cors-origin (STOREFIRST_CORS_ORIGINS), on AWS with the stack's \
                   CorsOrigins parameter";
    let mut response = (StatusCode::FORBIDDEN, Json(json!({ "message": message }))).into_response();
    vary(origins, response.headers_mut());
    response
}

/// The answer depends on `Origin` once origins are configured: caches must keep them apart.
fn vary(origins: &AllowedOrigins, headers: &mut HeaderMap) {
    if *origins != AllowedOrigins::None {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_as_a_browser_sends_them() {
        for ok in [
            "https://app.example.com",
            "http://127.0.0.1:8081",
            "http://localhost:3001",
            "https://[::1]:8443",
            "http://[::1]",
        ] {
            assert_eq!(
                AllowedOrigins::parse(&[ok]),
                Ok(AllowedOrigins::Exact(vec![ok.to_owned()])),
                "{ok}"
            );
        }
        for malformed in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "ftp://app.example.com",
            "https://",
            "https://host:",
            "https://host:99999",
            "https://host:80a",
            "https://user@host",
            "https://[::g]",
        ] {
            assert_eq!(
                AllowedOrigins::parse(&[malformed]),
                Err(CorsError::Malformed(malformed.to_owned())),
                "{malformed}"
            );
        }
        for not_as_sent in [
            "https://App.example.com",
            "HTTPS://app.example.com",
            "https://app.example.com:443",
            "http://app.example.com:80",
        ] {
            assert_eq!(
                AllowedOrigins::parse(&[not_as_sent]),
                Err(CorsError::NotAsSent(not_as_sent.to_owned())),
                "{not_as_sent}"
            );
        }
    }

    #[test]
    fn star_only_alone_and_nothing_by_default() {
        assert_eq!(AllowedOrigins::parse::<&str>(&[]), Ok(AllowedOrigins::None));
        assert_eq!(AllowedOrigins::parse(&["*"]), Ok(AllowedOrigins::Any));
        assert_eq!(
            AllowedOrigins::parse(&["*", "https://a.example"]),
            Err(CorsError::AnyAmongOthers)
        );
        assert!(CorsError::AnyAmongOthers.to_string().contains("alone"));
    }

    #[test]
    fn only_the_two_resources_have_preflights() {
        assert_eq!(preflight_methods("/requests"), Some("POST, OPTIONS"));
        assert_eq!(
            preflight_methods("/requests/abc"),
            Some("GET, PUT, OPTIONS")
        );
        for other in ["/", "/requests/", "/requests/a/b", "/requestsx", "/other"] {
            assert_eq!(preflight_methods(other), None, "{other}");
        }
    }
}
