//! Facts about task states that Mesos keeps outside its `.proto` files.
//!
//! A task in a terminal state will not run, or change state, again: Mesos's
//! `protobuf::isTerminalState` lists them, and the master, the agent, the
//! executors, the CLI and the simulator all decide with [`is_terminal`].

use crate::mesos::v1::TaskState;

/// Whether a task in `state` is finished for good: FINISHED, FAILED,
/// KILLED, ERROR, LOST, DROPPED, GONE or GONE_BY_OPERATOR.
///
/// It takes the enum or its wire number (an `i32`, as prost stores it); a
/// number that names no state is not terminal. A state's name goes through
/// [`TaskState::from_str_name`] first.
pub fn is_terminal(state: impl TryInto<TaskState>) -> bool {
    matches!(
        state.try_into(),
        Ok(TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskError
            | TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_are_those_mesos_lists() {
        let terminal = [
            TaskState::TaskFinished,
            TaskState::TaskFailed,
            TaskState::TaskKilled,
            TaskState::TaskError,
            TaskState::TaskLost,
            TaskState::TaskDropped,
            TaskState::TaskGone,
            TaskState::TaskGoneByOperator,
        ];
        let live = [
            TaskState::TaskStaging,
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskKilling,
            TaskState::TaskUnreachable,
            TaskState::TaskUnknown,
        ];
        for state in terminal {
            assert!(is_terminal(state), "{state:?}");
            assert!(is_terminal(state as i32), "{state:?} as a number");
        }
        for state in live {
            assert!(!is_terminal(state), "{state:?}");
            assert!(!is_terminal(state as i32), "{state:?} as a number");
        }
        assert!(!is_terminal(9999), "a number that names no state");
        assert!(TaskState::from_str_name("TASK_LOST").is_some_and(is_terminal));
        assert!(!TaskState::from_str_name("TASK_RUNNING").is_some_and(is_terminal));
    }
}
