//! `pando local`: a whole cluster in one command, for trying Pando out and
//! for tests.
//!
//! ```text
//!   pando local ──► master  (pando_core::master::BoundMaster, in process, --port)
//!              └──► agent 1..N (pando_agent::start + link::run, in process,
//!                     each with its own port, work dir, cgroup root and
//!                     1/N of the machine's cpus, mem, disk and ports)
//! ```
//!
//! Everything runs as tasks of this one process, so Ctrl-C (which a
//! terminal sends to the whole foreground process group) reaches only us,
//! and shutdown is ordered: each agent kills its containers and removes
//! their cgroups, then forgets its agent id (as after ShutdownAgent, so the
//! next run registers fresh agents), the master stops, and the cgroup roots
//! `pando local` made are removed. Executors are the only child processes,
//! and they are gone before we exit.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pando_agent::flags::{AgentFlags, IsolationMode};
use pando_core::master::{BoundMaster, MasterFlags};

use crate::ports::{self, PortsError};
use crate::progress::Progress;
use pando_scheduler::client::Client;

/// Why the local cluster could not run.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A `pando master` child process (with `--ha`) could not start.
    #[error("cannot start master {index}: {error}")]
    MasterProcess {
        /// Its number, from 1.
        index: usize,
        /// Why.
        error: std::io::Error,
    },
    /// `--agents` is out of range.
    #[error("--agents must be between 1 and {max}, not {given}")]
    Agents {
        /// The value given.
        given: usize,
        /// The largest accepted.
        max: usize,
    },
    /// `--isolation` is neither `cgroups` nor `posix`.
    #[error("--isolation must be 'cgroups' or 'posix', not '{0}'")]
    Isolation(String),
    /// A port is taken.
    #[error(transparent)]
    Port(#[from] PortsError),
    /// The agents' ports would run past 65535.
    #[error("--agent_port {0} leaves no room for the agents' ports")]
    AgentPort(u16),
    /// The work dir could not be made.
    #[error("cannot create the work dir {path}: {error}")]
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The machine's resources could not be measured.
    #[error(transparent)]
    Detect(#[from] pando_agent::detect::DetectError),
    /// The master could not start.
    #[error("the master could not start: {0}")]
    Master(pando_core::master::server::ServeError),
    /// The master stopped while the cluster ran.
    #[error("{0}")]
    MasterEnded(String),
    /// An agent's flags did not parse.
    #[error("agent {index}'s flags: {reason}")]
    AgentFlags {
        /// Which agent (from 1).
        index: usize,
        /// clap's complaint.
        reason: String,
    },
    /// An agent could not start.
    #[error("agent {index} could not start: {error}")]
    Agent {
        /// Which agent (from 1).
        index: usize,
        /// Why.
        error: pando_agent::RunError,
    },
    /// The agents did not register in time.
    #[error("only {registered} of {expected} agents registered with the master within {secs}s")]
    Registration {
        /// How many registered.
        registered: usize,
        /// How many were started.
        expected: usize,
        /// The deadline in seconds.
        secs: u64,
    },
}

/// The most agents `pando local` starts.
pub const MAX_AGENTS: usize = 64;

/// How long the agents have to register before `pando local` gives up.
const REGISTRATION_DEADLINE: Duration = Duration::from_secs(30);

/// The flags of `pando local`.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalFlags {
    /// The master's port: the scheduler, operator and state APIs.
    #[arg(long, default_value_t = 5050)]
    pub port: u16,
    /// Where the master and agents keep their state and sandboxes
    /// (default: $XDG_DATA_HOME/pando/local/<port>, else
    /// ~/.local/share/pando/local/<port>, else /tmp/pando-local-<uid>/<port>).
    #[arg(long = "work_dir", alias = "work-dir")]
    pub work_dir: Option<PathBuf>,
    /// How many agents to start; the machine's resources are split evenly.
    #[arg(long, default_value_t = 2)]
    pub agents: usize,
    /// Three masters (on --port, --port+1 and --port+2) replicating the
    /// registry through Raft, with leader election and failover. A master
    /// that dies is restarted after three seconds.
    #[arg(long)]
    pub ha: bool,
    /// The first agent's port; the others take the ports after it
    /// (default: the port after the last master's). 0 lets every agent
    /// pick a free port.
    #[arg(long = "agent_port", alias = "agent-port")]
    pub agent_port: Option<u16>,
    /// `cgroups` or `posix` (default: cgroups when running as root with
    /// cgroups available, else posix).
    #[arg(long)]
    pub isolation: Option<String>,
}

