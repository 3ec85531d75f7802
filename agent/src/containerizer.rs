//! The containerizer: turns a CommandInfo into a running process inside its
//! own group and sandbox.
//!
//! Launching a container is: create the sandbox (with `stdout` and
//! `stderr`), fetch the URIs into it, create the cgroup with the container's
//! limits, then start the command in a process group of its own (so posix
//! isolation can kill the group) with the sandbox as its working directory.
//!
//! A built-in executor that needs no user switch runs no code between fork
//! and exec, so
//! std spawns with `posix_spawn` (a vfork-style clone) instead of copying
//! the agent's page tables, and the agent then writes the child's pid into
//! the group's `cgroup.procs` files. The child runs outside its group for
//! that moment, which is safe: see [`join_after_spawn`]. Any other command
//! (a nested container's task may fork at once) joins between fork and
//! exec, and so does one that drops to `user` (an unprivileged process may
//! not write `cgroup.procs`): those fork.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use pando_proto::mesos::v1 as pb;

use crate::cgroups::{ContainerGroup, Isolator, Limits};

/// Why a container could not be launched.
#[derive(Debug, thiserror::Error)]
pub enum ContainerizerError {
    /// The sandbox could not be created.
    #[error("Failed to create sandbox '{path}': {source}")]
    Sandbox {
        /// The sandbox.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A URI could not be fetched.
    #[error(transparent)]
    Fetch(#[from] crate::fetcher::FetcherError),
    /// The cgroup could not be created.
    #[error("Failed to prepare isolation: {0}")]
    Cgroups(#[from] crate::cgroups::CgroupsError),
    /// The user does not exist.
    #[error("Failed to get user information for '{0}': no such user")]
    User(String),
    /// The command has no value.
    #[error("Failed to launch container: the command has no value")]
    NoCommand,
    /// fork/exec failed (a missing binary, for example).
    #[error("Failed to launch container: failed to execute '{command}': {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The error.
        source: std::io::Error,
    },
}

/// What to launch.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The container, nested or not.
    pub container_id: pb::ContainerId,
    /// The sandbox directory (the working directory).
    pub sandbox: PathBuf,
    /// The command, its URIs and environment.
    pub command: pb::CommandInfo,
    /// Extra environment, set before CommandInfo's own variables.
    pub env: Vec<(String, String)>,
    /// Run as this user (only when the agent is root).
    pub user: Option<String>,
    /// The cgroup limits.
    pub limits: Limits,
    /// When set, the process starts from exactly these variables instead
    /// of the agent's environment (`--executor_environment_variables`).
    pub base_env: Option<Vec<(String, String)>>,
    /// The process is one of Pando's built-in executors (command or
    /// default), which start nothing before the agent sends them a task:
    /// it may join its group just after it is spawned (see
    /// [`join_after_spawn`]). Any other command, a custom executor
    /// included, joins before exec.
    pub builtin_executor: bool,
}

/// A launched container's process and group.
#[derive(Debug)]
pub struct Launched {
    /// The process.
    pub child: tokio::process::Child,
    /// Its pid.
    pub pid: u32,
    /// Its group.
    pub group: ContainerGroup,
}

/// Creates `dir` with `stdout` and `stderr` files in it.
pub fn create_sandbox(dir: &Path) -> Result<(), ContainerizerError> {
    let err = |source| ContainerizerError::Sandbox {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    for name in ["stdout", "stderr"] {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(name))
            .map_err(err)?;
    }
    Ok(())
}

/// The uid, gid and home of a user.
fn lookup_user(name: &str) -> Option<(u32, u32, String)> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain old data, fully written by getpwnam_r on
    // success; we read it only then.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, `buf` outlives it, and
    // its length is passed.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    let home = if pwd.pw_dir.is_null() {
        String::from("/")
    } else {
        // SAFETY: pw_dir points into `buf`, NUL-terminated by getpwnam_r.
        unsafe { std::ffi::CStr::from_ptr(pwd.pw_dir) }
            .to_string_lossy()
            .into_owned()
    };
    Some((pwd.pw_uid, pwd.pw_gid, home))
}

