//! The isolator: one cgroup per container, with cpu shares and a CFS quota
//! from `cpus`, a memory limit from `mem` and a pids limit, on cgroups v1,
//! hybrid layouts and pure v2 (through cgroups-rs); or plain process groups
//! where cgroups are unavailable (`posix/cpu,posix/mem`).
//!
//! A container's first process joins its cgroup before it can start any
//! other (a built-in executor is moved in by pid just after it is spawned,
//! anything else writes `0` to each `cgroup.procs` between fork and exec;
//! see `containerizer`), so nothing the container runs lives outside it.
//! On v1 the group is made only in the hierarchies Pando uses. Teardown freezes the group, kills
//! every process in it, and removes it. Usage and OOM kills are read from
//! the controllers' files.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cgroups_rs::fs::cgroup_builder::CgroupBuilder;
use cgroups_rs::fs::{hierarchies, Cgroup, MaxValue};
use pando_proto::mesos::v1 as pb;

use crate::flags::IsolationMode;

/// Why a cgroup could not be made, limited or removed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupsError {
    /// cgroups-rs failed.
    #[error("cgroup '{name}': {reason}")]
    Cgroup {
        /// The cgroup.
        name: String,
        /// What failed.
        reason: String,
    },
    /// Processes survived every kill attempt.
    #[error("cgroup '{name}' still has processes {pids:?} after being killed")]
    Survivors {
        /// The cgroup.
        name: String,
        /// The surviving pids.
        pids: Vec<u32>,
    },
}

/// The limits of one container.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// CPUs (shares = cpus × 1024, on v2 a weight of cpus × 100; quota =
    /// cpus × period).
    pub cpus: Option<f64>,
    /// Memory in MB.
    pub mem_mb: Option<f64>,
    /// Maximum processes and threads.
    pub pids: Option<u64>,
}

/// The smallest memory limit Mesos gives a container, in MB.
pub const MIN_MEMORY_MB: f64 = 32.0;
/// The smallest cpu allotment Mesos gives a container.
pub const MIN_CPUS: f64 = 0.01;
/// The CFS period, in microseconds.
pub const CFS_PERIOD_US: u64 = 100_000;
/// The pids limit of each container.
pub const DEFAULT_PIDS_LIMIT: u64 = 32_768;

/// Creates and finds container cgroups.
#[derive(Debug, Clone)]
pub struct Isolator {
    mode: IsolationMode,
    root: String,
}

impl Isolator {
    /// An isolator for `mode`, placing groups under `root`. If cgroups were
    /// asked for but cannot be created here, it falls back to process
    /// groups and says so.
    pub fn new(mode: IsolationMode, root: &str) -> Isolator {
        let root = root.trim_matches('/').to_string();
        let mut isolator = Isolator { mode, root };
        if let IsolationMode::Cgroups { .. } = mode {
            let probe = format!("{}/probe-{}", isolator.root, uuid::Uuid::new_v4());
            match isolator.create(&probe, &Limits::default()) {
                Ok(group) => {
                    let _ = group.destroy(Duration::from_secs(1));
                }
                Err(e) => {
                    tracing::warn!(
                        "cgroups are not usable here ({e}); falling back to posix isolation"
                    );
                    isolator.mode = IsolationMode::Posix;
                }
            }
        }
        isolator
    }

    /// The mode in force after probing.
    pub fn mode(&self) -> IsolationMode {
        self.mode
    }

    /// The cgroup name of a container (nested containers nest inside their
    /// parent's group).
    pub fn group_name(&self, container: &pb::ContainerId) -> String {
        let mut chain = vec![container.value.clone()];
        let mut parent = container.parent.as_deref();
        while let Some(p) = parent {
            chain.push(p.value.clone());
            parent = p.parent.as_deref();
        }
        chain.reverse();
        format!("{}/{}", self.root, chain.join("/"))
    }