/// The isolation chosen, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolationChoice {
    /// The agents' `--isolation` value.
    pub flag: &'static str,
    /// Why it was chosen, for the banner.
    pub reason: String,
}

const CGROUPS: &str = "cgroups/cpu,cgroups/mem,cgroups/pids";
const POSIX: &str = "posix/cpu,posix/mem";

/// Picks the agents' isolation: as asked, else cgroups as root where the
/// cgroup file system is mounted, else posix.
pub fn choose_isolation(asked: Option<&str>) -> Result<IsolationChoice, LocalError> {
    match asked {
        Some("cgroups") => Ok(IsolationChoice {
            flag: CGROUPS,
            reason: "asked for with --isolation".into(),
        }),
        Some("posix") => Ok(IsolationChoice {
            flag: POSIX,
            reason: "asked for with --isolation".into(),
        }),
        Some(other) => Err(LocalError::Isolation(other.into())),
        None => {
            // SAFETY: geteuid has no preconditions and cannot fail.
            let root = unsafe { libc::geteuid() } == 0;
            let mounted = Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
                || Path::new("/sys/fs/cgroup/cpu").exists()
                || Path::new("/sys/fs/cgroup/memory").exists();
            Ok(match (root, mounted) {
                (true, true) => IsolationChoice {
                    flag: CGROUPS,
                    reason: "running as root with cgroups mounted".into(),
                },
                (false, _) => IsolationChoice {
                    flag: POSIX,
                    reason: "not running as root, so no cgroups".into(),
                },
                (true, false) => IsolationChoice {
                    flag: POSIX,
                    reason: "no cgroup file system under /sys/fs/cgroup".into(),
                },
            })
        }
    }
}

/// The default work dir for a local cluster on `port`.
pub fn default_work_dir(port: u16) -> PathBuf {
    let base = match (std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME")) {
        (Some(xdg), _) if !xdg.is_empty() => PathBuf::from(xdg).join("pando/local"),
        (_, Some(home)) if !home.is_empty() => PathBuf::from(home).join(".local/share/pando/local"),
        _ => {
            // SAFETY: getuid has no preconditions and cannot fail.
            let uid = unsafe { libc::getuid() };
            PathBuf::from(format!("/tmp/pando-local-{uid}"))
        }
    };
    base.join(port.to_string())
}

/// One agent's share of the machine, in `--resources` syntax.
pub fn agent_resources(
    totals: &pando_agent::detect::MachineTotals,
    agents: usize,
    index: usize,
) -> String {
    let n = agents.max(1) as u64;
    let cpus = ((totals.cpus as f64 / n as f64) * 100.0).floor() / 100.0;
    let cpus = cpus.max(0.1);
    let mem = (totals.offered_mem_mb() / n).max(32);
    let disk = (totals.offered_disk_mb() / n).max(32);
    // The Mesos default range, [31000-32000], cut into one slice each.
    let (first, last) = (31000u64, 32000u64);
    let width = ((last - first + 1) / n).max(1);
    let begin = first + width * index as u64;
    let end = if index as u64 + 1 == n {
        last
    } else {
        begin + width - 1
    };
    format!("cpus:{cpus};mem:{mem};disk:{disk};ports:[{begin}-{end}]")
}

/// The cgroup root of a local cluster's agents (one child per agent).
fn cgroup_root(port: u16) -> String {
    format!("pando-local-{port}")
}

/// A running agent of the local cluster.
struct LocalAgent {
    /// Its number in the banner and its work dir (`agent-<index>`), from 1.
    index: usize,
    /// The agent itself, for its address, isolation and shutdown.
    started: pando_agent::Started,
    /// Its share of the machine, as passed to `--resources`.
    resources: String,
    /// Its session with the master, aborted and awaited at shutdown.
    link: tokio::task::JoinHandle<()>,
}

/// The masters `pando local` runs: one in this process, or with `--ha`
/// three `pando master` child processes, so that one can be killed (even
/// with `kill -9`) to watch the others fail over.
enum Masters {
    /// One master, served by this process.
    InProcess {
        /// Its `host:port`.
        address: String,
        /// Tells it to stop.
        stop: tokio::sync::watch::Sender<bool>,
        /// Its server.
        task: tokio::task::JoinHandle<Result<(), pando_core::master::server::ServeError>>,
    },
    /// Child processes.
    Children(Vec<MasterChild>),
}