/// The name of user `uid`, or the number when it has none (Mesos shows
/// names in `/files/browse`).
pub fn user_name(uid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain old data; getpwuid_r fills it on success.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf` outlives it.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return uid.to_string();
    }
    // SAFETY: pw_name points into `buf`, NUL-terminated by getpwuid_r.
    unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned()
}

/// The name of group `gid`, or the number when it has none.
pub fn group_name(gid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: group is plain old data; getgrgid_r fills it on success.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf` outlives it.
    let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || grp.gr_name.is_null() {
        return gid.to_string();
    }
    // SAFETY: gr_name points into `buf`, NUL-terminated by getgrgid_r.
    unsafe { std::ffi::CStr::from_ptr(grp.gr_name) }
        .to_string_lossy()
        .into_owned()
}

/// The groups `user` belongs to, computed before fork (getgrouplist reads
/// files, which a forked child must not).
fn supplementary_groups(user: &str, gid: u32) -> Vec<libc::gid_t> {
    let Ok(name) = CString::new(user) else {
        return vec![gid];
    };
    let mut count: libc::c_int = 64;
    loop {
        let mut groups: Vec<libc::gid_t> = vec![0; count as usize];
        let asked = count;
        // SAFETY: `groups` has room for `count` entries and getgrouplist
        // writes at most that many, updating `count`.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            return groups;
        }
        if count <= asked {
            return vec![gid];
        }
    }
}

