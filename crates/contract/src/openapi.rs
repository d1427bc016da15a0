//! Every answer the suite sees, checked against the OpenAPI document the API publishes
//! (`storefirst_pipeline::openapi`): its status is documented for the operation, its
//! content type is a documented one (none when the answer has no content), its body
//! validates against the documented schema (JSON Schema draft 2020-12, the document's
//! dialect) and the documented required headers are there and valid. A runtime that
//! answers anything the document does not say fails the check that saw it.

use std::{collections::HashMap, sync::LazyLock};

use jsonschema::Validator;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

/// An answer as the suite received it.
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A document with every schema it holds compiled.
pub struct Contract {
    document: Value,
    /// By the JSON pointer of each `schema` in the document.
    schemas: HashMap<String, Validator>,
}

impl Contract {
    /// The document the API's code makes, compiled once.
    pub fn published() -> &'static Contract {
        static PUBLISHED: LazyLock<Contract> = LazyLock::new(|| {
            Contract::new(storefirst_pipeline::openapi::document())
                .unwrap_or_else(|e| panic!("the published OpenAPI document: {e}"))
        });
        &PUBLISHED
    }

    /// Compiles every schema of `document`, each against the whole document so that its
    /// `$ref`s to `#/components/...` resolve.
    pub fn new(document: Value) -> Result<Self, String> {
        let mut pointers = Vec::new();
        schema_pointers(&document, String::new(), &mut pointers);
        let dialect = document["jsonSchemaDialect"]
            .as_str()
            .unwrap_or("https://json-schema.org/draft/2020-12/schema");
        let mut schemas = HashMap::new();
        for pointer in pointers {
            let mut root = document.clone();
            root["$schema"] = json!(dialect);
            root["$ref"] = json!(format!("#{}", fragment(&pointer)));
            let validator = jsonschema::draft202012::options()
                .build(&root)
                .map_err(|e| format!("the schema at {pointer} does not compile: {e}"))?;
            schemas.insert(pointer, validator);
        }
        Ok(Self { document, schemas })
    }

    /// The path template of the document that `path` (no query) is an instance of.
    fn template(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.document["paths"]
            .as_object()?
            .keys()
            .find_map(|template| {
                let parts: Vec<&str> = template.split('/').collect();
                let matches = parts.len() == segments.len()
                    && parts.iter().zip(&segments).all(|(part, segment)| {
                        part == segment
                            || (part.starts_with('{') && part.ends_with('}') && !segment.is_empty())
                    });
                matches.then_some(template.as_str())
            })
    }

    /// Whether the document has an operation for `method` on `target` (a path, with or
    /// without its query).
    pub fn documents(&self, method: &str, target: &str) -> bool {
        self.operation(method, target).is_ok()
    }

    /// The operation and its pointer.
    fn operation(&self, method: &str, target: &str) -> Result<(String, &Value), String> {
        let path = target.split('?').next().unwrap_or_default();
        let template = self
            .template(path)
            .ok_or_else(|| format!("{method} {target}: no path of the OpenAPI document matches"))?;
        let method = method.to_ascii_lowercase();
        let pointer = format!("/paths/{}/{method}", escape(template));
        match self.document.pointer(&pointer) {
            Some(operation) => Ok((pointer, operation)),
            None => Err(format!(
                "{} {target}: the OpenAPI document has no such operation on {template}",
                method.to_ascii_uppercase()
            )),
        }
    }

    /// Follows a `$ref` to `#/...`, with the pointer of what it names.
    fn resolve<'a>(&'a self, pointer: String, value: &'a Value) -> (String, &'a Value) {
        match value["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
            Some(target) => match self.document.pointer(target) {
                Some(named) => self.resolve(target.to_owned(), named),
                None => (pointer, value),
            },
            None => (pointer, value),
        }
    }

    /// Checks `answer` to `method` `target` against the document.
    pub fn check(&self, method: &str, target: &str, answer: &Answer<'_>) -> Result<(), String> {
        let what = format!("{method} {target} answered {}", answer.status);
        let (pointer, operation) = self.operation(method, target)?;
        let status = answer.status.to_string();
        let range = format!("{}XX", answer.status / 100);
        let Some(key) = [status.as_str(), range.as_str(), "default"]
            .into_iter()
            .find(|key| operation["responses"].get(key).is_some())
        else {
            let listed: Vec<&String> = operation["responses"]
                .as_object()
                .map(|r| r.keys().collect())
                .unwrap_or_default();
            return Err(format!(
                "{what}, which the OpenAPI document does not list for it (it lists {listed:?})"
            ));
        };
        let (pointer, response) = self.resolve(
            format!("{pointer}/responses/{}", escape(key)),
            &operation["responses"][key],
        );
        self.check_headers(&what, &pointer, response, answer.headers)?;
        let Some(content) = response["content"].as_object() else {
            if answer.body.is_empty() {
                return Ok(());
            }
            return Err(format!(
                "{what} with a body, where the OpenAPI document has none: {:?}",
                String::from_utf8_lossy(answer.body)
            ));
        };
        let content_type = answer
            .headers
            .get(CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let essence = content_type
            .as_deref()
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase());
        let Some(media) = essence.as_deref().filter(|e| content.contains_key(*e)) else {
            return Err(format!(
                "{what} with content type {content_type:?}; the OpenAPI document has {:?}",
                content.keys().collect::<Vec<_>>()
            ));
        };
        let schema = format!("{pointer}/content/{}/schema", escape(media));
        let Some(validator) = self.schemas.get(&schema) else {
            return Ok(());
        };
        let body: Value = serde_json::from_slice(answer.body).map_err(|e| {
            format!(
                "{what} with a {media} body that is not JSON ({e}): {:?}",
                String::from_utf8_lossy(answer.body)
            )
        })?;
        invalid(validator, &body).map_or(Ok(()), |errors| {
            Err(format!(
                "{what} with a body the OpenAPI document does not allow ({errors}): {body}"
            ))
        })
    }

    fn check_headers(
        &self,
        what: &str,
        response_pointer: &str,
        response: &Value,
        headers: &HeaderMap,
    ) -> Result<(), String> {
        let Some(documented) = response["headers"].as_object() else {
            return Ok(());
        };
        for (name, header) in documented {
            let at = format!("{response_pointer}/headers/{}", escape(name));
            let (at, header) = self.resolve(at, header);
            let Some(value) = headers.get(name.as_str()) else {
                if header["required"] == true {
                    return Err(format!("{what} without the header {name}"));
                }
                continue;
            };
            let value = json!(String::from_utf8_lossy(value.as_bytes()));
            if let Some(errors) = self
                .schemas
                .get(&format!("{at}/schema"))
                .and_then(|validator| invalid(validator, &value))
            {
                return Err(format!(
                    "{what} with the header {name}: {value}, which the OpenAPI document does not allow ({errors})"
                ));
            }
        }
        Ok(())
    }
}