    /// Creates the group `name` with `limits` (process groups only under
    /// posix isolation).
    pub fn create(&self, name: &str, limits: &Limits) -> Result<ContainerGroup, CgroupsError> {
        let IsolationMode::Cgroups { cpu, mem, pids } = self.mode else {
            return Ok(ContainerGroup::posix(name));
        };
        let err = |e: cgroups_rs::fs::error::Error| CgroupsError::Cgroup {
            name: name.to_string(),
            reason: format!("{e}{}", e.source_message()),
        };
        let mut builder = CgroupBuilder::new(name);
        if !hierarchies::is_cgroup2_unified_mode() {
            // On v1 each controller is a hierarchy of its own, and a group
            // made in every one of them costs a mkdir (and an rmdir) each;
            // cpuset's is the worst: copying cpuset.cpus and .mems into a
            // new group makes the kernel rebuild its scheduling domains.
            // Make the group only where Pando limits or reads something.
            builder = builder.set_specified_controllers(v1_controllers(cpu, mem, pids));
        }
        if cpu {
            if let Some(cpus) = limits.cpus {
                let cpus = cpus.max(MIN_CPUS);
                let shares = ((cpus * 1024.0) as u64).max(2);
                // cgroups-rs writes this value unchanged into v2's
                // cpu.weight, whose range is 1..=10000 (more than 9.77
                // cpus would be refused) and whose default is 100, not 1024.
                let shares = if hierarchies::is_cgroup2_unified_mode() {
                    v2_weight(shares)
                } else {
                    shares
                };
                builder = builder
                    .cpu()
                    .shares(shares)
                    .period(CFS_PERIOD_US)
                    .quota(((cpus * CFS_PERIOD_US as f64) as i64).max(1000))
                    .done();
            }
        }
        if mem {
            if let Some(mb) = limits.mem_mb {
                let bytes = (mb.max(MIN_MEMORY_MB) * 1024.0 * 1024.0) as i64;
                builder = builder.memory().memory_hard_limit(bytes).done();
            }
        }
        if pids {
            let max = limits.pids.unwrap_or(DEFAULT_PIDS_LIMIT) as i64;
            builder = builder
                .pid()
                .maximum_number_of_processes(MaxValue::Value(max))
                .done();
        }
        let cgroup = match builder.build(hierarchies::auto()) {
            Ok(cgroup) => cgroup,
            Err(e) => {
                // The builder leaves the directories it made when a limit
                // does not take; remove them (they hold no process yet).
                let _ = Cgroup::load(hierarchies::auto(), name).delete();
                return Err(err(e));
            }
        };
        let group = ContainerGroup::from_cgroup(name, cgroup);
        if group.v2 {
            // cgroup v2 lets a group with processes have no child groups
            // with controllers, so the container's own processes live in a
            // leaf and nested containers can sit beside it.
            if let Some(dir) = group.dirs.first() {
                std::fs::create_dir_all(dir.join(V2_LEAF)).map_err(|e| CgroupsError::Cgroup {
                    name: name.to_string(),
                    reason: format!("cannot create the process leaf: {e}"),
                })?;
            }
        }
        Ok(group)
    }

    /// Removes empty groups under the root that no live container of this
    /// agent owns and that are older than `min_age`: what agents killed
    /// without cleanup left behind. Groups with processes are left alone
    /// (another agent on this machine may own them), and young ones too (one
    /// may be about to receive its first process).
    pub fn sweep_empty(&self, min_age: Duration) -> usize {
        if self.mode == IsolationMode::Posix {
            return 0;
        }
        let root = self.load(&self.root);
        let mut removed = 0;
        for dir in &root.dirs {
            removed += sweep_dir(dir, min_age);
        }
        removed
    }

    /// Finds an existing group (after an agent restart).
    pub fn load(&self, name: &str) -> ContainerGroup {
        match self.mode {
            IsolationMode::Posix => ContainerGroup::posix(name),
            IsolationMode::Cgroups { .. } => {
                ContainerGroup::from_cgroup(name, Cgroup::load(hierarchies::auto(), name))
            }
        }
    }
}