/// Fetches the URIs and starts the command in its group.
pub async fn launch(
    isolator: &Isolator,
    spec: &LaunchSpec,
) -> Result<Launched, ContainerizerError> {
    create_sandbox(&spec.sandbox)?;
    crate::fetcher::fetch_all(&spec.command.uris, &spec.sandbox).await?;
    // SAFETY: geteuid has no side effects.
    let root = unsafe { libc::geteuid() } == 0;
    let user = match spec.user.as_deref().filter(|_| root) {
        Some(name) => {
            Some(lookup_user(name).ok_or_else(|| ContainerizerError::User(name.to_string()))?)
        }
        None => None,
    };
    let value = spec
        .command
        .value
        .clone()
        .ok_or(ContainerizerError::NoCommand)?;
    let shell = spec.command.shell.unwrap_or(true);
    let mut command = if shell {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(&value);
        c
    } else {
        let mut c = tokio::process::Command::new(&value);
        // Mesos passes `arguments` as the whole argv, argv[0] included.
        if let Some(first) = spec.command.arguments.first() {
            c.arg0(first);
            c.args(&spec.command.arguments[1..]);
        }
        c
    };
    command.current_dir(&spec.sandbox);
    if let Some(base) = &spec.base_env {
        command.env_clear();
        for (k, v) in base {
            command.env(k, v);
        }
    }
    for (k, v) in &spec.env {
        command.env(k, v);
    }
    if let Some(env) = &spec.command.environment {
        for var in &env.variables {
            command.env(&var.name, var.value.clone().unwrap_or_default());
        }
    }
    let stdout = open_log(&spec.sandbox.join("stdout"))?;
    let stderr = open_log(&spec.sandbox.join("stderr"))?;
    command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(false);
    // The user switch happens in pre_exec, after the child joined its
    // cgroup (std's uid()/gid() would switch first, and an unprivileged
    // process may not write cgroup.procs).
    let mut identity: Option<(u32, u32, Vec<libc::gid_t>)> = None;
    if let Some((uid, gid, home)) = &user {
        command.env("USER", spec.user.clone().unwrap_or_default());
        command.env("HOME", home);
        // SAFETY: geteuid and getegid have no side effects.
        let same = unsafe { libc::geteuid() == *uid && libc::getegid() == *gid };
        // The agent's own user (root, for most frameworks here) needs no
        // switch, nor the chown of a sandbox it already owns.
        if !same {
            chown_tree(&spec.sandbox, *uid, *gid);
            let name = spec.user.clone().unwrap_or_default();
            identity = Some((*uid, *gid, supplementary_groups(&name, *gid)));
        }
    }
    let group = isolator.create(&isolator.group_name(&spec.container_id), &spec.limits)?;
    let procs_files = group.procs_files();
    let fail = |group: &ContainerGroup, source: std::io::Error| {
        let _ = group.destroy(std::time::Duration::from_secs(2));
        ContainerizerError::Spawn {
            command: value.clone(),
            source,
        }
    };
    if identity.is_none() && spec.builtin_executor {
        command.process_group(0);
        let mut child = command.spawn().map_err(|e| fail(&group, e))?;
        let joined = match child.id() {
            Some(pid) => join_after_spawn(&procs_files, pid).map(|()| pid),
            None => Err(std::io::Error::other("the spawned process has no pid")),
        };
        return match joined {
            Ok(pid) => Ok(Launched { child, pid, group }),
            Err(error) => {
                let _ = child.start_kill();
                Err(fail(&group, error))
            }
        };
    }
    let procs: Vec<CString> = procs_files
        .iter()
        .filter_map(|p| CString::new(p.as_os_str().as_bytes()).ok())
        .collect();
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe calls (open, write, close, setsid, setgroups,
    // setgid, setuid) on memory allocated before the fork.
    unsafe {
        command.pre_exec(move || {
            for path in &procs {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if written != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            libc::setsid();
            if let Some((uid, gid, groups)) = &identity {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(*gid) != 0
                    || libc::setuid(*uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| fail(&group, e))?;
    let pid = child.id().unwrap_or(0);
    Ok(Launched { child, pid, group })
}

/// Moves a just-spawned process into its group by writing its pid to
/// every `cgroup.procs` file (the whole thread group moves).
///
/// The process ran outside the group from its exec until now. That is
/// safe because a built-in executor starts no other process before it has
/// a task, and the agent hands out tasks only after this returns: the
/// executor gets its LAUNCH on its SUBSCRIBE stream, and the agent answers
/// a SUBSCRIBE with 503 while the executor's pid is not yet recorded, which
/// happens after [`launch`] returns (the executor retries). Custom
/// executors, which may fork at once, are not launched this way.
fn join_after_spawn(procs: &[PathBuf], pid: u32) -> std::io::Result<()> {
    let pid = pid.to_string();
    for path in procs {
        std::fs::write(path, &pid)?;
    }
    Ok(())
}

fn open_log(path: &Path) -> Result<std::fs::File, ContainerizerError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| ContainerizerError::Sandbox {
            path: path.to_path_buf(),
            source,
        })
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::chown(dir, Some(uid), Some(gid));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                chown_tree(&path, uid, gid);
            } else {
                let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
            }
        }
    }
}

/// Whether a process is alive (not gone and not a zombie).
pub fn process_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// Where a persistent volume's data lives on the agent:
/// `work_dir/volumes/roles/<role>/<persistence id>`, as in Mesos.
pub fn volume_dir(work_dir: &Path, role: &str, persistence_id: &str) -> PathBuf {
    work_dir
        .join("volumes")
        .join("roles")
        .join(role)
        .join(persistence_id)
}

/// Makes the persistent volumes among `resources` appear in the sandbox at
/// their `container_path`, as links to their data under `work_dir`, the way
/// Mesos's `filesystem/posix` isolator does; the data outlives the tasks.
/// Absolute container paths and paths that leave the sandbox are refused.
pub fn link_volumes(
    work_dir: &Path,
    sandbox: &Path,
    resources: &[pb::Resource],
) -> Result<(), String> {
    #[allow(deprecated)]
    for r in resources {
        let Some(disk) = &r.disk else { continue };
        let (Some(persistence), Some(volume)) = (&disk.persistence, &disk.volume) else {
            continue;
        };
        let path = Path::new(&volume.container_path);
        let escapes = path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir));
        if volume.container_path.is_empty() || escapes {
            return Err(format!(
                "volume '{}' has container_path '{}', which must be relative and inside the sandbox",
                persistence.id, volume.container_path
            ));
        }
        let role = r
            .reservations
            .last()
            .and_then(|res| res.role.clone())
            .or_else(|| r.role.clone())
            .unwrap_or_else(|| "*".to_string());
        let source = volume_dir(work_dir, &role, &persistence.id);
        let link = sandbox.join(path);
        let io = |e: std::io::Error| format!("volume '{}': {e}", persistence.id);
        std::fs::create_dir_all(&source).map_err(io)?;
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(&source, &link).map_err(io)?;
        }
    }
    Ok(())
}

