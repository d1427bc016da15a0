//! The HTTP contract: POST / PUT / GET on `/requests`, the same as the API Gateway stack.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, Request, State, rejection::PathRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body as _;
use serde_json::json;
use storefirst_domain::{
    BodyError, CallbackUrl, InvalidCallback, InvalidRequestId, Receivers, RequestBody, RequestId,
    Status,
};

use crate::{
    cors::AllowedOrigins,
    openapi::{self, API_KEY_HEADER, CALLBACK_URL_HEADER},
    ports::{Accepted, Behind, Ingest, StoreFault},
};

#[derive(Clone)]
pub struct AppState<S> {
    store: S,
    api_key: Arc<str>,
    body_limit: usize,
    body_timeout: Duration,
    cors: Arc<AllowedOrigins>,
    receivers: Receivers,
}

impl<S: Ingest> AppState<S> {
    pub fn new(store: S, api_key: &str, body_limit: usize, body_timeout: Duration) -> Self {
        Self {
            store,
            api_key: api_key.into(),
            body_limit,
            body_timeout,
            cors: Arc::default(),
            receivers: Receivers::default(),
        }
    }

    /// Which webhook receivers an `x-callback-url` may name.
    pub fn with_receivers(mut self, receivers: Receivers) -> Self {
        self.receivers = receivers;
        self
    }

    /// Lets browsers on `origins` call the API (CORS).
    pub fn with_cors(mut self, origins: AllowedOrigins) -> Self {
        self.cors = Arc::new(origins);
        self
    }
}

pub fn app<S: Ingest>(state: AppState<S>) -> Router {
    Router::new()
        .route(openapi::REQUESTS, post(post_request::<S>))
        .route(
            openapi::REQUEST,
            get(get_request::<S>).put(put_request::<S>),
        )
        .fallback(|| async {
            ApiError::NotFound("no such route: the API has /requests and /requests/{id}")
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_key::<S>,
        ))
        // After the key check: the contract is public, as a client generator fetches it.
        .route(
            openapi::ROUTE,
            get(contract).fallback(|| async { ApiError::MethodNotAllowed }),
        )
        // Outside the key check: a preflight comes without the key, and a 403 is readable.
        .layer(middleware::from_fn_with_state(
            state.cors.clone(),
            crate::cors::cors,
        ))
        .layer(middleware::from_fn(check_head))
        .with_state(state)
}

// Stated by the contract's document; enforced here.
pub use crate::openapi::{HEAD_LIMIT, URI_LIMIT};

/// The head's limits, checked here rather than by hyper so the answer is JSON: hyper's own
/// (at a larger cap, see `server`) has an empty body.
async fn check_head(request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    // As sent: "name: value\r\n" per header, plus the request line.
    let head = request.method().as_str().len()
        + target
        + "  HTTP/1.1\r\n".len()
        + request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>();
    let refused = if target > URI_LIMIT {
        ApiError::UriTooLong
    } else if head > HEAD_LIMIT {
        ApiError::HeadTooLarge
    } else {
        return next.run(request).await;
    };
    refuse(refused, request.body())
}

