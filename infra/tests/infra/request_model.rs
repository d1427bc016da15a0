//! API Gateway's request model, checked by a JSON Schema draft 4 validator: it refuses
//! what the envelope check refuses of a body's shape and numbers, at any depth, and what
//! it cannot see (duplicate names) the function refuses.

use serde_json::json;
use storefirst_domain::{BodyError, DEFAULT_BODY_LIMIT, RequestBody};

use crate::support::{resource, run_python};

/// The model's verdict on each body: `None` when valid, else the validator's message.
fn validate(bodies: &[&str]) -> Vec<Option<String>> {
    let schema = resource("ApiRequestModel")["Properties"]["Schema"].to_string();
    let input = json!({"schema": schema, "bodies": bodies}).to_string();
    run_python("validate.py", input.as_bytes())
}

#[test]
fn the_model_bounds_numbers_at_any_depth_as_the_envelope_check_does() {
    // Each body, and whether both accept it.
    let cases: &[(&str, bool)] = &[
        (r#"{"a":1}"#, true),
        (
            r#"{"n":1.7976931348623157e308,"m":-1.7976931348623157E+308}"#,
            true,
        ),
        (
            r#"{"n":9007199254740993,"pi":3.141592653589793238462643383279}"#,
            true,
        ),
        (r#"{"n":1e-400,"s":"1e400","1e400":null}"#, true),
        (r#"{"l":[1,"x",true,null,{"o":[2.5]}]}"#, true),
        (r#"{"n":1e400}"#, false),
        (r#"{"n":-1e400}"#, false),
        (r#"{"n":1.7976931348623158e308}"#, false),
        (r#"{"deep":{"a":[{"b":[[2e308]]}]}}"#, false),
        (r#"{"l":[1,2,-1E309]}"#, false),
        ("{}", false),
        ("[1]", false),
        ("42", false),
    ];
    let bodies: Vec<&str> = cases.iter().map(|(body, _)| *body).collect();
    for ((body, accepted), verdict) in cases.iter().zip(validate(&bodies)) {
        assert_eq!(
            verdict.is_none(),
            *accepted,
            "the model on {body}: {verdict:?}"
        );
        let checked = RequestBody::parse(body.as_bytes(), DEFAULT_BODY_LIMIT);
        assert_eq!(
            checked.is_ok(),
            *accepted,
            "the envelope check on {body}: {checked:?}"
        );
    }
}

#[test]
fn what_the_model_cannot_see_the_envelope_check_refuses() {
    let duplicate = r#"{"dish":"margherita","dish":"marinara"}"#;
    assert_eq!(validate(&[duplicate]), vec![None]);
    assert!(matches!(
        RequestBody::stored(duplicate),
        Err(BodyError::DuplicateName(_))
    ));
}
