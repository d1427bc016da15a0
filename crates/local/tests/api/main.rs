//! Integration tests of the local runtime: one binary, a module per area.

mod contract;
mod durability;
#[cfg(feature = "aws")]
mod dynamo;
mod faults;
mod hostile;
mod inprocess;
mod no_aws;
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
    /// The lines it prints after the URL.
    stdout: mpsc::Receiver<String>,
}

impl LocalProcess {
    pub fn spawn(db: &Path) -> Self {
        Self::spawn_logging(db, "warn", Stdio::inherit())
    }

    /// With the log filter `log`, written to `stderr`.
    pub fn spawn_logging(db: &Path, log: &str, stderr: impl Into<Stdio>) -> Self {
        Self::spawn_with(db, log, stderr, &[], &[])
    }

    /// With more arguments and environment variables.
    pub fn spawn_with(
        db: &Path,
        log: &str,
        stderr: impl Into<Stdio>,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_storefirst-local"))
            .args(["--port", "0", "--api-key", API_KEY, "--log", log, "--db"])
            .arg(db)
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("storefirst-local starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("storefirst-local prints its URL");
        let url = line
            .trim()
            .strip_prefix("storefirst-local listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self {
            child,
            url,
            stdout: rx,
        }
    }

    /// The next line it prints, within 30 s.
    pub fn next_line(&self) -> String {
        self.stdout
            .recv_timeout(Duration::from_secs(30))
            .expect("storefirst-local prints another line")
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
