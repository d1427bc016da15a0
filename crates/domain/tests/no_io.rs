//! The core does no IO, and cargo keeps it so: its dependencies (as `cargo metadata`
//! resolves them, workspace features included) are an allowlist, and tokio brings only
//! timers and tasks (the per-record timeout and panic isolation).

use std::{collections::BTreeMap, process::Command};

use serde_json::Value;

/// Each dependency the core may have, and the features it may turn on.
const ALLOWED: &[(&str, &[&str])] = &[
    ("futures", &[]),
    ("serde", &["derive"]),
    ("serde_json", &[]),
    ("thiserror", &[]),
    ("tokio", &["rt", "time"]),
    ("tracing", &[]),
    ("url", &[]),
];

#[test]
fn the_core_depends_on_no_io_crate_and_no_io_feature() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("could not run {cargo} metadata: {e}"));
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let domain = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "storefirst-domain")
        .expect("storefirst-domain in the workspace");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    for dependency in domain["dependencies"].as_array().expect("dependencies") {
        if dependency["kind"] == "dev" {
            continue;
        }
        let name = dependency["name"].as_str().expect("a name");
        let Some(features) = allowed.get(name) else {
            panic!(
                "storefirst-domain depends on {name}: the core does no IO; put what needs it \
                 in an adapter crate, or add it to ALLOWED here if it does no IO"
            );
        };
        for feature in dependency["features"].as_array().expect("features") {
            let feature = feature.as_str().expect("a feature");
            assert!(
                features.contains(&feature),
                "storefirst-domain turns on {name}'s {feature:?}: only {features:?} are allowed"
            );
        }
    }
}