/// Formats a cgroups-rs error's cause, which its Display leaves out.
trait SourceMessage {
    fn source_message(&self) -> String;
}

impl SourceMessage for cgroups_rs::fs::error::Error {
    fn source_message(&self) -> String {
        std::error::Error::source(self)
            .map(|s| format!(": {s}"))
            .unwrap_or_default()
    }
}

/// One container's group: the directories of its controllers.
#[derive(Debug)]
pub struct ContainerGroup {
    name: String,
    cgroup: Option<Cgroup>,
    /// Every controller directory of the group (one on v2).
    dirs: Vec<PathBuf>,
    v2: bool,
}

impl ContainerGroup {
    fn posix(name: &str) -> ContainerGroup {
        ContainerGroup {
            name: name.to_string(),
            cgroup: None,
            dirs: Vec::new(),
            v2: false,
        }
    }

    fn from_cgroup(name: &str, cgroup: Cgroup) -> ContainerGroup {
        let mut dirs: Vec<PathBuf> = cgroup
            .subsystems()
            .iter()
            .map(|s| s.to_controller().path().to_path_buf())
            .collect();
        dirs.sort();
        dirs.dedup();
        let v2 = cgroup.v2();
        ContainerGroup {
            name: name.to_string(),
            cgroup: Some(cgroup),
            dirs,
            v2,
        }
    }

    /// The group's name under the hierarchy roots.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is a real cgroup (not posix isolation).
    pub fn is_cgroup(&self) -> bool {
        self.cgroup.is_some()
    }