/// Sends a signal to what is left of the process group of a container
/// whose first process has exited and been reaped. Its children were
/// reparented when it died, so a walk of `/proc` for its descendants
/// (which reads every process's `stat`, per container, under a thousand
/// live containers) would find nothing, and its pid alone may already name
/// a new process; the group id stays reserved while any member lives, so
/// signalling it reaches only what the container left.
pub fn kill_exited_group(pgid: u32, signal: i32) {
    if pgid == 0 {
        return;
    }
    // SAFETY: kill(2) has no memory effects; the negative pid names the
    // process group the launcher created, which the kernel does not hand
    // out again while any of its members is alive.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), signal);
    }
}

/// Sends a signal to a process group and to every descendant of its
/// leader (posix teardown). Without a cgroup the group is all the agent
/// knows of a container, but an executor may start its task in a group of
/// its own (the command executor does), so the descendants are found
/// through `/proc` before anything is signalled.
pub fn kill_process_group(pid: u32, signal: i32) {
    if pid == 0 {
        return;
    }
    let descendants = descendants_of(pid);
    // SAFETY: kill(2) has no memory effects; the negative pid names the
    // session/process group the launcher created with setsid, the others
    // are processes found under it a moment ago.
    unsafe {
        libc::kill(-(pid as libc::pid_t), signal);
        libc::kill(pid as libc::pid_t, signal);
        for d in descendants {
            libc::kill(d as libc::pid_t, signal);
        }
    }
}

/// Every process below `root` in the process tree, read from `/proc`.
pub fn descendants_of(root: u32) -> Vec<u32> {
    let mut children: std::collections::HashMap<u32, Vec<u32>> = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised name: state, ppid, ...
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            if !found.contains(&c) {
                found.push(c);
                queue.push(c);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_names() {
        assert_eq!(user_name(0), "root");
        assert_eq!(group_name(0), "root");
        assert_eq!(user_name(4_000_000_000), "4000000000");
    }

    #[test]
    fn descendants_are_found_across_process_groups() {
        // sh starts a sleep in a session of its own, as an executor does
        // with its task; the kill must still reach it.
        let mut parent = std::process::Command::new("sh")
            .args(["-c", "setsid sleep 30 & wait"])
            .spawn()
            .unwrap();
        let pid = parent.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let sleeper = loop {
            if let Some(&d) = descendants_of(pid).first() {
                break d;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no descendant appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        kill_process_group(pid, libc::SIGKILL);
        let _ = parent.wait();
        while process_alive(sleeper) {
            assert!(
                std::time::Instant::now() < deadline,
                "the descendant survived"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn volumes_are_linked_into_the_sandbox_and_outlive_it() {
        let work = tempfile::tempdir().unwrap();
        let sandbox = work.path().join("sandbox");
        let volume = pb::Resource {
            name: "disk".into(),
            r#type: pb::value::Type::Scalar as i32,
            scalar: Some(pb::value::Scalar { value: 10.0 }),
            reservations: vec![pb::resource::ReservationInfo {
                r#type: Some(pb::resource::reservation_info::Type::Dynamic as i32),
                role: Some("r1".into()),
                ..Default::default()
            }],
            disk: Some(Box::new(pb::resource::DiskInfo {
                persistence: Some(pb::resource::disk_info::Persistence {
                    id: "v1".into(),
                    principal: None,
                }),
                volume: Some(pb::Volume {
                    container_path: "data".into(),
                    ..Default::default()
                }),
                source: None,
            })),
            ..Default::default()
        };
        link_volumes(work.path(), &sandbox, std::slice::from_ref(&volume)).unwrap();
        std::fs::write(sandbox.join("data/f"), "persisted").unwrap();
        let kept = volume_dir(work.path(), "r1", "v1").join("f");
        assert_eq!(std::fs::read_to_string(kept).unwrap(), "persisted");
        let mut escaping = volume;
        if let Some(v) = escaping.disk.as_mut().and_then(|d| d.volume.as_mut()) {
            v.container_path = "../outside".into();
        }
        assert!(link_volumes(work.path(), &sandbox, &[escaping]).is_err());
    }

    #[test]
    fn a_zombie_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while process_alive(pid) {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }
}
