//! The HTTP contract as an OpenAPI 3.1 document, made from the constants the API itself
//! uses (limits, the id's rules, statuses, header names), so that it cannot drift from the
//! code: the local runtime serves it at [`ROUTE`], `cargo xtask synth` writes it to
//! [`DOCUMENT_PATH`], and the contract suite checks every answer it sees against it.
//! The webhook is a `callbacks` entry on POST and PUT.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};
use storefirst_domain::{
    CALLBACK_URL_LIMIT, CallbackStatus, DEFAULT_BODY_LIMIT, LARGEST_NUMBER, RequestId, Status,
};

/// Where `cargo xtask synth` writes the document, beside the CloudFormation template
/// (relative to the workspace root).
pub const DOCUMENT_PATH: &str = "infra/storefirst.openapi.json";
/// Where the local runtime serves it, without the API key: the contract is public.
pub const ROUTE: &str = "/openapi.json";
/// The collection: POST stores a request under an id the server chooses.
pub const REQUESTS: &str = "/requests";
/// One request: PUT under the client's id, GET its outcome. axum's path syntax is
/// OpenAPI's.
pub const REQUEST: &str = "/requests/{id}";

/// The header that carries the API key, sent exactly once.
pub const API_KEY_HEADER: &str = "x-api-key";
/// The header that names a request's webhook receiver.
pub const CALLBACK_URL_HEADER: &str = "x-callback-url";

/// A request's target longer than this is refused with 414 (API Gateway's edge limit).
pub const URI_LIMIT: usize = 8 * 1024;
/// A request line and headers larger than this together are refused with 431.
pub const HEAD_LIMIT: usize = 16 * 1024;

/// The extension on the request body that states its limit in bytes (JSON Schema cannot).
pub const BODY_LIMIT_EXTENSION: &str = "x-max-bytes";

/// The document's version: OpenAPI 3.1, whose schemas are JSON Schema draft 2020-12.
pub const OPENAPI_VERSION: &str = "3.1.1";
/// The schema dialect the document declares for every schema it holds.
pub const SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Every status of the request lifecycle, as the API writes them.
pub const STATUSES: [Status; 3] = [Status::Pending, Status::Succeeded, Status::Failed];
/// Every state of a webhook's delivery.
pub const CALLBACK_STATUSES: [CallbackStatus; 3] = [
    CallbackStatus::Pending,
    CallbackStatus::Delivered,
    CallbackStatus::Failed,
];

/// The Standard Webhooks headers of a delivery.
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";

/// The document, pretty-printed with a final newline: what is served and committed.
pub fn text() -> &'static str {
    static TEXT: LazyLock<String> = LazyLock::new(|| {
        let mut text = serde_json::to_string_pretty(&document()).expect("JSON serializes");
        text.push('\n');
        text
    });
    &TEXT
}

/// The OpenAPI document of the HTTP contract.
pub fn document() -> Value {
    json!({
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": SCHEMA_DIALECT,
        "info": {
            "title": "storefirst",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "A storage-first asynchronous API: every request is stored before it is answered, then processed from the store's change stream.",
            "description": "POST or PUT a JSON object: it is written durably and answered 202 at once. A processor then runs it and writes the outcome on the same item; GET it until `status` is no longer `pending`, or name a callback URL in `x-callback-url` and the outcome is POSTed to it (the `outcome` callback). Every error is JSON `{\"message\"}`. Answers marked *local* come from `storefirst-local` only, those marked *AWS* from the API Gateway stack only.",
            "license": {
                "name": env!("CARGO_PKG_LICENSE"),
                "identifier": env!("CARGO_PKG_LICENSE"),
            },
        },
        "servers": [
            {
                "url": "http://127.0.0.1:3000",
                "description": "storefirst-local as `cargo xtask dev` starts it",
            },
            {
                "url": "https://{api}.execute-api.{region}.amazonaws.com/{stage}",
                "description": "the AWS stack (its `ApiUrl` output)",
                "variables": {
                    "api": {"default": "abcdef1234", "description": "the REST API's id"},
                    "region": {"default": "us-east-1"},
                    "stage": {"default": "prod"},
                },
            },
        ],
        "security": [{"apiKey": []}],
        "tags": [
            {"name": "requests", "description": "Store a request, read its outcome."},
            {"name": "cors", "description": "Browser preflights (no API key)."},
            {"name": "contract", "description": "This document."},
        ],
        "paths": {
            REQUESTS: {
                "post": write_operation(
                    "createRequest",
                    "Store a request under an id the server chooses",
                    "The id is a UUIDv7 locally and API Gateway's extended request id, made URL-safe, on AWS; never a value the client chose.",
                    false,
                ),
                "options": preflight("preflightRequests", "POST, OPTIONS"),
            },
            REQUEST: {
                "parameters": [{"$ref": "#/components/parameters/Id"}],
                "put": write_operation(
                    "putRequest",
                    "Store a request under the client's id (the idempotency key)",
                    "A retry with the same body and the same callback is a no-op 202 that answers the stored status; another body or another callback is 409.",
                    true,
                ),
                "get": get_operation(),
                "options": preflight("preflightRequest", "GET, PUT, OPTIONS"),
            },
            ROUTE: {
                "get": {
                    "operationId": "getOpenApi",
                    "tags": ["contract"],
                    "summary": "This document",
                    "description": "Served by storefirst-local without the API key; the AWS stack does not serve it (it is published beside the stack's template).",
                    "security": [],
                    "responses": responses([
                        ("200", json!({
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenApi"}}},
                        })),
                        ("400", error_ref("Unparsable")),
                        ("414", error_ref("UriTooLong")),
                        ("431", error_ref("HeadTooLarge")),
                    ]),
                },
            },
        },
        "components": components(),
    })
}

