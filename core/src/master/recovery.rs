//! A newly elected leader rebuilds itself from the registry.
//!
//! The registry says which agents were admitted, which are unreachable or
//! gone, which frameworks exist, and the operator's settings (weights,
//! quota, maintenance). It does not say which tasks run: those arrive when
//! the agents re-register. Until an admitted agent does, it is *recovered*:
//! the master makes no offers of it, reconciliation of its tasks gets no
//! answer, and after `--agent_reregister_timeout` it is marked unreachable
//! (so that frameworks learn TASK_UNREACHABLE or TASK_LOST for what it ran).
//! Frameworks come back inactive and have their failover timeout (at least
//! the re-registration timeout) to re-subscribe with their id.

use std::time::Instant;

use pando_proto::mesos::v1 as pb;
use pando_registry::Registry;

use super::flags::MasterFlags;
use super::registrar::Registrar;
use super::state::{registry_op, Framework, Master, RegistryOp, StartError, UnreachableAgent};

impl Master {
    /// The master a new leader runs: `registry` as the last leader left it,
    /// and `registrar` for what it changes from now on.
    pub fn recover(
        flags: MasterFlags,
        registry: &Registry,
        registrar: Registrar,
    ) -> Result<Master, StartError> {
        // The settings below go through the same methods as the operator
        // calls; what they would record is in the registry already, so they
        // record into a scratch registrar that is then replaced.
        let scratch = Registrar::in_memory(std::sync::Arc::default());
        let mut master = Master::with_registrar(flags, scratch)?;
        let weights: Vec<pb::WeightInfo> = registry
            .weights
            .iter()
            .map(|w| pb::WeightInfo {
                weight: w.weight,
                role: Some(w.role.clone()),
            })
            .collect();
        if !weights.is_empty() {
            let _ = master.update_weights(&weights);
        }
        if !registry.quota_configs.is_empty() {
            let _ = master.update_quota(&registry.quota_configs);
        }
        if let Some(schedule) = registry.schedules.first() {
            let _ = master.update_maintenance_schedule(schedule.clone());
        }
        for machine in &registry.down_machines {
            master.machines_down.insert((
                machine.hostname.clone().unwrap_or_default(),
                machine.ip.clone().unwrap_or_default(),
            ));
        }
        for gone in &registry.gone {
            master
                .gone_agents
                .insert(gone.id.value.clone(), seconds(&gone.timestamp));
        }
        for unreachable in &registry.unreachable {
            let info = unreachable.info.clone().unwrap_or_else(|| pb::AgentInfo {
                id: Some(unreachable.id.clone()),
                ..Default::default()
            });
            master.unreachable_agents.insert(
                unreachable.id.value.clone(),
                UnreachableAgent {
                    info,
                    since: seconds(&unreachable.timestamp),
                },
            );
        }
        for agent in &registry.agents {
            if let Some(id) = agent.info.id.as_ref() {
                master
                    .recovered_agents
                    .insert(id.value.clone(), agent.clone());
            }
        }
        for completed in &registry.completed_frameworks {
            master
                .completed_frameworks
                .push_back(Framework::new(pb::FrameworkInfo {
                    id: Some(completed.clone()),
                    ..Default::default()
                }));
        }
        for framework in &registry.frameworks {
            master.add_recovered_framework(framework.info.clone());
            if let Some(fw) = framework
                .info
                .id
                .as_ref()
                .and_then(|id| master.frameworks.get_mut(&id.value))
            {
                fw.registered_time = framework.registered_time.as_ref().map(seconds);
            }
        }
        master.records = super::records::Records::load(
            super::records::Limits::from_flags(&master.flags),
            registry,
        );
        master.recovery_deadline =
            Instant::now().checked_add(master.flags.agent_reregister_timeout);
        master.registrar = registrar;
        let info = master.info.clone();
        master
            .registrar
            .record(RegistryOp::Elected(registry_op::Elected { info }));
        tracing::info!(
            agents = master.recovered_agents.len(),
            frameworks = master.frameworks.len(),
            "recovered the registry; waiting for agents to re-register"
        );
        Ok(master)
    }

    /// Marks the agents that did not re-register within
    /// `--agent_reregister_timeout` of the election unreachable.
    pub fn expire_recovered_agents(&mut self, now: Instant) {
        if self.recovered_agents.is_empty() || self.recovery_deadline.is_none_or(|d| now < d) {
            return;
        }
        let since = super::state::unix_now();
        for (id, agent) in std::mem::take(&mut self.recovered_agents) {
            tracing::warn!(agent = %id, "agent did not re-register after the failover; marking it unreachable");
            self.unreachable_agents.insert(
                id.clone(),
                UnreachableAgent {
                    info: agent.info,
                    since,
                },
            );
            self.registrar.record(RegistryOp::MarkAgentUnreachable(
                registry_op::MarkAgentUnreachable {
                    id: pb::AgentId { value: id },
                    timestamp: super::state::time_info(since),
                },
            ));
            self.metrics.agents_unreachable_marked += 1;
        }
    }
}

impl Master {
    /// Forgets unreachable and gone agents older than
    /// `--registry_max_agent_age`, then the oldest beyond
    /// `--registry_max_agent_count`, as Mesos's registry GC does. A forgotten
    /// agent that comes back is admitted like any re-registering agent.
    /// Runs at most once per `--registry_gc_interval`.
    pub fn prune_registry(&mut self, now: Instant) {
        if self
            .last_registry_gc
            .is_some_and(|last| now.duration_since(last) < self.flags.registry_gc_interval)
        {
            return;
        }
        self.last_registry_gc = Some(now);
        let unix_now = super::state::unix_now();
        let max_age = self.flags.registry_max_agent_age.as_secs_f64();
        let mut known: Vec<(f64, String)> = self
            .unreachable_agents
            .iter()
            .map(|(id, a)| (a.since, id.clone()))
            .chain(
                self.gone_agents
                    .iter()
                    .map(|(id, since)| (*since, id.clone())),
            )
            .collect();
        known.sort_by(|a, b| a.0.total_cmp(&b.0));
        let too_many = known
            .len()
            .saturating_sub(self.flags.registry_max_agent_count);
        let pruned: Vec<String> = known
            .into_iter()
            .enumerate()
            .filter(|(i, (since, _))| *i < too_many || unix_now - since > max_age)
            .map(|(_, (_, id))| id)
            .collect();
        if pruned.is_empty() {
            return;
        }
        for id in &pruned {
            self.unreachable_agents.remove(id);
            self.gone_agents.remove(id);
        }
        tracing::info!(
            count = pruned.len(),
            "pruned unreachable and gone agents from the registry"
        );
        self.registrar
            .record(RegistryOp::PruneAgents(registry_op::PruneAgents {
                ids: pruned
                    .into_iter()
                    .map(|value| pb::AgentId { value })
                    .collect(),
            }));
    }
}

fn seconds(t: &pb::TimeInfo) -> f64 {
    t.nanoseconds as f64 / 1e9
}