/// One `pando master` child process, restarted when it dies, as a service
/// manager would in production: kill the leader with `kill -9` as often as
/// you like and watch the others fail over while it comes back.
struct MasterChild {
    /// Its number in the banner and its work dir (`master-<index>`), from 1.
    index: usize,
    /// Its port.
    port: u16,
    /// Its current process id (it changes when the master is restarted).
    pid: Arc<std::sync::atomic::AtomicU32>,
    /// Its output.
    log: PathBuf,
    /// Asks the watcher to stop it (SIGTERM, then SIGKILL).
    stop: tokio::sync::oneshot::Sender<()>,
    /// Waits for it, restarts it, and reports when it cannot.
    watcher: tokio::task::JoinHandle<()>,
}

/// How long a dead master stays down before `pando local` restarts it:
/// longer than the others take to elect a new leader (the election timeout
/// is 0.75 to 1.125 s), so killing the leader shows a failover rather than
/// the same master winning again.
const MASTER_RESTART_DELAY: Duration = Duration::from_secs(3);

/// How to start one `pando master` of the local cluster.
struct MasterCommand {
    index: usize,
    port: u16,
    masters: String,
    work_dir: PathBuf,
    log: PathBuf,
}

impl MasterCommand {
    /// Starts `pando master` (this very binary) as master `index` of the
    /// replicated registry on `masters`, appending to its log.
    fn spawn(&self) -> std::io::Result<tokio::process::Child> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let err = out.try_clone()?;
        let binary = std::env::current_exe()?;
        let mut command = tokio::process::Command::new(binary);
        command
            .arg("master")
            .arg("--ip=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(format!(
                "--work_dir={}",
                self.work_dir
                    .join(format!("master-{}", self.index))
                    .display()
            ))
            .arg("--registry=replicated_log")
            .arg("--quorum=2")
            .arg(format!("--masters={}", self.masters))
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        // SAFETY: the closure runs in the forked child before exec and only
        // calls prctl, which is async-signal-safe. It makes the kernel send
        // SIGTERM to the master when `pando local` dies, even by SIGKILL, so
        // no master outlives the cluster it belonged to.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command.spawn()
    }
}

impl MasterChild {
    /// Starts master `index` and a watcher that restarts it whenever it
    /// dies, until [`Masters::stop`].
    fn spawn(
        index: usize,
        port: u16,
        masters: &str,
        work_dir: &Path,
        ended: &tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Result<MasterChild, LocalError> {
        let command = MasterCommand {
            index,
            port,
            masters: masters.to_string(),
            work_dir: work_dir.to_path_buf(),
            log: work_dir.join(format!("master-{index}.log")),
        };
        let mut child = command
            .spawn()
            .map_err(|error| LocalError::MasterProcess { index, error })?;
        let pid = Arc::new(std::sync::atomic::AtomicU32::new(child.id().unwrap_or(0)));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let ended = ended.clone();
        let log = command.log.clone();
        let current = pid.clone();
        let watcher = tokio::spawn(async move {
            use std::sync::atomic::Ordering;
            loop {
                let now = current.load(Ordering::SeqCst);
                tokio::select! {
                    status = child.wait() => {
                        let how = match status {
                            Ok(s) => s.to_string(),
                            Err(e) => e.to_string(),
                        };
                        eprintln!(
                            "pando local: master {index} (pid {now}) ended: {how}; restarting it in {}s",
                            MASTER_RESTART_DELAY.as_secs()
                        );
                        tokio::select! {
                            () = tokio::time::sleep(MASTER_RESTART_DELAY) => {}
                            _ = &mut stopped => return,
                        }
                        match command.spawn() {
                            Ok(next) => {
                                child = next;
                                current.store(child.id().unwrap_or(0), Ordering::SeqCst);
                            }
                            Err(e) => {
                                let _ = ended.send(format!(
                                    "master {index} ended and could not be restarted: {e}"
                                ));
                                return;
                            }
                        }
                    }
                    _ = &mut stopped => {
                        // SAFETY: kill has no memory effects; `now` is our
                        // child, not yet reaped (wait() has not returned).
                        unsafe {
                            libc::kill(now as libc::pid_t, libc::SIGTERM);
                        }
                        if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                            let _ = child.kill().await;
                        }
                        return;
                    }
                }
            }
        });
        Ok(MasterChild {
            index,
            port,
            pid,
            log,
            stop,
            watcher,
        })
    }
}

