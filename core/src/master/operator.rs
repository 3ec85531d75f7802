//! The operator calls of `/api/v1`, and the views of state they share with
//! the legacy JSON endpoints.
//!
//! Read calls build a `master::Response` from state; write calls change it
//! and answer with nothing (the HTTP layer says 200 or 202). The builders
//! here (`agent_summary`, `framework_summary`, `get_state`, ...) are also
//! what the operator event stream and `/master/state` are made of, so every
//! view of a framework or agent is the same.

use std::collections::{BTreeMap, BTreeSet};

use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::master as operator;
use pando_proto::task_state::is_terminal;
use pando_proto::MESOS_VERSION;
use pando_resources::{role, ResourceConversion, ResourceFormat, ResourceQuantities, Resources};

use super::completed::CompletedTask;
use super::metrics::TERMINAL_TASK_METRICS;
use super::state::{time_info, Agent, Framework, Master, MasterError};

impl Master {
    /// The operator API's view of an agent.
    pub fn agent_summary(&self, agent: &Agent) -> operator::response::get_agents::Agent {
        let format = ResourceFormat::PostReservationRefinement;
        let total = agent.total.to_proto_in(format).unwrap_or_default();
        let free = self.allocator.free(agent.id()).cloned().unwrap_or_default();
        let allocated_all = agent.total.checked_sub(&free).unwrap_or_default();
        let offered = self.offered_on(agent.id());
        let allocated = allocated_all.checked_sub(&offered).unwrap_or(allocated_all);
        operator::response::get_agents::Agent {
            agent_info: agent.info.clone(),
            active: agent.connected() && !agent.deactivated && agent.drain_info.is_none(),
            deactivated: Some(agent.deactivated),
            version: agent.version.clone(),
            pid: Some(format!("slave(1)@{}", agent.endpoint())),
            registered_time: Some(time_info(agent.registered_time)),
            reregistered_time: agent.reregistered_time.map(time_info),
            total_resources: total,
            allocated_resources: allocated
                .unallocate()
                .to_proto_in(format)
                .unwrap_or_default(),
            offered_resources: offered.unallocate().to_proto_in(format).unwrap_or_default(),
            capabilities: agent.capabilities.clone(),
            resource_providers: Vec::new(),
            drain_info: agent.drain_info,
            estimated_drain_start_time: None,
        }
    }

    /// Resources offered on an agent and not yet answered.
    pub fn offered_on(&self, agent_id: &str) -> Resources {
        let mut offered = Resources::new();
        for record in self.offers.values().filter(|o| o.agent == agent_id) {
            offered += Resources::from_proto(&record.offer.resources).unwrap_or_default();
        }
        offered
    }

    /// The operator API's view of a framework.
    pub fn framework_summary(
        &self,
        fw: &Framework,
    ) -> operator::response::get_frameworks::Framework {
        let format = ResourceFormat::PostReservationRefinement;
        operator::response::get_frameworks::Framework {
            framework_info: fw.info.clone(),
            active: fw.active,
            connected: fw.connected(),
            recovered: fw.recovered,
            registered_time: fw.registered_time.map(time_info),
            reregistered_time: fw.reregistered_time.map(time_info),
            unregistered_time: fw.unregistered_time.map(time_info),
            offers: fw
                .offers
                .iter()
                .filter_map(|n| self.offers.get(n).map(|o| o.offer.clone()))
                .collect(),
            inverse_offers: fw
                .inverse_offers
                .iter()
                .filter_map(|n| self.inverse_offers.get(n).map(|o| o.inverse_offer.clone()))
                .collect(),
            allocated_resources: self.used_by(fw).to_proto_in(format).unwrap_or_default(),
            offered_resources: self.offered_to(fw).to_proto_in(format).unwrap_or_default(),
            offer_constraints: fw.offer_constraints.clone(),
        }
    }

    /// GET_AGENTS.
    pub fn get_agents(&self) -> operator::response::GetAgents {
        operator::response::GetAgents {
            agents: self
                .agents
                .values()
                .map(|a| self.agent_summary(a))
                .collect(),
            recovered_agents: Vec::new(),
        }
    }

