//! `pando simulate --real`: real command tasks on ONE real `pando agent`
//! process, launched through the real v1 scheduler API.
//!
//! ```text
//!  frameworks (framework.rs) ── v1 scheduler API ──► master (child, master.rs)
//!                                                       │ agent link
//!                                                       ▼
//!                                     `pando agent` (child, ChildAgent here)
//!                      per task: sandbox, cgroup, fork/exec `pando executor command`
//!                                          └─► `sh -c true`
//! ```
//!
//! A run goes: choose the isolation ([`choose_isolation`]: cgroups when a
//! test group can be made, else posix, and why), start a master and the
//! agent, wait until the master counts the agent active, let the frameworks
//! launch `--tasks` tasks running `true`, and time the first ACCEPT to the
//! last TASK_FINISHED. The agent's CPU (its own, and its reaped children's:
//! executors and, through them, tasks) read from /proc gives the cost per
//! task.
//!
//! Cleanup does not trust the agent: this process becomes a child
//! subreaper, so executors orphaned by the agent's death come to it; at the
//! end (or on drop, after a failure) the agent is killed with SIGKILL, every
//! orphan is killed and reaped, and the cgroup root is emptied and removed
//! in every hierarchy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pando_scheduler::client::{Client, ClientError};
use serde_json::{json, Value};

use crate::framework::Tally;
use crate::master::{self, ChildMaster, ProcSample};
use crate::stats::percentile;
use crate::{SimError, SimulateFlags};

/// The 10 s target for 1,000 tasks (issue "Scale and speed", item 2).
pub const TARGET_S: f64 = 10.0;

/// The cgroup file system.
const CGROUP_FS: &str = "/sys/fs/cgroup";

/// What went wrong with the real agent.
#[derive(Debug, thiserror::Error)]
pub enum RealError {
    /// No temporary work_dir or log file.
    #[error("cannot prepare the agent's work_dir: {0}")]
    WorkDir(std::io::Error),
    /// The binary would not start.
    #[error("cannot start `{0} agent`: {1}")]
    Spawn(String, std::io::Error),
    /// The master never counted the agent active.
    #[error("the agent did not register within {0:?} (its log: {1})")]
    NotRegistered(Duration, String),
    /// The agent exited.
    #[error("the agent exited during the run (its log: {0})")]
    AgentDied(String),
    /// The agent's address is not one a client can use.
    #[error("cannot address the agent: {0}")]
    Address(ClientError),
}

/// The agent's isolation, and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    /// The agent's `--isolation` value.
    pub flag: &'static str,
    /// Whether that is cgroups.
    pub cgroups: bool,
    /// Why, for the report.
    pub reason: String,
}

const CGROUPS: &str = "cgroups/cpu,cgroups/mem,cgroups/pids";
const POSIX: &str = "posix/cpu,posix/mem";

/// Picks the agent's isolation: as `asked`, else cgroups when this process
/// is root and can make (and remove) a group named `<root>-probe` in the
/// cpu, memory and pids hierarchies, else posix.
pub fn choose_isolation(asked: Option<&str>, root: &str) -> Isolation {
    let cgroups = |reason: String| Isolation {
        flag: CGROUPS,
        cgroups: true,
        reason,
    };
    let posix = |reason: String| Isolation {
        flag: POSIX,
        cgroups: false,
        reason,
    };
    match asked {
        Some("cgroups") => return cgroups("asked for with --isolation".into()),
        Some("posix") => return posix("asked for with --isolation".into()),
        _ => {}
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return posix("falling back to posix: not running as root, so no cgroups".into());
    }
    match probe_cgroups(root) {
        Ok(version) => cgroups(format!("cgroup {version} usable (a test group was made)")),
        Err(why) => posix(format!("falling back to posix: {why}")),
    }
}

/// Makes and removes a test group in every hierarchy the agent needs;
/// returns "v1" or "v2", or why not.
fn probe_cgroups(root: &str) -> Result<&'static str, String> {
    let fs = Path::new(CGROUP_FS);
    let (version, dirs) = if fs.join("cgroup.controllers").exists() {
        let controllers = std::fs::read_to_string(fs.join("cgroup.controllers"))
            .map_err(|e| format!("cannot read cgroup.controllers: {e}"))?;
        for needed in ["cpu", "memory", "pids"] {
            if !controllers.split_whitespace().any(|c| c == needed) {
                return Err(format!(
                    "the cgroup v2 controller '{needed}' is not enabled"
                ));
            }
        }
        ("v2", vec![fs.to_path_buf()])
    } else {
        let dirs: Vec<PathBuf> = ["cpu", "memory", "pids"]
            .iter()
            .map(|c| fs.join(c))
            .collect();
        if let Some(missing) = dirs.iter().find(|d| !d.exists()) {
            return Err(format!("no cgroup hierarchy at {}", missing.display()));
        }
        ("v1", dirs)
    };
    for dir in dirs {
        let probe = dir.join(format!("{root}-probe"));
        std::fs::create_dir(&probe)
            .map_err(|e| format!("cannot make a group in {}: {e}", dir.display()))?;
        let _ = std::fs::remove_dir(&probe);
    }
    Ok(version)
}

