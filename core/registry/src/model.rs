//! The registry's state and how each operation changes it.
//!
//! [`Registry`] and [`Operation`] are the protobuf messages of
//! `pando/registry.proto`, so that the log and snapshots hold a stable,
//! versionable encoding. [`apply`] is the one function that changes a
//! registry: every master runs it on the same operations in the same order
//! and so holds the same registry. It never fails: an operation that names
//! something the registry does not hold (an agent already removed, say)
//! changes nothing, because the leader may have recorded it while an earlier
//! operation was still on its way into the log.

use pando_proto::mesos::v1 as pb;
pub use pando_proto::registry::{operation, registry, Operation, Operations, Registry};

/// Applies `operation` to `registry`.
pub fn apply(registry: &mut Registry, operation: &Operation) {
    use operation::Operation as Op;
    let Some(op) = &operation.operation else {
        return;
    };
    match op {
        Op::Elected(elected) => registry.master = Some(elected.info.clone()),
        Op::AdmitAgent(admit) => {
            let id = agent_id(&admit.info);
            registry.unreachable.retain(|a| a.id.value != id);
            match find_agent(registry, &id) {
                Some(agent) => agent.info = admit.info.clone(),
                None => registry.agents.push(registry::Agent {
                    info: admit.info.clone(),
                    drain_info: None,
                    deactivated: None,
                    checkpointed_resources: Vec::new(),
                }),
            }
        }
        Op::UpdateAgent(update) => {
            let id = agent_id(&update.info);
            if let Some(agent) = find_agent(registry, &id) {
                agent.info = update.info.clone();
            }
        }
        Op::MarkAgentUnreachable(mark) => {
            let Some(index) = registry
                .agents
                .iter()
                .position(|a| agent_id(&a.info) == mark.id.value)
            else {
                return;
            };
            let agent = registry.agents.remove(index);
            registry.unreachable.push(registry::UnreachableAgent {
                id: mark.id.clone(),
                timestamp: mark.timestamp,
                drain_info: agent.drain_info,
                deactivated: agent.deactivated,
                info: Some(agent.info),
                checkpointed_resources: agent.checkpointed_resources,
            });
        }
        Op::MarkAgentReachable(mark) => {
            let id = agent_id(&mark.info);
            let Some(index) = registry.unreachable.iter().position(|a| a.id.value == id) else {
                return;
            };
            let was = registry.unreachable.remove(index);
            if find_agent(registry, &id).is_none() {
                registry.agents.push(registry::Agent {
                    info: mark.info.clone(),
                    drain_info: was.drain_info,
                    deactivated: was.deactivated,
                    checkpointed_resources: was.checkpointed_resources,
                });
            }
        }
        Op::MarkAgentGone(mark) => {
            registry
                .agents
                .retain(|a| agent_id(&a.info) != mark.id.value);
            registry.unreachable.retain(|a| a.id.value != mark.id.value);
            if !registry.gone.iter().any(|g| g.id.value == mark.id.value) {
                registry.gone.push(registry::GoneAgent {
                    id: mark.id.clone(),
                    timestamp: mark.timestamp,
                });
            }
        }
        Op::RemoveAgent(remove) => {
            registry
                .agents
                .retain(|a| agent_id(&a.info) != remove.id.value);
            registry
                .unreachable
                .retain(|a| a.id.value != remove.id.value);
        }
        Op::SetAgentState(state) => {
            if let Some(agent) = find_agent(registry, &state.id.value) {
                agent.drain_info = state.drain_info;
                agent.deactivated = Some(state.deactivated);
            } else if let Some(agent) = registry
                .unreachable
                .iter_mut()
                .find(|a| a.id.value == state.id.value)
            {
                agent.drain_info = state.drain_info;
                agent.deactivated = Some(state.deactivated);
            }
        }
        Op::CheckpointResources(checkpoint) => {
            if let Some(agent) = find_agent(registry, &checkpoint.id.value) {
                agent.checkpointed_resources = checkpoint.resources.clone();
            }
        }
        Op::PruneAgents(prune) => {
            let pruned = |id: &pb::AgentId| prune.ids.iter().any(|p| p.value == id.value);
            registry.unreachable.retain(|a| !pruned(&a.id));
            registry.gone.retain(|a| !pruned(&a.id));
        }
        Op::AddFramework(add) => {
            let id = framework_id(&add.info);
            match registry
                .frameworks
                .iter_mut()
                .find(|f| framework_id(&f.info) == id)
            {
                Some(framework) => {
                    framework.info = add.info.clone();
                    if framework.registered_time.is_none() {
                        framework.registered_time = add.registered_time;
                    }
                }
                None => registry.frameworks.push(registry::Framework {
                    info: add.info.clone(),
                    registered_time: add.registered_time,
                }),
            }
        }
        Op::RemoveFramework(remove) => {
            registry
                .frameworks
                .retain(|f| framework_id(&f.info) != remove.id.value);
            if !registry
                .completed_frameworks
                .iter()
                .any(|f| f.value == remove.id.value)
            {
                registry.completed_frameworks.push(remove.id.clone());
            }
        }
        Op::UpdateSchedule(update) => {
            registry.schedules = vec![update.schedule.clone()];
        }
        Op::SetMachinesDown(set) => {
            for machine in &set.machines {
                registry.down_machines.retain(|m| m != machine);
                if set.down {
                    registry.down_machines.push(machine.clone());
                }
            }
        }
        Op::UpdateQuota(update) => {
            for config in &update.configs {
                registry.quota_configs.retain(|c| c.role != config.role);
                if !config.guarantees.is_empty() || !config.limits.is_empty() {
                    registry.quota_configs.push(config.clone());
                }
            }
        }
        Op::UpdateWeights(update) => {
            for weight in &update.weights {
                registry.weights.retain(|w| w.role != weight.role);
                registry.weights.push(weight.clone());
            }
        }
    }
}