    /// GET_FRAMEWORKS.
    pub fn get_frameworks(&self) -> operator::response::GetFrameworks {
        operator::response::GetFrameworks {
            frameworks: self
                .frameworks
                .values()
                .map(|f| self.framework_summary(f))
                .collect(),
            completed_frameworks: self
                .completed_frameworks
                .iter()
                .map(|f| self.framework_summary(f))
                .collect(),
            recovered_frameworks: Vec::new(),
        }
    }

    /// GET_EXECUTORS.
    pub fn get_executors(&self) -> operator::response::GetExecutors {
        let mut executors = Vec::new();
        for agent in self.agents.values() {
            for executor in agent.executors.values() {
                executors.push(operator::response::get_executors::Executor {
                    executor_info: executor.clone(),
                    agent_id: pb::AgentId {
                        value: agent.id().to_string(),
                    },
                });
            }
        }
        operator::response::GetExecutors {
            executors,
            orphan_executors: Vec::new(),
        }
    }

    /// GET_TASKS.
    pub fn get_tasks(&self) -> operator::response::GetTasks {
        let mut tasks = Vec::new();
        let mut unreachable_tasks = Vec::new();
        let mut completed_tasks = Vec::new();
        for fw in self
            .frameworks
            .values()
            .chain(self.completed_frameworks.iter())
        {
            for task in fw.tasks.values() {
                if is_terminal(task.state) {
                    completed_tasks.push(task.clone());
                } else {
                    tasks.push(task.clone());
                }
            }
            unreachable_tasks.extend(fw.unreachable_tasks.values().cloned());
            completed_tasks.extend(fw.completed_tasks.iter().map(CompletedTask::task));
        }
        operator::response::GetTasks {
            pending_tasks: Vec::new(),
            tasks,
            unreachable_tasks,
            completed_tasks,
            orphan_tasks: Vec::new(),
        }
    }

    /// GET_STATE: tasks, executors, frameworks and agents together.
    pub fn get_state(&self) -> operator::response::GetState {
        operator::response::GetState {
            get_tasks: Some(self.get_tasks()),
            get_executors: Some(self.get_executors()),
            get_frameworks: Some(self.get_frameworks()),
            get_agents: Some(self.get_agents()),
        }
    }

    /// GET_ROLES: every role with a weight, a framework, or resources.
    pub fn get_roles(&self) -> operator::response::GetRoles {
        let mut names: BTreeSet<String> = self.weights.keys().cloned().collect();
        names.extend(self.quotas.keys().cloned());
        let mut frameworks_by_role: BTreeMap<String, Vec<pb::FrameworkId>> = BTreeMap::new();
        for fw in self.frameworks.values() {
            for r in fw.roles() {
                names.insert(r.clone());
                frameworks_by_role
                    .entry(r)
                    .or_default()
                    .push(pb::FrameworkId {
                        value: fw.id().to_string(),
                    });
            }
        }
        let mut used_by_role: BTreeMap<String, Resources> = BTreeMap::new();
        for fw in self.frameworks.values() {
            for (r, resources) in self.used_by(fw).allocations() {
                *used_by_role.entry(r).or_default() += resources;
            }
        }
        names.extend(used_by_role.keys().cloned());
        let roles = names
            .into_iter()
            .map(|name| pb::Role {
                weight: self.weights.get(&name).copied().unwrap_or(1.0),
                frameworks: frameworks_by_role.remove(&name).unwrap_or_default(),
                resources: used_by_role
                    .remove(&name)
                    .map(|r| r.unallocate().to_proto())
                    .unwrap_or_default(),
                name,
            })
            .collect();
        operator::response::GetRoles { roles }
    }

    /// GET_WEIGHTS.
    pub fn get_weights(&self) -> operator::response::GetWeights {
        operator::response::GetWeights {
            weight_infos: self
                .weights
                .iter()
                .map(|(r, w)| pb::WeightInfo {
                    weight: *w,
                    role: Some(r.clone()),
                })
                .collect(),
        }
    }

