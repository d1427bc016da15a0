//! Integration tests of the local runtime: one binary, a module per area.

mod contract;
mod durability;
mod faults;
mod hostile;
mod inprocess;
mod poison;
mod semantics;
mod slow_clients;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

pub const API_KEY: &str = "test-key";

/// `storefirst-local` as a child process on port 0 with the given database.
pub struct LocalProcess {
    child: Child,
    pub url: String,
}

impl LocalProcess {
    pub fn spawn(db: &Path) -> Self {
        Self::spawn_logging(db, "warn", Stdio::inherit())
    }

    /// With the log filter `log`, written to `stderr`.
    pub fn spawn_logging(db: &Path, log: &str, stderr: impl Into<Stdio>) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_storefirst-local"))
            .args(["--port", "0", "--api-key", API_KEY, "--log", log, "--db"])
            .arg(db)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("storefirst-local starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("storefirst-local prints its URL");
        let url = line
            .trim()
            .strip_prefix("storefirst-local listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { child, url }
    }

    /// SIGTERM, then waits for the exit; returns whether it exited cleanly.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM was delivered");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited on") {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "storefirst-local ignored SIGTERM for 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        self.child.wait().expect("the child is reaped");
    }
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `condition` until it holds, failing the test with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
