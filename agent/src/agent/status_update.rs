//! The status update manager: one stream of updates per task.
//!
//! An update is recorded on its task, checkpointed (for checkpointing
//! frameworks) and queued on its task's stream; only the stream's head is
//! sent to the master, and it is resent with a doubling backoff until the
//! master acknowledges it. The acknowledgement pops the head, is
//! checkpointed, goes on to the executor as ACKNOWLEDGED, and lets the next
//! update go. After a re-registration every head is sent again.

use super::*;

impl Agent {
    /// Accepts one status update: records the task's new state,
    /// checkpoints the update, and sends it if it heads its stream.
    pub fn status_update(
        &self,
        framework: &pb::FrameworkInfo,
        executor_id: Option<&pb::ExecutorId>,
        mut status: pb::TaskStatus,
        from_executor: bool,
    ) {
        let mut state = self.lock();
        let fw = fw_id(framework);
        let agent_id_value = Self::agent_id(&state);
        let agent_id = state.info.id.clone();
        if status.uuid.is_none() {
            status.uuid = Some(Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes()));
        }
        status.agent_id = agent_id.clone();
        status.timestamp.get_or_insert_with(now_secs);
        if status.source.is_none() {
            status.source = Some(if from_executor {
                Source::Executor
            } else {
                Source::Agent
            } as i32);
        }
        let task_key = (fw.clone(), status.task_id.value.clone());
        // Record the state on the task, and find where to checkpoint.
        let mut file = None;
        let mut exec_for_stream = executor_id.cloned();
        if let Some(framework) = state.frameworks.get_mut(&fw) {
            let executor = framework
                .executors
                .values_mut()
                .find(|e| e.tasks.contains_key(&status.task_id.value));
            if let Some(executor) = executor {
                if status.executor_id.is_none() && !executor.command_executor {
                    status.executor_id = Some(executor.info.executor_id.clone());
                }
                exec_for_stream = Some(executor.info.executor_id.clone());
                // As Mesos's agent, every update of a task whose container
                // still exists says which container it is, the executor's
                // pid and the address the task is reachable at (host
                // networking: the agent's). Marathon, Spark's UI and
                // service discovery read the task's IP from here.
                if status.container_status.is_none()
                    && executor.state != super::ExecutorState::Terminated
                {
                    status.container_status = Some(container_status(
                        &executor.container_id,
                        executor.pid,
                        self.endpoint.ip(),
                    ));
                }
                if from_executor && status.state == TaskState::TaskFailed as i32 {
                    if let Some(group) = executor.group.as_ref().filter(|g| g.oom_killed()) {
                        // The task died of the memory limit, not of its own accord.
                        status.reason = Some(Reason::ContainerLimitationMemory as i32);
                        status.source = Some(Source::Agent as i32);
                        let (limit, _) = group.memory_limit_and_peak();
                        status.message = Some(format!(
                            "Memory limit exceeded: Requested: {}MB",
                            limit.unwrap_or(0) / (1024 * 1024)
                        ));
                    }
                }
                if let Some(task) = executor.tasks.get_mut(&status.task_id.value) {
                    if !is_terminal(task.state) {
                        task.state = status.state;
                    }
                    task.statuses.retain(|s| s.state != status.state);
                    task.statuses.push(status.clone());
                    if executor.checkpoint {
                        file = Some(
                            self.meta
                                .task(
                                    &agent_id_value,
                                    &fw,
                                    &executor.info.executor_id.value,
                                    &executor.container_id,
                                    &status.task_id.value,
                                )
                                .join("task.updates"),
                        );
                    }
                }
            }
        }
        if is_terminal(status.state) {
            *state
                .metrics
                .tasks
                .entry(state_name(status.state))
                .or_default() += 1;
        }
        let update = link::StatusUpdate {
            framework_id: pb::FrameworkId { value: fw.clone() },
            executor_id: exec_for_stream.clone(),
            agent_id,
            status: status.clone(),
            timestamp: status.timestamp.unwrap_or_else(now_secs),
            latest_state: Some(status.state),
        };
        let now = Instant::now();
        let stream = state
            .streams
            .entry(task_key)
            .or_insert_with(|| UpdateStream {
                executor_id: exec_for_stream,
                pending: VecDeque::new(),
                seen: HashSet::new(),
                file: file.clone(),
                backoff: STATUS_UPDATE_RETRY_MIN,
                next_retry: now + STATUS_UPDATE_RETRY_MIN,
            });
        let uuid = status.uuid.clone().unwrap_or_default();
        if !stream.seen.insert(uuid) {
            return; // a duplicate
        }
        if let Some(path) = &stream.file {
            if let Err(e) = checkpoint::append_update(path, &UpdateRecord::Update(update.clone())) {
                tracing::error!("failed to checkpoint a status update: {e}");
            }
        }
        for pending in stream.pending.iter_mut() {
            pending.latest_state = Some(status.state);
        }
        stream.pending.push_back(update.clone());
        let head = (stream.pending.len() == 1).then(|| {
            stream.backoff = STATUS_UPDATE_RETRY_MIN;
            stream.next_retry = now + stream.backoff;
            update
        });
        let registered = state.registered;
        drop(state);
        if let Some(head) = head {
            if registered {
                self.send(Up::StatusUpdate(head));
            }
        }
        self.retry_wakeup.notify_one();
    }

    /// The master acknowledged an update: drop it, tell the executor, send
    /// the next.
    pub fn acknowledge(&self, fw: &pb::FrameworkId, task_id: &pb::TaskId, uuid: &Bytes) {
        let mut state = self.lock();
        let key = (fw.value.clone(), task_id.value.clone());
        let Some(stream) = state.streams.get_mut(&key) else {
            return;
        };
        if stream.pending.front().and_then(|u| u.status.uuid.as_ref()) != Some(uuid) {
            tracing::debug!("ignoring an acknowledgement for an update not in flight");
            return;
        }
        let acked = stream.pending.pop_front();
        if let Some(path) = &stream.file {
            let _ = checkpoint::append_update(path, &UpdateRecord::Ack(uuid.to_vec()));
        }
        let now = Instant::now();
        stream.backoff = STATUS_UPDATE_RETRY_MIN;
        stream.next_retry = now + stream.backoff;
        let next = stream.pending.front().cloned();
        let terminal_done =
            acked.as_ref().is_some_and(|u| is_terminal(u.status.state)) && next.is_none();
        let exec_id = stream.executor_id.clone();
        if terminal_done {
            state.streams.remove(&key);
        }
        // ACKNOWLEDGED goes to the executor that sent the update.
        if let (Some(acked), Some(exec_id)) = (&acked, &exec_id) {
            if acked.status.source == Some(Source::Executor as i32) {
                if let Some(connection) = state
                    .frameworks
                    .get(&fw.value)
                    .and_then(|f| f.executors.get(&exec_id.value))
                    .and_then(|e| e.connection.as_ref())
                {
                    connection.send(&ex::Event {
                        r#type: Some(ex::event::Type::Acknowledged as i32),
                        acknowledged: Some(ex::event::Acknowledged {
                            task_id: task_id.clone(),
                            uuid: uuid.clone(),
                        }),
                        ..Default::default()
                    });
                }
            }
        }
        if terminal_done {
            // A finished task whose executor is gone leaves nothing behind.
            if let Some(exec_id) = &exec_id {
                let agent_id = Self::agent_id(&state);
                if let Some(executor) = state
                    .frameworks
                    .get(&fw.value)
                    .and_then(|f| f.executors.get(&exec_id.value))
                {
                    if executor.checkpoint {
                        let _ = std::fs::remove_dir_all(self.meta.task(
                            &agent_id,
                            &fw.value,
                            &exec_id.value,
                            &executor.container_id,
                            &task_id.value,
                        ));
                    }
                }
                // A long-lived executor keeps only its latest finished tasks.
                if let Some(executor) = state
                    .frameworks
                    .get_mut(&fw.value)
                    .and_then(|f| f.executors.get_mut(&exec_id.value))
                {
                    let done: Vec<String> = executor
                        .tasks
                        .iter()
                        .filter(|(_, t)| is_terminal(t.state))
                        .map(|(id, _)| id.clone())
                        .collect();
                    let excess = done.len().saturating_sub(MAX_COMPLETED_TASKS_PER_EXECUTOR);
                    for id in done.iter().take(excess) {
                        executor.tasks.remove(id);
                    }
                }
                self.retire_executor(&mut state, &fw.value, &exec_id.value);
            }
        }
        let registered = state.registered;
        drop(state);
        if let (Some(next), true) = (next, registered) {
            self.send(Up::StatusUpdate(next));
        }
    }

    /// Resends every stream head whose retry time has come; returns when
    /// the next one is due.
    pub fn retry_due(&self) -> Option<Instant> {
        let mut state = self.lock();
        if !state.registered {
            return None;
        }
        let now = Instant::now();
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        for stream in state.streams.values_mut() {
            let Some(head) = stream.pending.front() else {
                continue;
            };
            if stream.next_retry <= now {
                due.push(head.clone());
                stream.backoff = (stream.backoff * 2).min(STATUS_UPDATE_RETRY_MAX);
                stream.next_retry = now + stream.backoff;
            }
            next = Some(next.map_or(stream.next_retry, |n| n.min(stream.next_retry)));
        }
        drop(state);
        for update in due {
            self.send(Up::StatusUpdate(update));
        }
        next
    }

    /// Runs the resend loop until the process ends.
    pub async fn retry_loop(self: Arc<Self>) {
        loop {
            let next = self.retry_due();
            let wait = next
                .map(|n| n.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_millis(50));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.retry_wakeup.notified() => {}
            }
        }
    }
}

/// The container part of a task status: the container's id, its
/// executor's pid, and the agent's address as the task's (host networking).
fn container_status(
    container_id: &str,
    executor_pid: Option<u32>,
    ip: std::net::IpAddr,
) -> pb::ContainerStatus {
    let protocol = if ip.is_ipv4() {
        pb::network_info::Protocol::IPv4
    } else {
        pb::network_info::Protocol::IPv6
    };
    pb::ContainerStatus {
        container_id: Some(pb::ContainerId {
            value: container_id.to_string(),
            parent: None,
        }),
        network_infos: vec![pb::NetworkInfo {
            ip_addresses: vec![pb::network_info::IpAddress {
                protocol: Some(protocol as i32),
                ip_address: Some(ip.to_string()),
            }],
            ..Default::default()
        }],
        cgroup_info: None,
        executor_pid,
    }
}
