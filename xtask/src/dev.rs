//! `cargo xtask dev`: the local pipeline (SQLite by default, or the Lambda zip against a
//! DynamoDB table), and the example page on another origin that calls it from a browser.

use std::{
    net::{Ipv4Addr, TcpListener},
    path::Path,
};

use anyhow::Context;
use clap::Args;
use xshell::{Shell, cmd};

use crate::tools;

/// Builds and starts the local pipeline: HTTP API, SQLite store, change stream, processor.
/// With `--lambda`, the deployable zip's `bootstrap` processes the stream of a DynamoDB
/// table behind a local Lambda Runtime API. The example page, served on its own port (another
/// origin, which the API allows), sends an order from a browser.
#[derive(Args)]
pub struct Dev {
    /// Port of the HTTP API.
    #[arg(long, env = "STOREFIRST_PORT", default_value_t = 3000)]
    port: u16,
    /// Port of the example page (examples/browser/index.html).
    #[arg(long, env = "STOREFIRST_PAGE_PORT", default_value_t = 3001)]
    page_port: u16,
    /// SQLite database file (created when missing); with --lambda, the stream ledger.
    /// Default: target/storefirst/dev.db, with --lambda target/storefirst/dev-lambda.db.
    #[arg(long, env = "STOREFIRST_DB")]
    db: Option<String>,
    /// API key clients send in `x-api-key`.
    #[arg(long, env = "STOREFIRST_API_KEY", default_value = "dev-key")]
    api_key: String,
    /// Run the batches through this Lambda zip (built by `cargo xtask build` when missing),
    /// e.g. target/lambda/stream-processor/bootstrap.zip. The arm64 zip runs under qemu-user
    /// (installed with apt-get when possible), else a native build is used.
    #[arg(long)]
    lambda: Option<String>,
    /// DynamoDB table for --lambda, at AWS_ENDPOINT_URL or on AWS. Without it and without
    /// AWS_ENDPOINT_URL, a moto server is started under target/ with a new table.
    #[arg(long, env = "STOREFIRST_DYNAMODB_TABLE", requires = "lambda")]
    table: Option<String>,
}

impl Dev {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        build_local(sh, self.lambda.is_some())?;
        let db = self
            .db
            .clone()
            .unwrap_or_else(|| default_db(self.lambda.is_some()).to_owned());
        if let Some(dir) = Path::new(&db).parent() {
            sh.create_dir(dir)?;
        }
        // Kept until storefirst-local exits.
        let mut _moto = None;
        let lambda_args = match &self.lambda {
            None => Vec::new(),
            Some(zip) => {
                let (args, moto) = lambda_args(sh, zip, self.table.as_deref())?;
                _moto = moto;
                args
            }
        };
        let Dev {
            port,
            page_port,
            api_key,
            ..
        } = self;
        let port = port.to_string();
        let url = format!("http://127.0.0.1:{port}");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, page_port)).with_context(|| {
            format!("cannot listen on port {page_port} for the example page: pick another with --page-port")
        })?;
        let page = storefirst_example_page::serve(listener)?;
        // The page is another origin than the API: the API must allow it.
        let page_origin = format!("http://{page}");
        crate::step(format!(
            "starting storefirst-local on {url} (database {db}), allowing the example page's origin {page_origin} and webhooks to receivers on this machine; Ctrl-C stops it"
        ));
        eprintln!(
            "\n  API key: {api_key}\n  open the example page: {}\n  watch the pipeline: {url}/console (the key is asked for there)\n  or try:\n    curl -i -X POST {url}/requests -H 'x-api-key: {api_key}' -H 'content-type: application/json' \\\n      -d '{{\"restaurant\":\"Roma\",\"items\":[{{\"dish\":\"margherita\",\"quantity\":2}}]}}'\n    curl -s {url}/requests/<id from Location> -H 'x-api-key: {api_key}'\n",
            storefirst_example_page::url(page, &url, &api_key)
        );
        cmd!(
            sh,
            "target/release/storefirst-local --port {port} --db {db} --api-key {api_key} --cors-origin {page_origin} --allow-loopback-webhooks {lambda_args...}"
        )
        .run()
        .context("storefirst-local stopped with an error")?;
        Ok(())
    }
}