impl Masters {
    /// The masters' `host:port`s.
    fn addresses(&self) -> Vec<String> {
        match self {
            Masters::InProcess { address, .. } => vec![address.clone()],
            Masters::Children(children) => children
                .iter()
                .map(|c| format!("127.0.0.1:{}", c.port))
                .collect(),
        }
    }

    /// The child processes' ids.
    fn pids(&self) -> Vec<u32> {
        match self {
            Masters::InProcess { .. } => Vec::new(),
            Masters::Children(children) => children
                .iter()
                .map(|c| c.pid.load(std::sync::atomic::Ordering::SeqCst))
                .collect(),
        }
    }

    /// Stops every master and waits for it.
    async fn stop(self) {
        match self {
            Masters::InProcess { stop, task, .. } => {
                let _ = stop.send(true);
                let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
            }
            Masters::Children(children) => {
                let mut watchers = Vec::new();
                for child in children {
                    let _ = child.stop.send(());
                    watchers.push(child.watcher);
                }
                for watcher in watchers {
                    let _ = tokio::time::timeout(Duration::from_secs(10), watcher).await;
                }
            }
        }
    }
}

/// Runs the local cluster until Ctrl-C or SIGTERM.
pub async fn run(flags: LocalFlags) -> Result<(), LocalError> {
    if flags.agents == 0 || flags.agents > MAX_AGENTS {
        return Err(LocalError::Agents {
            given: flags.agents,
            max: MAX_AGENTS,
        });
    }
    let isolation = choose_isolation(flags.isolation.as_deref())?;
    // Port 0 picks a free port now, so the work dir and cgroup root, both
    // named after the port, belong to this run alone.
    let port = match flags.port {
        0 => ports::pick_free()?,
        port => port,
    };
    let master_count: u16 = if flags.ha { 3 } else { 1 };
    let master_ports: Vec<u16> = (0..master_count)
        .map(|i| port.checked_add(i).ok_or(LocalError::AgentPort(port)))
        .collect::<Result<_, _>>()?;
    let agent_base = flags
        .agent_port
        .unwrap_or(port.saturating_add(master_count));
    let agent_ports: Vec<u16> = (0..flags.agents)
        .map(|i| {
            if agent_base == 0 {
                Ok(0)
            } else {
                u16::try_from(agent_base as usize + i)
                    .map_err(|_| LocalError::AgentPort(agent_base))
            }
        })
        .collect::<Result<_, _>>()?;
    for port in &master_ports {
        ports::check_free(*port)?;
    }
    for port in agent_ports.iter().filter(|p| **p != 0) {
        ports::check_free(*port)?;
    }

    let work_dir = flags
        .work_dir
        .clone()
        .unwrap_or_else(|| default_work_dir(port));
    std::fs::create_dir_all(&work_dir).map_err(|error| LocalError::WorkDir {
        path: work_dir.clone(),
        error,
    })?;
    let totals = pando_agent::detect::MachineTotals::measure(&work_dir)?;
    // The port was free, so no other `pando local` on it runs: any cgroup
    // under this cluster's root is from one that was killed before it
    // could clean up, and its processes are orphans.
    let root = cgroup_root(port);
    let killed = tokio::task::spawn_blocking(move || {
        let killed = kill_cgroup_processes(&root);
        remove_cgroup_roots(&root);
        killed
    })
    .await
    .unwrap_or(0);
    if killed > 0 {
        tracing::warn!(
            "killed {killed} processes a previous `pando local` on this port left behind"
        );
    }

    let masters_list = master_ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    // A master's end is reported: with one master it stops the cluster;
    // with three, the others carry on (that is the point of --ha).
    let (master_ended, mut master_end) = tokio::sync::mpsc::unbounded_channel::<String>();
    let masters = if flags.ha {
        let mut children = Vec::new();
        for (i, master_port) in master_ports.iter().enumerate() {
            match MasterChild::spawn(i + 1, *master_port, &masters_list, &work_dir, &master_ended) {
                Ok(child) => children.push(child),
                Err(e) => {
                    Masters::Children(children).stop().await;
                    return Err(e);
                }
            }
        }
        Masters::Children(children)
    } else {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let master_flags = MasterFlags::with_defaults(ip, port, work_dir.join("master"));
        let bound = BoundMaster::bind(master_flags)
            .await
            .map_err(LocalError::Master)?;
        let address = bound
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| format!("127.0.0.1:{port}"));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let ended = master_ended.clone();
        let task = tokio::spawn(async move {
            let result = bound
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
            let _ = ended.send(match &result {
                Ok(()) => "the master stopped".to_string(),
                Err(e) => format!("the master failed: {e}"),
            });
            result
        });
        Masters::InProcess {
            address,
            stop,
            task,
        }
    };
    let master_addr = masters.addresses().join(",");

    let mut agents = Vec::new();
    let cgroups = cgroup_root(port);
    for (i, agent_port) in agent_ports.iter().enumerate() {
        let index = i + 1;
        let resources = agent_resources(&totals, flags.agents, i);
        let args = vec![
            "agent".to_string(),
            format!("--master={master_addr}"),
            "--ip=127.0.0.1".into(),
            format!("--port={agent_port}"),
            format!(
                "--work_dir={}",
                work_dir.join(format!("agent-{index}")).display()
            ),
            format!("--resources={resources}"),
            format!("--isolation={}", isolation.flag),
            format!("--cgroups_root={cgroups}/agent-{index}"),
            // Containers a killed `pando local` left behind are killed,
            // and the agent registers afresh.
            "--recover=cleanup".into(),
            "--registration_backoff_factor=100ms".into(),
        ];
        let agent_flags =
            parse_agent_flags(&args).map_err(|reason| LocalError::AgentFlags { index, reason })?;
        let started = match pando_agent::start(&agent_flags).await {
            Ok(started) => started,
            Err(error) => {
                stop(agents, masters, port).await;
                return Err(LocalError::Agent { index, error });
            }
        };
        let agent = Arc::clone(&started.agent);
        let link = tokio::spawn(async move {
            let reason = pando_agent::link::run(agent).await;
            tracing::warn!("agent {index} left the cluster: {reason}");
        });
        agents.push(LocalAgent {
            index,
            started,
            resources,
            link,
        });
    }

    if let Err(e) = wait_for_agents(&master_ports, agents.len()).await {
        stop(agents, masters, port).await;
        return Err(e);
    }
    print_banner(&masters, &agents, &isolation, &work_dir);

    let mut alive = master_ports.len();
    let failure = loop {
        tokio::select! {
            _ = pando_core::master::server::shutdown_signal() => break None,
            why = master_end.recv() => {
                let why = why.unwrap_or_else(|| "the master stopped".into());
                alive = alive.saturating_sub(1);
                if alive == 0 || !flags.ha {
                    break Some(why);
                }
                eprintln!("pando local: {why}; {alive} of {} masters still run", master_ports.len());
                // (A master that dies is restarted by its watcher; only one
                // that cannot be restarted is reported here.)
            }
        }
    };
    if let Some(why) = &failure {
        eprintln!("pando local: {why}; stopping the agents");
    }
    println!("Stopping: killing tasks, then the agents and the master (Ctrl-C again to force)...");
    tokio::spawn(async {
        pando_core::master::server::shutdown_signal().await;
        eprintln!("pando local: forced to stop; tasks may be left running");
        std::process::exit(130);
    });
    stop(agents, masters, port).await;
    println!("Stopped.");
    match failure {
        Some(why) => Err(LocalError::MasterEnded(why)),
        None => Ok(()),
    }
}