/// The directories of the group `root` in every cgroup hierarchy, where
/// they exist.
fn cgroup_dirs(root: &str) -> Vec<PathBuf> {
    let fs = Path::new(CGROUP_FS);
    if fs.join("cgroup.controllers").exists() {
        return vec![fs.join(root)]
            .into_iter()
            .filter(|d| d.exists())
            .collect();
    }
    let Ok(entries) = std::fs::read_dir(fs) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        // `cpu` and `cpuacct` are symbolic links to `cpu,cpuacct`: skip
        // them, the real directory is listed too.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path().join(root))
        .filter(|d| d.exists())
        .collect();
    dirs.sort();
    dirs
}

/// Kills every process in `dir` and the groups below it, and removes them
/// deepest first; returns how many groups were removed.
fn remove_group_tree(dir: &Path) -> usize {
    let mut removed = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                removed += remove_group_tree(&entry.path());
            }
        }
    }
    for _ in 0..100 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) on a pid from cgroup.procs; no memory effects.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return removed + 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    removed
}

/// Makes this process a child subreaper: processes orphaned below it (an
/// executor whose agent died) become its children, so they can be killed
/// and reaped.
fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only sets a flag on this
    // process; it touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// The pids whose parent is this process.
fn own_children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let after = &stat[stat.rfind(')')? + 1..];
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(me)
        })
        .collect()
}

/// Kills and reaps every child of this process but those in `keep`, until
/// none is left (orphans keep arriving while their parents die); returns
/// how many there were.
fn reap_orphans(keep: &[u32]) -> usize {
    let mut reaped = 0;
    for _ in 0..100 {
        let orphans: Vec<u32> = own_children()
            .into_iter()
            .filter(|p| !keep.contains(p))
            .collect();
        if orphans.is_empty() {
            return reaped;
        }
        for pid in orphans {
            // SAFETY: kill(2) and waitpid(2) on a child of ours that no
            // other handle waits for; waitpid writes only to `status`.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
                let mut status = 0;
                libc::waitpid(pid as libc::pid_t, &mut status, 0);
            }
            reaped += 1;
        }
    }
    reaped
}

/// What cleanup found and removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Orphaned processes (executors, tasks) killed and reaped.
    pub orphans: usize,
    /// Cgroups removed (the root in each hierarchy included).
    pub groups: usize,
}

/// How to start the agent.
pub struct AgentSpec<'a> {
    /// Its `--resources`.
    pub resources: &'a str,
    /// Its `--isolation`.
    pub isolation: &'a Isolation,
    /// Its `--cgroups_root`.
    pub cgroups_root: &'a str,
    /// Its RUST_LOG.
    pub rust_log: &'a str,
    /// Where its log goes (default: a temporary file).
    pub log_file: Option<&'a Path>,
    /// Pids that cleanup must not reap (the master).
    pub keep: Vec<u32>,
}

/// A `pando agent` child process; killed, with everything it left, when
/// stopped or dropped.
pub struct ChildAgent {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    log: PathBuf,
    cgroups_root: String,
    /// Pids that cleanup must not reap (the master).
    keep: Vec<u32>,
    stopped: bool,
    // Holds the work_dir (sandboxes) and the log until the agent is gone.
    _dir: tempfile::TempDir,
}

