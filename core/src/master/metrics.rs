//! Counters behind `/metrics/snapshot`, GET_METRICS and `/metrics`.
//!
//! The master counts events as they happen (tasks reaching each state,
//! messages of each kind); gauges such as `master/cpus_total` are computed
//! from state when a snapshot is taken. Names are Mesos's, so dashboards
//! and alerts written for Mesos keep working.

use std::collections::BTreeMap;

use pando_proto::mesos::v1 as pb;

/// Event counters kept by the master.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    /// Tasks that reached each terminal state, by Mesos metric suffix.
    pub task_states: BTreeMap<&'static str, u64>,
    /// Offers rescinded.
    pub offers_rescinded: u64,
    /// Offers declined.
    pub offers_declined: u64,
    /// Offers accepted.
    pub offers_accepted: u64,
    /// Offers sent.
    pub offers_sent: u64,
    /// Valid scheduler calls by type name.
    pub scheduler_calls: BTreeMap<String, u64>,
    /// Scheduler calls rejected as invalid.
    pub invalid_scheduler_calls: u64,
    /// Status updates received from agents.
    pub valid_status_updates: u64,
    /// Status updates dropped (unknown framework or task).
    pub invalid_status_updates: u64,
    /// Agents registered.
    pub agent_registrations: u64,
    /// Agents re-registered.
    pub agent_reregistrations: u64,
    /// Agents removed (unreachable or gone).
    pub agent_removals: u64,
    /// Agents marked unreachable.
    pub agents_unreachable_marked: u64,
    /// Frameworks that failed over (re-subscribed on a new connection).
    pub framework_failovers: u64,
    /// Allocation cycle durations, newest last (a short window).
    pub allocation_run_ms: Vec<f64>,
    /// Framework messages forwarded either way.
    pub framework_messages: u64,
}

impl Metrics {
    /// Counts a state transition of a task, for `master/tasks_<state>`.
    pub fn count_task_state(&mut self, was_terminal: bool, _update_state: i32, new_state: i32) {
        if was_terminal {
            return;
        }
        if let Some(name) = terminal_metric(new_state) {
            *self.task_states.entry(name).or_default() += 1;
        }
    }

    /// Records how long an allocation cycle took.
    pub fn record_allocation(&mut self, ms: f64) {
        self.allocation_run_ms.push(ms);
        if self.allocation_run_ms.len() > 1000 {
            self.allocation_run_ms.drain(..500);
        }
    }
}

/// The `master/tasks_*` counter for a terminal state.
fn terminal_metric(state: i32) -> Option<&'static str> {
    use pb::TaskState as S;
    let state = S::try_from(state).ok()?;
    Some(match state {
        S::TaskFinished => "master/tasks_finished",
        S::TaskFailed => "master/tasks_failed",
        S::TaskKilled => "master/tasks_killed",
        S::TaskError => "master/tasks_error",
        S::TaskLost => "master/tasks_lost",
        S::TaskDropped => "master/tasks_dropped",
        S::TaskGone => "master/tasks_gone",
        S::TaskGoneByOperator => "master/tasks_gone_by_operator",
        _ => return None,
    })
}

/// All counter names a snapshot always carries, even at zero.
pub const TERMINAL_TASK_METRICS: &[&str] = &[
    "master/tasks_dropped",
    "master/tasks_error",
    "master/tasks_failed",
    "master/tasks_finished",
    "master/tasks_gone",
    "master/tasks_gone_by_operator",
    "master/tasks_killed",
    "master/tasks_lost",
];
