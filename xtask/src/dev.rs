use anyhow::Context;
use clap::Args;
use xshell::{Shell, cmd};

/// Builds and starts the local pipeline: HTTP API, SQLite store, change stream, processor.
#[derive(Args)]
pub struct Dev {
    /// Port of the HTTP API.
    #[arg(long, env = "STOREFIRST_PORT", default_value_t = 3000)]
    port: u16,
    /// SQLite database file (created when missing).
    #[arg(
        long,
        env = "STOREFIRST_DB",
        default_value = "target/storefirst/dev.db"
    )]
    db: String,
    /// API key clients send in `x-api-key`.
    #[arg(long, env = "STOREFIRST_API_KEY", default_value = "dev-key")]
    api_key: String,
}

impl Dev {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        crate::step("building storefirst-local");
        cmd!(sh, "cargo build --release --package storefirst-local")
            .run()
            .context("could not build storefirst-local; fix the build error above and run `cargo xtask dev` again")?;
        if let Some(dir) = std::path::Path::new(&self.db).parent() {
            sh.create_dir(dir)?;
        }
        let Dev { port, db, api_key } = self;
        let port = port.to_string();
        let url = format!("http://127.0.0.1:{port}");
        crate::step(format!(
            "starting storefirst-local on {url} (database {db}); Ctrl-C stops it"
        ));
        eprintln!(
            "\n  API key: {api_key}\n  try:\n    curl -i -X POST {url}/requests -H 'x-api-key: {api_key}' -H 'content-type: application/json' \\\n      -d '{{\"restaurant\":\"Roma\",\"items\":[{{\"dish\":\"margherita\",\"quantity\":2}}]}}'\n    curl -s {url}/requests/<id from Location> -H 'x-api-key: {api_key}'\n"
        );
        cmd!(
            sh,
            "target/release/storefirst-local --port {port} --db {db} --api-key {api_key}"
        )
        .run()
        .context("storefirst-local stopped with an error")?;
        Ok(())
    }
}
