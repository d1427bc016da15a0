//! The probes against a stand-in API that accepts everything: each assumption it breaks is
//! reported contradicted with what was seen, and the requests have the shapes the probes
//! mean to send.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::IntoResponse,
};
use futures::{FutureExt, future::BoxFuture};
use storefirst_contract::{
    ProbeReport, Storage, Target, Throttling, Verdict,
    probes::{self, Cors, Webhooks},
    render_probes,
};
use storefirst_domain::DEFAULT_BODY_LIMIT;
use storefirst_pipeline::{api, cors::AllowedOrigins};
use storefirst_sqlite::SqliteStore;

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: String,
    content_length: Option<String>,
    chunked: bool,
    body: usize,
    body_starts_with_bom: bool,
    callback_url: Option<String>,
}

/// Answers 202 to every write (a PUT with its path's id, a POST always with the same id),
/// and GET with `get`; a 200 carries `callback` (JSON members after the others, or
/// nothing).
async fn accept_everything(
    get: StatusCode,
    callback: &'static str,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                log.lock().unwrap().push(Seen {
                    method: method.clone(),
                    uri: uri.to_string(),
                    content_length: header("content-length"),
                    chunked: header("transfer-encoding").is_some_and(|v| v.contains("chunked")),
                    body: body.len(),
                    body_starts_with_bom: body.starts_with(b"\xef\xbb\xbf"),
                    callback_url: header("x-callback-url"),
                });
                let json = ("content-type", "application/json".to_owned());
                let path_id = uri.path().trim_start_matches("/requests/").to_owned();
                if method == Method::GET {
                    // In the contract's shapes, so that only the probes' own checks fail.
                    let body = if get == StatusCode::OK {
                        format!(
                            r#"{{"id":"{path_id}","status":"succeeded","request":"{{}}","attempts":1,"created_at":1,"updated_at":1{callback}}}"#
                        )
                    } else {
                        r#"{"message":"Too Many Requests"}"#.to_owned()
                    };
                    return (get, [json], body).into_response();
                }
                let id = match method {
                    Method::PUT => path_id,
                    _ => "always-the-same".to_owned(),
                };
                (
                    StatusCode::ACCEPTED,
                    [json, ("location", format!("/requests/{id}"))],
                    format!(r#"{{"id":"{id}","status":"pending"}}"#),
                )
                    .into_response()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// A store that holds every id it is asked about, and remembers them.
#[derive(Default)]
struct HoldsEverything(Mutex<BTreeSet<String>>);

impl Storage for HoldsEverything {
    fn holds<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        self.0.lock().unwrap().insert(id.to_owned());
        async { Ok(true) }.boxed()
    }
}

fn verdict<'a>(reports: &'a [ProbeReport], assumption: &str) -> &'a Verdict {
    &reports
        .iter()
        .find(|r| r.assumption == assumption)
        .unwrap_or_else(|| panic!("no probe {assumption:?}"))
        .verdict
}

fn contradicted_with(reports: &[ProbeReport], assumption: &str, fragment: &str) {
    match verdict(reports, assumption) {
        Verdict::Contradicted(seen) => assert!(
            seen.contains(fragment),
            "{assumption}: {seen:?} should mention {fragment:?}"
        ),
        other => panic!("{assumption}: expected contradicted, got {other:?}"),
    }
}

