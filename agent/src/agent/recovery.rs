//! Recovery after an agent restart: read `work_dir/meta`, re-attach live
//! executors of checkpointing frameworks, report the dead ones, restore the
//! status update streams, and kill what nobody will re-attach.

use super::*;

impl Agent {
    /// Whether recovery has finished (the executor API answers 503 before).
    pub fn is_recovered(&self) -> bool {
        self.recovered.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Reads the checkpoints: returns the agent id to re-register with, and
    /// re-attaches or reports the executors found.
    pub async fn recover(self: &Arc<Self>) -> Result<Option<pb::AgentId>, AgentError> {
        let result = self.recover_checkpoints().await;
        self.recovered
            .store(true, std::sync::atomic::Ordering::Release);
        result
    }

    async fn recover_checkpoints(self: &Arc<Self>) -> Result<Option<pb::AgentId>, AgentError> {
        let recovered = checkpoint::recover(&self.meta)?;
        {
            let mut state = self.lock();
            for error in &recovered.errors {
                tracing::error!("recovery: {error}");
            }
            state.metrics.recovery_errors += recovered.errors.len() as u64;
            state.recovery_errors = recovered.errors.clone();
        }
        if self.config.recover == RecoverMode::Cleanup {
            self.kill_orphans(&HashSet::new()).await;
            let _ =
                std::fs::remove_dir_all(self.meta.latest().parent().unwrap_or(&self.meta.latest()));
            return Ok(None);
        }
        let Some(info) = recovered.info else {
            self.kill_orphans(&HashSet::new()).await;
            return Ok(None);
        };
        let Some(agent_id) = info.id.clone() else {
            return Ok(None);
        };
        let mut keep = HashSet::new();
        let mut dead = Vec::new();
        {
            let mut state = self.lock();
            state.info.id = Some(agent_id.clone());
            state.checkpointed_resources = recovered.resources.clone();
            for rf in &recovered.frameworks {
                let fw = fw_id(&rf.info);
                let mut framework = Framework {
                    info: rf.info.clone(),
                    executors: BTreeMap::new(),
                    completed_executors: VecDeque::new(),
                };
                for re in &rf.executors {
                    let Some(run) = &re.run else { continue };
                    let exec_id = re.info.executor_id.value.clone();
                    let alive = !run.completed && run.pid.is_some_and(containerizer::process_alive);
                    let mut tasks = BTreeMap::new();
                    for (task, records) in &run.tasks {
                        let mut task = task.clone();
                        let mut pending: VecDeque<link::StatusUpdate> = VecDeque::new();
                        let mut seen = HashSet::new();
                        for record in records {
                            match record {
                                UpdateRecord::Update(u) => {
                                    if let Some(uuid) = &u.status.uuid {
                                        seen.insert(uuid.clone());
                                    }
                                    task.state = u.status.state;
                                    task.statuses.push(u.status.clone());
                                    pending.push_back(u.clone());
                                }
                                UpdateRecord::Ack(uuid) => {
                                    if pending.front().and_then(|u| u.status.uuid.as_deref())
                                        == Some(uuid.as_slice())
                                    {
                                        pending.pop_front();
                                    }
                                }
                            }
                        }
                        let file = self
                            .meta
                            .task(
                                &agent_id.value,
                                &fw,
                                &exec_id,
                                &run.container_id,
                                &task.task_id.value,
                            )
                            .join("task.updates");
                        let terminal_acked = is_terminal(task.state) && pending.is_empty();
                        if !pending.is_empty() || !terminal_acked {
                            state.streams.insert(
                                (fw.clone(), task.task_id.value.clone()),
                                UpdateStream {
                                    executor_id: Some(re.info.executor_id.clone()),
                                    pending,
                                    seen,
                                    file: Some(file),
                                    backoff: STATUS_UPDATE_RETRY_MIN,
                                    next_retry: Instant::now(),
                                },
                            );
                        }
                        if terminal_acked {
                            continue;
                        }
                        tasks.insert(task.task_id.value.clone(), task);
                    }
                    if !alive && tasks.values().all(|t| is_terminal(t.state)) && run.completed {
                        continue;
                    }
                    let limits = limits_of(
                        &re.info
                            .resources
                            .iter()
                            .cloned()
                            .chain(tasks.values().flat_map(|t| t.resources.clone()))
                            .collect::<Vec<_>>(),
                    );
                    let cid = pb::ContainerId {
                        value: run.container_id.clone(),
                        parent: None,
                    };
                    let group = Arc::new(self.isolator.load(&self.isolator.group_name(&cid)));
                    let command_executor = re.info.command.as_ref().is_some_and(|c| {
                        c.arguments.iter().any(|a| a == "command") && c.arguments.len() == 3
                    });
                    let default_executor = re.info.command.as_ref().is_some_and(|c| {
                        c.arguments.iter().any(|a| a == "default") && c.arguments.len() == 3
                    });
                    framework.executors.insert(
                        exec_id.clone(),
                        Executor {
                            info: re.info.clone(),
                            container_id: run.container_id.clone(),
                            directory: self.sandbox_dir(
                                &agent_id.value,
                                &fw,
                                &exec_id,
                                &run.container_id,
                            ),
                            state: ExecutorState::Registering,
                            queued: Vec::new(),
                            tasks,
                            connection: None,
                            pid: run.pid,
                            checkpoint: true,
                            group: Some(Arc::clone(&group)),
                            limits,
                            termination: None,
                            command_executor,
                            default_executor,
                            pending_kills: Vec::new(),
                            recovered: true,
                        },
                    );
                    if alive {
                        keep.insert(run.container_id.clone());
                        dead.push((
                            fw.clone(),
                            exec_id.clone(),
                            run.container_id.clone(),
                            run.pid,
                            true,
                            group,
                        ));
                    } else {
                        dead.push((
                            fw.clone(),
                            exec_id.clone(),
                            run.container_id.clone(),
                            run.pid,
                            false,
                            group,
                        ));
                    }
                }
                state.frameworks.insert(fw, framework);
            }
        }
        self.kill_orphans(&keep).await;
        for (fw, exec_id, container_id, pid, alive, group) in dead {
            if alive {
                let pid = pid.unwrap_or(0);
                self.spawn_waiter(
                    fw.clone(),
                    exec_id.clone(),
                    container_id.clone(),
                    Waiter::Pid(pid),
                );
                self.spawn_oom_watch(fw.clone(), exec_id.clone(), container_id.clone(), group);
                let agent = Arc::clone(self);
                let timeout = self.config.reregistration_timeout;
                tokio::spawn(async move {
                    tokio::time::sleep(timeout).await;
                    agent.registration_timed_out(&fw, &exec_id, &container_id, timeout, true);
                });
            } else {
                {
                    let mut state = self.lock();
                    if let Some(e) = state
                        .frameworks
                        .get_mut(&fw)
                        .and_then(|f| f.executors.get_mut(&exec_id))
                    {
                        e.termination = Some(Termination {
                            state: TaskState::TaskFailed,
                            reason: Reason::ExecutorTerminated,
                            message: "Abnormal executor termination: unknown container".into(),
                        });
                    }
                }
                self.executor_terminated(&fw, &exec_id, &container_id, None)
                    .await;
            }
        }
        Ok(Some(agent_id))
    }

    /// Kills containers left by an earlier agent that are not re-attached:
    /// non-checkpointing frameworks' executors, and everything on cleanup.
    async fn kill_orphans(&self, keep: &HashSet<String>) {
        self.kill_runtime_orphans(keep).await;
        let isolator = self.isolator.clone();
        let swept = tokio::task::spawn_blocking(move || isolator.sweep_empty(STALE_GROUP_AGE))
            .await
            .unwrap_or(0);
        if swept > 0 {
            tracing::info!("removed {swept} empty cgroups left by earlier agents");
        }
    }

    async fn kill_runtime_orphans(&self, keep: &HashSet<String>) {
        let root = self
            .config
            .flags
            .work_dir
            .join("runtime")
            .join("containers");
        let Ok(entries) = std::fs::read_dir(&root) else {
            return;
        };
        let mut orphans = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if keep.contains(&name) {
                continue;
            }
            let pid: Option<u32> = std::fs::read_to_string(entry.path().join("pid"))
                .ok()
                .and_then(|p| p.trim().parse().ok());
            let group = std::fs::read_to_string(entry.path().join("group")).ok();
            orphans.push((entry.path(), pid, group));
        }
        let isolator = self.isolator.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for (dir, pid, group) in orphans {
                tracing::info!("killing orphaned container {}", dir.display());
                if let Some(pid) = pid.filter(|p| containerizer::process_alive(*p)) {
                    containerizer::kill_process_group(pid, libc::SIGKILL);
                }
                if let Some(group) = group {
                    let _ = isolator.load(group.trim()).destroy(Duration::from_secs(10));
                }
                let _ = std::fs::remove_dir_all(dir);
            }
        })
        .await;
    }
}
