//! The master under test: a child `pando master` that `simulate` starts
//! (and kills at the end), and its CPU time and memory read from /proc.
//!
//! [`ChildMaster::start`] starts one master and waits for `/health`; the
//! failover benchmark instead [`ChildMaster::spawn`]s three on ports from
//! [`free_ports`], then waits for each ([`ChildMaster::wait_up`]), since
//! replicated masters may need each other before they answer, and later
//! [`ChildMaster::kill`]s the leader with SIGKILL.
//!
//! When `--master` names a running master, none of this is used and the
//! report leaves the CPU and memory figures out.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pando_scheduler::client::{Client, ClientError};

use crate::api;

/// What went wrong starting or watching the master.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// No temporary work_dir or log file.
    #[error("cannot prepare the master's work_dir: {0}")]
    WorkDir(std::io::Error),
    /// No free loopback port.
    #[error("cannot find a free port on 127.0.0.1: {0}")]
    Port(std::io::Error),
    /// The binary would not start.
    #[error("cannot start `{0} master`: {1}")]
    Spawn(String, std::io::Error),
    /// It started but never answered /health.
    #[error("the master did not answer /health within {0:?} (its log: {1})")]
    NotUp(Duration, String),
    /// Its address is not one a client can use.
    #[error("cannot address the master: {0}")]
    Address(ClientError),
    /// It exited early.
    #[error("the master exited early with {0} (its log: {1})")]
    Exited(std::process::ExitStatus, String),
}

/// A `pando master` child process, killed when dropped.
pub struct ChildMaster {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    /// Its HTTP API, over keep-alive connections shared by the clones.
    client: Client,
    log: String,
    // Keeps the work_dir (and the log in it) until the master is gone.
    _dir: tempfile::TempDir,
}

impl ChildMaster {
    /// Starts `exe master` on a free port with a temporary work_dir and
    /// waits until it answers `/health`.
    pub async fn start(
        exe: &Path,
        allocation_interval: Duration,
    ) -> Result<ChildMaster, MasterError> {
        let port = free_ports(1)?
            .pop()
            .ok_or_else(|| MasterError::Port(std::io::Error::other("no port")))?;
        let interval = format!(
            "--allocation_interval={}ms",
            allocation_interval.as_millis().max(1)
        );
        let mut master = ChildMaster::spawn(exe, port, &[interval])?;
        master.wait_up(Duration::from_secs(20)).await?;
        Ok(master)
    }

    /// Starts `exe master --ip=127.0.0.1 --port=<port>` with a temporary
    /// work_dir and the `extra` flags, without waiting for it.
    pub fn spawn(exe: &Path, port: u16, extra: &[String]) -> Result<ChildMaster, MasterError> {
        let client = api::pooled(&format!("127.0.0.1:{port}")).map_err(MasterError::Address)?;
        let dir = tempfile::tempdir().map_err(MasterError::WorkDir)?;
        let log_path = dir.path().join("master.log");
        let log = std::fs::File::create(&log_path).map_err(MasterError::WorkDir)?;
        let work_dir = dir.path().join("work");
        let child = Command::new(exe)
            .arg("master")
            .arg("--ip=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--work_dir={}", work_dir.display()))
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| MasterError::Spawn(exe.display().to_string(), e))?;
        Ok(ChildMaster {
            port,
            child,
            client,
            log: log_path.display().to_string(),
            _dir: dir,
        })
    }

    /// Waits until the master answers `/health`, at most `wait`.
    pub async fn wait_up(&mut self, wait: Duration) -> Result<(), MasterError> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(MasterError::Exited(status, self.log_tail()));
            }
            let health = self
                .client
                .request("GET", "/health", &[], Bytes::new())
                .await;
            if health.is_ok_and(|reply| reply.status == 200) {
                return Ok(());
            }
            if start.elapsed() > wait {
                return Err(MasterError::NotUp(wait, self.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A client of its HTTP API; clones share its keep-alive connections.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Its `host:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the master with SIGKILL (`kill -9`: no goodbye to anyone) and
    /// reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the master is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The end of the master's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(std::path::Path::new(&self.log), 5)
    }
}

impl Drop for ChildMaster {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `count` distinct free ports on 127.0.0.1 (each held until all are
/// found, so none repeats).
pub fn free_ports(count: usize) -> Result<Vec<u16>, MasterError> {
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count {
        listeners.push(std::net::TcpListener::bind("127.0.0.1:0").map_err(MasterError::Port)?);
    }
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(MasterError::Port))
        .collect()
}

/// CPU time and memory of a process at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcSample {
    /// When it was taken.
    pub at: Instant,
    /// utime + stime, in seconds.
    pub cpu_seconds: f64,
    /// cutime + cstime, in seconds: the children it has waited for (an
    /// agent's executors, and through them their tasks).
    pub children_cpu_seconds: f64,
    /// VmRSS, in bytes.
    pub rss_bytes: u64,
    /// VmHWM (peak RSS over the process's life), in bytes.
    pub peak_rss_bytes: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` when the
/// process is gone or /proc is not Linux's.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (ticks, children) = cpu_ticks(&stat)?;
    Some(ProcSample {
        at,
        cpu_seconds: ticks as f64 / clock_ticks_per_second(),
        children_cpu_seconds: children as f64 / clock_ticks_per_second(),
        rss_bytes: status_kb(&status, "VmRSS:")? * 1024,
        peak_rss_bytes: status_kb(&status, "VmHWM:")? * 1024,
    })
}

/// Cores used on average between two samples.
pub fn cores_between(from: &ProcSample, to: &ProcSample) -> Option<f64> {
    let wall = to.at.checked_duration_since(from.at)?.as_secs_f64();
    if wall <= 0.0 {
        return None;
    }
    Some((to.cpu_seconds - from.cpu_seconds) / wall)
}

/// utime + stime (fields 14 and 15) and cutime + cstime (16 and 17) from
/// a `/proc/<pid>/stat` line. The command name (field 2) may hold spaces,
/// so fields are counted after its closing parenthesis.
fn cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, index 11.
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some((field(11)? + field(12)?, field(13)? + field(14)?))
}

/// A `kB` line such as `VmRSS:   1234 kB` from `/proc/<pid>/status`.
fn status_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value; it has no
    // preconditions and touches no memory of ours.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// The last `lines` lines of a child's log file ("empty" when it has none),
/// for error messages.
pub fn log_tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    if tail.is_empty() {
        "empty".into()
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (pando (x) y) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 1";
        assert_eq!(cpu_ticks(line), Some((200, 0)));
        let line = "4242 (pando) S 1 2 3 4 5 6 7 8 9 10 150 50 30 12 20 0 1";
        assert_eq!(cpu_ticks(line), Some((200, 42)));
    }

    #[test]
    fn status_lines_give_kilobytes() {
        let status = "Name:\tpando\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_kb(status, "VmRSS:"), Some(1024));
        assert_eq!(status_kb(status, "VmHWM:"), Some(2048));
        assert_eq!(status_kb(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = sample(std::process::id()).expect("our own /proc entry");
        assert!(s.rss_bytes > 0);
        assert!(s.peak_rss_bytes >= s.rss_bytes);
    }
}