#[tokio::test]
async fn an_api_that_accepts_everything_contradicts_the_assumptions() {
    let (url, seen) = accept_everything(StatusCode::OK, "").await;
    let storage = HoldsEverything::default();
    let webhooks = Webhooks::Loopback {
        secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned(),
    };
    // The webhooks it never sends are not waited for long.
    let reports = Target::new(&url, "key")
        .with_settle_timeout(Duration::from_secs(1))
        .probe(Some(&storage), Throttling::Deployed { burst: 5 }, &webhooks)
        .await;
    let rendered = render_probes(&reports);
    println!("{rendered}");

    contradicted_with(&reports, probes::CHUNKED_OVER_LIMIT, "expected 413");
    contradicted_with(&reports, probes::EMPTY, "expected 400");
    contradicted_with(&reports, probes::INVALID_UTF8, "expected 400");
    contradicted_with(
        &reports,
        probes::I_JSON_TEXT,
        "PUT lone surrogate: expected 400",
    );
    contradicted_with(
        &reports,
        probes::I_JSON_NUMBERS,
        "PUT just beyond: expected 400",
    );
    contradicted_with(
        &reports,
        probes::DUPLICATE_NAMES,
        "not failed naming the duplicate",
    );
    contradicted_with(&reports, probes::REQUEST_ID_HEADER, "the same id");
    contradicted_with(&reports, probes::ID_PARAMS, "an item is stored under");
    contradicted_with(&reports, probes::THROTTLED, "none answered 429");
    contradicted_with(
        &reports,
        probes::PREFLIGHT,
        // The OpenAPI check sees it first.
        "OPTIONS /requests answered 202, which the OpenAPI document does not list",
    );
    contradicted_with(
        &reports,
        probes::CORS_HEADERS,
        "PUT /requests/bad%20id answered 202 with a body the OpenAPI document does not allow",
    );
    contradicted_with(
        &reports,
        probes::BAD_CALLBACK,
        "PUT x-callback-url http to a public name: expected 400",
    );
    contradicted_with(&reports, probes::DELIVERED, "no webhook for");
    // What it does accept, it accepts in the contract's shape.
    assert_eq!(verdict(&reports, probes::CHARSET), &Verdict::Confirmed);
    assert_eq!(reports.len(), 14);
    assert!(
        rendered.contains("contradicted           a chunked body"),
        "{rendered}"
    );
    assert!(
        rendered.contains("14 probes: 1 confirmed, 13 contradicted"),
        "{rendered}"
    );
    // The store was asked about the id the query string chose.
    assert!(
        storage
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|id| id.ends_with("probe-query-id")),
        "{:?}",
        storage.0.lock().unwrap()
    );

    // The requests had the shapes the probes are about.
    let seen = seen.lock().unwrap().clone();
    let over_limit = storefirst_domain::DEFAULT_BODY_LIMIT + 1;
    assert!(
        seen.iter()
            .any(|s| s.chunked && s.content_length.is_none() && s.body == over_limit),
        "no chunked body of {over_limit} bytes without Content-Length: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.chunked && s.content_length.is_none() && s.body == 0),
        "no empty chunked body: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|s| !s.chunked && s.content_length.as_deref() == Some("0")),
        "no empty body with Content-Length: 0: {seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.body_starts_with_bom),
        "no body with a byte order mark: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.method == Method::POST && s.uri.contains("?id=")),
        "no POST with ?id=: {seen:?}"
    );
    let gets = seen.iter().filter(|s| s.method == Method::GET).count();
    assert!(gets >= 10, "the throttling burst is 2 x 5 GETs: {seen:?}");
}

#[tokio::test]
async fn a_429_with_a_json_message_confirms_throttling_and_locally_it_does_not_apply() {
    let (url, _) = accept_everything(StatusCode::TOO_MANY_REQUESTS, "").await;
    let deployed = Target::new(&url, "key")
        .probe(
            None,
            Throttling::Deployed { burst: 5 },
            &Webhooks::Unreachable,
        )
        .await;
    assert_eq!(verdict(&deployed, probes::THROTTLED), &Verdict::Confirmed);
    // A stack cannot reach a receiver on this machine, and none was named.
    assert!(matches!(
        verdict(&deployed, probes::DELIVERED_REMOTE),
        Verdict::NotApplicable(why)
            if why.contains("public names") && why.contains("--webhook-receiver https://")
    ));
    let local = Target::new(&url, "key")
        .probe(None, Throttling::Local, &Webhooks::Unknown)
        .await;
    assert!(matches!(
        verdict(&local, probes::THROTTLED),
        Verdict::NotApplicable(why) if why.contains("no usage plan")
    ));
    let rendered = render_probes(&local);
    assert!(
        rendered.contains("not applicable         a burst beyond"),
        "{rendered}"
    );
}