    /// UPDATE_WEIGHTS: all or nothing.
    pub fn update_weights(&mut self, infos: &[pb::WeightInfo]) -> Result<(), MasterError> {
        for info in infos {
            let r = info.role.as_deref().unwrap_or("");
            role::validate(r).map_err(|e| MasterError::BadRequest(e.to_string()))?;
            if r == "*" {
                return Err(MasterError::BadRequest(
                    "Updating weight for role '*' is not allowed".into(),
                ));
            }
            if !(info.weight.is_finite() && info.weight > 0.0) {
                return Err(MasterError::BadRequest(format!(
                    "Invalid weight '{}' for role '{r}': weights must be positive",
                    info.weight
                )));
            }
        }
        for info in infos {
            let r = info.role.clone().unwrap_or_default();
            let _ = self.allocator.update_weight(&r, info.weight);
            self.weights.insert(r, info.weight);
        }
        let weights = infos
            .iter()
            .map(|i| pando_registry::model::registry::Weight {
                role: i.role.clone().unwrap_or_default(),
                weight: i.weight,
            })
            .collect();
        self.registrar
            .record(super::state::RegistryOp::UpdateWeights(
                super::state::registry_op::UpdateWeights { weights },
            ));
        self.poke_allocator();
        Ok(())
    }

    /// GET_LOGGING_LEVEL: the verbosity in force (0 unless raised).
    pub fn logging_level(&self) -> u32 {
        match self.logging_override {
            Some((level, until)) if std::time::Instant::now() < until => level,
            _ => 0,
        }
    }

    /// SET_LOGGING_LEVEL: raises verbosity for a while, then it reverts.
    pub fn set_logging_level(&mut self, level: u32, duration_nanos: i64) {
        let duration = std::time::Duration::from_nanos(u64::try_from(duration_nanos).unwrap_or(0));
        self.logging_override = std::time::Instant::now()
            .checked_add(duration)
            .map(|until| (level, until));
    }

    /// GET_MASTER.
    pub fn get_master(&self) -> operator::response::GetMaster {
        operator::response::GetMaster {
            master_info: Some(self.info.clone()),
            start_time: Some(self.start_time),
            elected_time: self.elected_time,
        }
    }

    /// GET_VERSION.
    pub fn get_version(&self) -> operator::response::GetVersion {
        operator::response::GetVersion {
            version_info: version_info(),
        }
    }

    /// GET_FLAGS.
    pub fn get_flags(&self) -> operator::response::GetFlags {
        operator::response::GetFlags {
            flags: self
                .flags
                .to_pairs()
                .into_iter()
                .map(|(name, value)| pb::Flag {
                    name,
                    value: Some(value),
                })
                .collect(),
        }
    }

