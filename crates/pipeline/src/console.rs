//! The console: a page at `/console` that shows the pipeline (counts, requests, backlog,
//! activity, dead letters, redrive), and the versioned read-only JSON API it reads,
//! `/console/api/v1/...`, which scripts may use too. The page is static HTML, CSS and JS
//! compiled into the binary; the API sits behind the HTTP API's own key check and reads
//! through the [`ReadModel`] port, so both backends serve the same console.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use storefirst_domain::{Processor, Status, StreamSettings, now_millis};

use crate::{
    api::{self, ApiError, AppState},
    ports::{DeadLetter, Ingest, Item, ItemCursor, ItemQuery, ReadModel, StoreFault},
    redrive::{RedriveReport, Stuck, redrive},
};

/// Where the JSON API lives; a change of its shape gets a new version beside it.
pub const API_PREFIX: &str = "/console/api/v1";
/// Items per page of `GET /console/api/v1/requests` unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 20;
/// The most items one page may hold: each carries its whole body.
pub const MAX_LIMIT: usize = 100;
/// The longest activity window, in minutes.
pub const MAX_MINUTES: i64 = 60;

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");
/// The page runs only its own script and style: a request body that made it into the
/// markup could not run.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// What the console reads and what its redrive button runs.
pub struct Console<R, K, P> {
    pub read: R,
    /// What redrive reprocesses: the same as `storefirst-local redrive`.
    pub stuck: K,
    pub processor: Arc<P>,
    pub settings: StreamSettings,
}

struct Shared<R, K, P> {
    console: Console<R, K, P>,
    /// One redrive at a time: a second click waits for nothing and is told so.
    redriving: tokio::sync::Mutex<()>,
}

impl<R: ReadModel, K: Stuck + 'static, P: Processor> Console<R, K, P> {
    /// The page and its API; the API checks the key as the HTTP API of `key` does.
    pub fn routes<S: Ingest>(self, key: AppState<S>) -> Router {
        let shared = Arc::new(Shared {
            console: self,
            redriving: tokio::sync::Mutex::new(()),
        });
        let api = Router::new()
            .route(&format!("{API_PREFIX}/counts"), get(counts::<R, K, P>))
            .route(&format!("{API_PREFIX}/requests"), get(requests::<R, K, P>))
            .route(&format!("{API_PREFIX}/backlog"), get(backlog::<R, K, P>))
            .route(&format!("{API_PREFIX}/activity"), get(activity::<R, K, P>))
            .route(
                &format!("{API_PREFIX}/dead-letters"),
                get(dead_letters::<R, K, P>),
            )
            .route(
                &format!("{API_PREFIX}/redrive"),
                post(run_redrive::<R, K, P>),
            )
            .layer(middleware::from_fn_with_state(
                key,
                api::require_api_key::<S>,
            ))
            // Outside the key check: its 403 is no more cacheable than the answers.
            .layer(middleware::map_response(no_store))
            .with_state(shared);
        Router::new()
            .route("/console", get(|| asset("text/html; charset=utf-8", PAGE)))
            .route(
                "/console/console.js",
                get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
            )
            .route(
                "/console/console.css",
                get(|| asset("text/css; charset=utf-8", STYLE)),
            )
            .merge(api)
    }
}

type SharedState<R, K, P> = State<Arc<Shared<R, K, P>>>;

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Embedded in the binary: a new build may change them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The answers change every second and carry request bodies: never cached.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What the console API refuses, beside the HTTP API's own errors.
#[derive(Debug, thiserror::Error)]
enum ConsoleError {
    #[error("{0}")]
    BadQuery(String),
    #[error("a redrive is already running; wait for its report")]
    Redriving,
    #[error(transparent)]
    Store(#[from] StoreFault),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = match self {
            ConsoleError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Redriving => StatusCode::CONFLICT,
            // A 503 with Retry-After, as the HTTP API answers a store fault.
            ConsoleError::Store(fault) => return ApiError::Unavailable(fault).into_response(),
        };
        (status, Json(json!({ "message": self.to_string() }))).into_response()
    }
}

async fn counts<R: ReadModel, K, P>(
    State(shared): SharedState<R, K, P>,
) -> Result<Response, ConsoleError> {
    Ok(Json(shared.console.read.counts().await?).into_response())
}

/// The query of `GET /console/api/v1/requests`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<String>,
    #[serde(default)]
    prefix: String,
    limit: Option<usize>,
    after: Option<String>,
}

