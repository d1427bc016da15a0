//! What the mapping templates assume of API Gateway and that no emulator can confirm
//! (moto ignores mapping templates; the local runtime is not API Gateway), probed over
//! HTTP. Against a deployed stack each probe is `confirmed` or `contradicted`, with what
//! was seen; against the local runtime every one must hold too, so both runtimes answer
//! alike. The throttling probe applies to a deployed stack only; the CORS probes check
//! what the target's allowed origins ([`Cors`]) call for; the webhook delivery probe needs
//! a runtime that reaches a receiver on this machine, or a receiver the user runs
//! ([`Webhooks`]).

mod webhooks;

use std::{collections::BTreeMap, fmt::Write};

use futures::FutureExt;
pub use futures::future::BoxFuture;
use reqwest::{Method, StatusCode, header};
use storefirst_domain::DEFAULT_BODY_LIMIT;

pub use self::webhooks::{BAD_CALLBACK, DELIVERED, DELIVERED_REMOTE, Webhooks};
use crate::{Response, Target, expect_accepted, expect_error};

/// Where the probes look for what a refused request may have left behind.
pub trait Storage: Send + Sync {
    /// Whether an item is stored under `id`. A runner that can may delete it while it
    /// looks: a probe asks only about ids that must not be there.
    fn holds<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, String>>;
}

/// Whether the target throttles as the stack's usage plan does.
#[derive(Debug, Clone, Copy)]
pub enum Throttling {
    /// A deployed stack: a burst beyond `burst` requests is answered 429.
    Deployed { burst: u32 },
    /// The local runtime, which has no usage plan.
    Local,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Confirmed,
    /// What was seen instead.
    Contradicted(String),
    /// Why the target cannot show it.
    NotApplicable(&'static str),
    /// Not run: what it needs to know.
    Skipped(&'static str),
}

/// The target's allowed origins, as far as the CORS probes need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cors {
    /// Not known (a bare URL): the CORS probes are skipped.
    Unknown,
    /// None allowed: no answer carries a CORS header.
    None,
    /// `*`.
    Any,
    /// This origin among those allowed.
    Allows(String),
}

#[derive(Debug)]
pub struct ProbeReport {
    /// The assumption, as the outcome the templates rely on.
    pub assumption: &'static str,
    pub verdict: Verdict,
}

struct Probes<'a> {
    target: &'a Target,
    storage: Option<&'a dyn Storage>,
}

type Probe = for<'a> fn(&'a Probes<'a>) -> BoxFuture<'a, Result<(), String>>;

pub const CHUNKED_OVER_LIMIT: &str =
    "a chunked body (no Content-Length) one byte over 256 KiB is 413 and stores nothing";
pub const EMPTY: &str =
    "an empty body (Content-Length: 0 or chunked) and {} are 400 and store nothing";
pub const INVALID_UTF8: &str = "invalid UTF-8 in a JSON string is 400 and stores nothing";
pub const CHARSET: &str = "Content-Type: application/json; charset=utf-8 is accepted (202)";
pub const I_JSON_TEXT: &str =
    "a byte order mark, a raw NUL and a lone surrogate escape are 400 and store nothing";
pub const I_JSON_NUMBERS: &str =
    "a number beyond the largest double, at any depth, is 400 and stores nothing";
pub const DUPLICATE_NAMES: &str =
    "a duplicate member name is never processed: 400, or 202 and then failed naming it";
pub const REQUEST_ID_HEADER: &str = "an X-Amzn-RequestId header does not choose the POST id";
pub const ID_PARAMS: &str = "?id= and an id: header on POST change nothing";
pub const PREFLIGHT: &str = "OPTIONS /requests and /requests/{id} without the key: 204 with the \
     CORS headers from an allowed Origin, else 403 JSON without Access-Control-*; nothing stored";
