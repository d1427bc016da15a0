//! The API's mapping templates, rendered by a real VTL engine and sent to moto server's
//! DynamoDB, answer every request as the local runtime does.

use std::collections::BTreeMap;

use axum::{Router, body::Body, http::Request};
use base64::{Engine, engine::general_purpose::STANDARD};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use storefirst_domain::{DEFAULT_BODY_LIMIT, Outcome, OutcomeStore, RequestId, now_millis};
use storefirst_infra::stack::api::{ACCESS_LOG_REQUEST_ID, ACCESS_LOG_TRACE_ID};
use storefirst_lambda::DynamoStore;
use storefirst_pipeline::{api, cors::AllowedOrigins};
use storefirst_sqlite::SqliteStore;
use tower::ServiceExt;

use crate::support::{Case, Moto, render, resource};

/// How API Gateway may hand a request to the templates, where its documentation promises
/// nothing: whether Content-Length is among the headers, how an empty body arrives, and
/// what a client adds that a template must not read (X-Amzn-RequestId, which overrides
/// `$context.requestId`; an `id` in the query string or headers).
#[derive(Debug, Clone, Copy)]
struct Variant {
    name: &'static str,
    content_length: bool,
    empty_body: &'static str,
    request_id_header: Option<&'static str>,
    query_id: Option<&'static str>,
    header_id: Option<&'static str>,
    /// A browser's: Origin, Access-Control-Request-Method.
    extra_headers: &'static [(&'static str, &'static str)],
    /// `$context.xrayTraceId`: set where the stage traces the request.
    trace_id: Option<&'static str>,
}

impl Variant {
    const PLAIN: Variant = Variant {
        name: "plain",
        content_length: true,
        empty_body: "",
        request_id_header: None,
        query_id: None,
        header_id: None,
        extra_headers: &[],
        trace_id: Some("1-6749a1b2-0123456789abcdef01234567"),
    };

    const ALL: [Variant; 7] = [
        Variant::PLAIN,
        Variant {
            name: "without Content-Length",
            content_length: false,
            ..Variant::PLAIN
        },
        Variant {
            name: "empty body as {}",
            empty_body: "{}",
            ..Variant::PLAIN
        },
        Variant {
            name: "empty body as {} without Content-Length",
            content_length: false,
            empty_body: "{}",
            ..Variant::PLAIN
        },
        Variant {
            name: "hostile X-Amzn-RequestId",
            request_id_header: Some("../x\"y!#$%&'*+^|~"),
            ..Variant::PLAIN
        },
        Variant {
            name: "id in the query string and a header",
            query_id: Some("from-query"),
            header_id: Some("from-header"),
            ..Variant::PLAIN
        },
        Variant {
            name: "not traced",
            trace_id: None,
            ..Variant::PLAIN
        },
    ];

    fn headers(&self) -> Value {
        let mut headers = json!({});
        if let Some(value) = self.request_id_header {
            headers["X-Amzn-RequestId"] = value.into();
        }
        if let Some(value) = self.header_id {
            headers["id"] = value.into();
        }
        for (name, value) in self.extra_headers {
            headers[*name] = (*value).into();
        }
        headers
    }

    fn query(&self) -> Value {
        match self.query_id {
            Some(value) => json!({"id": value}),
            None => json!({}),
        }
    }
}

/// What a client sees.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    location: Option<String>,
    retry_after: Option<String>,
    /// Access-Control-* and Vary, names in lower case.
    cors: BTreeMap<String, String>,
    /// `Null` for an empty body.
    json: Value,
}

fn is_cors_header(name: &str) -> bool {
    name.starts_with("access-control-") || name == "vary"
}

/// API Gateway in front of moto's DynamoDB, as far as the templates decide it: request
/// template, the integration call, the response template its status selects.
struct Gateway {
    moto: Moto,
    table: String,
    /// The stage's variables: the allowed origins as the stack sets them.
    stage_variables: Value,
}

/// Either side of the comparison: API Gateway's templates, or the local runtime.
trait Api {
    async fn call_as(
        &self,
        method: &str,
        id: Option<&str>,
        body: &[u8],
        variant: &Variant,
    ) -> Answer;

    async fn call(&self, method: &str, id: Option<&str>, body: &[u8]) -> Answer {
        self.call_as(method, id, body, &Variant::PLAIN).await
    }
}

impl Gateway {
    async fn new() -> Self {
        let moto = Moto::new();
        let table = moto.create_table().await;
        Self {
            moto,
            table,
            stage_variables: json!({}),
        }
    }

    /// The stage variable the stack derives from `CorsOrigins`.
    fn with_cors(mut self, cors_origins: &str) -> Self {
        self.stage_variables = json!({ "corsOrigins": cors_origins });
        self
    }
}