impl ChildAgent {
    /// Starts `exe agent` against `master` on a free port with a temporary
    /// work_dir, as `pando local` starts its agents.
    pub fn spawn(exe: &Path, master: &str, spec: &AgentSpec<'_>) -> Result<ChildAgent, RealError> {
        let AgentSpec {
            resources,
            isolation,
            cgroups_root,
            rust_log,
            log_file,
            keep,
        } = spec;
        become_subreaper();
        let port = master::free_ports(1)
            .ok()
            .and_then(|mut p| p.pop())
            .ok_or_else(|| RealError::WorkDir(std::io::Error::other("no free port")))?;
        let dir = tempfile::Builder::new()
            .prefix("pando-sim-real")
            .tempdir()
            .map_err(RealError::WorkDir)?;
        let log = log_file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.path().join("agent.log"));
        let log_file = std::fs::File::create(&log).map_err(RealError::WorkDir)?;
        let mut command = Command::new(exe);
        command
            .arg("agent")
            .arg(format!("--master={master}"))
            .arg("--ip=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--work_dir={}", dir.path().join("work").display()))
            .arg(format!("--resources={resources}"))
            .arg(format!("--isolation={}", isolation.flag))
            .arg(format!("--cgroups_root={cgroups_root}"))
            .arg("--recover=cleanup")
            .arg("--registration_backoff_factor=100ms")
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        // SAFETY: the closure runs between fork and exec and only calls
        // prctl, which is async-signal-safe: the agent gets SIGKILL if this
        // process dies, even by SIGKILL, so no agent outlives a run.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| RealError::Spawn(exe.display().to_string(), e))?;
        Ok(ChildAgent {
            port,
            child,
            log,
            cgroups_root: cgroups_root.to_string(),
            keep: keep.clone(),
            stopped: false,
            _dir: dir,
        })
    }

    /// Its `host:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the agent is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The end of the agent's log, for error messages.
    pub fn log_tail(&self) -> String {
        crate::master::log_tail(&self.log, 8)
    }

    /// Kills the agent (SIGKILL), then every executor and task it left
    /// and its cgroups.
    pub fn stop(&mut self) -> Cleanup {
        if self.stopped {
            return Cleanup::default();
        }
        self.stopped = true;
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut keep = self.keep.clone();
        keep.push(self.child.id());
        let mut cleanup = Cleanup {
            orphans: reap_orphans(&keep),
            groups: 0,
        };
        for dir in cgroup_dirs(&self.cgroups_root) {
            cleanup.groups += remove_group_tree(&dir);
        }
        // Killing a group's processes may orphan more.
        cleanup.orphans += reap_orphans(&keep);
        cleanup
    }
}

impl Drop for ChildAgent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The figures of one `--real` run.
#[derive(Debug, Clone, Default)]
pub struct RealReport {
    /// Tasks asked for.
    pub tasks: u64,
    /// Frameworks and their profile.
    pub frameworks: usize,
    /// The frameworks' profile.
    pub profile: String,
    /// The agent's `--resources`.
    pub agent_resources: String,
    /// The agent's `--isolation`, and why.
    pub isolation: String,
    /// Why that isolation.
    pub isolation_reason: String,
    /// The agent's `--cgroups_root`.
    pub cgroups_root: String,
    /// Agent started → the master counts it active, in seconds.
    pub registration_s: f64,
    /// TASK_FINISHED received (once per task).
    pub finished: u64,
    /// First TASK_RUNNING received.
    pub running: u64,
    /// Other terminal states (the task was launched again).
    pub failed: u64,
    /// The first of those: state, reason and message.
    pub first_failure: Option<String>,
    /// First ACCEPT sent → last TASK_FINISHED received, in seconds.
    pub accept_to_finished_s: Option<f64>,
    /// First ACCEPT sent → half the tasks finished, in seconds.
    pub accept_to_half_finished_s: Option<f64>,
    /// Offer received → TASK_RUNNING, p50 / p99 / max in ms.
    pub latency_ms: [Option<f64>; 3],
    /// ACCEPT calls sent.
    pub accepts: u64,
    /// Calls not answered 202, and the first such answer.
    pub call_errors: u64,
    /// The first failed call.
    pub first_call_error: Option<String>,
    /// Whether `--duration` ran out first.
    pub timed_out: bool,
    /// The agent's own CPU over the workload, in seconds.
    pub agent_cpu_s: Option<f64>,
    /// CPU of the agent's reaped children (executors and their tasks).
    pub children_cpu_s: Option<f64>,
    /// The master's CPU over the workload, in seconds.
    pub master_cpu_s: Option<f64>,
    /// The agent's peak RSS, bytes.
    pub agent_peak_rss: Option<u64>,
    /// The agent's `/metrics/snapshot` at the end (the `slave/` and
    /// `containerizer/` keys).
    pub agent_metrics: BTreeMap<String, f64>,
    /// What cleanup removed.
    pub cleanup: Cleanup,
}

