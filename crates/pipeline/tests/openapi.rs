//! The OpenAPI document: the committed copy is what the code makes now, and the pinned
//! openapi-spec-validator accepts it (and refuses a broken one, so its verdict means
//! something).

use std::{path::PathBuf, process::Command};

use storefirst_pipeline::openapi;

/// Set by `cargo xtask test` (xtask/src/tools.rs): the pinned openapi-spec-validator's
/// `bin` directory.
const VALIDATOR_VAR: &str = "STOREFIRST_OPENAPI_SPEC_VALIDATOR";

#[test]
fn the_committed_document_is_fresh() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let committed =
        std::fs::read_to_string(format!("{path}/{}", openapi::DOCUMENT_PATH)).unwrap_or_default();
    assert!(
        committed == openapi::text(),
        "{} is stale: run `cargo xtask synth` and commit the result",
        openapi::DOCUMENT_PATH
    );
}

/// Runs the validator on `document`; its verdict and what it printed.
fn validate(name: &str, document: &serde_json::Value) -> (bool, String) {
    let bin = std::env::var(VALIDATOR_VAR).unwrap_or_else(|_| {
        panic!(
            "{VALIDATOR_VAR} is not set: run `cargo xtask test`, which installs the pinned \
             openapi-spec-validator under target/tools, or set it to the bin directory of a \
             venv with it"
        )
    });
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&file, serde_json::to_vec_pretty(document).unwrap()).unwrap();
    let output = Command::new(PathBuf::from(&bin).join("openapi-spec-validator"))
        .args(["--schema", "3.1", "--validation-errors", "all"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("could not run openapi-spec-validator from {bin} ({e}): run `cargo xtask test` to install it")
        });
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

#[test]
fn the_pinned_validator_accepts_the_document_and_refuses_a_broken_one() {
    let document = openapi::document();
    let (valid, printed) = validate("storefirst.openapi.json", &document);
    assert!(
        valid,
        "openapi-spec-validator refused the document:\n{printed}"
    );

    // A response without its description, which OpenAPI requires.
    let mut broken = document;
    broken["paths"][openapi::REQUEST]["get"]["responses"]["200"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    let (valid, printed) = validate("broken.openapi.json", &broken);
    assert!(
        !valid,
        "openapi-spec-validator accepted a broken document:\n{printed}"
    );
}
