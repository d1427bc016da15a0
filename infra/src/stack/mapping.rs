//! The API's mapping templates (VTL), composed from the snippets in `vtl/` and filled with
//! the limits and messages the local runtime uses, so both answer alike.

use storefirst_domain::{BodyError, CALLBACK_URL_LIMIT, DEFAULT_BODY_LIMIT, InvalidCallback};

use crate::stack::cors;

const POST_ID: &str = include_str!("vtl/post-id.vtl");
const ID_GUARD: &str = include_str!("vtl/id-guard.vtl");
const BODY_GUARD: &str = include_str!("vtl/body-guard.vtl");
const CALLBACK_GUARD: &str = include_str!("vtl/callback-guard.vtl");
const POST_REQUEST: &str = include_str!("vtl/post-request.vtl");
const PUT_REQUEST: &str = include_str!("vtl/put-request.vtl");
const GET_REQUEST: &str = include_str!("vtl/get-request.vtl");
const ACCEPTED: &str = include_str!("vtl/accepted-response.vtl");
const ERROR: &str = include_str!("vtl/error-response.vtl");
const ITEM: &str = include_str!("vtl/item-response.vtl");
const EXPIRY: &str = include_str!("vtl/expiry.vtl");
const CORS_ORIGIN: &str = include_str!("vtl/cors-origin.vtl");
const CORS_HEADERS: &str = include_str!("vtl/cors-headers.vtl");
const PREFLIGHT_REQUEST: &str = include_str!("vtl/preflight-request.vtl");
const PREFLIGHT_ALLOWED: &str = include_str!("vtl/preflight-allowed.vtl");
const PREFLIGHT_REFUSED: &str = include_str!("vtl/preflight-refused.vtl");

/// The stored item's TTL, for [`EXPIRY`]: GetItem returns the item, and so does a failed
/// condition (`ReturnValuesOnConditionCheckFailure`).
const ITEM_EXPIRES: &str = "#set($expires = \"$!input.path('$.Item.expires_at.N')\")\n";

/// Starts every request template: nothing refused yet.
const NOTHING_REFUSED: &str = "#set($refused = \"\")\n";

/// A callback URL [`CALLBACK_GUARD`] refused refuses the request, after the body's checks
/// (the local runtime's order).
const CALLBACK_REFUSED: &str =
    "#if($refused == \"\" && $callbackKind != \"\")\n#set($refused = \"callback\")\n#end\n";

/// Where a refusal's message names what it refused ([`CALLBACK_GUARD`]'s `$callbackPart`).
const CALLBACK_PART: &str = "$callbackPart";

/// `$callbackMessage`: the local runtime's message for [`CALLBACK_GUARD`]'s
/// `$callbackKind`, word for word.
fn callback_messages() -> String {
    let part = || CALLBACK_PART.to_owned();
    let kinds = [
        ("too_long", InvalidCallback::TooLong),
        ("not_absolute", InvalidCallback::NotAbsolute(part())),
        ("scheme", InvalidCallback::Scheme(part())),
        ("user_info", InvalidCallback::UserInfo),
        ("ip_literal", InvalidCallback::IpLiteral(part())),
        ("loopback", InvalidCallback::Loopback(part())),
    ];
    let mut text = "#set($callbackMessage = \"\")\n".to_owned();
    for (index, (kind, error)) in kinds.iter().enumerate() {
        let message = error.to_string();
        // Inside a VTL string: a quote would end it, a # start a directive.
        assert!(
            !message.contains(['"', '#', '@']),
            "{kind}: {message} cannot go into a VTL string"
        );
        let keyword = if index == 0 { "#if" } else { "#elseif" };
        text.push_str(&format!(
            "{keyword}($callbackKind == \"{kind}\")\n#set($callbackMessage = \"{message}\")\n"
        ));
    }
    text.push_str("#end\n");
    text
}

/// The client-facing messages of the templates. They go into VTL and `Fn::Sub` text, so
/// they hold no `$` or `#`.
pub fn messages() -> Vec<(&'static str, String)> {
    vec![
        (
            "@MESSAGE_INVALID_ID@",
            "invalid request id: use 1 to 128 characters from A-Z, a-z, 0-9, '.', '_' and '-', \
             not only dots"
                .to_owned(),
        ),
        (
            "@MESSAGE_TOO_LARGE@",
            BodyError::TooLarge {
                limit: DEFAULT_BODY_LIMIT,
            }
            .to_string(),
        ),
        (
            "@MESSAGE_BAD_BODY@",
            "the request body is empty, an empty object or not valid UTF-8: send a JSON object \
             with at least one field"
                .to_owned(),
        ),
        (
            "@MESSAGE_BYTE_ORDER_MARK@",
            BodyError::ByteOrderMark.to_string(),
        ),
        (
            "@MESSAGE_CONTROL_CHARACTER@",
            "the request body holds a control character (U+0000 to U+001F but tab, LF and CR) \
             unescaped: JSON allows them only escaped inside a string"
                .to_owned(),
        ),
        (
            "@MESSAGE_LONE_SURROGATE@",
            "the request body has a lone surrogate escape: escape a character beyond U+FFFF as \
             a high and low surrogate pair, or send it as UTF-8"
                .to_owned(),
        ),
        (
            "@MESSAGE_UNAVAILABLE@",
            "the store is unavailable: try again later".to_owned(),
        ),
        (
            "@MESSAGE_NOT_FOUND@",
            "no request with this id (unknown, or expired after success)".to_owned(),
        ),
        (
            "@MESSAGE_ORIGIN_NOT_ALLOWED@",
            format!(
                "the Origin is not in the allowed origins: add it to the stack parameter {} \
                 (cargo xtask deploy --parameter {}=https://app.example.com,...)",
                cors::PARAMETER,
                cors::PARAMETER
            ),
        ),
        (
            "@MESSAGE_NOT_PREFLIGHT@",
            "a CORS preflight needs an Access-Control-Request-Method header".to_owned(),
        ),
    ]
}