/// The flags of the Lambda mode: the zip (built when missing), a native bootstrap where
/// qemu-user is missing, and the table (on a moto server started here when none is given).
/// Each mode's own file: the SQLite store, or the DynamoDB mode's stream ledger, so that
/// one never reads the other's.
pub fn default_db(lambda: bool) -> &'static str {
    if lambda {
        "target/storefirst/dev-lambda.db"
    } else {
        "target/storefirst/dev.db"
    }
}

/// Builds the release `storefirst-local`; `with_aws` adds its DynamoDB and Lambda modes
/// (the `aws` feature: the AWS SDK, which the embedded default does without).
pub fn build_local(sh: &Shell, with_aws: bool) -> anyhow::Result<()> {
    crate::step("building storefirst-local");
    let features: &[&str] = if with_aws {
        &["--features", "aws"]
    } else {
        &[]
    };
    cmd!(
        sh,
        "cargo build --release --package storefirst-local {features...}"
    )
    .run()
    .context("could not build storefirst-local: fix the build error above and run the task again")
}

/// The webhook notifier's zip, which the Lambda mode runs beside the processor's.
const NOTIFIER_ZIP: &str = "target/lambda/notifier/bootstrap.zip";

pub fn lambda_args(
    sh: &Shell,
    zip: &str,
    table: Option<&str>,
) -> anyhow::Result<(Vec<String>, Option<tools::MotoServer>)> {
    if !sh.path_exists(zip) || !sh.path_exists(NOTIFIER_ZIP) {
        crate::step(format!(
            "{zip} or {NOTIFIER_ZIP} is missing: cargo xtask build"
        ));
        crate::build::build_lambdas(sh)?;
    }
    let mut args = vec![
        "--lambda".to_owned(),
        zip.to_owned(),
        "--notifier-zip".to_owned(),
        NOTIFIER_ZIP.to_owned(),
    ];
    if tools::QEMU.ensure(sh) {
        crate::step("the arm64 bootstraps run under qemu-aarch64-static");
    } else {
        crate::step(
            "qemu-user is missing: building the native stream-processor and notifier to run instead",
        );
        cmd!(
            sh,
            "cargo build --release --package storefirst-lambda --bin stream-processor --package storefirst-notifier --bin notifier"
        )
        .run()
        .context("could not build stream-processor and notifier; fix the build error above")?;
        args.extend([
            "--native-bootstrap".into(),
            "target/release/stream-processor".into(),
            "--native-notifier".into(),
            "target/release/notifier".into(),
        ]);
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    let mut moto = None;
    let table = match (table, endpoint) {
        (Some(table), endpoint) => {
            crate::step(format!(
                "DynamoDB table {table} at {}",
                endpoint.as_deref().unwrap_or("AWS (default configuration)")
            ));
            table.to_owned()
        }
        (None, Some(endpoint)) => {
            crate::step(format!(
                "DynamoDB table storefirst-dev at {endpoint}, created when missing"
            ));
            args.push("--create-table".into());
            "storefirst-dev".to_owned()
        }
        (None, None) => {
            let server = tools::MotoServer::start(&tools::MOTO.ensure(sh)?)?;
            crate::step(format!(
                "no table or AWS_ENDPOINT_URL given: moto server on {} with a new table storefirst-dev",
                server.url
            ));
            sh.set_var("AWS_ENDPOINT_URL", &server.url);
            for (name, value) in [
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", "us-east-1"),
            ] {
                sh.set_var(name, value);
            }
            args.push("--create-table".into());
            moto = Some(server);
            "storefirst-dev".to_owned()
        }
    };
    args.extend(["--dynamodb-table".into(), table]);
    Ok((args, moto))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_has_its_own_default_file() {
        assert_ne!(default_db(true), default_db(false));
        assert_eq!(default_db(false), "target/storefirst/dev.db");
    }
}
