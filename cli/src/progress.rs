//! Progress for long waits: a spinner with the elapsed time on stderr when
//! stderr is a terminal, and nothing at all when it is not (pipes, CI
//! logs, tests).
//!
//! A [`Progress`] draws from its own tokio task until it is dropped, which
//! erases the line, so callers only scope it around the wait.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A spinner shown while it lives.
#[derive(Debug)]
pub struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts showing `message` with a spinner, if stderr is a terminal.
    pub fn start(message: impl Into<String>) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { task: None };
        }
        let message = message.into();
        let task = tokio::spawn(async move {
            let frames = ['|', '/', '-', '\\'];
            let start = Instant::now();
            // Waits shorter than this show nothing at all.
            let first = tokio::time::Instant::now() + Duration::from_millis(300);
            let mut tick = tokio::time::interval_at(first, Duration::from_millis(150));
            for i in 0usize.. {
                tick.tick().await;
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r\x1b[2K{} {message} ({}s)",
                    frames[i % frames.len()],
                    start.elapsed().as_secs()
                );
                let _ = err.flush();
            }
        });
        Progress { task: Some(task) }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