/// Replaces the `@NAME@` placeholders: the limit as a number, messages as JSON strings.
/// The `##` comment lines stay in `vtl/`: the deployed template has a size limit.
fn fill(parts: &[&str]) -> String {
    let mut text: String = parts
        .concat()
        .lines()
        .filter(|line| !line.trim_start().starts_with("##"))
        .map(|line| format!("{line}\n"))
        .collect();
    text = text.replace("@BODY_LIMIT@", &DEFAULT_BODY_LIMIT.to_string());
    text = text.replace("@CALLBACK_URL_LIMIT@", &CALLBACK_URL_LIMIT.to_string());
    text = text.replace("@EXPOSE_HEADERS@", cors::EXPOSE_HEADERS);
    text = text.replace("@ALLOW_HEADERS@", cors::ALLOW_HEADERS);
    text = text.replace("@MAX_AGE@", &cors::MAX_AGE_SECONDS.to_string());
    for (placeholder, message) in messages() {
        let json = serde_json::to_string(&message).expect("a string serializes");
        text = text.replace(placeholder, &json);
    }
    text
}

/// The request template of each method (with `${TableName}` for `Fn::Sub`) and the
/// response templates.
pub struct MappingTemplates {
    pub post_request: String,
    pub put_request: String,
    pub get_request: String,
    pub post_accepted: String,
    pub put_accepted: String,
    pub error: String,
    pub item: String,
    /// The OPTIONS methods' mock integration: the request template picks 204 or 403.
    pub preflight_request: String,
    pub preflight_refused: String,
    /// The 204's headers on /requests and on /requests/{id}.
    pub preflight_allowed_collection: String,
    pub preflight_allowed_item: String,
}

impl MappingTemplates {
    pub fn compose() -> Self {
        let put_location =
            "#set($id = \"$!input.params().path.get('id')\")\n#set($location = $context.path)\n";
        let post_location = "#set($location = \"$context.path/$id\")\n";
        // A 204 has no body: every line ends in a comment, which takes its newline along.
        let preflight_allowed = |methods: &str| {
            fill(&[CORS_ORIGIN, PREFLIGHT_ALLOWED])
                .replace("@ALLOW_METHODS@", methods)
                .lines()
                .map(|line| format!("{line}##\n"))
                .collect()
        };
        Self {
            post_request: fill(&[
                NOTHING_REFUSED,
                POST_ID,
                BODY_GUARD,
                CALLBACK_GUARD,
                CALLBACK_REFUSED,
                POST_REQUEST,
            ]),
            put_request: fill(&[
                NOTHING_REFUSED,
                ID_GUARD,
                BODY_GUARD,
                CALLBACK_GUARD,
                CALLBACK_REFUSED,
                PUT_REQUEST,
            ]),
            get_request: fill(&[NOTHING_REFUSED, ID_GUARD, GET_REQUEST]),
            // Every answer of a method ends with its CORS headers.
            post_accepted: fill(&[POST_ID, post_location, ACCEPTED, CORS_ORIGIN, CORS_HEADERS]),
            put_accepted: fill(&[put_location, ACCEPTED, CORS_ORIGIN, CORS_HEADERS]),
            // A refused callback's message names what the request named: the guard again.
            error: fill(&[
                ITEM_EXPIRES,
                EXPIRY,
                CALLBACK_GUARD,
                &callback_messages(),
                ERROR,
                CORS_ORIGIN,
                CORS_HEADERS,
            ]),
            item: fill(&[ITEM_EXPIRES, EXPIRY, ITEM, CORS_ORIGIN, CORS_HEADERS]),
            preflight_request: fill(&[CORS_ORIGIN, PREFLIGHT_REQUEST]),
            preflight_refused: fill(&[CORS_ORIGIN, PREFLIGHT_REFUSED]),
            preflight_allowed_collection: preflight_allowed(cors::COLLECTION_METHODS),
            preflight_allowed_item: preflight_allowed(cors::ITEM_METHODS),
        }
    }

    pub fn all(&self) -> [(&'static str, &str); 11] {
        [
            ("post_request", &self.post_request),
            ("put_request", &self.put_request),
            ("get_request", &self.get_request),
            ("post_accepted", &self.post_accepted),
            ("put_accepted", &self.put_accepted),
            ("error", &self.error),
            ("item", &self.item),
            ("preflight_request", &self.preflight_request),
            ("preflight_refused", &self.preflight_refused),
            (
                "preflight_allowed_collection",
                &self.preflight_allowed_collection,
            ),
            ("preflight_allowed_item", &self.preflight_allowed_item),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sub_variables;

    #[test]
    fn placeholders_are_filled_and_only_the_table_is_substituted() {
        for (name, text) in MappingTemplates::compose().all() {
            // Placeholders are @NAME@, and nothing else in the templates has an @.
            assert!(!text.contains('@'), "{name} has an unfilled placeholder");
            let variables = sub_variables(text);
            assert!(
                variables.iter().all(|v| *v == "TableName"),
                "{name} has Fn::Sub variables {variables:?}: VTL must not use ${{...}}"
            );
        }
        for (placeholder, message) in messages() {
            assert!(
                !message.contains(['$', '#']),
                "{placeholder} would be read as VTL: {message}"
            );
        }
    }
}
