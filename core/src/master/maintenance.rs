//! Maintenance: schedules, DRAINING and DOWN machines, inverse offers.
//!
//! An operator posts a schedule of windows, each a list of machines
//! (hostname and/or IP) and an unavailability. Machines in a window are
//! DRAINING: the frameworks using them get inverse offers and answer with
//! ACCEPT_INVERSE_OFFERS or DECLINE_INVERSE_OFFERS. START_MAINTENANCE puts
//! machines DOWN (no offers, their agents' offers rescinded);
//! STOP_MAINTENANCE brings them back and drops them from the schedule.

use std::collections::BTreeSet;
use std::time::Duration;

use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::allocator::{inverse_offer_status, InverseOfferStatus};
use pando_proto::mesos::v1::maintenance::{cluster_status, ClusterStatus, Schedule};

use crate::allocator::{Time, Unavailability};

use super::state::{registry_op, time_info, unix_now, Master, MasterError, RegistryOp};

/// A machine as (hostname, ip), either part possibly empty.
pub type Machine = (String, String);

fn machine(id: &pb::MachineId) -> Machine {
    (
        id.hostname.clone().unwrap_or_default(),
        id.ip.clone().unwrap_or_default(),
    )
}

impl Master {
    /// Agents on a machine: matched by hostname, or by IP when no hostname
    /// is given.
    fn agents_on(&self, m: &Machine) -> Vec<String> {
        self.agents
            .iter()
            .filter(|(_, a)| {
                (!m.0.is_empty() && a.info.hostname == m.0)
                    || (m.0.is_empty() && !m.1.is_empty() && a.info.hostname == m.1)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The scheduled machine an agent runs on, if any.
    pub fn machine_of(&self, agent_id: &str) -> Option<Machine> {
        self.maintenance
            .windows
            .iter()
            .flat_map(|w| w.machine_ids.iter().map(machine))
            .find(|m| self.agents_on(m).iter().any(|a| a == agent_id))
    }

    /// UPDATE_MAINTENANCE_SCHEDULE: replaces the schedule. Machines must be
    /// named, appear in one window only, and DOWN machines must stay in it.
    pub fn update_maintenance_schedule(&mut self, schedule: Schedule) -> Result<(), MasterError> {
        let mut seen = BTreeSet::new();
        for window in &schedule.windows {
            if window.machine_ids.is_empty() {
                return Err(MasterError::BadRequest(
                    "List of machines in the maintenance window is empty".into(),
                ));
            }
            for id in &window.machine_ids {
                let m = machine(id);
                if m.0.is_empty() && m.1.is_empty() {
                    return Err(MasterError::BadRequest(
                        "Both 'hostname' and 'ip' for a machine are empty".into(),
                    ));
                }
                if !seen.insert(m) {
                    return Err(MasterError::BadRequest(
                        "Machine is scheduled in more than one window".into(),
                    ));
                }
            }
        }
        for down in &self.machines_down {
            if !seen.contains(down) {
                return Err(MasterError::BadRequest(format!(
                    "Machine '{}' is DOWN and must stay in the schedule until STOP_MAINTENANCE",
                    if down.0.is_empty() { &down.1 } else { &down.0 }
                )));
            }
        }
        // Machines that left the schedule lose their window.
        let old: BTreeSet<Machine> = self
            .maintenance
            .windows
            .iter()
            .flat_map(|w| w.machine_ids.iter().map(machine))
            .collect();
        for m in old.difference(&seen) {
            for agent in self.agents_on(m) {
                let _ = self.allocator.set_unavailability(&agent, None);
            }
            self.inverse_offer_responses.remove(m);
        }
        for window in &schedule.windows {
            let start_secs = window.unavailability.start.nanoseconds as f64 / 1e9;
            let start = Time(
                u64::try_from(((start_secs - self.start_time).max(0.0) * 1e9) as i64).unwrap_or(0),
            );
            let duration = window
                .unavailability
                .duration
                .map(|d| Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0)));
            for id in &window.machine_ids {
                for agent in self.agents_on(&machine(id)) {
                    let _ = self
                        .allocator
                        .set_unavailability(&agent, Some(Unavailability { start, duration }));
                }
            }
        }
        self.maintenance = schedule;
        self.record_schedule();
        self.poke_allocator();
        Ok(())
    }

    /// Whether a hostname (or IP) is a DOWN machine.
    pub fn machine_down(&self, hostname: &str) -> bool {
        self.machines_down
            .iter()
            .any(|(h, ip)| (!h.is_empty() && h == hostname) || (h.is_empty() && ip == hostname))
    }

    /// The unavailability scheduled for an agent's machine, exactly as the
    /// operator gave it.
    pub fn scheduled_unavailability(&self, agent_id: &str) -> Option<pb::Unavailability> {
        self.maintenance
            .windows
            .iter()
            .find(|w| {
                w.machine_ids
                    .iter()
                    .any(|id| self.agents_on(&machine(id)).iter().any(|a| a == agent_id))
            })
            .map(|w| w.unavailability)
    }

    /// START_MAINTENANCE: the machines go DOWN; their agents are removed
    /// (tasks LOST, or GONE_BY_OPERATOR for partition-aware frameworks) and
    /// told to shut down, and may not register until STOP_MAINTENANCE.
    pub fn start_maintenance(&mut self, machines: &[pb::MachineId]) -> Result<(), MasterError> {
        let scheduled: BTreeSet<Machine> = self
            .maintenance
            .windows
            .iter()
            .flat_map(|w| w.machine_ids.iter().map(machine))
            .collect();
        for id in machines {
            if !scheduled.contains(&machine(id)) {
                return Err(MasterError::BadRequest(format!(
                    "Machine '{}' is not part of a maintenance schedule",
                    id.hostname.as_deref().or(id.ip.as_deref()).unwrap_or("")
                )));
            }
        }
        for id in machines {
            let m = machine(id);
            for agent in self.agents_on(&m) {
                self.send_to_agent(
                    &agent,
                    pando_link::master_message::Message::Shutdown(pando_link::ShutdownAgent {
                        message: Some("Agent's machine is DOWN for maintenance".into()),
                    }),
                );
                self.remove_agent(
                    &agent,
                    None,
                    pb::TaskState::TaskGoneByOperator,
                    pb::task_status::Reason::AgentRemovedByOperator,
                    "Agent is DOWN for maintenance".into(),
                );
                self.registrar
                    .record(RegistryOp::RemoveAgent(registry_op::RemoveAgent {
                        id: pb::AgentId { value: agent },
                    }));
            }
            self.machines_down.insert(m);
        }
        self.registrar
            .record(RegistryOp::SetMachinesDown(registry_op::SetMachinesDown {
                machines: machines.to_vec(),
                down: true,
            }));
        Ok(())
    }

    /// STOP_MAINTENANCE: the machines come back UP and leave the schedule.
    pub fn stop_maintenance(&mut self, machines: &[pb::MachineId]) -> Result<(), MasterError> {
        for id in machines {
            if !self.machines_down.contains(&machine(id)) {
                return Err(MasterError::BadRequest(format!(
                    "Machine '{}' is not DOWN",
                    id.hostname.as_deref().or(id.ip.as_deref()).unwrap_or("")
                )));
            }
        }
        for id in machines {
            let m = machine(id);
            for agent in self.agents_on(&m) {
                let _ = self.allocator.set_agent_down(&agent, false);
            }
            self.machines_down.remove(&m);
            self.inverse_offer_responses.remove(&m);
            for window in &mut self.maintenance.windows {
                window.machine_ids.retain(|x| machine(x) != m);
            }
        }
        self.maintenance
            .windows
            .retain(|w| !w.machine_ids.is_empty());
        self.registrar
            .record(RegistryOp::SetMachinesDown(registry_op::SetMachinesDown {
                machines: machines.to_vec(),
                down: false,
            }));
        self.record_schedule();
        self.poke_allocator();
        Ok(())
    }

    /// Records the schedule, whole, in the registry.
    fn record_schedule(&mut self) {
        let schedule = self.maintenance.clone();
        self.registrar
            .record(RegistryOp::UpdateSchedule(registry_op::UpdateSchedule {
                schedule,
            }));
    }

    /// GET_MAINTENANCE_STATUS: DRAINING machines with the frameworks'
    /// answers, and DOWN machines.
    pub fn maintenance_status(&self) -> ClusterStatus {
        let now = time_info(unix_now());
        let mut status = ClusterStatus::default();
        for window in &self.maintenance.windows {
            for id in &window.machine_ids {
                let m = machine(id);
                if self.machines_down.contains(&m) {
                    status.down_machines.push(id.clone());
                    continue;
                }
                let statuses = self
                    .inverse_offer_responses
                    .get(&m)
                    .map(|answers| {
                        answers
                            .iter()
                            .map(|(fw, accepted)| InverseOfferStatus {
                                status: if *accepted {
                                    inverse_offer_status::Status::Accept as i32
                                } else {
                                    inverse_offer_status::Status::Decline as i32
                                },
                                framework_id: pb::FrameworkId { value: fw.clone() },
                                timestamp: now,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                status
                    .draining_machines
                    .push(cluster_status::DrainingMachine {
                        id: id.clone(),
                        statuses,
                    });
            }
        }
        status
    }
}