impl Api for Gateway {
    /// A request as API Gateway may hand it to the templates in `variant`.
    async fn call_as(
        &self,
        method: &str,
        id: Option<&str>,
        body: &[u8],
        variant: &Variant,
    ) -> Answer {
        let method_id = match (method, id) {
            ("POST", _) => "ApiPostMethod",
            ("PUT", _) => "ApiPutMethod",
            ("OPTIONS", None) => "ApiRequestsOptionsMethod",
            ("OPTIONS", Some(_)) => "ApiRequestOptionsMethod",
            _ => "ApiGetMethod",
        };
        let method_resource = resource(method_id);
        if method_resource["Condition"] == "CorsConfigured"
            && self.stage_variables["corsOrigins"] == "none"
        {
            // No such method in this state: API Gateway's own answer to an unknown method
            // (a gateway response, with no CORS header while none is allowed).
            return Answer {
                status: 403,
                location: None,
                retry_after: None,
                cors: BTreeMap::new(),
                json: json!({"message": "Missing Authentication Token"}),
            };
        }
        let properties = &method_resource["Properties"];
        let integration = &properties["Integration"];
        let request_template = match &integration["RequestTemplates"]["application/json"] {
            Value::String(literal) => literal.clone(),
            sub => {
                let sub = sub["Fn::Sub"]
                    .as_array()
                    .expect("Fn::Sub [text, variables]");
                assert_eq!(sub[1], json!({"TableName": {"Ref": "RequestsTable"}}));
                sub[0]
                    .as_str()
                    .expect("text")
                    .replace("${TableName}", &self.table)
            }
        };
        let path = match id {
            Some(id) => format!("/prod/requests/{id}"),
            None => "/prod/requests".to_owned(),
        };
        let mut headers = variant.headers();
        if !matches!(method, "GET" | "OPTIONS") && variant.content_length {
            headers["Content-Length"] = body.len().to_string().into();
        }
        let params = json!({
            "path": id.map_or(json!({}), |id| json!({"id": id})),
            "querystring": variant.query(),
            "header": headers,
        });
        let unique = crate::support::unique("req");
        // Clients override requestId with X-Amzn-RequestId; the extended id is API
        // Gateway's own, base64 (with '+', '/' and '=' padding).
        let request_id = match variant.request_id_header {
            Some(hostile) => hostile.to_owned(),
            None => unique.clone(),
        };
        let mut context = json!({
            "requestId": request_id,
            "extendedRequestId": STANDARD.encode(format!("x{unique}\u{fb}\u{ff}")),
            "requestTimeEpoch": now_millis(),
            "path": path,
            "stage": "prod",
            "httpMethod": method,
        });
        if let Some(trace_id) = variant.trace_id {
            context["xrayTraceId"] = trace_id.into();
        }
        // API Gateway decodes the body as UTF-8, bytes that are not as U+FFFD, and may hand
        // an empty body over as {}.
        let mut body = String::from_utf8_lossy(body).into_owned();
        if body.is_empty() {
            body = variant.empty_body.to_owned();
        }
        let case = |template: String, body: String| Case {
            template,
            body,
            params: params.clone(),
            context: context.clone(),
            stage_variables: self.stage_variables.clone(),
        };
        let request = render(&[case(request_template, body)]).remove(0);
        let request = request.output.expect("rendered");
        let request_json = serde_json::from_str::<Value>(&request).unwrap_or_else(|e| {
            panic!("the {method} request template made invalid JSON ({e}):\n{request}")
        });
        let responses = integration["IntegrationResponses"]
            .as_array()
            .expect("list");
        let default = || responses.iter().find(|r| r["SelectionPattern"].is_null());
        let (selected, answer) = if integration["Type"] == "MOCK" {
            // A mock integration answers the status its request template names; the
            // selection patterns here are plain statuses.
            let status = request_json["statusCode"].as_u64().expect("a statusCode");
            let selected = responses
                .iter()
                .find(|r| {
                    r["SelectionPattern"].as_str().and_then(|p| p.parse().ok()) == Some(status)
                })
                .or_else(default);
            (selected, json!({}))
        } else {
            let action = integration["Uri"]["Fn::Sub"]
                .as_str()
                .and_then(|uri| uri.rsplit('/').next())
                .expect("an action URI");
            let (status, answer) = self.moto.dynamodb(action, &request).await;
            let selected = responses
                .iter()
                .find(|r| r["SelectionPattern"] == "[45]\\d{2}" && status >= 400)
                .or_else(default);
            (selected, answer)
        };
        let selected = selected.expect("an integration response for every status");
        let template = selected["ResponseTemplates"]["application/json"]
            .as_str()
            .expect("a literal response template")
            .to_owned();
        let rendered = render(&[case(template, answer.to_string())]).remove(0);
        let output = rendered.output.expect("rendered");
        let json = if output.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&output).unwrap_or_else(|e| {
                panic!(
                    "the {method} response template made invalid JSON ({e}) from {answer}:\n{output}"
                )
            })
        };
        let default_status: u16 = selected["StatusCode"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("a status");
        let status = rendered.status.unwrap_or(default_status);
        // API Gateway answers only a status the method declares, with the headers that
        // status declares.
        let declared = properties["MethodResponses"]
            .as_array()
            .expect("method responses")
            .iter()
            .find(|r| r["StatusCode"].as_str().and_then(|s| s.parse().ok()) == Some(status))
            .unwrap_or_else(|| panic!("{method_id} does not declare status {status}"));
        for header in rendered.headers.keys() {
            let parameter = format!("method.response.header.{header}");
            assert!(
                declared["ResponseParameters"].get(&parameter).is_some(),
                "{method_id}'s {status} does not declare {header}, which its template sets"
            );
        }
        Answer {
            status,
            location: rendered.headers.get("Location").cloned(),
            retry_after: rendered.headers.get("Retry-After").cloned(),
            cors: rendered
                .headers
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
                .filter(|(name, _)| is_cors_header(name))
                .collect(),
            json,
        }
    }
}

impl Gateway {
    async fn item(&self, id: &str) -> Value {
        let key =
            json!({"TableName": self.table, "Key": {"id": {"S": id}}, "ConsistentRead": true});
        let (status, answer) = self.moto.dynamodb("GetItem", &key.to_string()).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    async fn store(&self) -> DynamoStore {
        let config = storefirst_harness::sdk_config(&self.moto.url).await;
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &self.table)
    }
}

/// The local runtime's HTTP API over a fresh SQLite store.
struct Local {
    app: Router,
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl Local {
    fn new() -> Self {
        Self::with_cors(AllowedOrigins::None)
    }

    fn with_cors(origins: AllowedOrigins) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = SqliteStore::open(&dir.path().join("local.db")).expect("a store");
        let state = api::AppState::new(
            store.clone(),
            "key",
            DEFAULT_BODY_LIMIT,
            std::time::Duration::from_secs(10),
        )
        .with_cors(origins);
        Self {
            app: api::app(state),
            store,
            _dir: dir,
        }
    }
}