/// POST /requests or PUT /requests/{id}: the same body, headers, answers and callback.
fn write_operation(id: &str, summary: &str, description: &str, put: bool) -> Value {
    let accepted = if put {
        "Stored, or a retry of the stored request: `status` is `pending` when new, the stored status on a retry."
    } else {
        "Stored: `status` is `pending`."
    };
    let (refused, id_rule) = if put {
        (
            "The id, the body or the callback URL",
            "an id outside the pattern, ",
        )
    } else {
        ("The body or the callback URL", "")
    };
    let invalid = format!(
        "{refused} is refused (see the message): not a JSON object with at least one field, not I-JSON (invalid UTF-8, a byte order mark, a raw control character, a lone surrogate escape, a number beyond the largest double), {id_rule}a callback URL that is not an absolute `https` URL of a public DNS name (or one on a runtime that delivers no webhooks), or (local) a request that is not valid HTTP/1.1. Nothing is stored."
    );
    let conflict = if put {
        "The id holds another body or another callback URL (or one where there was none, or none where there was one), or a request that finished and expired but is not deleted yet: use a new id."
    } else {
        "The id the server chose is taken: not expected to happen; send the request again."
    };
    json!({
        "operationId": id,
        "tags": ["requests"],
        "summary": summary,
        "description": description,
        "parameters": [{"$ref": "#/components/parameters/CallbackUrl"}],
        "requestBody": {"$ref": "#/components/requestBodies/Request"},
        "responses": responses([
            ("202", json!({
                "description": accepted,
                "headers": {"Location": {"$ref": "#/components/headers/Location"}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
            })),
            ("400", error(&invalid)),
            ("403", error_ref("Forbidden")),
            ("408", error("(local) The body did not arrive within 10 s of the headers.")),
            ("409", error(conflict)),
            ("413", error(&format!("The body is over {DEFAULT_BODY_LIMIT} bytes. Nothing is stored."))),
            ("414", error_ref("UriTooLong")),
            ("415", error("The content type is not `application/json` (parameters such as `charset` are allowed; no content type is taken as JSON).")),
            ("429", error_ref("Throttled")),
            ("431", error_ref("HeadTooLarge")),
            ("503", error_ref("Unavailable")),
        ]),
        "callbacks": {"outcome": {"$ref": "#/components/callbacks/Outcome"}},
    })
}

fn get_operation() -> Value {
    json!({
        "operationId": "getRequest",
        "tags": ["requests"],
        "summary": "Read a request and its outcome",
        "description": "Poll until `status` is no longer `pending`. A request that succeeded expires after its retention (24 h by default) and is 404 from then on.",
        "responses": responses([
            ("200", json!({
                "description": "The request, its outcome and its webhook's delivery.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}},
            })),
            ("400", error("The id is outside the pattern, or (local) the request is not valid HTTP/1.1.")),
            ("403", error_ref("Forbidden")),
            ("404", error("No request with this id: unknown, or expired after success.")),
            ("414", error_ref("UriTooLong")),
            ("429", error_ref("Throttled")),
            ("431", error_ref("HeadTooLarge")),
            ("503", error_ref("Unavailable")),
        ]),
    })
}

/// A browser's preflight of a resource whose methods are `methods`.
fn preflight(id: &str, methods: &str) -> Value {
    json!({
        "operationId": id,
        "tags": ["cors"],
        "summary": "CORS preflight",
        "description": "Needs no API key and never touches the store. Allowed origins: `storefirst-local --cors-origin`, the stack's `CorsOrigins` parameter; none by default. On AWS, with no origin allowed, API Gateway answers 403 itself.",
        "security": [],
        "parameters": [
            {"name": "Origin", "in": "header", "required": false, "schema": {"type": "string"}},
            {"name": "Access-Control-Request-Method", "in": "header", "required": false, "schema": {"type": "string"}},
        ],
        "responses": responses([
            ("204", json!({
                "description": format!("An allowed origin asked for a method: the CORS headers, no body. `Access-Control-Allow-Methods` is `{methods}`."),
                "headers": {
                    "Access-Control-Allow-Origin": {"$ref": "#/components/headers/AllowOrigin"},
                    "Access-Control-Allow-Methods": {"$ref": "#/components/headers/AllowMethods"},
                    "Access-Control-Allow-Headers": {"$ref": "#/components/headers/AllowHeaders"},
                    "Access-Control-Max-Age": {"$ref": "#/components/headers/MaxAge"},
                },
            })),
            ("400", error_ref("Unparsable")),
            ("403", error("No `Origin`, an origin that is not allowed, or no `Access-Control-Request-Method`: no `Access-Control-*` header.")),
            ("414", error_ref("UriTooLong")),
            ("431", error_ref("HeadTooLarge")),
        ]),
    })
}

fn responses<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(status, response)| (status.to_owned(), response))
            .collect(),
    )
}

