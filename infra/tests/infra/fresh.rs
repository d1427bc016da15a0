//! The committed template and diagram are what synthesis makes now.

use storefirst_infra::{DIAGRAM_PATH, TEMPLATE_PATH, mermaid, synthesize};

fn check_fresh(path: &str, fresh: &str) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let committed = std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_default();
    assert!(
        committed == fresh,
        "{path} is stale: run `cargo xtask synth` and commit the result"
    );
}

#[test]
fn committed_template_and_diagram_are_fresh() {
    let template = synthesize().unwrap_or_else(|e| panic!("{e}"));
    check_fresh(TEMPLATE_PATH, &template);
    let json = serde_json::from_str(&template).expect("JSON");
    check_fresh(DIAGRAM_PATH, &mermaid(&json));
}