/// What `validator` finds wrong with `instance`, if anything.
fn invalid(validator: &Validator, instance: &Value) -> Option<String> {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .take(3)
        .map(|e| format!("at {:?}: {e}", e.instance_path().to_string()))
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// A JSON pointer's escape of one key.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A JSON pointer as a URI fragment: percent-encoded where a fragment may not hold the
/// character (the callback's `{$request.header...}`).
fn fragment(pointer: &str) -> String {
    pointer
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The pointer of every `schema` in `value`.
fn schema_pointers(value: &Value, at: String, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let pointer = format!("{at}/{}", escape(key));
                if key == "schema" {
                    found.push(pointer.clone());
                }
                schema_pointers(child, pointer, found);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                schema_pointers(child, format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderName, HeaderValue};
    use storefirst_domain::{CALLBACK_URL_LIMIT, Callback, CallbackStatus, RequestId};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    fn check(
        method: &str,
        target: &str,
        status: u16,
        pairs: &[(&'static str, &'static str)],
        body: &str,
    ) -> Result<(), String> {
        Contract::published().check(
            method,
            target,
            &Answer {
                status,
                headers: &headers(pairs),
                body: body.as_bytes(),
            },
        )
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn answers_the_document_allows_pass() {
        let item = r#"{"id":"a.b","status":"failed","request":"{}","error":"no","attempts":1,"created_at":1,"updated_at":2,"callback":{"url":"https://h.example/x","status":"pending","attempts":0}}"#;
        let accepted = r#"{"id":"x","status":"pending"}"#;
        let error = r#"{"message":"no"}"#;
        for (method, target, status, pairs, body) in [
            (
                "POST",
                "/requests",
                202,
                vec![JSON, ("location", "/requests/x")],
                accepted,
            ),
            (
                "POST",
                "/requests?id=y",
                202,
                vec![
                    ("content-type", "application/json; charset=utf-8"),
                    ("location", "/requests/x"),
                ],
                accepted,
            ),
            ("PUT", "/requests/x", 409, vec![JSON], error),
            ("GET", "/requests/a.b", 200, vec![JSON], item),
            ("GET", "/requests/has%20space", 400, vec![JSON], error),
            (
                "GET",
                "/requests/x",
                503,
                vec![JSON, ("retry-after", "1")],
                error,
            ),
            ("OPTIONS", "/requests", 403, vec![JSON], error),
            (
                "OPTIONS",
                "/requests/x",
                204,
                vec![
                    ("access-control-allow-origin", "*"),
                    ("access-control-allow-methods", "GET, PUT, OPTIONS"),
                    (
                        "access-control-allow-headers",
                        "content-type, x-api-key, x-callback-url",
                    ),
                    ("access-control-max-age", "600"),
                    ("content-type", "application/json"),
                ],
                "",
            ),
            (
                "GET",
                "/openapi.json",
                200,
                vec![JSON],
                storefirst_pipeline::openapi::text(),
            ),
        ] {
            check(method, target, status, &pairs, body).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// The check can fail: each of these breaks the document in one way.
    #[test]
    fn answers_the_document_does_not_allow_fail() {
        let location = ("location", "/requests/x");
        for (method, target, status, pairs, body, complaint) in [
            (
                "GET",
                "/requests/x",
                418,
                vec![JSON],
                r#"{"message":"teapot"}"#,
                "does not list",
            ),
            (
                "POST",
                "/requests",
                200,
                vec![JSON],
                r#"{"message":"no"}"#,
                "does not list",
            ),
            (
                "GET",
                "/elsewhere",
                404,
                vec![JSON],
                r#"{"message":"no"}"#,
                "no path",
            ),
            (
                "DELETE",
                "/requests/x",
                405,
                vec![JSON],
                r#"{"message":"no"}"#,
                "no such operation",
            ),
            (
                "POST",
                "/requests",
                202,
                vec![JSON],
                r#"{"id":"x","status":"pending"}"#,
                "without the header Location",
            ),
            (
                "POST",
                "/requests",
                202,
                vec![("content-type", "text/plain"), location],
                r#"{"id":"x","status":"pending"}"#,
                "content type",
            ),
            (
                "POST",
                "/requests",
                202,
                vec![location],
                r#"{"id":"x","status":"pending"}"#,
                "content type None",
            ),
            (
                "POST",
                "/requests",
                202,
                vec![JSON, location],
                r#"{"id":"x","status":"done"}"#,
                "does not allow",
            ),
            (
                "PUT",
                "/requests/x",
                202,
                vec![JSON, location],
                r#"{"id":"..","status":"pending"}"#,
                "does not allow",
            ),
            (
                "GET",
                "/requests/x",
                200,
                vec![JSON],
                r#"{"id":"x","status":"pending","request":"{}","attempts":0,"created_at":1,"updated_at":1,"extra":1}"#,
                "does not allow",
            ),
            (
                "GET",
                "/requests/x",
                200,
                vec![JSON],
                r#"{"id":"x","status":"pending","request":"{}","attempts":0,"created_at":1,"updated_at":1,"callback":{"url":"u","status":"lost","attempts":0}}"#,
                "does not allow",
            ),
            (
                "GET",
                "/requests/x",
                404,
                vec![JSON],
                r#"{"error":"gone"}"#,
                "does not allow",
            ),
            (
                "GET",
                "/requests/x",
                404,
                vec![JSON],
                "not json",
                "not JSON",
            ),
            (
                "GET",
                "/requests/x",
                503,
                vec![JSON],
                r#"{"message":"later"}"#,
                "without the header Retry-After",
            ),
            (
                "GET",
                "/requests/x",
                503,
                vec![JSON, ("retry-after", "soon")],
                r#"{"message":"later"}"#,
                "header Retry-After",
            ),
            (
                "OPTIONS",
                "/requests",
                204,
                vec![],
                "",
                "without the header Access-Control-Allow-",
            ),
        ] {
            let error = check(method, target, status, &pairs, body)
                .err()
                .unwrap_or_else(|| panic!("{method} {target} {status} {body} passed"));
            assert!(
                error.contains(complaint),
                "{error:?} should say {complaint:?}"
            );
        }
        let preflight = [
            ("access-control-allow-origin", "*"),
            ("access-control-allow-methods", "POST, OPTIONS"),
            ("access-control-allow-headers", "content-type"),
            ("access-control-max-age", "600"),
        ];
        let error = check("OPTIONS", "/requests", 204, &preflight, "{}").unwrap_err();
        assert!(error.contains("with a body"), "{error}");
    }

    /// The id's schema says what `RequestId::parse` does.
    #[test]
    fn the_documented_id_is_the_parsed_one() {
        let contract = Contract::published();
        let validator = &contract.schemas["/components/parameters/Id/schema"];
        let longest = "a".repeat(RequestId::MAX_LEN);
        let too_long = "a".repeat(RequestId::MAX_LEN + 1);
        for id in [
            "order-1", "A.b_C-9", &longest, &too_long, "", "a/b", "a b", "ä", ".", "..", "...",
            "a.", "..a", "_", "-", "id\n", "%20",
        ] {
            assert_eq!(
                validator.is_valid(&json!(id)),
                RequestId::parse(id).is_ok(),
                "{id:?}"
            );
        }
    }

    #[test]
    fn the_documented_callback_url_is_as_long_as_the_domain_allows() {
        let validator = &Contract::published().schemas["/components/parameters/CallbackUrl/schema"];
        let base = "https://hooks.example.com/";
        let at_limit = format!("{base}{}", "a".repeat(CALLBACK_URL_LIMIT - base.len()));
        assert!(validator.is_valid(&json!(at_limit)));
        assert!(!validator.is_valid(&json!(format!("{at_limit}a"))));
    }

    /// What GET answers and a webhook delivers is the pipeline's `Item`: its serialized
    /// form is what the document describes, a finished one with a callback an outcome.
    #[test]
    fn the_api_s_item_is_the_documented_one() {
        let item = storefirst_pipeline::Item {
            id: "order-1".into(),
            status: "failed".into(),
            request: r#"{"a":1}"#.into(),
            result: None,
            error: Some("unknown dish".into()),
            attempts: 1,
            created_at: 1,
            updated_at: 2,
            callback: Some(Callback {
                url: "https://hooks.example.com/x".into(),
                status: CallbackStatus::Failed,
                attempts: 8,
                error: Some("HTTP 410".into()),
            }),
        };
        let body = serde_json::to_string(&item).unwrap();
        check("GET", "/requests/order-1", 200, &[JSON], &body).unwrap_or_else(|e| panic!("{e}"));
        let outcome = &Contract::published().schemas[&format!(
            "/components/callbacks/Outcome/{{$request.header.{}}}/post/requestBody/content/application~1json/schema",
            storefirst_pipeline::openapi::CALLBACK_URL_HEADER
        )];
        let document: Value = serde_json::from_str(&body).unwrap();
        assert!(outcome.is_valid(&document), "{document}");
        let mut pending = document.clone();
        pending["status"] = json!("pending");
        assert!(
            !outcome.is_valid(&pending),
            "a webhook is sent once finished"
        );
        let mut succeeded = item.clone();
        succeeded.callback = None;
        succeeded.status = "succeeded".into();
        succeeded.result = Some(json!({"total_cents": 1900}));
        succeeded.error = None;
        let body = serde_json::to_string(&succeeded).unwrap();
        check("GET", "/requests/order-1", 200, &[JSON], &body).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !outcome.is_valid(&serde_json::from_str::<Value>(&body).unwrap()),
            "an outcome names its callback"
        );
    }

    #[test]
    fn the_published_document_is_the_one_served() {
        let served: Value = serde_json::from_str(storefirst_pipeline::openapi::text()).unwrap();
        assert_eq!(served, storefirst_pipeline::openapi::document());
    }
}
