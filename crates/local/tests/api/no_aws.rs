//! The embedded default builds without the AWS SDK: only the `aws` feature (the DynamoDB
//! and Lambda modes) brings it in. Checked over `cargo tree`, as a user's build resolves it.

use std::process::Command;

/// The crates `storefirst-local` builds with these extra arguments to `cargo tree`.
fn tree(extra: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(&cargo)
        .args([
            "tree",
            "--package",
            "storefirst-local",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("could not run {cargo} tree: {e}"));
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.split(' ').next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_default_build_compiles_no_aws_sdk_crate() {
    let aws = |crates: &[String]| -> Vec<String> {
        crates
            .iter()
            .filter(|name| name.starts_with("aws-") || name.starts_with("aws_"))
            .cloned()
            .collect()
    };
    let default = tree(&[]);
    assert!(default.iter().any(|name| name == "rusqlite"), "{default:?}");
    assert_eq!(aws(&default), Vec::<String>::new(), "the default build");
    let with_aws = tree(&["--features", "aws"]);
    assert!(
        aws(&with_aws).iter().any(|name| name == "aws-sdk-dynamodb"),
        "the aws feature brings the SDK: {with_aws:?}"
    );
}