    /// The `cgroup.procs` files a new process writes `0` to, to join.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        if self.v2 {
            return self
                .dirs
                .first()
                .map(|d| d.join(V2_LEAF).join("cgroup.procs"))
                .into_iter()
                .collect();
        }
        self.dirs
            .iter()
            .filter(|d| !unusable_cpuset(d))
            .map(|d| d.join("cgroup.procs"))
            .filter(|p| p.exists())
            .collect()
    }

    fn controller_dir(&self, v1_name: &str) -> Option<&Path> {
        if self.v2 {
            return self.dirs.first().map(PathBuf::as_path);
        }
        self.dirs
            .iter()
            .find(|d| {
                d.components().any(|c| {
                    c.as_os_str()
                        .to_str()
                        .is_some_and(|s| s.split(',').any(|part| part == v1_name))
                })
            })
            .map(PathBuf::as_path)
    }

    /// Every process in the group (posix: none known here).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for dir in &self.dirs {
            collect_pids(dir, &mut pids);
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Whether the kernel OOM-killed a process of the group.
    pub fn oom_killed(&self) -> bool {
        let Some(dir) = self.controller_dir("memory") else {
            return false;
        };
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        if keyed(&text, "oom_kill").unwrap_or(0) > 0 {
            return true;
        }
        // Kernels before 4.13 have no oom_kill counter in v1; a hit limit
        // with the group under OOM is the best sign there.
        !self.v2
            && keyed(&text, "under_oom").unwrap_or(0) > 0
            && read_u64(&dir.join("memory.failcnt")).unwrap_or(0) > 0
    }

    /// A file descriptor that becomes readable when the group's memory
    /// events change, so OOM kills are noticed without polling: on v1 an
    /// eventfd registered for `memory.oom_control` through
    /// `cgroup.event_control` (as Mesos's memory isolator does), on v2 an
    /// inotify watch on `memory.events`. Both also fire when the group is
    /// removed. `None` without a memory controller or when registration
    /// fails; the caller then polls [`ContainerGroup::oom_killed`].
    pub fn oom_notifier(&self) -> Option<std::os::fd::OwnedFd> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let dir = self.controller_dir("memory")?;
        if self.v2 {
            let path =
                std::ffi::CString::new(dir.join("memory.events").as_os_str().as_bytes()).ok()?;
            // SAFETY: inotify_init1 takes only flags; a negative result is
            // an error and owns nothing.
            let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            if fd < 0 {
                return None;
            }
            // SAFETY: `fd` was just returned to us and is owned by nothing else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: `path` is a NUL-terminated string alive for the call.
            let watch =
                unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) };
            return (watch >= 0).then_some(fd);
        }
        let control = std::fs::File::open(dir.join("memory.oom_control")).ok()?;
        // SAFETY: eventfd takes an initial value and flags; a negative
        // result is an error and owns nothing.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just returned to us and is owned by nothing else.
        let event = unsafe { OwnedFd::from_raw_fd(fd) };
        let line = format!("{} {}", event.as_raw_fd(), control.as_raw_fd());
        // The kernel keeps its own reference to `memory.oom_control`, so
        // `control` may be closed once registered.
        std::fs::write(dir.join("cgroup.event_control"), line).ok()?;
        Some(event)
    }

    /// The group's memory limit and peak usage in bytes, for the OOM message.
    pub fn memory_limit_and_peak(&self) -> (Option<u64>, Option<u64>) {
        let Some(dir) = self.controller_dir("memory") else {
            return (None, None);
        };
        if self.v2 {
            (
                read_u64(&dir.join("memory.max")),
                read_u64(&dir.join("memory.peak")),
            )
        } else {
            (
                read_u64(&dir.join("memory.limit_in_bytes")),
                read_u64(&dir.join("memory.max_usage_in_bytes")),
            )
        }
    }

    /// Usage statistics of the container whose first process is `pid`:
    /// from the cgroup, or under posix isolation from `/proc/<pid>`.
    pub fn usage(&self, limits: &Limits, pid: Option<u32>) -> pb::ResourceStatistics {
        let mut stats = self.statistics(limits);
        if !self.is_cgroup() {
            if let Some(stat) =
                pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
            {
                // Fields after the parenthesised name: state is field 3,
                // utime 14, stime 15, num_threads 20, rss 24 (in pages).
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map(|(_, rest)| rest.split_whitespace().collect())
                    .unwrap_or_default();
                let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
                // SAFETY: sysconf only reads system constants.
                let (hz, page) = unsafe {
                    (
                        libc::sysconf(libc::_SC_CLK_TCK).max(1) as f64,
                        libc::sysconf(libc::_SC_PAGESIZE).max(1) as u64,
                    )
                };
                stats.cpus_user_time_secs = field(14).map(|t| t as f64 / hz);
                stats.cpus_system_time_secs = field(15).map(|t| t as f64 / hz);
                stats.threads = field(20).map(|t| t as u32);
                stats.mem_rss_bytes = field(24).map(|p| p * page);
                stats.processes = Some(1);
            }
        }
        stats
    }

    /// Usage statistics, as `/monitor/statistics` reports them.
    pub fn statistics(&self, limits: &Limits) -> pb::ResourceStatistics {
        let mut stats = pb::ResourceStatistics {
            timestamp: now_secs(),
            cpus_limit: limits.cpus,
            mem_limit_bytes: limits.mem_mb.map(|mb| (mb * 1024.0 * 1024.0) as u64),
            ..Default::default()
        };
        if !self.is_cgroup() {
            return stats;
        }
        let pids = self.pids();
        stats.processes = Some(pids.len() as u32);
        if let Some(dir) = self.controller_dir("cpu") {
            let text = std::fs::read_to_string(dir.join("cpu.stat")).unwrap_or_default();
            stats.cpus_nr_periods = keyed(&text, "nr_periods").map(|v| v as u32);
            stats.cpus_nr_throttled = keyed(&text, "nr_throttled").map(|v| v as u32);
            if self.v2 {
                stats.cpus_throttled_time_secs =
                    keyed(&text, "throttled_usec").map(|v| v as f64 / 1e6);
                stats.cpus_user_time_secs = keyed(&text, "user_usec").map(|v| v as f64 / 1e6);
                stats.cpus_system_time_secs = keyed(&text, "system_usec").map(|v| v as f64 / 1e6);
            } else {
                stats.cpus_throttled_time_secs =
                    keyed(&text, "throttled_time").map(|v| v as f64 / 1e9);
            }
        }
        if !self.v2 {
            if let Some(dir) = self.controller_dir("cpuacct") {
                let text = std::fs::read_to_string(dir.join("cpuacct.stat")).unwrap_or_default();
                // SAFETY: sysconf only reads a system constant.
                let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
                stats.cpus_user_time_secs = keyed(&text, "user").map(|v| v as f64 / hz);
                stats.cpus_system_time_secs = keyed(&text, "system").map(|v| v as f64 / hz);
            }
        }
        if let Some(dir) = self.controller_dir("memory") {
            let text = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
            if self.v2 {
                stats.mem_total_bytes = read_u64(&dir.join("memory.current"));
                stats.mem_anon_bytes = keyed(&text, "anon");
                stats.mem_file_bytes = keyed(&text, "file");
                stats.mem_rss_bytes = keyed(&text, "anon");
                stats.mem_cache_bytes = keyed(&text, "file");
            } else {
                stats.mem_total_bytes = read_u64(&dir.join("memory.usage_in_bytes"));
                stats.mem_rss_bytes = keyed(&text, "total_rss");
                stats.mem_anon_bytes = keyed(&text, "total_rss");
                stats.mem_cache_bytes = keyed(&text, "total_cache");
                stats.mem_file_bytes = keyed(&text, "total_cache");
                stats.mem_mapped_file_bytes = keyed(&text, "total_mapped_file");
            }
        }
        stats
    }

    /// The cpu time the group has used, in seconds (cgroup accounting).
    pub fn cpu_usage_secs(&self) -> Option<f64> {
        if self.v2 {
            let dir = self.controller_dir("cpu")?;
            let text = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
            keyed(&text, "usage_usec").map(|v| v as f64 / 1e6)
        } else {
            let dir = self.controller_dir("cpuacct")?;
            read_u64(&dir.join("cpuacct.usage")).map(|ns| ns as f64 / 1e9)
        }
    }

    /// Kills every process of the group: freeze, SIGKILL all, thaw, until
    /// the group is empty or `deadline` passes.
    pub fn kill_all(&self, within: Duration) -> Result<(), CgroupsError> {
        if !self.is_cgroup() {
            return Ok(());
        }
        let deadline = Instant::now() + within;
        let freezer = self.controller_dir("freezer").map(Path::to_path_buf);
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                return Ok(());
            }
            if self.v2 {
                if let Some(dir) = self.dirs.first() {
                    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
                }
            }
            if let Some(dir) = &freezer {
                let _ = std::fs::write(dir.join("freezer.state"), "FROZEN");
            }
            for pid in &pids {
                // SAFETY: kill(2) with a pid read from cgroup.procs; it has
                // no memory effects, and a stale pid only yields ESRCH.
                unsafe {
                    libc::kill(*pid as libc::pid_t, libc::SIGKILL);
                }
            }
            if let Some(dir) = &freezer {
                let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
            }
            if Instant::now() > deadline {
                return Err(CgroupsError::Survivors {
                    name: self.name.clone(),
                    pids,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills everything in the group, then removes it (children first).
    pub fn destroy(&self, within: Duration) -> Result<(), CgroupsError> {
        let Some(cgroup) = &self.cgroup else {
            return Ok(());
        };
        // Nested groups are killed and removed with their parent.
        for dir in &self.dirs {
            remove_children(dir);
        }
        self.kill_all(within)?;
        let deadline = Instant::now() + within;
        loop {
            match cgroup.delete() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(CgroupsError::Cgroup {
                        name: self.name.clone(),
                        reason: format!("cannot remove: {e}{}", e.source_message()),
                    })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// The v1 hierarchies a container's group lives in: freezer always (the
/// teardown freezes the group before it kills), cpu and cpuacct (usage)
/// for `cgroups/cpu`, memory (limit, usage, OOM events) for `cgroups/mem`,
/// pids for `cgroups/pids`; never cpuset, blkio, devices and the rest,
/// which Pando neither limits nor reads.
fn v1_controllers(cpu: bool, mem: bool, pids: bool) -> Vec<String> {
    let mut controllers = vec!["freezer".to_string()];
    if cpu {
        controllers.extend(["cpu".to_string(), "cpuacct".to_string()]);
    }
    if mem {
        controllers.push("memory".to_string());
    }
    if pids {
        controllers.push("pids".to_string());
    }
    controllers
}

/// The cgroup v2 `cpu.weight` for v1 `cpu.shares`: proportional, so v1's
/// default 1024 becomes v2's default 100 and containers keep their ratios,
/// clamped to the 1..=10000 the kernel accepts.
fn v2_weight(shares: u64) -> u64 {
    (shares * 100 / 1024).clamp(1, 10_000)
}

/// The v2 child group that holds a container's own processes.
const V2_LEAF: &str = "leaf";

/// Every pid in `dir` and the groups below it.
fn collect_pids(dir: &Path, pids: &mut Vec<u32>) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_pids(&entry.path(), pids);
            }
        }
    }
}

/// A v1 cpuset group made without `cgroup.clone_children` has no cpus or
/// mems, and the kernel refuses processes in it (ENOSPC); Pando does not
/// limit cpusets, so such a group is simply not joined.
fn unusable_cpuset(dir: &Path) -> bool {
    let empty =
        |file: &str| std::fs::read_to_string(dir.join(file)).is_ok_and(|v| v.trim().is_empty());
    empty("cpuset.cpus") || empty("cpuset.mems")
}

/// Removes the empty, old groups below `dir`, deepest first.
fn sweep_dir(dir: &Path, min_age: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let path = entry.path();
        removed += sweep_dir(&path, min_age);
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= min_age);
        let empty = std::fs::read_to_string(path.join("cgroup.procs"))
            .map(|p| p.trim().is_empty())
            .unwrap_or(false);
        if old && empty && std::fs::remove_dir(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Kills and removes the groups below `dir`, deepest first.
fn remove_children(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        remove_children(&path);
        for _ in 0..50 {
            let procs = std::fs::read_to_string(path.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: kill(2) on a pid from cgroup.procs; no memory effects.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            if std::fs::remove_dir(&path).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads `key value` lines (cpu.stat, memory.stat, memory.events).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next() == Some(key))
            .then(|| parts.next()?.parse().ok())
            .flatten()
    })
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_lines_are_read() {
        let text = "nr_periods 10\nnr_throttled 3\nthrottled_time 500\n";
        assert_eq!(keyed(text, "nr_throttled"), Some(3));
        assert_eq!(keyed(text, "missing"), None);
    }

    #[test]
    fn v2_weights_keep_the_shares_ratios_within_the_kernels_range() {
        assert_eq!(v2_weight(1024), 100);
        assert_eq!(v2_weight(512), 50);
        assert_eq!(v2_weight(12 * 1024), 1200);
        assert_eq!(v2_weight(10), 1);
        assert_eq!(v2_weight(1024 * 1024), 10_000);
    }

    #[test]
    fn nested_containers_nest_their_groups() {
        let isolator = Isolator {
            mode: IsolationMode::Posix,
            root: "pando".into(),
        };
        let child = pb::ContainerId {
            value: "child".into(),
            parent: Some(Box::new(pb::ContainerId {
                value: "parent".into(),
                parent: None,
            })),
        };
        assert_eq!(isolator.group_name(&child), "pando/parent/child");
    }
}

#[cfg(test)]
mod root_tests {
    use super::*;

    #[test]
    fn the_oom_notifier_stays_quiet_then_fires_when_the_group_goes() {
        // SAFETY: geteuid has no side effects.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let root = format!("pando-unit-{}", uuid::Uuid::new_v4());
        let mode = IsolationMode::Cgroups {
            cpu: false,
            mem: true,
            pids: false,
        };
        let isolator = Isolator::new(mode, &root);
        let limits = Limits {
            cpus: None,
            mem_mb: Some(64.0),
            pids: None,
        };
        let group = isolator.create(&format!("{root}/a"), &limits).unwrap();
        let readable = |fd: &std::os::fd::OwnedFd| {
            use std::os::fd::AsRawFd;
            let mut poll = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the length given.
            unsafe { libc::poll(&mut poll, 1, 2000) > 0 }
        };
        let Some(fd) = group.oom_notifier() else {
            group.destroy(Duration::from_secs(5)).unwrap();
            return; // no memory controller here
        };
        use std::os::fd::AsRawFd;
        let mut quiet = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the length given.
        assert_eq!(unsafe { libc::poll(&mut quiet, 1, 50) }, 0, "no OOM yet");
        assert!(!group.oom_killed());
        group.destroy(Duration::from_secs(5)).unwrap();
        assert!(readable(&fd), "the group's removal wakes the watcher");
        for dir in isolator.load(&root).dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }

    #[test]
    fn destroy_removes_the_group_and_sweep_leaves_young_groups() {
        // SAFETY: geteuid has no side effects.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let root = format!("pando-unit-{}", uuid::Uuid::new_v4());
        let mode = IsolationMode::Cgroups {
            cpu: true,
            mem: true,
            pids: true,
        };
        let isolator = Isolator::new(mode, &root);
        let limits = Limits {
            cpus: Some(0.5),
            mem_mb: Some(64.0),
            pids: None,
        };
        let group = isolator.create(&format!("{root}/a"), &limits).unwrap();
        assert!(group.dirs.iter().all(|d| d.exists()));
        let young = isolator.create(&format!("{root}/b"), &limits).unwrap();
        assert_eq!(isolator.sweep_empty(Duration::from_secs(60)), 0);
        group.destroy(Duration::from_secs(5)).unwrap();
        assert!(group.dirs.iter().all(|d| !d.exists()));
        assert!(isolator.sweep_empty(Duration::ZERO) > 0);
        assert!(young.dirs.iter().all(|d| !d.exists()));
        for dir in isolator.load(&root).dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }

    #[test]
    fn on_v1_a_group_lives_only_in_the_hierarchies_isolation_uses() {
        // SAFETY: geteuid has no side effects.
        if unsafe { libc::geteuid() } != 0 || hierarchies::is_cgroup2_unified_mode() {
            return;
        }
        let root = format!("pando-unit-{}", uuid::Uuid::new_v4());
        let mode = IsolationMode::Cgroups {
            cpu: true,
            mem: true,
            pids: false,
        };
        let isolator = Isolator::new(mode, &root);
        let limits = Limits {
            cpus: Some(0.5),
            mem_mb: Some(64.0),
            pids: None,
        };
        let group = isolator.create(&format!("{root}/a"), &limits).unwrap();
        let hierarchies: Vec<String> = group
            .dirs
            .iter()
            .filter_map(|d| {
                d.strip_prefix("/sys/fs/cgroup")
                    .ok()?
                    .components()
                    .next()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
            })
            .collect();
        for used in ["freezer", "memory"] {
            assert!(hierarchies.iter().any(|h| h == used), "{hierarchies:?}");
        }
        for unused in ["cpuset", "pids", "blkio", "devices"] {
            assert!(
                !hierarchies
                    .iter()
                    .any(|h| h.split(',').any(|c| c == unused)),
                "{hierarchies:?}"
            );
            assert!(!Path::new("/sys/fs/cgroup")
                .join(unused)
                .join(&root)
                .exists());
        }
        assert!(group.controller_dir("cpu").is_some());
        assert!(group.controller_dir("cpuacct").is_some());
        group.destroy(Duration::from_secs(5)).unwrap();
        assert!(group.dirs.iter().all(|d| !d.exists()));
        for dir in isolator.load(&root).dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}
