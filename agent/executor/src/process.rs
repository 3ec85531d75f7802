//! Starting a `CommandInfo` as a child process and signalling it.
//!
//! The child gets its own process group, so that a kill reaches everything
//! the task started (a shell and its children) with one `killpg`. Its
//! environment is the executor's own, overlaid by `CommandInfo.environment`
//! (secrets are skipped, as in Mesos) and any extras the caller adds. Its
//! stdout and stderr are the executor's, which the agent points at the
//! sandbox's `stdout` and `stderr` files.

use std::ffi::CString;

use pando_proto::mesos::v1::{environment, CommandInfo};
use tokio::process::{Child, Command};

/// Why a command could not be started or signalled.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The CommandInfo has no `value`.
    #[error("the command has no value: a shell command or an executable path is required")]
    NoValue,
    /// `CommandInfo.user` names no user on this machine.
    #[error("user '{0}' does not exist on this agent")]
    NoSuchUser(String),
    /// The process could not be spawned.
    #[error("failed to launch '{command}': {source}")]
    Spawn {
        /// What was being run.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A signal could not be delivered.
    #[error("failed to send signal {signal} to process group {pgid}: {source}")]
    Signal {
        /// The signal number.
        signal: i32,
        /// The target process group.
        pgid: i32,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Builds the command for `info`: `sh -c value` for a shell command,
/// otherwise `value` run with `arguments` as its argv (argv[0] included, as
/// Mesos defines it).
pub fn build(info: &CommandInfo, extra_env: &[(String, String)]) -> Result<Command, ProcessError> {
    let value = info.value.as_deref().ok_or(ProcessError::NoValue)?;
    let mut command = if info.shell.unwrap_or(true) {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(value);
        c
    } else {
        let mut c = Command::new(value);
        if let Some((argv0, rest)) = info.arguments.split_first() {
            c.arg0(argv0).args(rest);
        }
        c
    };
    if let Some(env) = &info.environment {
        for variable in &env.variables {
            if variable.r#type() == environment::variable::Type::Secret {
                continue;
            }
            command.env(&variable.name, variable.value.as_deref().unwrap_or(""));
        }
    }
    for (name, value) in extra_env {
        command.env(name, value);
    }
    if let Some(user) = info.user.as_deref() {
        set_user(&mut command, user)?;
    }
    command.process_group(0);
    command.kill_on_drop(false);
    Ok(command)
}

/// Starts `info` as a child in a new process group.
pub fn spawn(info: &CommandInfo, extra_env: &[(String, String)]) -> Result<Child, ProcessError> {
    let mut command = build(info, extra_env)?;
    command.spawn().map_err(|source| ProcessError::Spawn {
        command: info.value.clone().unwrap_or_default(),
        source,
    })
}

/// Runs the child as `user` when the executor may switch users; when it
/// already is that user (or cannot switch) the command runs as is, and a
/// failing switch shows up as a spawn error.
fn set_user(command: &mut Command, user: &str) -> Result<(), ProcessError> {
    let name = CString::new(user).map_err(|_| ProcessError::NoSuchUser(user.to_string()))?;
    let mut buffer = vec![0u8; 16 * 1024];
    // SAFETY: `passwd` is plain old data; all-zero is a valid value for it.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the duration of the call: `name` is
    // a NUL-terminated string, `entry` and `result` are live locals, and
    // `buffer` is writable for the length passed.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(ProcessError::NoSuchUser(user.to_string()));
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid == entry.pw_uid {
        return Ok(());
    }
    command.uid(entry.pw_uid).gid(entry.pw_gid);
    Ok(())
}

/// Sends `signal` to a task's whole process tree, as Mesos's `killtree`
/// does: the process group the task was started in, and every descendant
/// of `root`, including those that moved to a group or session of their
/// own. The tree is read from `/proc` before anything is signalled, so a
/// process that dies of the signal cannot hide its children.
pub fn signal_tree(root: u32, signal: i32) -> Result<(), ProcessError> {
    let tree = descendants(root);
    let result = signal_group(root, signal);
    for pid in tree {
        signal_process(pid, signal);
    }
    result
}

/// `root` and every process below it, from `/proc/<pid>/stat`.
fn descendants(root: u32) -> Vec<u32> {
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
            // The command name may hold spaces and parentheses: the fields
            // after it start behind the last ')'. They are: state, ppid, ...
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next];
        tree.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        next += 1;
    }
    tree
}

/// Sends `signal` to one process, ignoring processes already gone.
fn signal_process(pid: u32, signal: i32) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    // SAFETY: kill only reads its integer arguments; a process that is
    // gone yields ESRCH, never undefined behaviour.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc != 0 {
        tracing::debug!(pid, signal, error = %std::io::Error::last_os_error(), "signal not delivered");
    }
}

/// Sends `signal` to the process group `pgid`.
pub fn signal_group(pgid: u32, signal: i32) -> Result<(), ProcessError> {
    let pgid = i32::try_from(pgid).unwrap_or(i32::MAX);
    // SAFETY: killpg only reads its integer arguments; a stale or foreign
    // group id yields an error, never undefined behaviour.
    let rc = unsafe { libc::killpg(pgid, signal) };
    if rc == 0 {
        return Ok(());
    }
    let source = std::io::Error::last_os_error();
    // The group is already gone: the task exited on its own.
    if source.raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(ProcessError::Signal {
        signal,
        pgid,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_shell_and_argv_commands() {
        let shell = CommandInfo {
            value: Some("exit 4".into()),
            ..Default::default()
        };
        let status = spawn(&shell, &[]).unwrap().wait().await.unwrap();
        assert_eq!(status.code(), Some(4));

        let argv = CommandInfo {
            shell: Some(false),
            value: Some("/bin/sh".into()),
            arguments: vec!["sh".into(), "-c".into(), "exit $X".into()],
            ..Default::default()
        };
        let status = spawn(&argv, &[("X".into(), "5".into())])
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(status.code(), Some(5));

        let missing = CommandInfo {
            shell: Some(false),
            value: Some("/nonexistent/pando-test".into()),
            ..Default::default()
        };
        assert!(matches!(
            spawn(&missing, &[]),
            Err(ProcessError::Spawn { .. })
        ));
    }
}
