//! Where a deploy reports its results and progress, and asks for approval.

use std::{
    io::{BufRead, IsTerminal, Write},
    sync::{Arc, Mutex},
    time::Duration,
};

use indicatif::{ProgressBar, ProgressStyle};

/// Where a deploy reports: at a terminal a spinner with the stack's progress on stderr;
/// elsewhere (CI logs) plain lines; in tests a buffer. Results (the change summary, "no
/// changes", the outputs) go to stdout, progress to stderr.
pub struct Console {
    buffer: Option<Arc<Mutex<Vec<u8>>>>,
    spinner: Mutex<Option<ProgressBar>>,
    interactive: bool,
}

/// The text a [`Console::capture`] console received.
#[derive(Clone)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("no panics while writing")).into_owned()
    }
}

impl Console {
    pub fn terminal() -> Self {
        Self {
            buffer: None,
            spinner: Mutex::new(None),
            interactive: std::io::stderr().is_terminal(),
        }
    }

    /// Plain lines into a buffer; never asks for confirmation.
    pub fn capture() -> (Self, Captured) {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let console = Self {
            buffer: Some(buffer.clone()),
            spinner: Mutex::new(None),
            interactive: false,
        };
        (console, Captured(buffer))
    }

    /// A result line, on stdout.
    pub fn say(&self, line: impl AsRef<str>) {
        self.write(line.as_ref(), false);
    }

    /// A progress line, on stderr.
    pub fn note(&self, line: impl AsRef<str>) {
        self.write(line.as_ref(), true);
    }

    fn write(&self, line: &str, progress: bool) {
        if let Some(buffer) = &self.buffer {
            let mut buffer = buffer.lock().expect("no panics while writing");
            buffer.extend_from_slice(line.as_bytes());
            buffer.push(b'\n');
            return;
        }
        let spinner = self.spinner.lock().expect("no panics while drawing");
        // Lines go above the spinner, so it stays the last line.
        let print = || {
            if progress {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        };
        match spinner.as_ref() {
            Some(spinner) => spinner.suspend(print),
            None => print(),
        }
    }

    /// The spinner's text; nothing in plain mode, where every event is a line already.
    pub fn status(&self, message: impl Into<String>) {
        if !self.interactive {
            return;
        }
        let mut spinner = self.spinner.lock().expect("no panics while drawing");
        let spinner = spinner.get_or_insert_with(|| {
            let bar = ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        spinner.set_message(message.into());
    }

    pub fn clear_status(&self) {
        if let Some(spinner) = self.spinner.lock().expect("no panics").take() {
            spinner.finish_and_clear();
        }
    }

    /// Asks a yes/no question at a terminal; anywhere else the answer is no.
    pub fn confirm(&self, question: &str) -> bool {
        if !self.interactive || !std::io::stdin().is_terminal() {
            return false;
        }
        self.clear_status();
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.clear_status();
    }
}