pub const CORS_HEADERS: &str = "answers to an allowed Origin (202, 404, 400, the missing key's \
     403) carry Access-Control-Allow-Origin, -Expose-Headers and Vary; to no Origin, none";
pub const THROTTLED: &str =
    "a burst beyond the usage plan's is answered 429 with a JSON message (costs 2 x burst GETs)";

/// The value a client sends as `X-Amzn-RequestId`: the characters AWS lets a client
/// choose that an id may not hold.
const HOSTILE_REQUEST_ID: &str = "probe!#$%&'*+^|~";

impl Target {
    /// Runs every probe; the throttling probe last and alone, so its 429s cannot touch
    /// the others. `storage` answers "nothing stored" where the runner can read the
    /// store; without it, GET through the API does.
    pub async fn probe(
        &self,
        storage: Option<&dyn Storage>,
        throttling: Throttling,
        webhooks: &Webhooks,
    ) -> Vec<ProbeReport> {
        let probes = Probes {
            target: self,
            storage,
        };
        let list: &[(&'static str, Probe)] = &[
            (CHUNKED_OVER_LIMIT, |p| chunked_over_limit(p).boxed()),
            (EMPTY, |p| empty(p).boxed()),
            (INVALID_UTF8, |p| invalid_utf8(p).boxed()),
            (CHARSET, |p| charset(p).boxed()),
            (I_JSON_TEXT, |p| i_json_text(p).boxed()),
            (I_JSON_NUMBERS, |p| i_json_numbers(p).boxed()),
            (DUPLICATE_NAMES, |p| duplicate_names(p).boxed()),
            (REQUEST_ID_HEADER, |p| request_id_header(p).boxed()),
            (ID_PARAMS, |p| id_params(p).boxed()),
            (BAD_CALLBACK, |p| webhooks::bad_callback(p).boxed()),
        ];
        let probes = &probes;
        let runs = list.iter().map(|(assumption, probe)| async move {
            ProbeReport {
                assumption,
                verdict: verdict(probe(probes).await),
            }
        });
        // Beside the others: most of its time is the wait for the webhooks.
        let delivery = async {
            match webhooks {
                Webhooks::Loopback { secret } => verdict(webhooks::delivered(probes, secret).await),
                Webhooks::Remote { url, within } => {
                    verdict(webhooks::delivered_remotely(probes, url, *within).await)
                }
                Webhooks::Unreachable => Verdict::NotApplicable(
                    "a deployed stack delivers only to public names, never to this machine: \
                     pass --webhook-receiver https://... (a receiver you run that answers 2xx) \
                     to check delivery on AWS",
                ),
                Webhooks::Unknown => Verdict::Skipped(
                    "the runtime's webhook secret, and a runtime that delivers to this machine \
                     (storefirst-local --allow-loopback-webhooks); or, for one that delivers \
                     to public names only, --webhook-receiver https://...",
                ),
            }
        };
        let (mut reports, delivery) =
            futures::future::join(futures::future::join_all(runs), delivery).await;
        reports.push(ProbeReport {
            assumption: match webhooks {
                Webhooks::Loopback { .. } | Webhooks::Unknown => DELIVERED,
                Webhooks::Remote { .. } | Webhooks::Unreachable => DELIVERED_REMOTE,
            },
            verdict: delivery,
        });
        for (assumption, probe) in [
            (PREFLIGHT, (|p| preflight(p).boxed()) as Probe),
            (CORS_HEADERS, |p| cors_headers(p).boxed()),
        ] {
            let verdict = if self.cors == Cors::Unknown {
                Verdict::Skipped(
                    "the allowed origins: probe a stack with --stack, which reads them",
                )
            } else {
                verdict(probe(probes).await)
            };
            reports.push(ProbeReport {
                assumption,
                verdict,
            });
        }
        reports.push(ProbeReport {
            assumption: THROTTLED,
            verdict: match throttling {
                Throttling::Local => Verdict::NotApplicable("the local runtime has no usage plan"),
                Throttling::Deployed { burst } => verdict(throttled(self, burst).await),
            },
        });
        reports
    }
}

fn verdict(probed: Result<(), String>) -> Verdict {
    match probed {
        Ok(()) => Verdict::Confirmed,
        Err(seen) => Verdict::Contradicted(seen),
    }
}

/// How a probe's body is sent.
enum Body {
    /// With its Content-Length.
    Sized(Vec<u8>),
    /// `Transfer-Encoding: chunked`, no Content-Length.
    Chunked(Vec<u8>),
}

impl Probes<'_> {
    /// A POST or PUT with the API key, the content type and any more headers; notes an
    /// accepted id, so that the runner removes it.
    async fn write(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Result<Response, String> {
        let t = self.target;
        let url = format!("{}{path}", t.base_url);
        let mut request = t
            .client
            .request(method.clone(), &url)
            .header("x-api-key", &t.api_key)
            .header(header::CONTENT_TYPE, content_type);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request = match body {
            Body::Sized(bytes) => request
                .header(header::CONTENT_LENGTH, bytes.len())
                .body(bytes),
            Body::Chunked(bytes) => {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    bytes.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
                request.body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            }
        };
        let response = t.receive(&method, &url, request.send().await).await?;
        t.note_accepted(&response);
        Ok(response)
    }

    /// The same body, as a PUT to a fresh id and as a POST, must be refused with `status`;
    /// the PUT's id must then hold nothing.
    async fn refused(
        &self,
        what: &str,
        body: impl Fn() -> Body,
        status: StatusCode,
    ) -> Result<(), String> {
        self.refused_with(what, &[], body, status).await
    }

    /// [`Self::refused`], both requests with these headers too.
    async fn refused_with(
        &self,
        what: &str,
        headers: &[(&str, &str)],
        body: impl Fn() -> Body,
        status: StatusCode,
    ) -> Result<(), String> {
        let id = self.target.id(&format!("probe-{}", what.replace(' ', "-")));
        let put = self
            .write(
                Method::PUT,
                &format!("/requests/{id}"),
                JSON,
                headers,
                body(),
            )
            .await?;
        expect_error(&put, status, &format!("PUT {what}"))?;
        let post = self
            .write(Method::POST, "/requests", JSON, headers, body())
            .await?;
        expect_error(&post, status, &format!("POST {what}"))?;
        self.nothing_under(&id, &format!("PUT {what}")).await
    }

    async fn nothing_under(&self, id: &str, after: &str) -> Result<(), String> {
        let held = match self.storage {
            Some(storage) => storage.holds(id).await?,
            None => {
                let response = self.target.get(&percent_encode(id)).await?;
                match response.status {
                    StatusCode::OK => true,
                    // An id the API refuses cannot have been stored through it.
                    StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => false,
                    status => {
                        return Err(format!("GET {id:?} answered {status}: {}", response.json));
                    }
                }
            }
        };
        ensure!(!held, "after {after}, an item is stored under {id:?}");
        Ok(())
    }
}

const JSON: &str = "application/json";

/// A JSON object of exactly `size` bytes.
fn padded(size: usize) -> Vec<u8> {
    format!(r#"{{"pad":"{}"}}"#, "x".repeat(size - 10)).into_bytes()
}

fn url_safe(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn percent_encode(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn chunked_over_limit(p: &Probes<'_>) -> Result<(), String> {
    p.refused(
        "chunked over the limit",
        || Body::Chunked(padded(DEFAULT_BODY_LIMIT + 1)),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await
}

/// Every variant, so one run shows how each arrives.
async fn empty(p: &Probes<'_>) -> Result<(), String> {
    let seen: Vec<String> = [
        p.refused("empty", || Body::Sized(Vec::new()), StatusCode::BAD_REQUEST)
            .await,
        p.refused(
            "empty chunked",
            || Body::Chunked(Vec::new()),
            StatusCode::BAD_REQUEST,
        )
        .await,
        p.refused(
            "empty object",
            || Body::Sized(b"{}".to_vec()),
            StatusCode::BAD_REQUEST,
        )
        .await,
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    ensure!(seen.is_empty(), "{}", seen.join("; "));
    Ok(())
}

async fn invalid_utf8(p: &Probes<'_>) -> Result<(), String> {
    p.refused(
        "invalid UTF-8",
        || Body::Sized(b"{\"note\":\"\xff\xfe\"}".to_vec()),
        StatusCode::BAD_REQUEST,
    )
    .await
}

/// Each body refused with 400, and what each PUT and POST saw otherwise.
async fn all_refused(p: &Probes<'_>, bodies: &[(&str, &[u8])]) -> Result<(), String> {
    let mut seen = Vec::new();
    for (what, body) in bodies {
        if let Err(e) = p
            .refused(what, || Body::Sized(body.to_vec()), StatusCode::BAD_REQUEST)
            .await
        {
            seen.push(e);
        }
    }
    ensure!(seen.is_empty(), "{}", seen.join("; "));
    Ok(())
}

/// What the mapping template refuses from the body's text, if API Gateway hands it over
/// as sent.
async fn i_json_text(p: &Probes<'_>) -> Result<(), String> {
    all_refused(
        p,
        &[
            ("byte order mark", b"\xef\xbb\xbf{\"note\":1}"),
            ("NUL in a string", b"{\"note\":\"a\0b\"}"),
            ("NUL after the object", b"{\"note\":1}\0"),
            ("lone surrogate", br#"{"note":"\ud800"}"#),
        ],
    )
    .await
}

/// What the request model refuses, if API Gateway's validator follows its `$ref`s and
/// compares numbers as written.
async fn i_json_numbers(p: &Probes<'_>) -> Result<(), String> {
    all_refused(
        p,
        &[
            ("1e400", br#"{"note":1e400}"#),
            ("-1e400 nested", br#"{"note":{"list":[1,{"n":-1e400}]}}"#),
            ("just beyond", br#"{"note":1.7976931348623158e308}"#),
        ],
    )
    .await
}

/// API Gateway may store a body with a duplicate name (no model can see one): the function
/// then fails the item with the reason before the processor sees it.
async fn duplicate_names(p: &Probes<'_>) -> Result<(), String> {
    let id = p.target.id("probe-duplicate-names");
    let body =
        r#"{"restaurant":"Roma","restaurant":"Napoli","items":[{"dish":"espresso","quantity":1}]}"#;
    let put = p
        .write(
            Method::PUT,
            &format!("/requests/{id}"),
            JSON,
            &[],
            Body::Sized(body.into()),
        )
        .await?;
    let what = "PUT with a duplicate member name";
    match put.status {
        StatusCode::ACCEPTED => {
            let item = p.target.settled(&id).await?;
            let error = item["error"].as_str().unwrap_or_default();
            ensure!(
                item["status"] == "failed" && error.contains("duplicate member name"),
                "{what} was accepted, and then not failed naming the duplicate: {item}"
            );
            Ok(())
        }
        _ => {
            expect_error(&put, StatusCode::BAD_REQUEST, what)?;
            p.nothing_under(&id, what).await
        }
    }
}

const ORDER: &str = r#"{"restaurant":"Roma","items":[{"dish":"espresso","quantity":1}]}"#;

async fn charset(p: &Probes<'_>) -> Result<(), String> {
    let content_type = "application/json; charset=utf-8";
    let id = p.target.id("probe-charset");
    let body = || Body::Sized(ORDER.into());
    let put = p
        .write(
            Method::PUT,
            &format!("/requests/{id}"),
            content_type,
            &[],
            body(),
        )
        .await?;
    expect_accepted(&put, Some(&id)).map_err(|e| format!("PUT with {content_type}: {e}"))?;
    let post = p
        .write(Method::POST, "/requests", content_type, &[], body())
        .await?;
    expect_accepted(&post, None).map_err(|e| format!("POST with {content_type}: {e}"))?;
    Ok(())
}

async fn request_id_header(p: &Probes<'_>) -> Result<(), String> {
    let hostile = format!("{HOSTILE_REQUEST_ID}{}", p.target.run_id);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let post = p
            .write(
                Method::POST,
                "/requests",
                JSON,
                &[("x-amzn-requestid", &hostile)],
                Body::Sized(ORDER.into()),
            )
            .await?;
        let id = expect_accepted(&post, None)
            .map_err(|e| format!("POST with X-Amzn-RequestId {hostile:?}: {e}"))?;
        ensure!(
            url_safe(&id),
            "POST with X-Amzn-RequestId {hostile:?} got the id {id:?}, outside [A-Za-z0-9._-]{{1,128}}"
        );
        ensure!(
            id != hostile,
            "the X-Amzn-RequestId header became the id {id:?}"
        );
        let get = p.target.get(&id).await?;
        ensure!(
            get.status == StatusCode::OK,
            "GET of the Location /requests/{id} answered {}: {}",
            get.status,
            get.json
        );
        ids.push(id);
    }
    ensure!(
        ids[0] != ids[1],
        "two POSTs with the same X-Amzn-RequestId got the same id {:?}",
        ids[0]
    );
    p.nothing_under(&hostile, "POST with X-Amzn-RequestId")
        .await
}

async fn id_params(p: &Probes<'_>) -> Result<(), String> {
    let query = p.target.id("probe-query-id");
    let header = p.target.id("probe-header-id");
    let ways = [
        (&query, format!("/requests?id={query}"), vec![]),
        (
            &header,
            "/requests".to_owned(),
            vec![("id", header.as_str())],
        ),
    ];
    for (chosen, path, headers) in ways {
        let what = format!("POST {path} with headers {headers:?}");
        let post = p
            .write(
                Method::POST,
                &path,
                JSON,
                &headers,
                Body::Sized(ORDER.into()),
            )
            .await?;
        let id = expect_accepted(&post, None).map_err(|e| format!("{what}: {e}"))?;
        ensure!(
            &id != chosen,
            "{what} stored the request under the chosen id"
        );
        ensure!(
            url_safe(&id),
            "{what} got the id {id:?}, outside [A-Za-z0-9._-]"
        );
        p.nothing_under(chosen, &what).await?;
    }
    Ok(())
}

/// `2 * burst` GETs of an unknown id at once: the usage plan's bucket holds `burst`, so
/// some must be answered 429, each with a JSON message.
async fn throttled(t: &Target, burst: u32) -> Result<(), String> {
    let path = format!("{}/requests/{}", t.base_url, t.id("probe-throttle"));
    let requests = (0..burst * 2).map(|_| async {
        let sent = t
            .client
            .get(&path)
            .header("x-api-key", &t.api_key)
            .send()
            .await;
        // A lost answer is counted; one the OpenAPI document does not allow fails the probe.
        let response = match sent {
            Ok(response) => response,
            Err(e) => return Ok(Err(format!("GET {path}: {e}"))),
        };
        let (status, _, text) = t.read(&Method::GET, &path, Ok(response)).await?;
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|json| json["message"].as_str().map(str::to_owned));
        Ok::<_, String>(Ok((status, message, text)))
    });
    let answers = futures::future::join_all(requests)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, String>>()?;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut throttled = 0;
    for answer in &answers {
        match answer {
            Ok((status, message, text)) => {
                *seen.entry(status.as_u16().to_string()).or_default() += 1;
                if *status == StatusCode::TOO_MANY_REQUESTS {
                    ensure!(
                        message.as_deref().is_some_and(|m| !m.is_empty()),
                        "a 429 without a JSON message: {text:?}"
                    );
                    throttled += 1;
                }
            }
            Err(error) => *seen.entry(error.clone()).or_default() += 1,
        }
    }
    ensure!(
        throttled > 0,
        "{} concurrent GETs, none answered 429: {seen:?}",
        answers.len()
    );
    Ok(())
}

/// An origin no configuration here allows.
const STRANGER: &str = "https://storefirst-probe.invalid";

/// An answer's status, its Access-Control-* and Vary headers (names in lower case), and
/// its body.
struct Seen {
    status: StatusCode,
    cors: BTreeMap<String, String>,
    body: String,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} {:?}", self.status, self.cors, self.body)
    }
}

impl Probes<'_> {
    /// A request with exactly these headers (the key only where given); notes an accepted
    /// id, so that the runner removes it.
    async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Seen, String> {
        let url = format!("{}{path}", self.target.base_url);
        let mut request = self.target.client.request(method.clone(), &url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        let (status, headers, body) = self
            .target
            .read(&method, &url, request.send().await)
            .await?;
        let cors = headers
            .iter()
            .filter(|(name, _)| {
                name.as_str().starts_with("access-control-") || name.as_str() == "vary"
            })
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        if let Ok(json) = serde_json::from_str(&body) {
            self.target.note_accepted(&crate::Response {
                status,
                location: None,
                json,
            });
        }
        Ok(Seen { status, cors, body })
    }

    /// The origin a probe sends as allowed, and what Access-Control-Allow-Origin answers.
    fn allowed(&self) -> Option<(&str, &str)> {
        match &self.target.cors {
            Cors::Any => Some((STRANGER, "*")),
            Cors::Allows(origin) => Some((origin, origin)),
            Cors::None | Cors::Unknown => None,
        }
    }
}

/// Whether `seen` has exactly the CORS headers an answer to an allowed origin has.
fn answers_origin(seen: &Seen, allow: &str) -> bool {
    let header = |name: &str| seen.cors.get(name).map(String::as_str);
    header("access-control-allow-origin") == Some(allow)
        && header("access-control-expose-headers") == Some("Location, Retry-After")
        && header("vary").is_some_and(|v| v.contains("Origin"))
        && header("access-control-allow-credentials").is_none()
}

fn no_access_control(seen: &Seen) -> bool {
    seen.cors.keys().all(|name| name == "vary")
}

async fn preflight(p: &Probes<'_>) -> Result<(), String> {
    let id = p.target.id("probe-preflight");
    let item = format!("/requests/{id}");
    for (path, methods) in [
        ("/requests", "POST, OPTIONS"),
        (item.as_str(), "GET, PUT, OPTIONS"),
    ] {
        if let Some((origin, allow)) = p.allowed() {
            let headers = [("Origin", origin), ("Access-Control-Request-Method", "PUT")];
            let seen = p.raw(Method::OPTIONS, path, &headers, None).await?;
            let header = |name: &str| seen.cors.get(name).map(String::as_str);
            ensure!(
                seen.status == StatusCode::NO_CONTENT
                    && header("access-control-allow-origin") == Some(allow)
                    && header("access-control-allow-methods") == Some(methods)
                    && header("access-control-allow-headers")
                        == Some("content-type, x-api-key, x-callback-url")
                    && header("access-control-max-age") == Some("600")
                    && header("vary").is_some_and(|v| v.contains("Origin"))
                    && seen.body.is_empty(),
                "a preflight to {path} from the allowed {origin} answered {seen}"
            );
        }
        let asking = ("Access-Control-Request-Method", "PUT");
        let mut refused = vec![
            ("no Origin", vec![asking]),
            (
                "no Access-Control-Request-Method",
                vec![("Origin", p.allowed().map_or(STRANGER, |(origin, _)| origin))],
            ),
        ];
        if p.target.cors != Cors::Any {
            refused.push(("another origin", vec![("Origin", STRANGER), asking]));
        }
        for (what, headers) in refused {
            let seen = p.raw(Method::OPTIONS, path, &headers, None).await?;
            let message = serde_json::from_str::<serde_json::Value>(&seen.body)
                .ok()
                .and_then(|json| json["message"].as_str().map(str::to_owned));
            ensure!(
                seen.status == StatusCode::FORBIDDEN
                    && no_access_control(&seen)
                    && message.is_some(),
                "a preflight to {path} with {what} answered {seen}"
            );
        }
    }
    p.nothing_under(&id, "the preflights").await
}

async fn cors_headers(p: &Probes<'_>) -> Result<(), String> {
    let mut askers = vec![("no Origin", None, None)];
    if let Some((origin, allow)) = p.allowed() {
        askers.push(("the allowed origin", Some(origin), Some(allow)));
    }
    if p.target.cors != Cors::Any {
        askers.push(("another origin", Some(STRANGER), None));
    }
    let key = p.target.api_key.as_str();
    let unknown = format!("/requests/{}", p.target.id("probe-cors-unknown"));
    for (who, origin, allow) in askers {
        let mut headers = vec![("x-api-key", key), (header::CONTENT_TYPE.as_str(), JSON)];
        headers.extend(origin.map(|origin| ("Origin", origin)));
        let without_key = &headers[1..];
        let mut seen = vec![
            (
                "POST",
                StatusCode::ACCEPTED,
                p.raw(Method::POST, "/requests", &headers, Some(ORDER))
                    .await?,
            ),
            (
                "GET of an unknown id",
                StatusCode::NOT_FOUND,
                p.raw(Method::GET, &unknown, &headers, None).await?,
            ),
            (
                "PUT of an invalid id",
                StatusCode::BAD_REQUEST,
                p.raw(Method::PUT, "/requests/bad%20id", &headers, Some(ORDER))
                    .await?,
            ),
        ];
        // API Gateway makes this answer itself: it echoes any Origin while some origin is
        // allowed (a gateway response cannot check the list), so only an allowed one and
        // none are probed.
        if origin.is_none() || allow.is_some() || p.target.cors == Cors::None {
            seen.push((
                "GET without the key",
                StatusCode::FORBIDDEN,
                p.raw(Method::GET, &unknown, without_key, None).await?,
            ));
        }
        for (what, status, seen) in &seen {
            let right = match allow {
                Some(allow) => answers_origin(seen, allow),
                None => no_access_control(seen),
            };
            ensure!(
                seen.status == *status && right,
                "{what} from {who} answered {seen}"
            );
        }
    }
    Ok(())
}

impl Verdict {
    pub fn is_contradicted(&self) -> bool {
        matches!(self, Verdict::Contradicted(_))
    }
}

/// One line per probe, what was seen under a contradicted one, and a total.
pub fn render_probes(reports: &[ProbeReport]) -> String {
    let mut out = String::from("assumptions only the deployed API can confirm:\n");
    let mut counts = BTreeMap::new();
    for report in reports {
        let verdict = match &report.verdict {
            Verdict::Confirmed => "confirmed",
            Verdict::Contradicted(_) => "contradicted",
            Verdict::NotApplicable(_) => "not applicable",
            Verdict::Skipped(_) => "skipped",
        };
        *counts.entry(verdict).or_insert(0) += 1;
        let _ = writeln!(out, "{verdict:<22} {}", report.assumption);
        match &report.verdict {
            Verdict::Contradicted(seen) => {
                let _ = writeln!(out, "{:<22} seen: {seen}", "");
            }
            Verdict::Skipped(needs) => {
                let _ = writeln!(out, "{:<22} needs {needs}", "");
            }
            Verdict::NotApplicable(why) => {
                let _ = writeln!(out, "{:<22} {why}", "");
            }
            _ => {}
        }
    }
    let totals: Vec<String> = counts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    let _ = writeln!(out, "{} probes: {}", reports.len(), totals.join(", "));
    out
}
