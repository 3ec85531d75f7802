//! A framework's completed tasks, kept compact.
//!
//! Like Mesos, the master remembers the last
//! `--max_completed_tasks_per_framework` (default 1,000) terminal tasks of
//! each framework, for `/master/state`, `/master/tasks` and GET_TASKS. With
//! 100 frameworks that is 100,000 tasks, read by a person or a dashboard now
//! and then, and never on the launch path.
//!
//! A `pb::Task` in memory is about 5 KB once its statuses, resources and ids
//! are counted (1.4 KB inline, the rest in small heap blocks); the same task
//! encoded as protobuf is about 600 bytes. So a completed task is stored
//! encoded, with the few fields the master filters and counts on beside it,
//! and decoded only when an endpoint shows it.

use std::collections::VecDeque;

use pando_proto::mesos::v1 as pb;
use prost::Message;

/// One terminal task, encoded.
#[derive(Debug, Clone)]
pub struct CompletedTask {
    task_id: String,
    agent_id: String,
    state: i32,
    encoded: Box<[u8]>,
}

impl CompletedTask {
    /// Encodes `task`.
    pub fn new(task: &pb::Task) -> CompletedTask {
        CompletedTask {
            task_id: task.task_id.value.clone(),
            agent_id: task.agent_id.value.clone(),
            state: task.state,
            encoded: task.encode_to_vec().into_boxed_slice(),
        }
    }

    /// The task's id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// The agent it ran on.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// Its terminal state (`pb::TaskState` as i32).
    pub fn state(&self) -> i32 {
        self.state
    }

    /// The task as it was when it completed.
    pub fn task(&self) -> pb::Task {
        // These bytes were encoded from a `pb::Task` by `new`, so they
        // decode; should they ever not, the id and state still show.
        pb::Task::decode(&self.encoded[..]).unwrap_or_else(|e| {
            tracing::error!(task = %self.task_id, "completed task does not decode: {e}");
            pb::Task {
                task_id: pb::TaskId {
                    value: self.task_id.clone(),
                },
                agent_id: pb::AgentId {
                    value: self.agent_id.clone(),
                },
                state: self.state,
                ..Default::default()
            }
        })
    }
}

/// The completed tasks of one framework, oldest first.
#[derive(Debug, Clone, Default)]
pub struct CompletedTasks {
    tasks: VecDeque<CompletedTask>,
}

impl CompletedTasks {
    /// Remembers `task`, forgetting the oldest beyond `limit`.
    pub fn push(&mut self, task: &pb::Task, limit: usize) {
        self.tasks.push_back(CompletedTask::new(task));
        while self.tasks.len() > limit {
            self.tasks.pop_front();
        }
    }

    /// Forgets the task with this id (it turned out to be running).
    pub fn remove(&mut self, task_id: &str) {
        self.tasks.retain(|t| t.task_id != task_id);
    }

    /// The remembered tasks, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &CompletedTask> {
        self.tasks.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, state: pb::TaskState) -> pb::Task {
        pb::Task {
            name: format!("name-{id}"),
            task_id: pb::TaskId { value: id.into() },
            state: state as i32,
            statuses: vec![pb::TaskStatus {
                task_id: pb::TaskId { value: id.into() },
                state: state as i32,
                message: Some("done".into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_completed_task_comes_back_whole() {
        let original = task("t1", pb::TaskState::TaskFinished);
        let mut completed = CompletedTasks::default();
        completed.push(&original, 10);
        let stored = completed.iter().next().map(CompletedTask::task);
        assert_eq!(stored, Some(original));
    }

    #[test]
    fn only_the_newest_up_to_the_limit_are_kept() {
        let mut completed = CompletedTasks::default();
        for i in 0..5 {
            completed.push(&task(&format!("t{i}"), pb::TaskState::TaskFailed), 3);
        }
        let ids: Vec<&str> = completed.iter().map(CompletedTask::task_id).collect();
        assert_eq!(ids, ["t2", "t3", "t4"]);
        completed.remove("t3");
        let ids: Vec<&str> = completed.iter().map(CompletedTask::task_id).collect();
        assert_eq!(ids, ["t2", "t4"]);
        assert!(completed
            .iter()
            .all(|t| t.state() == pb::TaskState::TaskFailed as i32));
    }
}