impl Api for Local {
    async fn call_as(
        &self,
        method: &str,
        id: Option<&str>,
        body: &[u8],
        variant: &Variant,
    ) -> Answer {
        let mut uri = match id {
            Some(id) => format!("/requests/{}", percent_encode(id)),
            None => "/requests".to_owned(),
        };
        if let Some(value) = variant.query_id {
            uri = format!("{uri}?id={}", percent_encode(value));
        }
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("x-api-key", "key")
            .header("content-type", "application/json");
        for (name, value) in variant.headers().as_object().expect("a map") {
            request = request.header(name, value.as_str().expect("a string"));
        }
        // Without a length, hyper would send the body chunked.
        let body = if variant.content_length {
            Body::from(body.to_vec())
        } else {
            Body::from_stream(futures::stream::iter([Ok::<_, std::io::Error>(
                axum::body::Bytes::copy_from_slice(body),
            )]))
        };
        let request = request.body(body).expect("a request");
        let response = self.app.clone().oneshot(request).await.expect("an answer");
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().expect("ASCII").to_owned())
        };
        let (location, retry_after) = (header("location"), header("retry-after"));
        let cors = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = value.to_str().expect("ASCII").to_owned();
                (name.as_str().to_owned(), value)
            })
            .filter(|(name, _)| is_cors_header(name))
            .collect();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON")
        };
        Answer {
            status,
            location,
            retry_after,
            cors,
            json,
        }
    }
}

fn percent_encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The same answer, server-chosen values (ids, timestamps) and error wording aside.
fn check_same(what: &str, aws: &Answer, local: &Answer) {
    assert_eq!(
        aws.status, local.status,
        "{what}: AWS {aws:?}, local {local:?}"
    );
    let normalize = |answer: &Answer| {
        let mut json = answer.json.clone();
        if let Some(map) = json.as_object_mut() {
            for server_chosen in ["created_at", "updated_at"] {
                if let Some(value) = map.get_mut(server_chosen) {
                    assert!(value.as_i64().is_some_and(|t| t > 0), "{what}: {answer:?}");
                    *value = json!("a timestamp");
                }
            }
            if let Some(message) = map.get_mut("message") {
                assert!(
                    message.as_str().is_some_and(|m| !m.is_empty()),
                    "{what}: {answer:?}"
                );
                *message = json!("a message");
            }
        }
        json
    };
    assert_eq!(
        aws.retry_after, local.retry_after,
        "{what}: Retry-After AWS {aws:?}, local {local:?}"
    );
    assert_eq!(
        aws.cors, local.cors,
        "{what}: CORS headers AWS {aws:?}, local {local:?}"
    );
    let (aws_json, local_json) = (normalize(aws), normalize(local));
    if aws.json.get("id").is_some() && local.json.get("id").is_some() && what.contains("POST") {
        let without_id = |mut json: Value| {
            json.as_object_mut().expect("object").remove("id");
            json
        };
        assert_eq!(without_id(aws_json), without_id(local_json), "{what}");
    } else {
        assert_eq!(aws_json, local_json, "{what}");
    }
    match (&aws.location, &local.location) {
        (Some(aws_location), Some(local_location)) => {
            let id = aws.json["id"].as_str().expect("an id");
            assert!(
                aws_location.ends_with(&format!("/requests/{id}")),
                "{what}: {aws_location}"
            );
            assert!(
                local_location.starts_with("/requests/"),
                "{what}: {local_location}"
            );
        }
        (None, None) => {}
        _ => panic!("{what}: Location AWS {aws:?}, local {local:?}"),
    }
}

