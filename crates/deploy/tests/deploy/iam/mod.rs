//! The stacks' IAM checked against AWS's own data: the CloudFormation execution role grants
//! what the registry schemas' resource handlers call (`handler_permissions`), and every
//! policy of the app, bootstrap and CI role stacks passes a lint on IAM's service reference
//! (`lint`). Both read the templates resolved as one account would see them (`resolve`).
//! Here rather than in the infra crate: only this crate sees all three templates.

mod handler_permissions;
mod lint;
mod resolve;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Set by `cargo xtask test` (xtask/src/test.rs): the pinned tools' `bin` directories.
const CFN_LINT_VAR: &str = "STOREFIRST_CFN_LINT";
const POLICY_SENTRY_VAR: &str = "STOREFIRST_POLICY_SENTRY";

/// The `bin` directory of the venv `var` names.
fn tool_bin(var: &str, what: &str) -> PathBuf {
    let bin = std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: this test needs the pinned {what}. Run the tests with \
             `cargo xtask test`, which installs it under target/tools and sets {var}"
        )
    });
    PathBuf::from(bin)
}

/// A path inside the `site-packages` of the venv whose `bin` is `bin`.
fn site_package(bin: &Path, inside: &str) -> PathBuf {
    let lib = bin.join("../lib");
    let found = std::fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("{}: {e}: reinstall the venv", lib.display()))
        .filter_map(Result::ok)
        .map(|python| python.path().join("site-packages").join(inside))
        .find(|path| path.exists());
    found.unwrap_or_else(|| {
        panic!(
            "no {inside} under {}: delete the venv and run `cargo xtask test` to reinstall it",
            lib.display()
        )
    })
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("could not read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A file of the workspace root, like `infra/iam-lint-skips.txt`.
fn workspace_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// The lines of a skip file that are not comments or blank, as `(key, reason)`, split at
/// the first `": "`; a line without a reason fails.
fn skips(path: &str) -> Vec<(String, String)> {
    let file = workspace_file(path);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("could not read {}: {e}", file.display()));
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, reason) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("{path}: {line:?} has no `: reason`"));
            assert!(!reason.trim().is_empty(), "{path}: {line:?} has no reason");
            (key.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}

/// IAM's glob: `*` any run of characters, `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// One or many strings (IAM's `"Action": "x"` or `["x", "y"]`).
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().expect("a string").to_owned())
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("{other} is not a string or a list of strings"),
    }
}

#[test]
fn globs_match_as_iam_does() {
    assert!(glob(
        "arn:aws:lambda:*:function:storefirst*",
        "arn:aws:lambda:*:function:storefirst-F-1"
    ));
    assert!(glob("a?c*", "abcdef"));
    assert!(glob("*", "*"));
    assert!(!glob("arn:aws:logs:r:a:log-group:*", "*"));
    assert!(!glob("storefirst*", "other"));
}