impl RealReport {
    /// Whether the run met the 10 s target (only judged at 1,000 tasks or
    /// more; smaller runs say so).
    pub fn target(&self) -> &'static str {
        match self.accept_to_finished_s {
            _ if self.finished < self.tasks => "MISSED (not every task finished)",
            Some(s) if s <= TARGET_S * (self.tasks as f64 / 1000.0).max(1.0) => "met",
            Some(_) => "MISSED",
            None => "MISSED (no ACCEPT)",
        }
    }

    fn per_task_ms(&self, seconds: Option<f64>) -> Option<f64> {
        let s = seconds?;
        (self.finished > 0).then(|| s * 1000.0 / self.finished as f64)
    }

    /// The report as text.
    pub fn to_text(&self) -> String {
        let f1 = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or("-".into());
        let f2 = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or("-".into());
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "pando simulate --real: {} tasks (`true`) from {} {} framework(s) on ONE real agent ({})",
            self.tasks, self.frameworks, self.profile, self.agent_resources
        ));
        line(format!(
            "  isolation:          {} ({})",
            self.isolation, self.isolation_reason
        ));
        line(format!(
            "  agent registered:   in {:.2} s",
            self.registration_s
        ));
        line(format!(
            "  tasks:              {} of {} tasks TASK_FINISHED ({} TASK_RUNNING seen, {} failed and relaunched){}",
            self.finished,
            self.tasks,
            self.running,
            self.failed,
            if self.timed_out { ", --duration ran out" } else { "" }
        ));
        if let Some(f) = &self.first_failure {
            line(format!("  first failure:      {f}"));
        }
        line(format!(
            "  first ACCEPT → last TASK_FINISHED: {} s (half finished at {} s); target ≤ {TARGET_S} s for 1,000: {}",
            f2(self.accept_to_finished_s),
            f2(self.accept_to_half_finished_s),
            self.target()
        ));
        line(format!(
            "  finished per s:     {}",
            f1(self
                .accept_to_finished_s
                .filter(|s| *s > 0.0)
                .map(|s| self.finished as f64 / s))
        ));
        line(format!(
            "  offer → TASK_RUNNING: p50 {} / p99 {} / max {} ms",
            f1(self.latency_ms[0]),
            f1(self.latency_ms[1]),
            f1(self.latency_ms[2])
        ));
        line(format!(
            "  cost per task (CPU): agent {} ms, executor + task {} ms, master {} ms",
            f2(self.per_task_ms(self.agent_cpu_s)),
            f2(self.per_task_ms(self.children_cpu_s)),
            f2(self.per_task_ms(self.master_cpu_s)),
        ));
        line(format!(
            "  CPU over the workload: agent {} s, executors + tasks {} s, master {} s",
            f2(self.agent_cpu_s),
            f2(self.children_cpu_s),
            f2(self.master_cpu_s)
        ));
        let spans: Vec<String> = self
            .agent_metrics
            .iter()
            .filter(|(k, _)| k.starts_with("containerizer/") && k.ends_with("_ms"))
            .map(|(k, v)| {
                let per = self
                    .agent_metrics
                    .get("slave/executors_launched")
                    .filter(|n| **n > 0.0)
                    .map(|n| v / n);
                format!(
                    "{} {} ms/task",
                    k.trim_start_matches("containerizer/")
                        .trim_end_matches("_ms"),
                    f2(per)
                )
            })
            .collect();
        if !spans.is_empty() {
            line(format!(
                "  agent wall time per launch: {}",
                spans.join(", ")
            ));
        }
        line(format!(
            "  agent peak RSS:     {}",
            self.agent_peak_rss
                .map(|b| format!("{} MB", b / (1024 * 1024)))
                .unwrap_or("-".into())
        ));
        line(format!(
            "  ACCEPT calls:       {}, failed calls: {}{}",
            self.accepts,
            self.call_errors,
            self.first_call_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        ));
        line(format!(
            "  cleanup:            agent killed, {} orphaned processes reaped, {} cgroups removed ({})",
            self.cleanup.orphans, self.cleanup.groups, self.cgroups_root
        ));
        out
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "mode": "real",
            "tasks": self.tasks,
            "frameworks": self.frameworks,
            "profile": self.profile,
            "agent_resources": self.agent_resources,
            "isolation": self.isolation,
            "isolation_reason": self.isolation_reason,
            "cgroups_root": self.cgroups_root,
            "registration_s": self.registration_s,
            "finished": self.finished,
            "running": self.running,
            "failed": self.failed,
            "first_failure": self.first_failure,
            "timed_out": self.timed_out,
            "accept_to_finished_s": self.accept_to_finished_s,
            "accept_to_half_finished_s": self.accept_to_half_finished_s,
            "target_s": TARGET_S,
            "target": self.target(),
            "latency_p50_ms": self.latency_ms[0],
            "latency_p99_ms": self.latency_ms[1],
            "latency_max_ms": self.latency_ms[2],
            "agent_cpu_s": self.agent_cpu_s,
            "children_cpu_s": self.children_cpu_s,
            "master_cpu_s": self.master_cpu_s,
            "agent_cpu_ms_per_task": self.per_task_ms(self.agent_cpu_s),
            "children_cpu_ms_per_task": self.per_task_ms(self.children_cpu_s),
            "master_cpu_ms_per_task": self.per_task_ms(self.master_cpu_s),
            "agent_peak_rss": self.agent_peak_rss,
            "agent_metrics": self.agent_metrics,
            "accepts": self.accepts,
            "call_errors": self.call_errors,
            "first_call_error": self.first_call_error,
            "cleanup_orphans": self.cleanup.orphans,
            "cleanup_groups": self.cleanup.groups,
        })
    }
}