/// Bodies that break naive escaping: quotes, backslashes, control characters, unicode
/// beyond the BMP, VTL and JSON look-alikes, nesting, odd whitespace.
fn tricky_bodies() -> Vec<String> {
    let mut bodies: Vec<String> = [
        r#"{"note":"it's Ana's order, isn't it?"}"#,
        r#"{"a":"\\'","b":"\\\\'","c":"'\\"}"#,
        r#"{"path":"C:\\temp\\new","quote":"\"quoted\"","tab":"\t"}"#,
        "{\"lines\":\"one\\ntwo\\r\\n\",\n\t\"spaced\" :  true\r\n}",
        "{\"del\":\"\u{7f}\",\"ctl\":\"\\u0001\\u001f\"}",
        r#"{"emoji":"🍕🍝","accents":"café ñandú","cjk":"寿司","escaped":"\u00e9\ud83c\udf55"}"#,
        r#"{"nested":{"a":[1,2,{"b":null,"c":[true,false]}],"d":{"e":{"f":-1.5e3}}}}"#,
        r##"{"html":"</script><script>alert('x')</script>","dollar":"$input.body","vtl":"#set($x = 1)${x}"}"##,
        r#"{"slashes":"a/b\/c","unicode escapes":"\u2028\u2029\u0000"}"#,
        r#"{"":null}"#,
        "  {\"padded\": 1}  ",
        // I-JSON look-alikes that are within it: a surrogate pair in either case, a
        // backslash before text that reads like an escape, U+FEFF and tab inside strings,
        // numbers a double holds in magnitude though not in precision.
        r#"{"pair":"\ud83c\udf55\uD83C\uDF55","text":"\\ud800","names":{"\\udc00":1}}"#,
        "{\"zwnbsp\":\"\u{feff}\",\"tab\":\"a\\tb\",\"escaped\":\"\\u0000\\u001f\"}",
        r#"{"big":1.7976931348623157e308,"small":-1.7976931348623157E+308,"tiny":1e-400,"int":9007199254740993,"pi":3.141592653589793238462643383279}"#,
    ]
    .map(str::to_owned)
    .to_vec();
    // Exactly at the limit, in two-byte characters: counted in bytes, as locally.
    let fill = (DEFAULT_BODY_LIMIT - r#"{"p":""}"#.len()) / 2;
    bodies.push(format!(r#"{{"p":"{}"}}"#, "é".repeat(fill)));
    bodies
}

#[tokio::test]
async fn accepted_bodies_are_stored_verbatim_and_read_back_as_locally() {
    let (gateway, local) = (Gateway::new().await, Local::new());
    for (index, body) in tricky_bodies().iter().enumerate() {
        let id = format!("body-{index}");
        for (what, method, id) in [
            (format!("PUT body {index}"), "PUT", Some(id.as_str())),
            (format!("POST body {index}"), "POST", None),
        ] {
            let aws = gateway.call(method, id, body.as_bytes()).await;
            let here = local.call(method, id, body.as_bytes()).await;
            check_same(&what, &aws, &here);
            assert_eq!(aws.status, 202, "{what}: {aws:?}");
            let stored_id = aws.json["id"].as_str().expect("an id").to_owned();
            let item = gateway.item(&stored_id).await;
            assert_eq!(
                item["Item"]["request"]["S"].as_str(),
                Some(body.as_str()),
                "{what}: DynamoDB must hold the body verbatim"
            );
            assert_eq!(
                (&item["Item"]["status"], &item["Item"]["attempts"]),
                (&json!({"S": "pending"}), &json!({"N": "0"})),
                "{what}"
            );
            let local_id = here.json["id"].as_str().expect("an id").to_owned();
            let aws_get = gateway.call("GET", Some(&stored_id), b"").await;
            let local_get = local.call("GET", Some(&local_id), b"").await;
            check_same(&format!("GET after {what}"), &aws_get, &local_get);
            assert_eq!(
                aws_get.json["request"].as_str(),
                Some(body.as_str()),
                "{what}"
            );
        }
    }
}

#[tokio::test]
async fn put_is_idempotent_and_conflicts_are_409() {
    let (gateway, local) = (Gateway::new().await, Local::new());
    let (first, other) = (r#"{"dish":"margherita"}"#, r#"{"dish":"marinara"}"#);
    let id = Some("idempotent-1");
    for (what, body, status) in [
        ("first PUT", first, 202),
        ("retry with the same body", first, 202),
        ("another body", other, 409),
    ] {
        let before = gateway.item("idempotent-1").await;
        let aws = gateway.call("PUT", id, body.as_bytes()).await;
        check_same(what, &aws, &local.call("PUT", id, body.as_bytes()).await);
        assert_eq!(aws.status, status, "{what}: {aws:?}");
        if what != "first PUT" {
            assert_eq!(
                gateway.item("idempotent-1").await,
                before,
                "{what} changed the item"
            );
        }
    }
    let aws = gateway.call("GET", id, b"").await;
    check_same("GET", &aws, &local.call("GET", id, b"").await);
    assert_eq!(aws.json["request"], first);
}

/// The item names the API request that stored it, for the processor's log lines: POST's id
/// is that request's extended id made URL-safe, a PUT retry keeps the first request's ids.
#[tokio::test]
async fn the_item_records_the_api_requests_ids() {
    let gateway = Gateway::new().await;
    let body = br#"{"dish":"margherita"}"#;
    let traced = Variant::PLAIN;
    let untraced = Variant::ALL
        .into_iter()
        .find(|variant| variant.trace_id.is_none())
        .expect("an untraced variant");
    let ids = |item: &Value| {
        let attribute = |name: &str| item["Item"][name]["S"].as_str().map(str::to_owned);
        (attribute("request_id"), attribute("trace_id"))
    };

    let posted = gateway.call_as("POST", None, body, &traced).await;
    let id = posted.json["id"].as_str().expect("an id").to_owned();
    let (request_id, trace_id) = ids(&gateway.item(&id).await);
    let request_id = request_id.expect("POST records the request id");
    assert_eq!(
        request_id
            .replace('+', "-")
            .replace('/', "_")
            .trim_end_matches('=')
            .to_owned(),
        id
    );
    assert_eq!(trace_id.as_deref(), traced.trace_id);

    gateway
        .call_as("PUT", Some("traced-later"), body, &untraced)
        .await;
    let (first_request, trace_id) = ids(&gateway.item("traced-later").await);
    assert!(first_request.is_some(), "PUT records the request id");
    assert_eq!(
        trace_id.as_deref(),
        Some(""),
        "an empty trace id where the stage traced nothing"
    );
    let retry = gateway
        .call_as("PUT", Some("traced-later"), body, &traced)
        .await;
    assert_eq!(retry.status, 202, "{retry:?}");
    assert_eq!(
        ids(&gateway.item("traced-later").await),
        (first_request, Some(String::new())),
        "a retry changes nothing, the ids included"
    );

    let posted = gateway.call_as("POST", None, body, &untraced).await;
    let id = posted.json["id"].as_str().expect("an id").to_owned();
    let (request_id, trace_id) = ids(&gateway.item(&id).await);
    assert!(
        request_id.is_some() && trace_id.as_deref() == Some(""),
        "untraced POST: {id}"
    );
}

/// The access log names a request by the same ids, which `cargo xtask logs` looks for, and
/// by its path, where GETs and PUTs carry the id.
#[test]
fn the_access_log_has_the_ids_the_item_records() {
    let format = resource("ApiStage")["Properties"]["AccessLogSetting"]["Format"]
        .as_str()
        .expect("a format");
    let format: Value = serde_json::from_str(format).expect("a JSON format");
    assert_eq!(format[ACCESS_LOG_REQUEST_ID], "$context.extendedRequestId");
    assert_eq!(format[ACCESS_LOG_TRACE_ID], "$context.xrayTraceId");
    assert_eq!(format["path"], "$context.path");
}

#[tokio::test]
async fn refused_requests_store_nothing_and_answer_as_locally() {
    let (gateway, local) = (Gateway::new().await, Local::new());
    let limit = DEFAULT_BODY_LIMIT;
    let padded = |size: usize| format!(r#"{{"pad":"{}"}}"#, "x".repeat(size - 10)).into_bytes();
    // Fewer characters than the limit, more bytes.
    let wide = format!(r#"{{"p":"{}"}}"#, "é".repeat(limit / 2 + 1)).into_bytes();
    let long_id = "x".repeat(129);
    let cases: Vec<(&str, &str, Option<&str>, Vec<u8>)> = vec![
        ("POST empty", "POST", None, Vec::new()),
        ("PUT empty", "PUT", Some("empty"), Vec::new()),
        ("PUT blank", "PUT", Some("blank"), b"  \n\t ".to_vec()),
        ("POST one byte over", "POST", None, padded(limit + 1)),
        ("PUT one byte over", "PUT", Some("over"), padded(limit + 1)),
        ("PUT over in bytes only", "PUT", Some("wide"), wide),
        (
            "PUT not UTF-8",
            "PUT",
            Some("latin1"),
            b"{\"a\":\"\xff\xfe\"}".to_vec(),
        ),
        ("POST not UTF-8", "POST", None, b"{\"a\":\"\xe9\"}".to_vec()),
        (
            "PUT id with a space",
            "PUT",
            Some("has space"),
            b"{}".to_vec(),
        ),
        ("PUT id too long", "PUT", Some(&long_id), b"{}".to_vec()),
        ("PUT id not ASCII", "PUT", Some("café"), b"{}".to_vec()),
        ("PUT id of dots", "PUT", Some(".."), br#"{"a":1}"#.to_vec()),
        // I-JSON, as far as the text shows it (the request model bounds the numbers).
        (
            "PUT byte order mark",
            "PUT",
            Some("bom"),
            b"\xef\xbb\xbf{\"a\":1}".to_vec(),
        ),
        (
            "POST byte order mark",
            "POST",
            None,
            b"\xef\xbb\xbf{\"a\":1}".to_vec(),
        ),
        (
            "PUT NUL in a string",
            "PUT",
            Some("nul"),
            b"{\"a\":\"\0\"}".to_vec(),
        ),
        (
            "POST NUL after the object",
            "POST",
            None,
            b"{\"a\":1}\0".to_vec(),
        ),
        (
            "PUT NUL first",
            "PUT",
            Some("nul-first"),
            b"\0{\"a\":1}".to_vec(),
        ),
        (
            "PUT U+001F",
            "PUT",
            Some("unit"),
            b"{\"a\":\"\x1f\"}".to_vec(),
        ),
        ("PUT U+000B", "PUT", Some("vtab"), b"{\"a\":1}\x0b".to_vec()),
        (
            "PUT lone high",
            "PUT",
            Some("high"),
            br#"{"a":"\ud800"}"#.to_vec(),
        ),
        (
            "POST lone low",
            "POST",
            None,
            br#"{"a":"x\uDC00y"}"#.to_vec(),
        ),
        (
            "PUT lone in a name",
            "PUT",
            Some("name"),
            br#"{"\udbff":1}"#.to_vec(),
        ),
        (
            "PUT reversed pair",
            "PUT",
            Some("reversed"),
            br#"{"a":"\udf55\ud83c"}"#.to_vec(),
        ),
        (
            "PUT high, high, low",
            "PUT",
            Some("hhl"),
            br#"{"a":"\ud800\ud800\udc00"}"#.to_vec(),
        ),
        (
            "PUT pair, low",
            "PUT",
            Some("pl"),
            br#"{"a":"\ud83c\udf55\udc00"}"#.to_vec(),
        ),
        (
            "PUT halves an escaped backslash keeps apart",
            "PUT",
            Some("apart"),
            br#"{"a":"\ud800\\\udc00"}"#.to_vec(),
        ),
        (
            "PUT lone after an escaped backslash",
            "PUT",
            Some("after"),
            br#"{"a":"\\\ud800"}"#.to_vec(),
        ),
        ("GET id of a dot", "GET", Some("."), Vec::new()),
        ("GET id with a slash", "GET", Some("a/b"), Vec::new()),
        ("GET id too long", "GET", Some(&long_id), Vec::new()),
    ];
    let before = gateway
        .moto
        .dynamodb("Scan", &json!({"TableName": gateway.table}).to_string())
        .await;
    for (what, method, id, body) in cases {
        let aws = gateway.call(method, id, &body).await;
        check_same(what, &aws, &local.call(method, id, &body).await);
        assert!(matches!(aws.status, 400 | 413), "{what}: {aws:?}");
    }
    let after = gateway
        .moto
        .dynamodb("Scan", &json!({"TableName": gateway.table}).to_string())
        .await;
    assert_eq!(before, after, "a refused request wrote to the table");
}

#[tokio::test]
async fn get_shows_outcomes_and_hides_expired_items_as_locally() {
    let (gateway, local) = (Gateway::new().await, Local::new());
    let aws_store = gateway.store().await;
    let now = now_millis() / 1000;
    let outcomes = [
        (
            "succeeded",
            Outcome::Succeeded {
                result: json!({"total_cents": 1900, "items": 2, "note": "it's \"done\" 🍕"}),
                expires_at: now + 3600,
            },
        ),
        (
            "rejected",
            Outcome::Rejected {
                error: r#"unknown dish "sushi" in Ana's order \ 寿司"#.into(),
            },
        ),
        (
            "transient",
            Outcome::Transient {
                error: "the kitchen is offline".into(),
            },
        ),
        (
            "expired",
            Outcome::Succeeded {
                result: json!({"total_cents": 700, "items": 1}),
                expires_at: now - 1,
            },
        ),
    ];
    for (name, outcome) in outcomes {
        let id = RequestId::parse(&format!("outcome-{name}")).expect("a valid id");
        let body = r#"{"restaurant":"Roma","items":[{"dish":"margherita","quantity":2}]}"#;
        let put = gateway
            .call("PUT", Some(id.as_str()), body.as_bytes())
            .await;
        check_same(
            name,
            &put,
            &local.call("PUT", Some(id.as_str()), body.as_bytes()).await,
        );
        aws_store
            .record_outcome(&id, &outcome)
            .await
            .expect("moto takes the outcome");
        local
            .store
            .record_outcome(&id, &outcome)
            .await
            .expect("SQLite takes the outcome");
        let aws = gateway.call("GET", Some(id.as_str()), b"").await;
        check_same(
            &format!("GET {name}"),
            &aws,
            &local.call("GET", Some(id.as_str()), b"").await,
        );
        let expected = if name == "expired" { 404 } else { 200 };
        assert_eq!(aws.status, expected, "{name}: {aws:?}");
    }
    let aws = gateway.call("GET", Some("never-written"), b"").await;
    check_same(
        "GET unknown",
        &aws,
        &local.call("GET", Some("never-written"), b"").await,
    );
    assert_eq!(aws.status, 404);
}

#[tokio::test]
async fn dynamodb_failures_are_never_2xx() {
    // A table that is gone, as after a bad deploy: DynamoDB's error must reach the client.
    let gateway = Gateway {
        moto: Moto::new(),
        table: crate::support::unique("missing"),
        stage_variables: json!({}),
    }
    .with_cors(ORIGIN);
    let from_origin = Variant {
        extra_headers: &[("Origin", ORIGIN)],
        ..Variant::PLAIN
    };
    for (method, id) in [("POST", None), ("PUT", Some("x")), ("GET", Some("x"))] {
        let answer = gateway
            .call_as(method, id, br#"{"a":1}"#, &from_origin)
            .await;
        assert_eq!(
            answer.cors,
            cors_headers(Some(ORIGIN)),
            "{method}: a page reads the 503 and its Retry-After: {answer:?}"
        );
        assert_eq!(answer.status, 503, "{method}: {answer:?}");
        assert_eq!(
            answer.retry_after.as_deref(),
            Some("1"),
            "{method}: a 503 is worth a retry, as locally: {answer:?}"
        );
        assert!(answer.json["message"].is_string(), "{method}: {answer:?}");
    }
}

/// A request id as `RequestId::parse` takes it, and so as GET and the Lambda read it.
fn is_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[tokio::test]
async fn every_request_answers_as_locally_however_api_gateway_hands_it_over() {
    let limit = DEFAULT_BODY_LIMIT;
    let over = format!(r#"{{"pad":"{}"}}"#, "x".repeat(limit + 1 - 10)).into_bytes();
    let order = br#"{"dish":"margherita"}"#.to_vec();
    let cases: Vec<(&str, &str, Option<&str>, Vec<u8>)> = vec![
        ("POST an order", "POST", None, order.clone()),
        ("PUT an order", "PUT", Some("order-1"), order.clone()),
        ("PUT it again", "PUT", Some("order-1"), order.clone()),
        ("GET it", "GET", Some("order-1"), Vec::new()),
        ("POST empty", "POST", None, Vec::new()),
        ("PUT empty", "PUT", Some("empty"), Vec::new()),
        ("POST {}", "POST", None, b"{}".to_vec()),
        ("PUT { }", "PUT", Some("braces"), b" {\n} ".to_vec()),
        ("POST blank", "POST", None, b" \r\n\t".to_vec()),
        ("POST one byte over", "POST", None, over.clone()),
        ("PUT one byte over", "PUT", Some("over"), over),
        ("POST not UTF-8", "POST", None, b"{\"a\":\"\xff\"}".to_vec()),
        ("PUT invalid id", "PUT", Some("a b"), order.clone()),
        ("GET invalid id", "GET", Some("a:b"), Vec::new()),
    ];
    for variant in Variant::ALL {
        let (gateway, local) = (Gateway::new().await, Local::new());
        let mut posted = Vec::new();
        for (what, method, id, body) in &cases {
            let what = format!("{what}, {}", variant.name);
            let aws = gateway.call_as(method, *id, body, &variant).await;
            let here = local.call_as(method, *id, body, &variant).await;
            check_same(&what, &aws, &here);
            if *method == "POST" && aws.status == 202 {
                let id = aws.json["id"].as_str().expect("an id").to_owned();
                assert!(
                    is_request_id(&id),
                    "{what}: POST's id {id:?} is no request id"
                );
                if let Some(header) = variant.request_id_header {
                    assert_ne!(id, header, "{what}: the client chose the id");
                }
                let got = gateway.call_as("GET", Some(&id), b"", &variant).await;
                assert_eq!(got.status, 200, "{what}: GET {id}: {got:?}");
                posted.push(id);
            }
        }
        // Only the two orders were stored: nothing refused reached the table.
        let scan = gateway
            .moto
            .dynamodb("Scan", &json!({"TableName": gateway.table}).to_string())
            .await
            .1;
        let mut stored: Vec<&str> = scan["Items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| item["id"]["S"].as_str().expect("a string id"))
            .collect();
        stored.sort_unstable();
        let mut expected: Vec<&str> = posted.iter().map(String::as_str).collect();
        expected.push("order-1");
        expected.sort_unstable();
        assert_eq!(stored, expected, "{}", variant.name);
    }
}

#[tokio::test]
async fn a_retry_answers_the_stored_status_and_an_expired_id_is_not_reused() {
    let (gateway, local) = (Gateway::new().await, Local::new());
    let aws_store = gateway.store().await;
    let body = br#"{"dish":"margherita"}"#;
    let now = now_millis() / 1000;
    for (name, outcome, status) in [
        (
            "done",
            Outcome::Succeeded {
                result: json!({"total_cents": 900}),
                expires_at: now + 3600,
            },
            202,
        ),
        (
            "rejected",
            Outcome::Rejected {
                error: "unknown dish".into(),
            },
            202,
        ),
        (
            "expired",
            Outcome::Succeeded {
                result: json!({"total_cents": 900}),
                expires_at: now - 1,
            },
            409,
        ),
    ] {
        let id = RequestId::parse(name).expect("a valid id");
        check_same(
            name,
            &gateway.call("PUT", Some(name), body).await,
            &local.call("PUT", Some(name), body).await,
        );
        aws_store.record_outcome(&id, &outcome).await.expect("moto");
        local
            .store
            .record_outcome(&id, &outcome)
            .await
            .expect("SQLite");
        let before = gateway.item(name).await;
        let aws = gateway.call("PUT", Some(name), body).await;
        check_same(
            &format!("PUT {name} again"),
            &aws,
            &local.call("PUT", Some(name), body).await,
        );
        assert_eq!(aws.status, status, "{name}: {aws:?}");
        if status == 202 {
            assert_eq!(aws.json["status"], before["Item"]["status"]["S"], "{name}");
            assert_ne!(aws.json["status"], "pending", "{name}");
        }
        assert_eq!(
            gateway.item(name).await,
            before,
            "{name}: the retry changed the item"
        );
    }
}

const ORIGIN: &str = "https://app.example.com";
const OTHER_ORIGIN: &str = "http://127.0.0.1:8081";

/// The headers of an answer to an allowed origin (`allowed`: what
/// Access-Control-Allow-Origin says), or to any other request while CORS is on.
fn cors_headers(allowed: Option<&str>) -> BTreeMap<String, String> {
    let mut headers = BTreeMap::from([("vary".to_owned(), "Origin".to_owned())]);
    if let Some(origin) = allowed {
        headers.insert("access-control-allow-origin".into(), origin.into());
        headers.insert(
            "access-control-expose-headers".into(),
            "Location, Retry-After".into(),
        );
    }
    headers
}

/// A preflight's headers when the origin is allowed.
fn preflight_headers(origin: &str, methods: &str) -> BTreeMap<String, String> {
    [
        ("access-control-allow-origin", origin),
        ("access-control-allow-methods", methods),
        (
            "access-control-allow-headers",
            "content-type, x-api-key, x-callback-url",
        ),
        ("access-control-max-age", "600"),
        ("vary", "Origin"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}

#[tokio::test]
async fn cors_answers_as_the_spec_and_the_local_runtime_say() {
    // The allowed origins as the stack's stage variable carries them, and as the local
    // runtime takes them.
    let configurations = [
        ("none", AllowedOrigins::None),
        (
            "https://app.example.com,http://127.0.0.1:8081",
            AllowedOrigins::parse(&[ORIGIN, OTHER_ORIGIN]).expect("valid origins"),
        ),
        ("any", AllowedOrigins::Any),
    ];
    // Who asks: their headers on a request, and on a preflight. Header names in both
    // cases: HTTP/2 clients send them in lower case.
    const ASK: (&str, &str) = ("Access-Control-Request-Method", "PUT");
    type Headers = &'static [(&'static str, &'static str)];
    let requesters: [(&str, Headers, Headers); 5] = [
        ("no Origin", &[], &[ASK]),
        (
            "an allowed Origin",
            &[("Origin", ORIGIN)],
            &[("Origin", ORIGIN), ASK],
        ),
        (
            "an allowed origin",
            &[("origin", OTHER_ORIGIN)],
            &[
                ("origin", OTHER_ORIGIN),
                ("access-control-request-method", "GET"),
            ],
        ),
        (
            "another Origin",
            &[("Origin", "https://evil.example")],
            &[("Origin", "https://evil.example"), ASK],
        ),
        (
            "a look-alike Origin",
            &[("Origin", "https://app.example.com.evil.example")],
            &[("Origin", "https://app.example.com.evil.example"), ASK],
        ),
    ];
    let order = br#"{"dish":"margherita"}"#.to_vec();
    let calls: Vec<(&str, &str, Option<&str>, Vec<u8>)> = vec![
        ("POST", "POST", None, order.clone()),
        ("PUT", "PUT", Some("cors-1"), order.clone()),
        (
            "PUT another body",
            "PUT",
            Some("cors-1"),
            br#"{"a":1}"#.to_vec(),
        ),
        ("GET", "GET", Some("cors-1"), Vec::new()),
        ("GET unknown", "GET", Some("unknown"), Vec::new()),
        ("POST empty", "POST", None, Vec::new()),
        ("PUT invalid id", "PUT", Some("a b"), order.clone()),
    ];
    for (stage_variable, origins) in configurations {
        for (who, headers, asked) in requesters {
            let (gateway, local) = (
                Gateway::new().await.with_cors(stage_variable),
                Local::with_cors(origins.clone()),
            );
            let origin = headers.first().map(|(_, origin)| *origin);
            let allowed = match stage_variable {
                "none" => None,
                "any" => origin.map(|_| "*"),
                list => origin.filter(|o| list.split(',').any(|a| a == *o)),
            };
            let expected = if stage_variable == "none" {
                BTreeMap::new()
            } else {
                cors_headers(allowed)
            };
            let variant = Variant {
                extra_headers: headers,
                ..Variant::PLAIN
            };
            for (what, method, id, body) in &calls {
                let what = format!("{what} from {who}, CORS {stage_variable}");
                let aws = gateway.call_as(method, *id, body, &variant).await;
                check_same(
                    &what,
                    &aws,
                    &local.call_as(method, *id, body, &variant).await,
                );
                assert_eq!(aws.cors, expected, "{what}: {aws:?}");
            }
            // Preflights: with and without the method asked for.
            for (what, extra_headers) in [("preflight", asked), ("bare OPTIONS", headers)] {
                let variant = Variant {
                    extra_headers,
                    ..Variant::PLAIN
                };
                for (id, methods) in [(None, "POST, OPTIONS"), (Some("x"), "GET, PUT, OPTIONS")] {
                    let what = format!("{what} {id:?} from {who}, CORS {stage_variable}");
                    let aws = gateway.call_as("OPTIONS", id, b"", &variant).await;
                    check_same(
                        &what,
                        &aws,
                        &local.call_as("OPTIONS", id, b"", &variant).await,
                    );
                    match allowed {
                        Some(origin) if extra_headers == asked => {
                            assert_eq!(aws.status, 204, "{what}: {aws:?}");
                            assert_eq!(aws.cors, preflight_headers(origin, methods), "{what}");
                            assert_eq!(aws.json, Value::Null, "{what}: a 204 has no body");
                        }
                        _ => {
                            assert_eq!(aws.status, 403, "{what}: {aws:?}");
                            assert!(
                                aws.cors.keys().all(|name| name == "vary"),
                                "{what}: a refused preflight has no Access-Control-*: {aws:?}"
                            );
                            assert!(aws.json["message"].is_string(), "{what}: {aws:?}");
                        }
                    }
                }
            }
            // A preflight never reaches the table.
            let scan = gateway
                .moto
                .dynamodb("Scan", &json!({"TableName": gateway.table}).to_string())
                .await
                .1;
            assert_eq!(scan["Count"], 2, "{who}: only the POST and the PUT stored");
        }
    }
}

/// A request naming `url` in x-callback-url.
fn with_callback(url: &str) -> Variant {
    let headers: &'static [(&'static str, &'static str)] =
        Box::leak(Box::new([("x-callback-url", &*Box::leak(url.into()))]));
    Variant {
        name: "with a callback",
        extra_headers: headers,
        ..Variant::PLAIN
    }
}

/// x-callback-url on AWS as locally: a URL the local runtime takes is stored in the parsed
/// form it stores, shown by GET; one it refuses is refused with its very message and
/// stores nothing.
#[tokio::test]
async fn callbacks_are_stored_and_refused_as_locally() {
    let (gateway, local) = (Gateway::new().await, Local::new());
    let long = format!("https://example.com/{}", "a".repeat(2048));
    let callbacks: Vec<(&str, &str)> = vec![
        ("valid", "https://hooks.example.com/storefirst?order=1"),
        ("valid, spelled otherwise", "HTTPS://Hooks.Example.COM:0443"),
        ("valid, with a port", "https://hooks.example.com:8443/a/b"),
        (
            "valid, characters to encode",
            "https://hooks.example.com/a b\"<`{}>?q='x' y#f`g",
        ),
        ("valid, backslashes", "https:\\\\hooks.example.com\\a\\b"),
        ("http", "http://hooks.example.com/hook"),
        ("too long", &long),
        ("user info", "https://user:secret@hooks.example.com/"),
        ("a user name", "https://user@hooks.example.com/"),
        ("IPv4 literal", "https://203.0.113.7/hook"),
        ("IPv6 literal", "https://[2001:db8::1]:8443/hook"),
        ("localhost", "https://localhost/hook"),
        ("a localhost name", "https://API.localhost./hook"),
        ("loopback IPv4", "http://127.0.0.1:9000/hook"),
        ("loopback IPv6", "https://[::1]/hook"),
        ("not absolute", "hooks.example.com/hook"),
        ("another scheme", "ftp://hooks.example.com/"),
        ("no host", "mailto:hooks@example.com"),
        ("empty host", "https://user@/hook"),
        ("a bad port", "https://hooks.example.com:99999/"),
    ];
    let body = br#"{"dish":"margherita"}"#;
    let mut stored = 0;
    for (index, (what, url)) in callbacks.iter().enumerate() {
        let variant = with_callback(url);
        let id = format!("callback-{index}");
        for (method, id) in [("POST", None), ("PUT", Some(id.as_str()))] {
            let what = format!("{method} {what} ({url})");
            let aws = gateway.call_as(method, id, body, &variant).await;
            let here = local.call_as(method, id, body, &variant).await;
            check_same(&what, &aws, &here);
            if aws.status != 202 {
                assert_eq!(aws.status, 400, "{what}: {aws:?}");
                assert_eq!(aws.json["message"], here.json["message"], "{what}");
                continue;
            }
            stored += 1;
            let aws_id = aws.json["id"].as_str().expect("an id").to_owned();
            let local_id = here.json["id"].as_str().expect("an id").to_owned();
            let aws_get = gateway.call("GET", Some(&aws_id), b"").await;
            let local_get = local.call("GET", Some(&local_id), b"").await;
            check_same(&format!("GET after {what}"), &aws_get, &local_get);
            assert_eq!(aws_get.json["callback"]["status"], "pending", "{what}");
            let item = gateway.item(&aws_id).await;
            assert_eq!(
                item["Item"]["callback_attempts"],
                json!({"N": "0"}),
                "{what}"
            );
        }
    }
    assert_eq!(stored, 2 * 5, "the valid callbacks, by POST and PUT");
    let scan = gateway
        .moto
        .dynamodb("Scan", &json!({"TableName": gateway.table}).to_string())
        .await
        .1;
    assert_eq!(scan["Count"], stored, "a refused callback stored nothing");

    // Without the header: no callback, as before.
    let aws = gateway.call("POST", None, body).await;
    let id = aws.json["id"].as_str().expect("an id");
    let item = gateway.item(id).await;
    assert!(item["Item"].get("callback_url").is_none(), "{item}");
    let got = gateway.call("GET", Some(id), b"").await;
    assert!(got.json.get("callback").is_none(), "{got:?}");
}

/// The callback is part of a PUT's request: a retry with the same body and callback is
/// answered as the first, another callback (or none, or one where there was none) is a
/// conflict, as another body is; none of them changes the item.
#[tokio::test]
async fn a_put_retry_with_another_callback_is_a_conflict_as_locally() {
    let (gateway, local) = (Gateway::new().await, Local::new());
    let body = br#"{"dish":"margherita"}"#;
    let first = with_callback("https://hooks.example.com/a");
    let same_spelled_otherwise = with_callback("HTTPS://hooks.EXAMPLE.com:443/a");
    let other = with_callback("https://hooks.example.com/b");
    let none = Variant::PLAIN;
    for (id, steps) in [
        (
            "with-callback",
            vec![
                ("first", &first, 202),
                ("the same callback", &first, 202),
                (
                    "the same callback spelled otherwise",
                    &same_spelled_otherwise,
                    202,
                ),
                ("another callback", &other, 409),
                ("no callback", &none, 409),
            ],
        ),
        (
            "without-callback",
            vec![
                ("first", &none, 202),
                ("no callback again", &none, 202),
                ("a callback", &first, 409),
            ],
        ),
    ] {
        for (what, variant, status) in steps {
            let what = format!("{id}: {what}");
            let before = gateway.item(id).await;
            let aws = gateway.call_as("PUT", Some(id), body, variant).await;
            let here = local.call_as("PUT", Some(id), body, variant).await;
            check_same(&what, &aws, &here);
            assert_eq!(aws.status, status, "{what}: {aws:?}");
            if !what.ends_with("first") {
                assert_eq!(gateway.item(id).await, before, "{what} changed the item");
            }
        }
        let aws = gateway.call("GET", Some(id), b"").await;
        check_same(
            &format!("GET {id}"),
            &aws,
            &local.call("GET", Some(id), b"").await,
        );
    }
}