/// An error answer: JSON `{"message"}`.
fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    })
}

fn error_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

fn enumeration<T: Copy>(values: &[T], as_str: fn(T) -> &'static str) -> Value {
    Value::Array(values.iter().map(|&v| Value::from(as_str(v))).collect())
}

/// [`RequestId`]'s characters, not only dots (a character other than a dot somewhere); its
/// length is `minLength` and `maxLength`.
pub const ID_PATTERN: &str = "^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$";

fn components() -> Value {
    let largest: f64 = LARGEST_NUMBER.parse().expect("a double");
    let mut unavailable = error(
        "A storage failure, or (local) the processor is too far behind: retry after `Retry-After` seconds. Never stored half-way: no 202 was given.",
    );
    unavailable["headers"] = json!({"Retry-After": {"$ref": "#/components/headers/RetryAfter"}});
    json!({
        "securitySchemes": {
            "apiKey": {
                "type": "apiKey",
                "in": "header",
                "name": API_KEY_HEADER,
                "description": "Sent exactly once: a missing, wrong or (local) repeated key is 403.",
            },
        },
        "parameters": {
            "Id": {
                "name": "id",
                "in": "path",
                "required": true,
                "description": "The request's id: chosen by the server on POST, by the client on PUT.",
                "schema": {"$ref": "#/components/schemas/RequestId"},
            },
            "CallbackUrl": {
                "name": CALLBACK_URL_HEADER,
                "in": "header",
                "required": false,
                "description": format!("Where the outcome is POSTed when the request finishes (the `outcome` callback). An absolute `https` URL of a public DNS name, at most {CALLBACK_URL_LIMIT} bytes, no user info, no IP literal, no `localhost` (storefirst-local's `--allow-loopback-webhooks` also allows `http` and `https` on this machine); sent at most once. Part of the request: a PUT retry must name the same one. A runtime that delivers no webhooks refuses it with 400."),
                "schema": {"type": "string", "format": "uri", "maxLength": CALLBACK_URL_LIMIT},
            },
        },
        "requestBodies": {
            "Request": {
                "description": format!("An I-JSON object (RFC 7493) with at least one field, at most {DEFAULT_BODY_LIMIT} bytes, stored exactly as sent. A duplicate member name is 400, or (AWS) 202 and then `failed` naming it."),
                "required": true,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RequestBody"}}},
                BODY_LIMIT_EXTENSION: DEFAULT_BODY_LIMIT,
            },
        },
        "headers": {
            "Location": {
                "description": "The request's URL: `/requests/{id}`.",
                "required": true,
                "schema": {"type": "string"},
            },
            "RetryAfter": {
                "description": "Seconds to wait before a retry.",
                "required": true,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            },
            "AllowOrigin": {"required": true, "description": "The origin, or `*` when any is allowed.", "schema": {"type": "string"}},
            "AllowMethods": {"required": true, "schema": {"type": "string"}},
            "AllowHeaders": {"required": true, "description": "`content-type, x-api-key, x-callback-url`.", "schema": {"type": "string"}},
            "MaxAge": {"required": true, "description": "Seconds a browser may cache the preflight.", "schema": {"type": "string", "pattern": "^[0-9]+$"}},
        },
        "responses": {
            "Forbidden": error(&format!("A missing or wrong `{API_KEY_HEADER}`, or (local) more than one.")),
            "Unparsable": error("(local) The request is not valid HTTP/1.1."),
            "UriTooLong": error(&format!("(local) The request target is over {URI_LIMIT} bytes.")),
            "HeadTooLarge": error(&format!("(local) The request line and headers are over {HEAD_LIMIT} bytes together.")),
            "Throttled": error("(AWS) Over the usage plan's rate or burst: retry later."),
            "Unavailable": unavailable,
        },
        "callbacks": {"Outcome": outcome_callback()},
        "schemas": {
            "RequestId": {
                "type": "string",
                "minLength": 1,
                "maxLength": RequestId::MAX_LEN,
                "pattern": ID_PATTERN,
                "description": "`[A-Za-z0-9._-]`, not only dots: safe in a URL path and a log line.",
            },
            "Status": {
                "type": "string",
                "enum": enumeration(&STATUSES, Status::as_str),
                "description": "`pending` until the processor's outcome: `succeeded` or `failed`.",
            },
            "CallbackStatus": {
                "type": "string",
                "enum": enumeration(&CALLBACK_STATUSES, CallbackStatus::as_str),
                "description": "`pending` until delivered, while retried too; `failed` once given up (a redrive makes it `pending` again).",
            },
            "Accepted": {
                "type": "object",
                "required": ["id", "status"],
                "properties": {
                    "id": {"$ref": "#/components/schemas/RequestId"},
                    "status": {"$ref": "#/components/schemas/Status"},
                },
                "additionalProperties": false,
            },
            "Item": {
                "type": "object",
                "required": ["id", "status", "request", "attempts", "created_at", "updated_at"],
                "properties": {
                    "id": {"$ref": "#/components/schemas/RequestId"},
                    "status": {"$ref": "#/components/schemas/Status"},
                    "request": {"type": "string", "description": "The body exactly as sent."},
                    "result": {"description": "The processor's result (any JSON), on success."},
                    "error": {"type": "string", "description": "Why the request failed, or why its last attempt did while it is `pending`."},
                    "attempts": {"type": "integer", "minimum": 0},
                    "created_at": {"type": "integer", "description": "Epoch milliseconds."},
                    "updated_at": {"type": "integer", "description": "Epoch milliseconds."},
                    "callback": {"$ref": "#/components/schemas/Callback"},
                },
                "additionalProperties": false,
            },
            "Callback": {
                "type": "object",
                "description": format!("The webhook named with `{CALLBACK_URL_HEADER}`, and where its delivery is."),
                "required": ["url", "status", "attempts"],
                "properties": {
                    "url": {"type": "string", "format": "uri", "maxLength": CALLBACK_URL_LIMIT, "description": "As named, in its parsed form."},
                    "status": {"$ref": "#/components/schemas/CallbackStatus"},
                    "attempts": {"type": "integer", "minimum": 0},
                    "error": {"type": "string", "description": "Why the last attempt failed."},
                },
                "additionalProperties": false,
            },
            "Outcome": {
                "description": "What a webhook delivers: the request as GET shows it, finished, with its callback.",
                "allOf": [{"$ref": "#/components/schemas/Item"}],
                "required": ["callback"],
                "properties": {"status": {"enum": [Status::Succeeded.as_str(), Status::Failed.as_str()]}},
            },
            "Error": {
                "type": "object",
                "required": ["message"],
                "properties": {"message": {"type": "string", "minLength": 1, "description": "What went wrong and what to do."}},
                "additionalProperties": false,
            },
            "RequestBody": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
            },
            "JsonValue": {
                "description": "Any JSON value whose numbers, at any depth, are within the largest double.",
                "maximum": largest,
                "minimum": -largest,
                "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
                "items": {"$ref": "#/components/schemas/JsonValue"},
            },
            "OpenApi": {
                "type": "object",
                "required": ["openapi", "info", "paths"],
                "properties": {"openapi": {"const": OPENAPI_VERSION}},
            },
        },
    })
}

