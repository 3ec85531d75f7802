//! Building task status updates the way Mesos's executors do.
//!
//! Every update an executor sends is a fresh [`TaskStatus`]: a new random
//! uuid, the current time, `source = SOURCE_EXECUTOR` and the executor id.
//! Terminal updates describe how the task's process ended in Mesos's words
//! ("Command exited with status 3", "Command terminated with signal
//! Killed"), which [`describe_exit`] produces from a wait status.

use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;
use std::time::{SystemTime, UNIX_EPOCH};

use pando_proto::mesos::v1::{
    check_info, task_status, CheckInfo, CheckStatusInfo, ExecutorId, TaskId, TaskState, TaskStatus,
};

/// Why a status could not be described (this module has no fallible
/// operations yet; the enum keeps the one-enum-per-module rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// An update carried an unknown state number.
    #[error("unknown task state {0}")]
    UnknownState(i32),
}

/// Seconds since the epoch, as Mesos stamps updates.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A new update for `task_id` in `state`, sent by `executor_id`.
pub fn new_status(task_id: &TaskId, state: TaskState, executor_id: &ExecutorId) -> TaskStatus {
    TaskStatus {
        task_id: task_id.clone(),
        state: state as i32,
        executor_id: Some(executor_id.clone()),
        source: Some(task_status::Source::Executor as i32),
        uuid: Some(bytes::Bytes::copy_from_slice(
            uuid::Uuid::new_v4().as_bytes(),
        )),
        timestamp: Some(now_secs()),
        ..Default::default()
    }
}

/// A copy of `previous` with a new uuid and timestamp, as Mesos derives
/// health and check updates from the last status it sent (everything else,
/// `message` and `healthy` included, carries over unless the caller sets it).
pub fn renew(previous: &TaskStatus) -> TaskStatus {
    let mut status = previous.clone();
    status.uuid = Some(bytes::Bytes::copy_from_slice(
        uuid::Uuid::new_v4().as_bytes(),
    ));
    status.timestamp = Some(now_secs());
    status
}

/// The empty `check_status` Mesos attaches to every update of a task that
/// has a check, so schedulers can tell "no result yet" from "no check".
pub fn empty_check_status(check: &CheckInfo) -> CheckStatusInfo {
    let kind = check.r#type();
    CheckStatusInfo {
        r#type: check.r#type,
        command: (kind == check_info::Type::Command).then(Default::default),
        http: (kind == check_info::Type::Http).then(Default::default),
        tcp: (kind == check_info::Type::Tcp).then(Default::default),
    }
}

/// The name of a state, for logs.
pub fn state_name(state: i32) -> Result<&'static str, StatusError> {
    TaskState::try_from(state)
        .map(|s| s.as_str_name())
        .map_err(|_| StatusError::UnknownState(state))
}

/// Mesos's description of a wait status: "exited with status N" or
/// "terminated with signal <strsignal>".
pub fn describe_wait_status(raw: i32) -> String {
    describe_exit(ExitStatus::from_raw(raw))
}

/// Mesos's description of how a process ended.
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exited with status {code}")
    } else if let Some(signal) = status.signal() {
        let core = if status.core_dumped() {
            " (core dumped)"
        } else {
            ""
        };
        format!(
            "terminated with signal {}{core}",
            signal_description(signal)
        )
    } else if let Some(signal) = status.stopped_signal() {
        format!("stopped on signal {}", signal_description(signal))
    } else {
        format!("wait status {}", status.into_raw())
    }
}

/// glibc's `strsignal` text for the signals a task can die of.
pub fn signal_description(signal: i32) -> String {
    let text = match signal {
        libc::SIGHUP => "Hangup",
        libc::SIGINT => "Interrupt",
        libc::SIGQUIT => "Quit",
        libc::SIGILL => "Illegal instruction",
        libc::SIGTRAP => "Trace/breakpoint trap",
        libc::SIGABRT => "Aborted",
        libc::SIGBUS => "Bus error",
        libc::SIGFPE => "Floating point exception",
        libc::SIGKILL => "Killed",
        libc::SIGUSR1 => "User defined signal 1",
        libc::SIGSEGV => "Segmentation fault",
        libc::SIGUSR2 => "User defined signal 2",
        libc::SIGPIPE => "Broken pipe",
        libc::SIGALRM => "Alarm clock",
        libc::SIGTERM => "Terminated",
        libc::SIGSTKFLT => "Stack fault",
        libc::SIGCHLD => "Child exited",
        libc::SIGCONT => "Continued",
        libc::SIGSTOP => "Stopped (signal)",
        libc::SIGTSTP => "Stopped",
        libc::SIGTTIN => "Stopped (tty input)",
        libc::SIGTTOU => "Stopped (tty output)",
        libc::SIGURG => "Urgent I/O condition",
        libc::SIGXCPU => "CPU time limit exceeded",
        libc::SIGXFSZ => "File size limit exceeded",
        libc::SIGVTALRM => "Virtual timer expired",
        libc::SIGPROF => "Profiling timer expired",
        libc::SIGWINCH => "Window changed",
        libc::SIGIO => "I/O possible",
        libc::SIGPWR => "Power failure",
        libc::SIGSYS => "Bad system call",
        _ => return format!("Unknown signal {signal}"),
    };
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pando_proto::task_state::is_terminal;

    #[test]
    fn describes_exits_like_mesos() {
        assert_eq!(describe_wait_status(3 << 8), "exited with status 3");
        assert_eq!(
            describe_wait_status(libc::SIGKILL),
            "terminated with signal Killed"
        );
        assert_eq!(
            describe_wait_status(libc::SIGTERM),
            "terminated with signal Terminated"
        );
    }

    #[test]
    fn statuses_are_fresh() {
        let task = TaskId { value: "t".into() };
        let executor = ExecutorId { value: "e".into() };
        let a = new_status(&task, TaskState::TaskRunning, &executor);
        let b = renew(&a);
        assert_ne!(a.uuid, b.uuid);
        assert_eq!(b.source, Some(task_status::Source::Executor as i32));
        assert!(!is_terminal(a.state));
        assert!(is_terminal(TaskState::TaskKilled as i32));
    }
}
