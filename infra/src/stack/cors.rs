//! CORS: the `CorsOrigins` parameter, the stage variable the mapping templates read it from,
//! and the headers of API Gateway's own answers (see ARCHITECTURE.md, "CORS on API
//! Gateway").

use std::collections::BTreeMap;

use crate::model::{Condition, Expr, Logical, Parameter, Template};

pub const PARAMETER: &str = "CorsOrigins";
/// Some origin is allowed (`CorsOrigins` is not empty).
pub const CONFIGURED: &str = "CorsConfigured";
pub const NOT_CONFIGURED: &str = "CorsNotConfigured";
const ANY_ORIGIN: &str = "CorsAnyOrigin";
/// The stage variable that carries the allowed origins to the templates at run time.
pub const STAGE_VARIABLE: &str = "corsOrigins";
/// Its values where the list would be empty or `*`: a stage variable cannot be empty or
/// hold `*`, and neither is an origin.
pub const STAGE_NONE: &str = "none";
pub const STAGE_ANY: &str = "any";

pub const ALLOW_HEADERS: &str = "content-type, x-api-key, x-callback-url";
pub const EXPOSE_HEADERS: &str = "Location, Retry-After";
pub const MAX_AGE_SECONDS: u32 = 600;
pub const COLLECTION_METHODS: &str = "POST, OPTIONS";
pub const ITEM_METHODS: &str = "GET, PUT, OPTIONS";

/// Origins as a browser sends them, comma-separated; `*` alone; or nothing (the empty
/// default). Each is also a valid stage variable value. A `String`, not a
/// `CommaDelimitedList`: one pattern then checks the whole list, `*` alone included.
const ORIGINS_PATTERN: &str = concat!(
    r"^(\*|",
    r"https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?",
    r"(,https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?)*",
    r")?$"
);

/// Declares the parameter and its conditions; the stage variable's value.
pub fn add(template: &mut Template) -> Expr {
    let origins = template.parameter(
        PARAMETER,
        Parameter {
            default: Some(""),
            allowed_pattern: Some(ORIGINS_PATTERN),
            constraint_description: Some(
                "origins separated by commas, each scheme://host[:port] in lower case with no \
                 path or trailing slash (https://app.example.com,http://127.0.0.1:8081), or * \
                 alone for any origin",
            ),
            ..Parameter::string(
                "The origins a browser may call the API from, comma-separated, or * for any; \
                 empty for none (same-origin only)",
            )
        },
    );
    let empty = Condition::Equals(origins.r#ref(), "".into());
    template.condition(NOT_CONFIGURED, empty.clone());
    template.condition(CONFIGURED, Condition::Not(Box::new(empty)));
    template.condition(ANY_ORIGIN, Condition::Equals(origins.r#ref(), "*".into()));
    Expr::if_(
        CONFIGURED,
        Expr::if_(ANY_ORIGIN, STAGE_ANY.into(), origins.r#ref()),
        STAGE_NONE.into(),
    )
}

/// The CORS headers of a gateway response (a missing key, a throttle, a refused body...),
/// present only while some origin is allowed. A gateway response has no logic: it cannot
/// check the Origin against the list, so it echoes it.
pub fn gateway_response_headers() -> BTreeMap<String, Expr> {
    [
        (
            "Access-Control-Allow-Origin",
            "method.request.header.Origin".to_owned(),
        ),
        (
            "Access-Control-Expose-Headers",
            format!("'{EXPOSE_HEADERS}'"),
        ),
        ("Vary", "'Origin'".to_owned()),
    ]
    .into_iter()
    .map(|(header, source)| {
        (
            format!("gatewayresponse.header.{header}"),
            Expr::if_(CONFIGURED, source.into(), Expr::no_value()),
        )
    })
    .collect()
}

/// The stage's deployment: the one of the CORS state the stack is in. A gateway
/// response's headers take effect only through a new deployment, so each state has its
/// own, and switching CORS on or off switches deployments.
pub fn deployment_of_state(with_cors: &Logical, without_cors: &Logical) -> Expr {
    Expr::if_(CONFIGURED, with_cors.r#ref(), without_cors.r#ref())
}