/// Runs `--real` and returns its report.
pub async fn run(flags: SimulateFlags) -> Result<RealReport, SimError> {
    let exe = std::env::current_exe().map_err(SimError::Exe)?;
    let cgroups_root = flags
        .cgroups_root
        .clone()
        .unwrap_or_else(|| format!("pando-sim-{}", std::process::id()));
    let isolation = choose_isolation(flags.isolation.as_deref(), &cgroups_root);
    let mut master = ChildMaster::start(&exe, flags.allocation_interval).await?;
    let addr = master.addr();
    let client = master.client().clone();
    let started = Instant::now();
    let spec = AgentSpec {
        resources: &flags.agent_resources,
        isolation: &isolation,
        cgroups_root: &cgroups_root,
        rust_log: &flags.agent_log,
        log_file: flags.agent_log_file.as_deref(),
        keep: vec![master.pid()],
    };
    let mut agent = ChildAgent::spawn(&exe, &addr, &spec).map_err(SimError::Real)?;
    let agent_client = client
        .at(&agent.addr())
        .map_err(|e| SimError::Real(RealError::Address(e)))?;
    let mut report = RealReport {
        tasks: flags.tasks,
        frameworks: flags.frameworks,
        profile: flags.profile.name().into(),
        agent_resources: flags.agent_resources.clone(),
        isolation: isolation.flag.into(),
        isolation_reason: isolation.reason.clone(),
        cgroups_root: cgroups_root.clone(),
        ..RealReport::default()
    };
    wait_registered(&client, &mut agent, Duration::from_secs(30)).await?;
    report.registration_s = started.elapsed().as_secs_f64();

    let agent_before = master::sample(agent.pid());
    let master_before = master::sample(master.pid());
    let tally = Arc::new(Tally::new(flags.tasks));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut frameworks = crate::spawn_frameworks(&flags, &client, &tally, &stop_rx, 0.0);
    let deadline = tokio::time::Instant::now() + flags.duration;
    let mut failure = None;
    loop {
        if tally.finished.load(Ordering::Relaxed) >= flags.tasks {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            report.timed_out = true;
            break;
        }
        if !master.alive() {
            failure = Some(SimError::MasterDied(master.log_tail()));
            break;
        }
        if !agent.alive() {
            failure = Some(SimError::Real(RealError::AgentDied(agent.log_tail())));
            break;
        }
        if let Some(at) = frameworks.iter().position(|f| f.is_finished()) {
            if let Ok(Err(e)) = frameworks.swap_remove(at).await {
                failure = Some(SimError::Framework(e));
                break;
            }
        }
        tokio::select! {
            _ = tally.done.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    // Executors exit once their terminal update is acknowledged; give the
    // agent a moment to reap the last ones so their CPU is counted.
    settle(&agent_client, flags.tasks).await;
    let agent_after = master::sample(agent.pid());
    let master_after = master::sample(master.pid());
    report.agent_metrics = agent_metrics(&agent_client).await;
    tally.stopping.store(true, Ordering::Relaxed);
    let _ = stop.send(true);
    for f in frameworks {
        let _ = f.await;
    }
    if let (Some(a), Some(b)) = (&agent_before, &agent_after) {
        report.agent_cpu_s = Some(b.cpu_seconds - a.cpu_seconds);
        report.children_cpu_s = Some(b.children_cpu_seconds - a.children_cpu_seconds);
        report.agent_peak_rss = Some(b.peak_rss_bytes);
    }
    if let (Some(a), Some(b)) = (&master_before, &master_after) {
        report.master_cpu_s = Some(cpu_between(a, b));
    }
    let failure = failure.map(|e| match e {
        SimError::Real(RealError::AgentDied(_)) => {
            SimError::Real(RealError::AgentDied(agent.log_tail()))
        }
        other => other,
    });
    report.cleanup = tokio::task::spawn_blocking(move || agent.stop())
        .await
        .unwrap_or_default();
    drop(master);
    if let Some(e) = failure {
        return Err(e);
    }

    report.finished = tally.finished.load(Ordering::Relaxed);
    report.running = tally.running.load(Ordering::Relaxed);
    report.failed = tally.failed.load(Ordering::Relaxed);
    report.first_failure = tally.first_failure.lock().ok().and_then(|e| e.clone());
    report.accepts = tally.accepts.load(Ordering::Relaxed);
    report.call_errors = tally.call_errors.load(Ordering::Relaxed);
    report.first_call_error = tally.first_call_error.lock().ok().and_then(|e| e.clone());
    if let Ok(samples) = tally.samples.lock() {
        if let Some(first) = samples.first_accept_at {
            let mut finished = samples.finished_at.clone();
            finished.sort_by(f64::total_cmp);
            report.accept_to_finished_s = finished.last().map(|t| t - first);
            report.accept_to_half_finished_s = finished
                .get(finished.len().saturating_sub(1) / 2)
                .map(|t| t - first);
        }
        report.latency_ms = [
            percentile(&samples.latency_ms, 0.5),
            percentile(&samples.latency_ms, 0.99),
            percentile(&samples.latency_ms, 1.0),
        ];
    }
    Ok(report)
}

fn cpu_between(a: &ProcSample, b: &ProcSample) -> f64 {
    b.cpu_seconds - a.cpu_seconds
}

/// Waits until the master counts one agent active, at most `wait`.
async fn wait_registered(
    master: &Client,
    agent: &mut ChildAgent,
    wait: Duration,
) -> Result<(), SimError> {
    let start = Instant::now();
    loop {
        if !agent.alive() {
            return Err(SimError::Real(RealError::AgentDied(agent.log_tail())));
        }
        if let Ok(metrics) = master.get_json("/metrics/snapshot").await {
            let active = metrics["master/agents_active"].as_f64();
            if active.is_some_and(|n| n >= 1.0) {
                return Ok(());
            }
        }
        if start.elapsed() > wait {
            return Err(SimError::Real(RealError::NotRegistered(
                wait,
                agent.log_tail(),
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most 2 s) until the agent runs no executor, so the CPU of the
/// last ones is in its children's total.
async fn settle(agent: &Client, tasks: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        let m = agent_metrics(agent).await;
        let running = m.get("slave/executors_running").copied().unwrap_or(0.0)
            + m.get("slave/executors_registering").copied().unwrap_or(0.0);
        let finished = m.get("slave/tasks_finished").copied().unwrap_or(0.0);
        if running == 0.0 && finished >= tasks as f64 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The agent's `slave/` and `containerizer/` metrics.
async fn agent_metrics(agent: &Client) -> BTreeMap<String, f64> {
    let Ok(Value::Object(map)) = agent.get_json("/metrics/snapshot").await else {
        return BTreeMap::new();
    };
    map.into_iter()
        .filter(|(k, _)| k.starts_with("slave/") || k.starts_with("containerizer/"))
        .filter_map(|(k, v)| Some((k, v.as_f64()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_as_asked() {
        assert_eq!(choose_isolation(Some("posix"), "x").flag, POSIX);
        assert!(choose_isolation(Some("cgroups"), "x").cgroups);
    }

    #[test]
    fn the_target_scales_with_tasks_and_needs_every_task() {
        let mut r = RealReport {
            tasks: 1000,
            finished: 1000,
            accept_to_finished_s: Some(9.5),
            ..RealReport::default()
        };
        assert_eq!(r.target(), "met");
        r.accept_to_finished_s = Some(10.5);
        assert_eq!(r.target(), "MISSED");
        r.finished = 999;
        assert!(r.target().starts_with("MISSED"));
    }

    #[test]
    fn children_of_this_process_are_found() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
        let pid = child.id();
        assert!(own_children().contains(&pid));
        let _ = child.kill();
        let _ = child.wait();
        assert!(!own_children().contains(&pid));
    }
}