/// The webhook: the outcome POSTed to the URL `x-callback-url` named, signed per Standard
/// Webhooks.
fn outcome_callback() -> Value {
    let header = |name: &str, description: &str, schema: Value| json!({"name": name, "in": "header", "required": true, "description": description, "schema": schema});
    let mut expression = Map::new();
    expression.insert(
        format!("{{$request.header.{CALLBACK_URL_HEADER}}}"),
        json!({
            "post": {
                "summary": "The request's outcome",
                "description": "Sent when the request finishes (`pending` to `succeeded` or `failed`), at least once: deduplicate by `webhook-id`. Verify the signature with a Standard Webhooks library, given the raw body and the headers. Retried after no answer within 5 s, a connection error, 408, 429 or 5xx, with exponential backoff and jitter and no sooner than `Retry-After`: 8 attempts within 24 hours; given up on, the item's `callback.status` is `failed`.",
                "security": [],
                "parameters": [
                    header(WEBHOOK_ID_HEADER, "The delivery's id: the same on every attempt.", json!({"type": "string", "minLength": 1})),
                    header(WEBHOOK_TIMESTAMP_HEADER, "This attempt's time, epoch seconds.", json!({"type": "string", "pattern": "^[0-9]+$"})),
                    header(
                        WEBHOOK_SIGNATURE_HEADER,
                        "`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` with the secret's key; space-separated when there are several.",
                        json!({"type": "string", "pattern": "^v1,[A-Za-z0-9+/]+={0,2}( v1,[A-Za-z0-9+/]+={0,2})*$"}),
                    ),
                ],
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Outcome"}}},
                },
                "responses": {
                    "2XX": {"description": "Delivered."},
                    "408": {"description": "Retried."},
                    "429": {"description": "Retried, no sooner than `Retry-After` (seconds or an HTTP date)."},
                    "5XX": {"description": "Retried, no sooner than `Retry-After`."},
                    "default": {"description": "Any other status, a redirect included (redirects are not followed): given up on."},
                },
            },
        }),
    );
    Value::Object(expression)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_states_the_limits_the_code_enforces() {
        let document = document();
        let schemas = &document["components"]["schemas"];
        let parameters = &document["components"]["parameters"];
        assert_eq!(
            document["components"]["requestBodies"]["Request"][BODY_LIMIT_EXTENSION],
            DEFAULT_BODY_LIMIT
        );
        assert_eq!(schemas["RequestId"]["maxLength"], RequestId::MAX_LEN);
        assert_eq!(parameters["CallbackUrl"]["name"], CALLBACK_URL_HEADER);
        assert_eq!(
            parameters["CallbackUrl"]["schema"]["maxLength"],
            CALLBACK_URL_LIMIT
        );
        assert_eq!(
            document["components"]["securitySchemes"]["apiKey"]["name"],
            API_KEY_HEADER
        );
        let largest: f64 = LARGEST_NUMBER.parse().unwrap();
        assert_eq!(schemas["JsonValue"]["maximum"], largest);
        assert_eq!(schemas["JsonValue"]["minimum"], -largest);
        for (response, limit) in [("UriTooLong", URI_LIMIT), ("HeadTooLarge", HEAD_LIMIT)] {
            let description = document["components"]["responses"][response]["description"]
                .as_str()
                .unwrap();
            assert!(description.contains(&limit.to_string()), "{description}");
        }
        let statuses: Vec<Status> = schemas["Status"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(statuses, STATUSES);
        let callback_statuses: Vec<CallbackStatus> = schemas["CallbackStatus"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(callback_statuses, CALLBACK_STATUSES);
        // Exhaustive: a new status fails to compile here until the lists above have it.
        let listed = |status: Status| match status {
            Status::Pending | Status::Succeeded | Status::Failed => STATUSES.contains(&status),
        };
        let listed_callback = |status: CallbackStatus| match status {
            CallbackStatus::Pending | CallbackStatus::Delivered | CallbackStatus::Failed => {
                CALLBACK_STATUSES.contains(&status)
            }
        };
        assert!(STATUSES.into_iter().all(listed));
        assert!(CALLBACK_STATUSES.into_iter().all(listed_callback));
    }

    #[test]
    fn the_routes_are_the_documented_paths() {
        let document = document();
        let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
        assert_eq!(paths, [ROUTE, REQUESTS, REQUEST]);
        let callback = &document["components"]["callbacks"]["Outcome"]
            [format!("{{$request.header.{CALLBACK_URL_HEADER}}}")]["post"];
        let headers: Vec<&str> = callback["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            headers,
            [
                WEBHOOK_ID_HEADER,
                WEBHOOK_TIMESTAMP_HEADER,
                WEBHOOK_SIGNATURE_HEADER
            ]
        );
    }
}