/// What the remote delivery probe concludes from a stand-in whose GET shows `callback`,
/// waiting for it at most `within`; and the x-callback-url of the request it sent.
async fn remote_delivery(callback: &'static str, within: Duration) -> (Verdict, Option<String>) {
    let (url, seen) = accept_everything(StatusCode::OK, callback).await;
    let receiver = "https://receiver.example.com/hook";
    let webhooks = Webhooks::Remote {
        url: receiver.to_owned(),
        within,
    };
    let reports = Target::new(&url, "key")
        .probe(None, Throttling::Local, &webhooks)
        .await;
    let sent = seen
        .lock()
        .unwrap()
        .iter()
        .find(|s| s.method == Method::POST && s.callback_url.is_some())
        .and_then(|s| s.callback_url.clone());
    (verdict(&reports, probes::DELIVERED_REMOTE).clone(), sent)
}

#[tokio::test]
async fn a_webhook_to_the_users_receiver_is_confirmed_once_get_shows_it_delivered() {
    let (delivered, sent) = remote_delivery(
        r#","callback":{"url":"https://receiver.example.com/hook","status":"delivered","attempts":1}"#,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(delivered, Verdict::Confirmed);
    assert_eq!(sent.as_deref(), Some("https://receiver.example.com/hook"));

    let (failed, _) = remote_delivery(
        r#","callback":{"url":"https://receiver.example.com/hook","status":"failed","attempts":8,"error":"503 Service Unavailable"}"#,
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(&failed, Verdict::Contradicted(seen)
            if seen.contains("not delivered") && seen.contains("503 Service Unavailable")),
        "{failed:?}"
    );
}

#[tokio::test]
async fn a_webhook_stuck_pending_is_contradicted_once_the_bound_passes() {
    let started = std::time::Instant::now();
    let (stuck, _) = remote_delivery(
        r#","callback":{"url":"https://receiver.example.com/hook","status":"pending","attempts":0}"#,
        Duration::from_secs(1),
    )
    .await;
    assert!(
        matches!(&stuck, Verdict::Contradicted(seen)
            if seen.contains("did not record a delivery") && seen.contains("cargo xtask logs")),
        "{stuck:?}"
    );
    // Every probe against the stand-in, the wait included, in far less than the 90 s a
    // stack gets.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

/// The local runtime's API in process, with these allowed origins; its URL.
async fn local_api(origins: AllowedOrigins) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("cors.db")).unwrap();
    let state = api::AppState::new(store, "key", DEFAULT_BODY_LIMIT, Duration::from_secs(10))
        .with_cors(origins);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api::app(state)).await });
    (url, dir)
}

#[tokio::test]
async fn the_cors_probes_hold_against_the_local_runtime_in_each_configuration() {
    let origin = "https://app.example.com";
    for (origins, cors) in [
        (AllowedOrigins::None, Cors::None),
        (
            AllowedOrigins::parse(&[origin, "http://127.0.0.1:8081"]).unwrap(),
            Cors::Allows(origin.to_owned()),
        ),
        (AllowedOrigins::Any, Cors::Any),
    ] {
        let (url, _dir) = local_api(origins).await;
        let reports = Target::new(&url, "key")
            .with_cors(cors.clone())
            .probe(None, Throttling::Local, &Webhooks::Unknown)
            .await;
        for probe in [probes::PREFLIGHT, probes::CORS_HEADERS] {
            assert_eq!(
                verdict(&reports, probe),
                &Verdict::Confirmed,
                "{cors:?}: {probe}\n{}",
                render_probes(&reports)
            );
        }
        // Told another configuration than the target's, the probes say so.
        let wrong = match cors {
            Cors::None => Cors::Allows(origin.to_owned()),
            Cors::Allows(_) => Cors::Any,
            _ => Cors::None,
        };
        let reports = Target::new(&url, "key")
            .with_cors(wrong)
            .probe(None, Throttling::Local, &Webhooks::Unknown)
            .await;
        assert!(
            verdict(&reports, probes::PREFLIGHT).is_contradicted(),
            "{cors:?}: {}",
            render_probes(&reports)
        );
    }
    let (url, _dir) = local_api(AllowedOrigins::None).await;
    let reports = Target::new(&url, "key")
        .with_cors(Cors::Unknown)
        .probe(None, Throttling::Local, &Webhooks::Unknown)
        .await;
    assert!(matches!(
        verdict(&reports, probes::CORS_HEADERS),
        Verdict::Skipped(_)
    ));
    assert!(matches!(
        verdict(&reports, probes::DELIVERED),
        Verdict::Skipped(needs) if needs.contains("webhook secret")
    ));
    assert!(render_probes(&reports).contains("skipped"));
}