    /// The metrics snapshot, with Mesos's names.
    pub fn metrics_snapshot(&self) -> BTreeMap<String, f64> {
        let mut m: BTreeMap<String, f64> = BTreeMap::new();
        let mut put = |k: &str, v: f64| {
            m.insert(k.to_string(), v);
        };
        put("master/elected", if self.elected { 1.0 } else { 0.0 });
        if let Ok(r) = self.registrar.metrics.lock() {
            put("registrar/queued_operations", r.queued_operations as f64);
            put(
                "registrar/registry_size_bytes",
                r.registry_size_bytes as f64,
            );
            put("registrar/state_fetch_ms", r.state_fetch_ms);
            put("registrar/state_store_ms", r.state_store_ms);
            let mut samples: Vec<f64> = r.store_samples.iter().copied().collect();
            samples.sort_by(f64::total_cmp);
            let at = |q: f64| -> f64 {
                if samples.is_empty() {
                    return 0.0;
                }
                let i = ((samples.len() - 1) as f64 * q).round() as usize;
                samples[i.min(samples.len() - 1)]
            };
            put("registrar/state_store_ms/count", samples.len() as f64);
            put("registrar/state_store_ms/min", at(0.0));
            put("registrar/state_store_ms/p50", at(0.5));
            put("registrar/state_store_ms/p90", at(0.9));
            put("registrar/state_store_ms/p99", at(0.99));
            put("registrar/state_store_ms/max", at(1.0));
        }
        // Adapter records as the leader holds them (registry_size_bytes
        // counts them too, but only as of the election).
        put("registrar/records", self.records.count() as f64);
        put("registrar/records_bytes", self.records.bytes() as f64);
        put("master/uptime_secs", self.uptime_secs());
        let active_frameworks = self.frameworks.values().filter(|f| f.active).count();
        put("master/frameworks_active", active_frameworks as f64);
        put(
            "master/frameworks_inactive",
            (self.frameworks.len() - active_frameworks) as f64,
        );
        put(
            "master/frameworks_connected",
            self.frameworks.values().filter(|f| f.connected()).count() as f64,
        );
        put(
            "master/frameworks_disconnected",
            self.frameworks.values().filter(|f| !f.connected()).count() as f64,
        );
        let connected = self.agents.values().filter(|a| a.connected()).count();
        let active = self
            .agents
            .values()
            .filter(|a| a.connected() && !a.deactivated)
            .count();
        put("master/slaves_active", active as f64);
        put(
            "master/slaves_inactive",
            (self.agents.len() - active) as f64,
        );
        put("master/slaves_connected", connected as f64);
        put(
            "master/slaves_disconnected",
            (self.agents.len() - connected) as f64,
        );
        put(
            "master/slaves_unreachable",
            self.unreachable_agents.len() as f64,
        );
        put("master/agents_active", active as f64);
        put(
            "master/agents_inactive",
            (self.agents.len() - active) as f64,
        );
        put("master/agents_connected", connected as f64);
        put(
            "master/agents_disconnected",
            (self.agents.len() - connected) as f64,
        );
        put(
            "master/agents_unreachable",
            self.unreachable_agents.len() as f64,
        );
        put(
            "master/slave_registrations",
            self.metrics.agent_registrations as f64,
        );
        put(
            "master/slave_reregistrations",
            self.metrics.agent_reregistrations as f64,
        );
        put("master/slave_removals", self.metrics.agent_removals as f64);
        put(
            "master/slave_unreachable_completed",
            self.metrics.agents_unreachable_marked as f64,
        );
        let mut by_state: BTreeMap<i32, usize> = BTreeMap::new();
        for fw in self.frameworks.values() {
            for t in fw.tasks.values() {
                *by_state.entry(t.state).or_default() += 1;
            }
        }
        let count = |s: pb::TaskState| by_state.get(&(s as i32)).copied().unwrap_or(0) as f64;
        put("master/tasks_staging", count(pb::TaskState::TaskStaging));
        put("master/tasks_starting", count(pb::TaskState::TaskStarting));
        put("master/tasks_running", count(pb::TaskState::TaskRunning));
        put("master/tasks_killing", count(pb::TaskState::TaskKilling));
        put(
            "master/tasks_unreachable",
            self.frameworks
                .values()
                .map(|f| f.unreachable_tasks.len())
                .sum::<usize>() as f64,
        );
        for name in TERMINAL_TASK_METRICS {
            put(
                name,
                self.metrics.task_states.get(name).copied().unwrap_or(0) as f64,
            );
        }
        let mut total = ResourceQuantities::default();
        let mut free = ResourceQuantities::default();
        for agent in self.agents.values() {
            total.add_all(&agent.total.scalar_quantities());
            if let Some(f) = self.allocator.free(agent.id()) {
                free.add_all(&f.scalar_quantities());
            }
        }
        for name in ["cpus", "mem", "disk", "gpus"] {
            let t = total.get(name).as_f64();
            let used = (t - free.get(name).as_f64()).max(0.0);
            put(&format!("master/{name}_total"), t);
            put(&format!("master/{name}_used"), used);
            put(
                &format!("master/{name}_percent"),
                if t > 0.0 { used / t } else { 0.0 },
            );
        }
        put("master/outstanding_offers", self.offers.len() as f64);
        put(
            "master/messages_decline_offers",
            self.metrics.offers_declined as f64,
        );
        put(
            "master/messages_framework_to_executor",
            self.metrics.framework_messages as f64,
        );
        put(
            "master/valid_status_updates",
            self.metrics.valid_status_updates as f64,
        );
        put(
            "master/invalid_status_updates",
            self.metrics.invalid_status_updates as f64,
        );
        put(
            "master/invalid_scheduler_calls",
            self.metrics.invalid_scheduler_calls as f64,
        );
        for (call, n) in &self.metrics.scheduler_calls {
            put(
                &format!("master/scheduler_calls/{}", call.to_lowercase()),
                *n as f64,
            );
        }
        put("master/event_queue_messages", 0.0);
        put("master/event_queue_http_requests", 0.0);
        put(
            "allocator/mesos/allocation_runs",
            self.allocator.cycles() as f64,
        );
        let runs = &self.metrics.allocation_run_ms;
        put(
            "allocator/mesos/allocation_run_ms",
            runs.last().copied().unwrap_or(0.0),
        );
        if !runs.is_empty() {
            let mut sorted = runs.clone();
            sorted.sort_by(f64::total_cmp);
            let pick = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
            put(
                "allocator/mesos/allocation_run_ms/count",
                sorted.len() as f64,
            );
            put("allocator/mesos/allocation_run_ms/p50", pick(0.5));
            put("allocator/mesos/allocation_run_ms/p99", pick(0.99));
            put("allocator/mesos/allocation_run_ms/max", pick(1.0));
        }
        put("allocator/mesos/event_queue_dispatches", 0.0);
        for name in ["cpus", "mem", "disk", "gpus"] {
            put(
                &format!("allocator/mesos/resources/{name}/total"),
                total.get(name).as_f64(),
            );
            put(
                &format!("allocator/mesos/resources/{name}/offered_or_allocated"),
                (total.get(name).as_f64() - free.get(name).as_f64()).max(0.0),
            );
        }
        put(
            "system/cpus_total",
            std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
        );
        m
    }

