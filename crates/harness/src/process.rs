//! A server as a child process that prints its URL first (`storefirst-local`, see
//! `storefirst_pipeline::listening`), with the lines it prints after it.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use storefirst_pipeline::listening::listening_url;

/// How long a server has to print a line.
const LINE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start {program}: {source}; build it first")]
    Start {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} printed no line within 30 s; see its stderr")]
    Silent { program: String },
    #[error("{program} printed {line:?} first, not where it listens")]
    Unexpected { program: String, line: String },
}

/// The child, killed when dropped.
pub struct Listening {
    child: Child,
    /// What it listens on, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The lines it prints after the URL.
    lines: mpsc::Receiver<String>,
}

impl Listening {
    /// Starts `command` with stdout piped and waits for its listening line.
    pub fn spawn(command: &mut Command) -> Result<Self, SpawnError> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child =
            command
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|source| SpawnError::Start {
                    program: program.clone(),
                    source,
                })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        // Keep reading: the server prints more lines, and a full pipe would stop it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut listening = Self {
            child,
            url: String::new(),
            lines,
        };
        let line = listening
            .lines
            .recv_timeout(LINE_TIMEOUT)
            .map_err(|_| SpawnError::Silent {
                program: program.clone(),
            })?;
        listening.url = listening_url(&line)
            .ok_or(SpawnError::Unexpected {
                program,
                line: line.clone(),
            })?
            .to_owned();
        Ok(listening)
    }

    /// The address in [`Listening::url`].
    pub fn addr(&self) -> SocketAddr {
        self.url
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|e| panic!("{} is not http://IP:PORT: {e}", self.url))
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next line it prints, within 30 s.
    pub fn next_line(&self) -> String {
        self.lines
            .recv_timeout(LINE_TIMEOUT)
            .expect("the server prints another line within 30 s")
    }

    /// SIGTERM, then waits for the exit; returns whether it exited cleanly.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM was delivered");
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited on") {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "the server ignored SIGTERM for 30 s"
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

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