#[derive(Serialize)]
struct ItemPage {
    items: Vec<Item>,
    /// `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

impl ListParams {
    fn query(self) -> Result<ItemQuery, ConsoleError> {
        let bad = |message: String| ConsoleError::BadQuery(message);
        let status = match self.status.as_deref() {
            None | Some("") => None,
            Some(text) => Some(text.parse::<Status>().map_err(|e| bad(e.to_string()))?),
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(bad(format!(
                "limit {limit} is out of range: ask for 1 to {MAX_LIMIT} items"
            )));
        }
        let after = match self.after {
            None => None,
            Some(cursor) => Some(parse_cursor(&cursor).ok_or_else(|| {
                bad(format!(
                    "after {cursor:?} is no cursor: pass the `next` of the previous page"
                ))
            })?),
        };
        Ok(ItemQuery {
            status,
            id_prefix: self.prefix,
            after,
            limit,
        })
    }
}

/// A cursor is `created_at.id` of the last item shown: ids may hold dots, the time not.
fn parse_cursor(text: &str) -> Option<ItemCursor> {
    let (created_at, id) = text.split_once('.')?;
    Some(ItemCursor {
        created_at: created_at.parse().ok()?,
        id: id.to_owned(),
    })
}

fn cursor(item: &Item) -> String {
    format!("{}.{}", item.created_at, item.id)
}

async fn requests<R: ReadModel, K, P>(
    State(shared): SharedState<R, K, P>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ConsoleError> {
    let Query(params) = params.map_err(|e| {
        ConsoleError::BadQuery(format!(
            "{}; the parameters are status, prefix, limit and after",
            e.body_text()
        ))
    })?;
    let query = params.query()?;
    let limit = query.limit;
    let items = shared.console.read.items(query).await?;
    let next = (items.len() == limit)
        .then(|| items.last().map(cursor))
        .flatten();
    Ok(Json(ItemPage { items, next }).into_response())
}

async fn backlog<R: ReadModel, K, P>(
    State(shared): SharedState<R, K, P>,
) -> Result<Response, ConsoleError> {
    let waiting = shared.console.read.backlog().await?;
    let lag_ms = waiting
        .oldest_created_at
        .map_or(0, |oldest| (now_millis() - oldest).max(0));
    Ok(Json(json!({
        "requests": waiting.requests,
        "oldest_created_at": waiting.oldest_created_at,
        "lag_ms": lag_ms,
        "stream_records": waiting.stream_records,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityParams {
    minutes: Option<i64>,
}

async fn activity<R: ReadModel, K, P>(
    State(shared): SharedState<R, K, P>,
    params: Result<Query<ActivityParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ConsoleError> {
    let minutes = match params {
        Ok(Query(ActivityParams { minutes })) => minutes.unwrap_or(5),
        Err(e) => return Err(ConsoleError::BadQuery(e.body_text())),
    };
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(ConsoleError::BadQuery(format!(
            "minutes {minutes} is out of range: ask for 1 to {MAX_MINUTES}"
        )));
    }
    let now = now_millis();
    let since = now - minutes * 60_000;
    let seconds = shared.console.read.activity(since).await?;
    Ok(Json(json!({ "since": since, "until": now, "seconds": seconds })).into_response())
}

async fn dead_letters<R: ReadModel, K, P>(
    State(shared): SharedState<R, K, P>,
) -> Result<Response, ConsoleError> {
    let letters: Vec<_> = shared
        .console
        .read
        .dead_letters()
        .await?
        .into_iter()
        .map(|DeadLetter { reason, first_seq, last_seq, request_ids }| {
            json!({ "reason": reason, "first": first_seq, "last": last_seq, "request_ids": request_ids })
        })
        .collect();
    Ok(Json(json!({ "dead_letters": letters })).into_response())
}

async fn run_redrive<R, K: Stuck, P: Processor>(
    State(shared): SharedState<R, K, P>,
) -> Result<Response, ConsoleError> {
    let Ok(_running) = shared.redriving.try_lock() else {
        return Err(ConsoleError::Redriving);
    };
    let console = &shared.console;
    let RedriveReport {
        found,
        succeeded,
        rejected,
        still_failing,
    } = redrive(&console.stuck, console.processor.clone(), &console.settings).await?;
    tracing::info!(
        found,
        succeeded,
        rejected,
        still_failing,
        "redrive from the console"
    );
    Ok(Json(json!({
        "found": found,
        "succeeded": succeeded,
        "rejected": rejected,
        "still_failing": still_failing,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_whatever_dots_the_id_holds() {
        let item = Item {
            id: "a.b.c".into(),
            status: "pending".into(),
            request: "{}".into(),
            result: None,
            error: None,
            attempts: 0,
            created_at: 1_700_000_000_123,
            updated_at: 1_700_000_000_123,
            callback: None,
        };
        assert_eq!(
            parse_cursor(&cursor(&item)),
            Some(ItemCursor {
                created_at: 1_700_000_000_123,
                id: "a.b.c".into()
            })
        );
        assert_eq!(parse_cursor("soon.x"), None);
        assert_eq!(parse_cursor("123"), None);
    }
}