    /// GET_METRICS.
    pub fn get_metrics(&self) -> operator::response::GetMetrics {
        operator::response::GetMetrics {
            metrics: self
                .metrics_snapshot()
                .into_iter()
                .map(|(name, value)| pb::Metric {
                    name,
                    value: Some(value),
                })
                .collect(),
        }
    }

    /// TEARDOWN from the operator.
    pub fn operator_teardown(&mut self, framework_id: &str) -> Result<(), MasterError> {
        if !self.frameworks.contains_key(framework_id) {
            return Err(MasterError::BadRequest(
                "No framework found with specified ID".into(),
            ));
        }
        self.remove_framework(framework_id);
        Ok(())
    }

    /// DEACTIVATE_AGENT / REACTIVATE_AGENT.
    pub fn set_agent_deactivated(
        &mut self,
        agent_id: &str,
        deactivated: bool,
    ) -> Result<(), MasterError> {
        let agent = self
            .agents
            .get_mut(agent_id)
            .ok_or_else(|| MasterError::BadRequest(format!("Unknown agent {agent_id}")))?;
        if !deactivated && !agent.deactivated {
            return Err(MasterError::BadRequest("Agent is not deactivated".into()));
        }
        if !deactivated
            && agent
                .drain_info
                .is_some_and(|d| d.state == pb::DrainState::Draining as i32)
        {
            return Err(MasterError::BadRequest(
                "Agent is draining; it cannot be reactivated until draining completes".into(),
            ));
        }
        agent.deactivated = deactivated;
        let connected = agent.connected();
        self.record_agent_state(agent_id);
        if let Ok(decisions) = self
            .allocator
            .set_agent_active(agent_id, !deactivated && connected)
        {
            self.rescind(decisions);
        }
        self.poke_allocator();
        Ok(())
    }

    /// DRAIN_AGENT: no more offers, and every task is killed (with the
    /// grace period given); the agent may be marked gone afterwards.
    pub fn drain_agent(
        &mut self,
        agent_id: &str,
        max_grace_period: Option<pb::DurationInfo>,
        mark_gone: bool,
    ) -> Result<(), MasterError> {
        let agent = self
            .agents
            .get_mut(agent_id)
            .ok_or_else(|| MasterError::BadRequest(format!("Unknown agent {agent_id}")))?;
        agent.deactivated = true;
        agent.drain_info = Some(pb::DrainInfo {
            state: pb::DrainState::Draining as i32,
            config: pb::DrainConfig {
                max_grace_period,
                mark_gone: Some(mark_gone),
            },
        });
        let tasks: Vec<(String, String)> = agent.tasks.iter().cloned().collect();
        self.record_agent_state(agent_id);
        if let Ok(decisions) = self.allocator.set_agent_active(agent_id, false) {
            self.rescind(decisions);
        }
        if tasks.is_empty() {
            self.check_drained(agent_id);
        }
        for (fw_id, task_id) in tasks {
            let kill = pando_proto::mesos::v1::scheduler::call::Kill {
                task_id: pb::TaskId { value: task_id },
                agent_id: Some(pb::AgentId {
                    value: agent_id.to_string(),
                }),
                kill_policy: max_grace_period.map(|g| pb::KillPolicy {
                    grace_period: Some(g),
                }),
            };
            self.kill(&fw_id, &kill);
        }
        Ok(())
    }