/// Parses an agent's command line into its flags, as `pando agent` would.
fn parse_agent_flags(args: &[String]) -> Result<AgentFlags, String> {
    #[derive(clap::Parser)]
    struct AgentCommand {
        #[command(flatten)]
        flags: AgentFlags,
    }
    <AgentCommand as clap::Parser>::try_parse_from(args)
        .map(|c| c.flags)
        .map_err(|e| e.to_string())
}

/// Polls the masters' `/master/state` until the leader has `expected`
/// agents registered (a standby knows none).
async fn wait_for_agents(masters: &[u16], expected: usize) -> Result<(), LocalError> {
    let _progress = Progress::start(format!("waiting for {expected} agents to register"));
    let mut clients = Vec::new();
    for port in masters {
        clients.push(
            Client::new(&format!("127.0.0.1:{port}"), Duration::from_secs(2)).map_err(|_| {
                LocalError::Registration {
                    registered: 0,
                    expected,
                    secs: 0,
                }
            })?,
        );
    }
    let start = Instant::now();
    let mut registered = 0;
    while start.elapsed() < REGISTRATION_DEADLINE {
        for client in &clients {
            if let Ok(state) = client.get_json("/master/state").await {
                let count = state["slaves"].as_array().map_or(0, Vec::len);
                registered = registered.max(count);
                if count >= expected {
                    return Ok(());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(LocalError::Registration {
        registered,
        expected,
        secs: REGISTRATION_DEADLINE.as_secs(),
    })
}

fn print_banner(
    masters: &Masters,
    agents: &[LocalAgent],
    isolation: &IsolationChoice,
    work_dir: &Path,
) {
    let addresses = masters.addresses();
    let master = addresses.first().cloned().unwrap_or_default();
    let master = master.as_str();
    let modes: Vec<IsolationMode> = agents
        .iter()
        .map(|a| a.started.agent.isolator.mode())
        .collect();
    let actual = if modes
        .iter()
        .all(|m| matches!(m, IsolationMode::Cgroups { .. }))
    {
        format!("cgroups ({})", isolation.reason)
    } else if isolation.flag == CGROUPS {
        "posix (cgroups were chosen but are not usable here; see the agents' warnings)".into()
    } else {
        format!("posix ({})", isolation.reason)
    };
    let agents_text = format!(
        "{} agent{}",
        agents.len(),
        if agents.len() == 1 { "" } else { "s" }
    );
    match masters {
        Masters::InProcess { .. } => println!("Pando local cluster: 1 master, {agents_text}"),
        Masters::Children(children) => {
            println!(
                "Pando local cluster: {} masters (Raft-replicated registry; standbys redirect \
                 to the leader), {agents_text}",
                children.len()
            );
            for child in children {
                println!(
                    "  Master {}:       http://127.0.0.1:{}  (pid {}, log {})",
                    child.index,
                    child.port,
                    child.pid.load(std::sync::atomic::Ordering::SeqCst),
                    child.log.display()
                );
            }
        }
    }
    println!("  Scheduler API:  http://{master}/api/v1/scheduler");
    println!("  Operator API:   http://{master}/api/v1");
    println!("  State:          http://{master}/master/state");
    println!("  Metrics:        http://{master}/metrics/snapshot");
    for agent in agents {
        println!(
            "  Agent {}:        http://{}/state  ({})",
            agent.index, agent.started.addr, agent.resources
        );
    }
    println!("  Isolation:      {actual}");
    println!("  Work dir:       {}", work_dir.display());
    println!();
    let all = addresses.join(",");
    println!("Run a task:  pando execute --master={all} --name=hello --command='echo hello'");
    if addresses.len() > 1 {
        println!("Fail over:   kill -9 the leader's pid (`pando cluster masters --master={all}` names it);");
        println!("             pando local restarts it three seconds later, as a standby");
    }
    println!("Stop with Ctrl-C.");
}

/// Stops the agents (killing their containers), then the master, then
/// removes the cluster's cgroup roots.
///
/// Executors are first asked to SHUTDOWN, so they kill their tasks and
/// report TASK_KILLED while the master still runs; then every container is
/// killed, and last any process still descending from this one (under
/// posix isolation a task has its own process group, which killing its
/// executor's group does not reach).
async fn stop(agents: Vec<LocalAgent>, masters: Masters, port: u16) {
    let mut grace = Duration::ZERO;
    for agent in &agents {
        let agent = &agent.started.agent;
        grace = grace.max(agent.config.shutdown_grace);
        let executors: Vec<(String, String)> = {
            let state = agent.lock();
            state
                .frameworks
                .iter()
                .flat_map(|(fw, f)| f.executors.keys().map(move |e| (fw.clone(), e.clone())))
                .collect()
        };
        for (fw, executor) in executors {
            agent.shutdown_executor(&fw, &executor);
        }
    }
    let me = std::process::id();
    // The masters' own processes (with --ha) are not tasks.
    let master_pids = masters.pids();
    let tasks = || {
        descendants(me)
            .into_iter()
            .filter(|pid| !master_pids.contains(pid))
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + grace + Duration::from_secs(1);
    while !tasks().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::debug!("still running after SHUTDOWN: {:?}", tasks());
    for agent in &agents {
        agent.link.abort();
    }
    for agent in &agents {
        let started = &agent.started;
        started.agent.kill_everything().await;
        // As after ShutdownAgent: the next run registers a new agent.
        let _ = std::fs::remove_file(started.agent.meta.latest());
    }
    for pid in tasks() {
        tracing::warn!("killing process {pid}, which outlived its container");
        // SAFETY: kill has no memory effects; pid is a live descendant.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
    // The agents' own loops (HTTP, update retries, GC) end with them.
    for agent in agents {
        let _ = agent.link.await;
        agent.started.shutdown().await;
    }
    masters.stop().await;
    let root = cgroup_root(port);
    let _ = tokio::task::spawn_blocking(move || remove_cgroup_roots(&root)).await;
}

/// The live (not zombie) processes descending from `root`, from the parent
/// pids in `/proc/<pid>/stat`.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces and ')'.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or("");
            let Some(ppid) = fields.next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if state != "Z" && state != "X" {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, _) in parents.iter().filter(|(_, ppid)| *ppid == parent) {
            if !found.contains(pid) {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found
}

/// The directories of cgroup `name` in every mounted hierarchy.
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![base.join(name)];
    if let Ok(entries) = std::fs::read_dir(base) {
        for entry in entries.flatten() {
            dirs.push(entry.path().join(name));
        }
    }
    dirs.retain(|d| d.is_dir());
    dirs
}

/// SIGKILLs every process in the cgroup tree `name`, in every hierarchy;
/// returns how many were signalled.
fn kill_cgroup_processes(name: &str) -> usize {
    fn walk(dir: &Path, pids: &mut Vec<i32>) {
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&entry.path(), pids);
                }
            }
        }
    }
    let mut pids = Vec::new();
    for dir in cgroup_dirs(name) {
        walk(&dir, &mut pids);
    }
    pids.sort_unstable();
    pids.dedup();
    for pid in &pids {
        // SAFETY: kill has no memory effects; the pid comes from a cgroup
        // only Pando's local agents create.
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
    if !pids.is_empty() {
        // Killed processes leave their cgroups once they are reaped.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            let mut left = Vec::new();
            for dir in cgroup_dirs(name) {
                walk(&dir, &mut left);
            }
            if left.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    pids.len()
}

/// Removes the (empty) cgroup tree `name` from every hierarchy, leaves
/// first; a group that still has processes stays, and is logged.
fn remove_cgroup_roots(name: &str) {
    fn remove_tree(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_tree(&entry.path());
                }
            }
        }
        if let Err(e) = std::fs::remove_dir(dir) {
            tracing::warn!("cannot remove cgroup {}: {e}", dir.display());
        }
    }
    for dir in cgroup_dirs(name) {
        remove_tree(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals() -> pando_agent::detect::MachineTotals {
        pando_agent::detect::MachineTotals {
            cpus: 2,
            memory_bytes: 9 * 1024 * 1024 * 1024,
            disk_bytes: 105 * 1024 * 1024 * 1024,
        }
    }

    #[test]
    fn the_machine_is_split_between_agents() {
        let first = agent_resources(&totals(), 2, 0);
        let second = agent_resources(&totals(), 2, 1);
        assert_eq!(first, "cpus:1;mem:4096;disk:51200;ports:[31000-31499]");
        assert_eq!(second, "cpus:1;mem:4096;disk:51200;ports:[31500-32000]");
        let third = agent_resources(&totals(), 3, 2);
        assert!(third.starts_with("cpus:0.66;"), "{third}");
        for r in [first, second, third] {
            pando_resources::Resources::parse(&r).unwrap();
        }
    }

    #[test]
    fn isolation_as_asked_or_named() {
        assert_eq!(choose_isolation(Some("posix")).unwrap().flag, POSIX);
        let err = choose_isolation(Some("docker")).unwrap_err();
        assert!(err.to_string().contains("'docker'"), "{err}");
    }

    #[test]
    fn agent_flags_parse_like_pando_agent() {
        let flags = parse_agent_flags(&[
            "agent".into(),
            "--master=127.0.0.1:5050".into(),
            "--port=0".into(),
            "--work_dir=/tmp/x".into(),
        ])
        .unwrap();
        assert_eq!(flags.port, 0);
    }

    #[test]
    fn descendants_are_found_through_the_tree() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        let start = Instant::now();
        let mut found = Vec::new();
        while start.elapsed() < Duration::from_secs(5) {
            found = descendants(std::process::id());
            if found.len() >= 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(found.len() >= 2, "the sleep under sh: {found:?}");
        for pid in &found {
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
        }
        let _ = child.wait();
    }
}