/// Every error a client can see: a status and a JSON `{"message"}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Forbidden: send a valid API key in the x-api-key header")]
    Forbidden,
    /// hyper's own 400, given its JSON body by `server`.
    #[error("the request is not valid HTTP/1.1: check its request line and headers")]
    Unparsable,
    #[error("the request target is longer than {URI_LIMIT} bytes; send a shorter path")]
    UriTooLong,
    #[error(
        "the request line and headers exceed {HEAD_LIMIT} bytes; send fewer or shorter headers"
    )]
    HeadTooLarge,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("method not allowed: use POST /requests, PUT or GET /requests/{{id}}")]
    MethodNotAllowed,
    #[error(transparent)]
    InvalidId(#[from] InvalidRequestId),
    #[error(transparent)]
    InvalidBody(#[from] BodyError),
    #[error(transparent)]
    InvalidCallback(#[from] InvalidCallback),
    #[error("unsupported content type {0:?}: send application/json")]
    UnsupportedMediaType(String),
    #[error("the request body could not be read: {0}")]
    UnreadableBody(String),
    #[error("the request body did not arrive within {0:?}; send it at once")]
    BodyTimeout(Duration),
    #[error("request {0} already exists with a different body or callback URL; use a new id")]
    Conflict(RequestId),
    #[error("request {0} has finished and expired, and is deleted soon; use a new id")]
    Expired(RequestId),
    #[error(transparent)]
    Unavailable(#[from] StoreFault),
    #[error(transparent)]
    Behind(#[from] Behind),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::Unparsable => StatusCode::BAD_REQUEST,
            ApiError::UriTooLong => StatusCode::URI_TOO_LONG,
            ApiError::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidId(_) | ApiError::UnreadableBody(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidBody(BodyError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidBody(_) | ApiError::InvalidCallback(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Conflict(_) | ApiError::Expired(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(fault) => {
                tracing::error!(%fault, "answering 503");
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Behind(behind) => {
                tracing::warn!(%behind, "answering 503");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let mut response = (status, Json(json!({ "message": self.to_string() }))).into_response();
        // The request's body was left unread (or partly read): see `refuse`.
        if matches!(
            self,
            ApiError::UnsupportedMediaType(_)
                | ApiError::InvalidBody(BodyError::TooLarge { .. })
                | ApiError::BodyTimeout(_)
                | ApiError::UnreadableBody(_)
        ) {
            close(&mut response);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Worth a retry soon: the poller frees room batch by batch, and a store fault
            // (a full disk, a throttled table) may clear; the same on AWS.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

pub(crate) async fn require_api_key<S: Ingest>(
    State(state): State<AppState<S>>,
    request: Request,
    next: Next,
) -> Response {
    // Exactly one key: two are refused like none.
    let presented = single(request.headers(), API_KEY_HEADER).ok().flatten();
    if presented.is_some_and(|key| constant_time_eq(key.as_bytes(), state.api_key.as_bytes())) {
        next.run(request).await
    } else {
        refuse(ApiError::Forbidden, request.body())
    }
}

/// An answer given without reading the request's body. hyper then reads no more of it
/// (nor sends `100 Continue`) and closes the connection after the answer, which
/// `Connection: close` tells the client: a refused upload costs no memory or time.
fn refuse(error: ApiError, body: &Body) -> Response {
    let mut response = error.into_response();
    if !body.is_end_stream() {
        close(&mut response);
    }
    response
}

fn close(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// A header sent more than once where the contract takes one.
struct Repeated;

/// The header `name`'s one value, if sent; sent twice, which one counts would be a guess.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a HeaderValue>, Repeated> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (value, None) => Ok(value),
        (_, Some(_)) => Err(Repeated),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The OpenAPI document of this contract.
async fn contract() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::text(),
    )
        .into_response()
}

async fn post_request<S: Ingest>(
    State(state): State<AppState<S>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, body).await?;
    let callback = callback(&state, &headers)?;
    state.store.admit().await?;
    // Time-ordered (v7), so a new item lands at the end of the id index instead of on a
    // random page: fewer pages per commit. API Gateway's ids are random; both are UUIDs.
    let id = RequestId::parse(&uuid::Uuid::now_v7().to_string())?;
    let accepted = state.store.accept_new(id.clone(), body, callback).await?;
    answer(id, accepted)
}

/// The path's id; a path axum cannot decode (`%FF` is no UTF-8) is an invalid id, answered
/// in JSON like every other error.
fn request_id(path: Result<Path<String>, PathRejection>) -> Result<RequestId, ApiError> {
    match path {
        Ok(Path(id)) => Ok(RequestId::parse(&id)?),
        Err(rejection) => Err(InvalidRequestId(rejection.body_text()).into()),
    }
}

async fn put_request<S: Ingest>(
    State(state): State<AppState<S>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = request_id(path)?;
    let body = read_body(&state, &headers, body).await?;
    let callback = callback(&state, &headers)?;
    state.store.admit().await?;
    let accepted = state.store.accept(id.clone(), body, callback).await?;
    answer(id, accepted)
}

/// The `x-callback-url` header, checked; read after the body, so that a refusal leaves
/// nothing unread on the connection.
fn callback<S: Ingest>(
    state: &AppState<S>,
    headers: &HeaderMap,
) -> Result<Option<CallbackUrl>, ApiError> {
    let Some(value) =
        single(headers, CALLBACK_URL_HEADER).map_err(|Repeated| InvalidCallback::Repeated)?
    else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| InvalidCallback::NotAbsolute("not ASCII: percent-encode it".into()))?;
    if !state.store.delivers_webhooks() {
        return Err(InvalidCallback::NotDelivered.into());
    }
    Ok(Some(CallbackUrl::parse(text, state.receivers)?))
}

fn answer(id: RequestId, accepted: Accepted) -> Result<Response, ApiError> {
    let status = match accepted {
        Accepted::Created => Status::Pending,
        Accepted::Duplicate(stored) => stored,
        Accepted::Conflict => return Err(ApiError::Conflict(id)),
        Accepted::Expired => return Err(ApiError::Expired(id)),
    };
    let location = format!("/requests/{id}");
    let body = Json(json!({ "id": id.as_str(), "status": status.as_str() }));
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], body).into_response())
}

async fn get_request<S: Ingest>(
    State(state): State<AppState<S>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = request_id(path)?;
    match state.store.get(id).await? {
        Some(item) => Ok(Json(item).into_response()),
        None => Err(ApiError::NotFound(
            "no request with this id (unknown, or expired after success)",
        )),
    }
}

/// The envelope check before anything is stored: content type, size, JSON object.
async fn read_body<S>(
    state: &AppState<S>,
    headers: &HeaderMap,
    body: Body,
) -> Result<RequestBody, ApiError> {
    let limit = state.body_limit;
    // Like API Gateway, a request without a content type is taken as JSON.
    if let Some(value) = headers.get(header::CONTENT_TYPE) {
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let essence = text
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" {
            return Err(ApiError::UnsupportedMediaType(text));
        }
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|size| size > limit) {
        return Err(BodyError::TooLarge { limit }.into());
    }
    let collect = Limited::new(body, limit).collect();
    let bytes = tokio::time::timeout(state.body_timeout, collect)
        .await
        .map_err(|_| ApiError::BodyTimeout(state.body_timeout))?
        .map_err(|e| match e.downcast_ref::<LengthLimitError>() {
            Some(_) => ApiError::InvalidBody(BodyError::TooLarge { limit }),
            None => ApiError::UnreadableBody(e.to_string()),
        })?
        .to_bytes();
    Ok(RequestBody::parse(&bytes, limit)?)
}

#[cfg(test)]
mod tests {
    use openapi::{REQUEST, REQUESTS, ROUTE};
    use storefirst_domain::DEFAULT_BODY_LIMIT;

    use super::*;

    type Operation = (&'static str, &'static str);
    const POST: Operation = ("post", REQUESTS);
    const PUT: Operation = ("put", REQUEST);
    const GET: Operation = ("get", REQUEST);
    const WRITES: &[Operation] = &[POST, PUT];
    const KEYED: &[Operation] = &[POST, PUT, GET];
    const EVERY: &[Operation] = &[
        POST,
        PUT,
        GET,
        ("options", REQUESTS),
        ("options", REQUEST),
        ("get", ROUTE),
    ];

    /// The operations whose requests can end in `error`. Exhaustive: a new error must be
    /// placed, and its status is then checked against the document.
    fn operations(error: &ApiError) -> &'static [Operation] {
        match error {
            ApiError::Unparsable | ApiError::UriTooLong | ApiError::HeadTooLarge => EVERY,
            ApiError::Forbidden | ApiError::Unavailable(_) => KEYED,
            ApiError::NotFound(_) => &[GET],
            // Only for a method the document has not on the path.
            ApiError::MethodNotAllowed => &[],
            ApiError::InvalidId(_) => &[PUT, GET],
            ApiError::InvalidBody(_)
            | ApiError::InvalidCallback(_)
            | ApiError::UnsupportedMediaType(_)
            | ApiError::UnreadableBody(_)
            | ApiError::BodyTimeout(_)
            | ApiError::Behind(_)
            // POST too: its answer is the same code's as PUT's.
            | ApiError::Conflict(_)
            | ApiError::Expired(_) => WRITES,
        }
    }

    #[test]
    fn every_error_the_api_answers_is_documented_for_its_operations() {
        let document = openapi::document();
        let id = RequestId::parse("taken").unwrap();
        let errors = [
            ApiError::Forbidden,
            ApiError::Unparsable,
            ApiError::UriTooLong,
            ApiError::HeadTooLarge,
            ApiError::NotFound("no such request"),
            ApiError::MethodNotAllowed,
            ApiError::InvalidId(InvalidRequestId("a b".into())),
            ApiError::InvalidBody(BodyError::Empty),
            ApiError::InvalidBody(BodyError::TooLarge {
                limit: DEFAULT_BODY_LIMIT,
            }),
            ApiError::InvalidCallback(InvalidCallback::TooLong),
            ApiError::UnsupportedMediaType("text/plain".into()),
            ApiError::UnreadableBody("reset".into()),
            ApiError::BodyTimeout(Duration::from_secs(10)),
            ApiError::Conflict(id.clone()),
            ApiError::Expired(id),
            ApiError::Unavailable(StoreFault::write("PutItem", "disk full")),
            ApiError::Behind(Behind {
                behind: 2,
                limit: 1,
            }),
        ];
        for error in errors {
            let name = format!("{error:?}");
            let places = operations(&error);
            let response = error.into_response();
            let status = response.status().as_str().to_owned();
            for (method, path) in places {
                let documented = &document["paths"][path][method]["responses"][&status];
                assert!(
                    documented.is_object(),
                    "{name} answers {status}, which the document does not list for {method} {path}"
                );
            }
        }
    }

    #[test]
    fn a_header_counts_only_when_sent_once() {
        let mut headers = HeaderMap::new();
        assert!(matches!(single(&headers, "x-api-key"), Ok(None)));
        headers.append("x-api-key", HeaderValue::from_static("a"));
        assert!(matches!(single(&headers, "x-api-key"), Ok(Some(key)) if key == "a"));
        headers.append("x-api-key", HeaderValue::from_static("a"));
        assert!(matches!(single(&headers, "x-api-key"), Err(Repeated)));
    }
}