    /// RESERVE_RESOURCES / UNRESERVE_RESOURCES / CREATE_VOLUMES /
    /// DESTROY_VOLUMES: a change of form on an agent's free resources.
    pub fn operator_convert(
        &mut self,
        agent_id: &str,
        conversion: ResourceConversion,
    ) -> Result<(), MasterError> {
        if !self.agents.contains_key(agent_id) {
            return Err(MasterError::BadRequest(format!("Unknown agent {agent_id}")));
        }
        self.allocator
            .convert_free(agent_id, &conversion.consumed, &conversion.converted)
            .map_err(|e| MasterError::Conflict(e.to_string()))?;
        // The allocator changed its totals; the master's view follows.
        if let Some(agent) = self.agents.get_mut(agent_id) {
            if let Ok(after) = agent.total.apply(&conversion) {
                agent.total = after;
            }
        }
        self.apply_checkpoint_only(agent_id, &conversion);
        self.poke_allocator();
        Ok(())
    }

    fn apply_checkpoint_only(&mut self, agent_id: &str, conversion: &ResourceConversion) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        let keep =
            |r: &pando_resources::Resource| r.is_dynamically_reserved() || r.is_persistent_volume();
        let mut checkpointed = Resources::from_proto(&agent.checkpointed).unwrap_or_default();
        checkpointed = checkpointed
            .checked_sub(&conversion.consumed.filter(keep))
            .unwrap_or(checkpointed);
        checkpointed += conversion.converted.filter(keep);
        agent.checkpointed = checkpointed.to_proto();
        agent.send(pando_link::master_message::Message::CheckpointResources(
            pando_link::CheckpointResources {
                resources: agent.checkpointed.clone(),
            },
        ));
        self.record_checkpoint(agent_id);
    }

    /// GET_QUOTA.
    pub fn get_quota(&self) -> operator::response::GetQuota {
        operator::response::GetQuota {
            status: pb::quota::QuotaStatus {
                infos: Vec::new(),
                configs: self.quotas.values().cloned().collect(),
            },
        }
    }

    /// UPDATE_QUOTA: all or nothing.
    pub fn update_quota(&mut self, configs: &[pb::quota::QuotaConfig]) -> Result<(), MasterError> {
        let mut parsed = Vec::new();
        for config in configs {
            role::validate(&config.role).map_err(|e| MasterError::BadRequest(e.to_string()))?;
            if config.role == "*" {
                return Err(MasterError::BadRequest(
                    "Invalid QuotaConfig: setting quota on the '*' role is not allowed".into(),
                ));
            }
            let mut limits = ResourceQuantities::default();
            for (name, value) in &config.limits {
                let amount = pando_resources::Scalar::from_f64(value.value)
                    .map_err(|e| MasterError::BadRequest(format!("Invalid QuotaConfig: {e}")))?;
                limits.add(name, amount);
            }
            for (name, value) in &config.guarantees {
                let limit = config.limits.get(name).map(|v| v.value);
                if limit.is_some_and(|l| l < value.value) {
                    return Err(MasterError::BadRequest(format!(
                        "Invalid QuotaConfig: guarantee of '{name}' exceeds its limit"
                    )));
                }
            }
            parsed.push((config.clone(), limits));
        }
        for (config, limits) in parsed {
            let unlimited = config.limits.is_empty() && config.guarantees.is_empty();
            let _ = self
                .allocator
                .update_quota(&config.role, (!config.limits.is_empty()).then_some(limits));
            if unlimited {
                self.quotas.remove(&config.role);
            } else {
                self.quotas.insert(config.role.clone(), config);
            }
        }
        self.registrar.record(super::state::RegistryOp::UpdateQuota(
            super::state::registry_op::UpdateQuota {
                configs: configs.to_vec(),
            },
        ));
        self.poke_allocator();
        Ok(())
    }
}

/// What Pando reports as its build date: its package version, since builds
/// are reproducible and carry no clock.
const BUILD_DATE: &str = concat!("pando-", env!("CARGO_PKG_VERSION"));

/// The version Pando reports: the Mesos API version it implements.
pub fn version_info() -> pb::VersionInfo {
    pb::VersionInfo {
        version: MESOS_VERSION.to_string(),
        build_date: Some(BUILD_DATE.to_string()),
        build_time: Some(0.0),
        build_user: Some("pando".to_string()),
        git_sha: None,
        git_branch: None,
        git_tag: Some(format!("pando-{}", env!("CARGO_PKG_VERSION"))),
    }
}