/// Applies a batch, in order.
pub fn apply_all(registry: &mut Registry, operations: &Operations) {
    for operation in &operations.operations {
        apply(registry, operation);
    }
}

/// Wraps an operation for a batch.
pub fn operation(op: operation::Operation) -> Operation {
    Operation {
        operation: Some(op),
    }
}

fn find_agent<'a>(registry: &'a mut Registry, id: &str) -> Option<&'a mut registry::Agent> {
    registry.agents.iter_mut().find(|a| agent_id(&a.info) == id)
}

fn agent_id(info: &pb::AgentInfo) -> String {
    info.id
        .as_ref()
        .map(|i| i.value.clone())
        .unwrap_or_default()
}

fn framework_id(info: &pb::FrameworkInfo) -> String {
    info.id
        .as_ref()
        .map(|i| i.value.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use operation::Operation as Op;

    fn info(id: &str) -> pb::AgentInfo {
        pb::AgentInfo {
            hostname: format!("host-{id}"),
            id: Some(pb::AgentId { value: id.into() }),
            ..Default::default()
        }
    }

    fn time(nanos: i64) -> pb::TimeInfo {
        pb::TimeInfo { nanoseconds: nanos }
    }

    #[test]
    fn an_unreachable_agent_keeps_its_reservations_and_drain_state_when_it_returns() {
        let mut r = Registry::default();
        apply(
            &mut r,
            &operation(Op::AdmitAgent(operation::AdmitAgent { info: info("a1") })),
        );
        let reserved = pb::Resource {
            name: "cpus".into(),
            ..Default::default()
        };
        apply(
            &mut r,
            &operation(Op::CheckpointResources(operation::CheckpointResources {
                id: pb::AgentId { value: "a1".into() },
                resources: vec![reserved.clone()],
            })),
        );
        apply(
            &mut r,
            &operation(Op::SetAgentState(operation::SetAgentState {
                id: pb::AgentId { value: "a1".into() },
                drain_info: None,
                deactivated: true,
            })),
        );
        apply(
            &mut r,
            &operation(Op::MarkAgentUnreachable(operation::MarkAgentUnreachable {
                id: pb::AgentId { value: "a1".into() },
                timestamp: time(5),
            })),
        );
        assert!(r.agents.is_empty());
        assert_eq!(r.unreachable.len(), 1);
        apply(
            &mut r,
            &operation(Op::MarkAgentReachable(operation::MarkAgentReachable {
                info: info("a1"),
            })),
        );
        assert!(r.unreachable.is_empty());
        assert_eq!(r.agents[0].checkpointed_resources, vec![reserved]);
        assert_eq!(r.agents[0].deactivated, Some(true));
    }

    #[test]
    fn a_gone_agent_leaves_every_other_list_and_is_recorded_once() {
        let mut r = Registry::default();
        apply(
            &mut r,
            &operation(Op::AdmitAgent(operation::AdmitAgent { info: info("a1") })),
        );
        for _ in 0..2 {
            apply(
                &mut r,
                &operation(Op::MarkAgentGone(operation::MarkAgentGone {
                    id: pb::AgentId { value: "a1".into() },
                    timestamp: time(7),
                })),
            );
        }
        assert!(r.agents.is_empty());
        assert_eq!(r.gone.len(), 1);
    }

    #[test]
    fn quota_without_guarantees_or_limits_removes_the_role() {
        let mut r = Registry::default();
        let mut config = pando_proto::mesos::v1::quota::QuotaConfig {
            role: "dev".into(),
            ..Default::default()
        };
        config
            .limits
            .insert("cpus".into(), pb::value::Scalar { value: 2.0 });
        apply(
            &mut r,
            &operation(Op::UpdateQuota(operation::UpdateQuota {
                configs: vec![config.clone()],
            })),
        );
        assert_eq!(r.quota_configs, vec![config]);
        apply(
            &mut r,
            &operation(Op::UpdateQuota(operation::UpdateQuota {
                configs: vec![pando_proto::mesos::v1::quota::QuotaConfig {
                    role: "dev".into(),
                    ..Default::default()
                }],
            })),
        );
        assert!(r.quota_configs.is_empty());
    }

    #[test]
    fn removed_frameworks_are_remembered_as_completed() {
        let mut r = Registry::default();
        let fw = pb::FrameworkInfo {
            id: Some(pb::FrameworkId { value: "f1".into() }),
            name: "x".into(),
            ..Default::default()
        };
        apply(
            &mut r,
            &operation(Op::AddFramework(operation::AddFramework {
                info: fw,
                registered_time: Some(time(1)),
            })),
        );
        apply(
            &mut r,
            &operation(Op::RemoveFramework(operation::RemoveFramework {
                id: pb::FrameworkId { value: "f1".into() },
            })),
        );
        assert!(r.frameworks.is_empty());
        assert_eq!(r.completed_frameworks.len(), 1);
    }
}
