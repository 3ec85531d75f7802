//! Offers: turning the allocator's decisions into OFFERS events, and a
//! framework's ACCEPT into launches and reservation changes.
//!
//! An ACCEPT names offers (all of one agent) and a list of operations. The
//! master checks the offers first; if any is invalid, nothing is done and
//! every task in the call gets TASK_DROPPED (or TASK_LOST for frameworks
//! that are not partition-aware) with REASON_INVALID_OFFERS. Otherwise the
//! operations run in order against the offered resources: RESERVE,
//! UNRESERVE, CREATE and DESTROY change their form, LAUNCH and LAUNCH_GROUP
//! take from them. An invalid task becomes TASK_ERROR with the reason and
//! the message Mesos gives; it never disappears silently. What no operation
//! used goes back to the allocator under the call's filter.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use pando_link::master_message::Message as ToAgent;
use pando_link::{CheckpointResources, RunTask, RunTaskGroup};
use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::master as operator;
use pando_proto::mesos::v1::scheduler as sched;
use pando_resources::{ResourceConversion, ResourceFormat, Resources};

use crate::allocator::Decision;

use super::framework::{refuse_duration, validate_id, IdError};
use super::reservation::{self, ReservationError};
use super::state::{time_info, InverseOfferRecord, Master, OfferRecord};

/// A task that passed validation and waits for the allocator's consent.
struct Launch {
    task: pb::TaskInfo,
    /// The executor the task runs under, when it is not a command task.
    executor: Option<pb::ExecutorInfo>,
    /// Set for the tasks of a LAUNCH_GROUP: the whole group goes together.
    group: Option<usize>,
}

/// Why an ACCEPT's offers are refused as a whole, with Mesos's messages
/// (`validation::offer::validate`). Every task of the call then ends
/// TASK_DROPPED or TASK_LOST with REASON_INVALID_OFFERS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// The call names no offer.
    #[error("No offers specified")]
    NoOffers,
    /// An offer was used, declined, rescinded or never made.
    #[error("Offer {0} is no longer valid")]
    NoLongerValid(String),
    /// An offer is named twice.
    #[error("Duplicate offer {0} in offer list")]
    Duplicate(String),
    /// An offer belongs to another framework.
    #[error("Offer {offer} has invalid framework {owner} while framework {expected} is expected")]
    OtherFramework {
        /// The offer.
        offer: String,
        /// The framework it was made to.
        owner: String,
        /// The framework that accepted it.
        expected: String,
    },
    /// The offers are allocated to different roles.
    #[error("Aggregated offers must be allocated to the same role. Offer {offer} uses role '{role} but another is using role '{other}")]
    MixedRoles {
        /// The offer.
        offer: String,
        /// Its role.
        role: String,
        /// An earlier offer's role.
        other: String,
    },
    /// The offers come from different agents.
    #[error("Aggregated offers must belong to one single agent. Offer {offer} uses agent {agent} and agent {other}")]
    MixedAgents {
        /// The offer.
        offer: String,
        /// Its agent.
        agent: String,
        /// An earlier offer's agent.
        other: String,
    },
    /// The offers' agent has no link to the master now.
    #[error("Agent {0} is not connected")]
    AgentDisconnected(String),
}

/// Why a task or a task group of a LAUNCH or LAUNCH_GROUP is refused, with
/// Mesos's messages (`validation::task`). The task ends TASK_ERROR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// The task has both or neither of a command and an executor.
    #[error("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present")]
    CommandOrExecutor,
    /// The task id breaks Mesos's id rules.
    #[error("Task ID {0}")]
    TaskId(IdError),
    /// The executor id breaks Mesos's id rules.
    #[error("Executor ID {0}")]
    ExecutorId(IdError),
    /// The executor names another framework.
    #[error("ExecutorInfo has an invalid FrameworkID")]
    ExecutorFramework,
    /// A custom executor without a command.
    #[error("Executor must have a command")]
    ExecutorCommand,
    /// The executor runs already with another command or resources.
    #[error("ExecutorInfo is not compatible with existing ExecutorInfo of executor '{0}'")]
    IncompatibleExecutor(String),
    /// Neither the task nor its new executor takes any resources.
    #[error("Task and its executor use no resources")]
    NoResources,
    /// The task needs more than the offers hold (after earlier operations).
    #[error("Task uses more resources {needed} than available {available}")]
    TaskTooLarge {
        /// What it needs.
        needed: String,
        /// What is left.
        available: String,
    },
    /// A task group's executor is not the default executor.
    #[error("The executor must be of type 'DEFAULT'")]
    NotDefaultExecutor,
    /// A task group without tasks.
    #[error("Task group is empty")]
    EmptyGroup,
    /// The task id is in use (or used twice in the call).
    #[error("Task has duplicate ID: {0}")]
    DuplicateTask(String),
    /// A task of a group brings its own executor.
    #[error("Task '{0}' must not have an ExecutorInfo in a task group")]
    ExecutorInGroup(String),
    /// A task of a group has no command.
    #[error("Task '{0}' must have a CommandInfo")]
    NoCommandInGroup(String),
    /// The group needs more than the offers hold.
    #[error("Task group uses more resources {needed} than available {available}")]
    GroupTooLarge {
        /// What it needs.
        needed: String,
        /// What is left.
        available: String,
    },
    /// The task names another agent than the offers'.
    #[error("Task uses invalid agent: {given} while agent {expected} is expected")]
    WrongAgent {
        /// The agent the task names.
        given: String,
        /// The offers' agent.
        expected: String,
    },
    /// A negative kill grace period.
    #[error("Task's 'kill_policy.grace_period' must be non-negative")]
    NegativeGracePeriod,
    /// The task's resources do not parse.
    #[error("Task uses invalid resources: {0}")]
    TaskResources(String),
    /// The executor's resources do not parse.
    #[error("Executor uses invalid resources: {0}")]
    ExecutorResources(String),
    /// A resource is allocated to another role than the offers'.
    #[error("Invalid resources: resource {resource} is allocated to role '{allocated}', not to the offer's role '{role}'")]
    WrongAllocation {
        /// The resource.
        resource: String,
        /// The role it names.
        allocated: String,
        /// The offers' role.
        role: String,
    },
}

/// Why a RESERVE, UNRESERVE, CREATE or DESTROY inside an ACCEPT is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    /// The operation lacks the field its type needs.
    #[error("{operation} without '{field}'")]
    Missing {
        /// The operation's type.
        operation: &'static str,
        /// The field.
        field: &'static str,
    },
    /// The operation is not one of the four changes of form.
    #[error("{0} is not a reservation operation")]
    NotReservation(String),
    /// The change itself is refused.
    #[error(transparent)]
    Reservation(#[from] ReservationError),
}

impl Master {
    /// Runs one allocation cycle and sends what it decided.
    pub fn run_allocation(&mut self) {
        let started = Instant::now();
        let decisions = self.allocator.allocate(self.now());
        let mut offers: BTreeMap<String, Vec<pb::Offer>> = BTreeMap::new();
        for decision in decisions {
            match decision {
                Decision::Offer(o) => {
                    let Some(agent) = self.agents.get(&o.agent) else {
                        continue;
                    };
                    let framework = self.frameworks.get(&o.framework);
                    let refinement = framework.is_some_and(|f| {
                        f.has_capability(
                            pb::framework_info::capability::Type::ReservationRefinement,
                        )
                    });
                    let format = if refinement {
                        ResourceFormat::PostReservationRefinement
                    } else {
                        ResourceFormat::PreReservationRefinement
                    };
                    let resources = o
                        .resources
                        .to_proto_in(format)
                        .unwrap_or_else(|_| o.resources.to_proto());
                    let executor_ids = framework
                        .map(|f| {
                            f.executors
                                .keys()
                                .filter(|(a, _)| *a == o.agent)
                                .map(|(_, e)| pb::ExecutorId { value: e.clone() })
                                .collect()
                        })
                        .unwrap_or_default();
                    let offer = pb::Offer {
                        id: self.offer_id(o.id),
                        framework_id: pb::FrameworkId {
                            value: o.framework.clone(),
                        },
                        agent_id: pb::AgentId {
                            value: o.agent.clone(),
                        },
                        hostname: agent.info.hostname.clone(),
                        url: Some(pb::Url {
                            scheme: "http".into(),
                            address: pb::Address {
                                hostname: Some(agent.info.hostname.clone()),
                                ip: Some(agent.ip()),
                                port: agent.info.port.unwrap_or(5051),
                            },
                            path: Some("/slave(1)".into()),
                            query: Vec::new(),
                            fragment: None,
                        }),
                        domain: agent.info.domain.clone(),
                        resources,
                        attributes: agent.info.attributes.clone(),
                        executor_ids,
                        unavailability: None,
                        allocation_info: Some(pb::resource::AllocationInfo {
                            role: Some(o.role.clone()),
                        }),
                    };
                    if let Some(fw) = self.frameworks.get_mut(&o.framework) {
                        fw.offers.insert(o.id);
                    }
                    self.offers.insert(
                        o.id,
                        OfferRecord {
                            offer: offer.clone(),
                            framework: o.framework.clone(),
                            agent: o.agent.clone(),
                        },
                    );
                    offers.entry(o.framework).or_default().push(offer);
                }
                Decision::Rescind { offer, .. } => self.drop_offer(offer, true),
                Decision::InverseOffer {
                    framework,
                    agent,
                    unavailability,
                } => self.send_inverse_offer(&framework, &agent, unavailability),
            }
        }
        for (framework_id, batch) in offers {
            self.metrics.offers_sent += batch.len() as u64;
            let sent = self.frameworks.get(&framework_id).is_some_and(|fw| {
                fw.send(sched::Event {
                    r#type: Some(sched::event::Type::Offers as i32),
                    offers: Some(sched::event::Offers {
                        offers: batch.clone(),
                    }),
                    ..Default::default()
                })
            });
            if !sent {
                // The connection went away between the decision and now:
                // give the resources straight back.
                for offer in &batch {
                    if let Some(n) = self.offer_number(&offer.id) {
                        let _ =
                            self.allocator
                                .decline(n, Some(std::time::Duration::ZERO), self.now());
                        self.drop_offer(n, false);
                    }
                }
            }
        }
        self.metrics
            .record_allocation(started.elapsed().as_secs_f64() * 1000.0);
    }

    fn send_inverse_offer(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        unavailability: crate::allocator::Unavailability,
    ) {
        if !self.agents.contains_key(agent_id) {
            return;
        }
        let n = self.new_inverse_offer();
        let start_secs =
            self.start_time + std::time::Duration::from_nanos(unavailability.start.0).as_secs_f64();
        let inverse_offer = pb::InverseOffer {
            id: self.inverse_offer_id(n),
            url: None,
            framework_id: pb::FrameworkId {
                value: framework_id.to_string(),
            },
            agent_id: Some(pb::AgentId {
                value: agent_id.to_string(),
            }),
            unavailability: self
                .scheduled_unavailability(agent_id)
                .unwrap_or(pb::Unavailability {
                    start: time_info(start_secs),
                    duration: unavailability.duration.map(|d| pb::DurationInfo {
                        nanoseconds: i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
                    }),
                }),
            resources: Vec::new(),
        };
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            fw.inverse_offers.insert(n);
            fw.send(sched::Event {
                r#type: Some(sched::event::Type::InverseOffers as i32),
                inverse_offers: Some(sched::event::InverseOffers {
                    inverse_offers: vec![inverse_offer.clone()],
                }),
                ..Default::default()
            });
        }
        self.inverse_offers.insert(
            n,
            InverseOfferRecord {
                inverse_offer,
                framework: framework_id.to_string(),
                agent: agent_id.to_string(),
            },
        );
    }

    /// ACCEPT_INVERSE_OFFERS / DECLINE_INVERSE_OFFERS: records the
    /// framework's answer for the maintenance status.
    pub fn answer_inverse_offers(
        &mut self,
        framework_id: &str,
        ids: &[pb::OfferId],
        accepted: bool,
    ) {
        for id in ids {
            let Some(n) = self.inverse_offer_number(id) else {
                continue;
            };
            let Some(record) = self.inverse_offers.get(&n) else {
                continue;
            };
            if record.framework != framework_id {
                continue;
            }
            let Some(record) = self.inverse_offers.remove(&n) else {
                continue;
            };
            if let Some(fw) = self.frameworks.get_mut(framework_id) {
                fw.inverse_offers.remove(&n);
            }
            if let Some(machine) = self.machine_of(&record.agent) {
                self.inverse_offer_responses
                    .entry(machine)
                    .or_default()
                    .insert(framework_id.to_string(), accepted);
            }
        }
    }

    /// ACCEPT: see the module docs.
    pub fn accept(&mut self, framework_id: &str, accept: sched::call::Accept) {
        let refuse = refuse_duration(accept.filters.as_ref());
        let principal = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.info.principal.clone());
        let partition_aware = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.partition_aware());
        let numbers = match self.validate_offers(framework_id, &accept.offer_ids) {
            Ok(numbers) => numbers,
            Err(message) => {
                // Give back whichever of the offers were still good.
                for id in &accept.offer_ids {
                    if let Some(n) = self.offer_number(id) {
                        if self
                            .offers
                            .get(&n)
                            .is_some_and(|o| o.framework == framework_id)
                        {
                            let _ = self.allocator.decline(
                                n,
                                Some(std::time::Duration::ZERO),
                                self.now(),
                            );
                            self.drop_offer(n, false);
                        }
                    }
                }
                let state = if partition_aware {
                    pb::TaskState::TaskDropped
                } else {
                    pb::TaskState::TaskLost
                };
                for task in launched_tasks(&accept.operations) {
                    let status = self.master_status(
                        &task.task_id,
                        Some(&task.agent_id),
                        state,
                        pb::task_status::Reason::InvalidOffers,
                        format!("Task launched with invalid offers: {message}"),
                    );
                    self.metrics
                        .count_task_state(false, status.state, status.state);
                    self.forward_update(framework_id, status);
                }
                return;
            }
        };
        if numbers.is_empty() {
            return;
        }
        self.metrics.offers_accepted += numbers.len() as u64;
        let first = self.offers.get(&numbers[0]).cloned();
        let Some(first) = first else {
            return;
        };
        let agent_id = first.agent.clone();
        let role = first
            .offer
            .allocation_info
            .as_ref()
            .and_then(|a| a.role.clone())
            .unwrap_or_else(|| "*".to_string());
        let mut available = Resources::new();
        for n in &numbers {
            if let Some(record) = self.offers.get(n) {
                available += Resources::from_proto(&record.offer.resources).unwrap_or_default();
            }
        }
        let available_start = available.clone();

        let mut conversions: Vec<ResourceConversion> = Vec::new();
        let mut launches: Vec<Launch> = Vec::new();
        let mut rejected: Vec<(pb::TaskInfo, pb::task_status::Reason, String)> = Vec::new();
        let mut new_executors: BTreeSet<String> = BTreeSet::new();
        let mut groups = 0usize;
        for op in &accept.operations {
            use pb::offer::operation::Type as Op;
            let kind = op
                .r#type
                .and_then(|t| Op::try_from(t).ok())
                .unwrap_or(Op::Unknown);
            match kind {
                Op::Launch => {
                    let Some(launch) = &op.launch else { continue };
                    for task in &launch.task_infos {
                        match self.validate_task(
                            framework_id,
                            &agent_id,
                            &role,
                            task,
                            &launches,
                            &mut new_executors,
                            &available,
                        ) {
                            Ok((needed, executor)) => {
                                available -= &needed;
                                launches.push(Launch {
                                    task: with_allocation(task, &role),
                                    executor,
                                    group: None,
                                });
                            }
                            Err(refusal) => rejected.push((
                                task.clone(),
                                pb::task_status::Reason::TaskInvalid,
                                refusal.to_string(),
                            )),
                        }
                    }
                }
                Op::LaunchGroup => {
                    let Some(lg) = &op.launch_group else { continue };
                    match self.validate_group(
                        framework_id,
                        &agent_id,
                        &role,
                        lg,
                        &launches,
                        &mut new_executors,
                        &available,
                    ) {
                        Ok(needed) => {
                            available -= &needed;
                            let executor =
                                with_executor_defaults(&lg.executor, framework_id, &role);
                            for task in &lg.task_group.tasks {
                                launches.push(Launch {
                                    task: with_allocation(task, &role),
                                    executor: Some(executor.clone()),
                                    group: Some(groups),
                                });
                            }
                            groups += 1;
                        }
                        Err(refusal) => {
                            let message = refusal.to_string();
                            for task in &lg.task_group.tasks {
                                rejected.push((
                                    task.clone(),
                                    pb::task_status::Reason::TaskGroupInvalid,
                                    message.clone(),
                                ));
                            }
                        }
                    }
                }
                Op::Reserve | Op::Unreserve | Op::Create | Op::Destroy => {
                    match reservation_conversion(kind, op, &role, principal.as_deref()) {
                        Ok(conversion) => match available.apply(&conversion) {
                            Ok(after) => {
                                available = after;
                                conversions.push(conversion);
                            }
                            Err(e) => tracing::warn!(
                                framework = %framework_id,
                                "dropping {kind:?} operation: {e}"
                            ),
                        },
                        Err(e) => tracing::warn!(
                            framework = %framework_id,
                            "dropping invalid {kind:?} operation: {e}"
                        ),
                    }
                }
                _ => tracing::warn!(
                    framework = %framework_id,
                    "dropping unsupported offer operation {kind:?}"
                ),
            }
        }

        // What the launches use, in the offer's form after conversions.
        let mut converted = available_start.clone();
        for c in &conversions {
            if let Ok(after) = converted.apply(c) {
                converted = after;
            }
        }
        let used = converted.checked_sub(&available).unwrap_or_default();
        if let Err(e) =
            self.allocator
                .accept_offers(&numbers, &conversions, &used, refuse, self.now())
        {
            // The checks above make this unreachable in practice; if it
            // happens, nothing was launched and the tasks are told so.
            tracing::error!(framework = %framework_id, "allocator refused an accept: {e}");
            for launch in launches {
                rejected.push((
                    launch.task,
                    pb::task_status::Reason::InvalidOffers,
                    e.to_string(),
                ));
            }
            launches = Vec::new();
            conversions.clear();
        }
        for n in &numbers {
            self.drop_offer(*n, false);
        }
        if !conversions.is_empty() {
            self.apply_conversions(&agent_id, &conversions);
        }
        for (task, reason, message) in rejected {
            let status = self.master_status(
                &task.task_id,
                Some(&task.agent_id),
                pb::TaskState::TaskError,
                reason,
                message,
            );
            self.metrics
                .count_task_state(false, status.state, status.state);
            self.forward_update(framework_id, status);
        }
        self.start_launches(framework_id, &agent_id, launches);
    }

    /// Checks the offers of an ACCEPT: known, this framework's, one agent,
    /// one allocation role, no duplicates. Returns their numbers.
    fn validate_offers(
        &self,
        framework_id: &str,
        ids: &[pb::OfferId],
    ) -> Result<Vec<u64>, OfferError> {
        if ids.is_empty() {
            return Err(OfferError::NoOffers);
        }
        let mut numbers = Vec::new();
        let mut agent: Option<&str> = None;
        let mut role: Option<String> = None;
        for id in ids {
            let n = self
                .offer_number(id)
                .filter(|n| self.offers.contains_key(n))
                .ok_or_else(|| OfferError::NoLongerValid(id.value.clone()))?;
            if numbers.contains(&n) {
                return Err(OfferError::Duplicate(id.value.clone()));
            }
            let record = &self.offers[&n];
            if record.framework != framework_id {
                return Err(OfferError::OtherFramework {
                    offer: id.value.clone(),
                    owner: record.framework.clone(),
                    expected: framework_id.to_string(),
                });
            }
            let r = record
                .offer
                .allocation_info
                .as_ref()
                .and_then(|a| a.role.clone())
                .unwrap_or_default();
            if let Some(previous) = role.as_ref().filter(|p| **p != r) {
                return Err(OfferError::MixedRoles {
                    offer: id.value.clone(),
                    role: r,
                    other: previous.clone(),
                });
            }
            if let Some(previous) = agent.filter(|a| *a != record.agent) {
                return Err(OfferError::MixedAgents {
                    offer: id.value.clone(),
                    agent: record.agent.clone(),
                    other: previous.to_string(),
                });
            }
            agent = Some(&record.agent);
            role = Some(r);
            numbers.push(n);
        }
        if let Some(agent_id) = agent {
            if !self.agents.get(agent_id).is_some_and(|a| a.connected()) {
                return Err(OfferError::AgentDisconnected(agent_id.to_string()));
            }
        }
        Ok(numbers)
    }

    /// Checks one task of a LAUNCH and returns what it takes from the offer
    /// (its resources, plus its executor's when the executor is new).
    #[allow(clippy::too_many_arguments)]
    fn validate_task(
        &self,
        framework_id: &str,
        agent_id: &str,
        role: &str,
        task: &pb::TaskInfo,
        pending: &[Launch],
        new_executors: &mut BTreeSet<String>,
        available: &Resources,
    ) -> Result<(Resources, Option<pb::ExecutorInfo>), LaunchError> {
        self.validate_task_common(framework_id, agent_id, task, pending)?;
        match (&task.executor, &task.command) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Err(LaunchError::CommandOrExecutor),
        }
        let mut needed = task_resources(task, role)?;
        let mut executor = None;
        if let Some(e) = &task.executor {
            let e = with_executor_defaults(e, framework_id, role);
            validate_id(&e.executor_id.value).map_err(LaunchError::ExecutorId)?;
            if e.framework_id
                .as_ref()
                .is_some_and(|f| f.value != framework_id)
            {
                return Err(LaunchError::ExecutorFramework);
            }
            if e.r#type != Some(pb::executor_info::Type::Default as i32) && e.command.is_none() {
                return Err(LaunchError::ExecutorCommand);
            }
            let key = (framework_id.to_string(), e.executor_id.value.clone());
            let running = self
                .agents
                .get(agent_id)
                .and_then(|a| a.executors.get(&key));
            match running {
                Some(existing)
                    if existing.command != e.command || existing.resources != e.resources =>
                {
                    return Err(LaunchError::IncompatibleExecutor(
                        e.executor_id.value.clone(),
                    ))
                }
                Some(_) => {}
                None => {
                    if new_executors.insert(e.executor_id.value.clone()) {
                        needed += executor_resources(&e, role)?;
                    }
                }
            }
            executor = Some(e);
        }
        if needed.is_empty() {
            return Err(LaunchError::NoResources);
        }
        if !available.contains(&needed) {
            return Err(LaunchError::TaskTooLarge {
                needed: needed.to_string(),
                available: available.to_string(),
            });
        }
        Ok((needed, executor))
    }

    /// Checks a LAUNCH_GROUP: the default executor and every task, all or
    /// nothing. Returns what the group takes from the offer.
    #[allow(clippy::too_many_arguments)]
    fn validate_group(
        &self,
        framework_id: &str,
        agent_id: &str,
        role: &str,
        group: &pb::offer::operation::LaunchGroup,
        pending: &[Launch],
        new_executors: &mut BTreeSet<String>,
        available: &Resources,
    ) -> Result<Resources, LaunchError> {
        let executor = with_executor_defaults(&group.executor, framework_id, role);
        if executor.r#type != Some(pb::executor_info::Type::Default as i32) {
            return Err(LaunchError::NotDefaultExecutor);
        }
        validate_id(&executor.executor_id.value).map_err(LaunchError::ExecutorId)?;
        if group.task_group.tasks.is_empty() {
            return Err(LaunchError::EmptyGroup);
        }
        let mut needed = Resources::new();
        let key = (framework_id.to_string(), executor.executor_id.value.clone());
        let running = self
            .agents
            .get(agent_id)
            .and_then(|a| a.executors.get(&key))
            .is_some();
        if !running && new_executors.insert(executor.executor_id.value.clone()) {
            needed += executor_resources(&executor, role)?;
        }
        let mut ids = BTreeSet::new();
        for task in &group.task_group.tasks {
            self.validate_task_common(framework_id, agent_id, task, pending)?;
            if !ids.insert(task.task_id.value.clone()) {
                return Err(LaunchError::DuplicateTask(task.task_id.value.clone()));
            }
            if task.executor.is_some() {
                return Err(LaunchError::ExecutorInGroup(task.task_id.value.clone()));
            }
            if task.command.is_none() {
                return Err(LaunchError::NoCommandInGroup(task.task_id.value.clone()));
            }
            needed += task_resources(task, role)?;
        }
        if !available.contains(&needed) {
            return Err(LaunchError::GroupTooLarge {
                needed: needed.to_string(),
                available: available.to_string(),
            });
        }
        Ok(needed)
    }

    fn validate_task_common(
        &self,
        framework_id: &str,
        agent_id: &str,
        task: &pb::TaskInfo,
        pending: &[Launch],
    ) -> Result<(), LaunchError> {
        validate_id(&task.task_id.value).map_err(LaunchError::TaskId)?;
        let fw = self.frameworks.get(framework_id);
        let duplicate = fw.is_some_and(|f| {
            f.tasks.contains_key(&task.task_id.value)
                || f.unreachable_tasks.contains_key(&task.task_id.value)
        }) || pending.iter().any(|l| l.task.task_id == task.task_id);
        if duplicate {
            return Err(LaunchError::DuplicateTask(task.task_id.value.clone()));
        }
        if task.agent_id.value != agent_id {
            return Err(LaunchError::WrongAgent {
                given: task.agent_id.value.clone(),
                expected: agent_id.to_string(),
            });
        }
        if let Some(kp) = &task.kill_policy {
            if kp.grace_period.is_some_and(|g| g.nanoseconds < 0) {
                return Err(LaunchError::NegativeGracePeriod);
            }
        }
        Ok(())
    }

    /// Records the launched tasks and sends them to the agent.
    fn start_launches(&mut self, framework_id: &str, agent_id: &str, launches: Vec<Launch>) {
        let Some(info) = self.frameworks.get(framework_id).map(|f| f.info.clone()) else {
            return;
        };
        let mut groups: BTreeMap<usize, (pb::ExecutorInfo, Vec<pb::TaskInfo>)> = BTreeMap::new();
        for launch in launches {
            let task = &launch.task;
            let record = pb::Task {
                name: task.name.clone(),
                task_id: task.task_id.clone(),
                framework_id: pb::FrameworkId {
                    value: framework_id.to_string(),
                },
                executor_id: launch.executor.as_ref().map(|e| e.executor_id.clone()),
                agent_id: task.agent_id.clone(),
                state: pb::TaskState::TaskStaging as i32,
                resources: task.resources.clone(),
                statuses: Vec::new(),
                status_update_state: None,
                status_update_uuid: None,
                labels: task.labels.clone(),
                discovery: task.discovery.clone().map(Box::new),
                container: task.container.clone().map(Box::new),
                health_check: task.health_check.clone().map(Box::new),
                kill_policy: task.kill_policy,
                user: task
                    .command
                    .as_ref()
                    .and_then(|c| c.user.clone())
                    .or_else(|| Some(info.user.clone())),
                limits: task.limits.clone(),
            };
            if let Some(fw) = self.frameworks.get_mut(framework_id) {
                fw.tasks.insert(task.task_id.value.clone(), record.clone());
                if let Some(e) = &launch.executor {
                    fw.executors
                        .entry((agent_id.to_string(), e.executor_id.value.clone()))
                        .or_insert_with(|| e.clone());
                }
            }
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent
                    .tasks
                    .insert((framework_id.to_string(), task.task_id.value.clone()));
                if let Some(e) = &launch.executor {
                    agent
                        .executors
                        .entry((framework_id.to_string(), e.executor_id.value.clone()))
                        .or_insert_with(|| e.clone());
                }
            }
            self.publish(operator::Event {
                r#type: Some(operator::event::Type::TaskAdded as i32),
                task_added: Some(operator::event::TaskAdded { task: record }),
                ..Default::default()
            });
            match (launch.group, launch.executor) {
                (Some(g), Some(executor)) => {
                    groups
                        .entry(g)
                        .or_insert_with(|| (executor, Vec::new()))
                        .1
                        .push(launch.task);
                }
                _ => {
                    self.send_to_agent(
                        agent_id,
                        ToAgent::RunTask(RunTask {
                            framework: info.clone(),
                            task: launch.task,
                        }),
                    );
                }
            }
        }
        for (_, (executor, tasks)) in groups {
            self.send_to_agent(
                agent_id,
                ToAgent::RunTaskGroup(RunTaskGroup {
                    framework: info.clone(),
                    executor,
                    task_group: pb::TaskGroupInfo { tasks },
                }),
            );
        }
    }

    /// Applies reservation changes to an agent's totals and tells it to
    /// checkpoint the result.
    pub fn apply_conversions(&mut self, agent_id: &str, conversions: &[ResourceConversion]) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        let mut checkpointed = Resources::from_proto(&agent.checkpointed).unwrap_or_default();
        for c in conversions {
            let consumed_plain = c.consumed.unallocate();
            let converted_plain = c.converted.unallocate();
            let plain = ResourceConversion {
                consumed: consumed_plain.clone(),
                converted: converted_plain.clone(),
            };
            if let Ok(after) = agent.total.apply(&plain) {
                agent.total = after;
            }
            checkpointed = checkpointed
                .checked_sub(
                    &consumed_plain
                        .filter(|r| r.is_dynamically_reserved() || r.is_persistent_volume()),
                )
                .unwrap_or(checkpointed);
            checkpointed +=
                converted_plain.filter(|r| r.is_dynamically_reserved() || r.is_persistent_volume());
        }
        agent.checkpointed = checkpointed.to_proto();
        let message = ToAgent::CheckpointResources(CheckpointResources {
            resources: agent.checkpointed.clone(),
        });
        agent.send(message);
        self.record_checkpoint(agent_id);
    }
}

/// Every task an ACCEPT's operations would launch.
fn launched_tasks(operations: &[pb::offer::Operation]) -> Vec<pb::TaskInfo> {
    let mut tasks = Vec::new();
    for op in operations {
        if let Some(launch) = &op.launch {
            tasks.extend(launch.task_infos.iter().cloned());
        }
        if let Some(group) = &op.launch_group {
            tasks.extend(group.task_group.tasks.iter().cloned());
        }
    }
    tasks
}

/// A task's resources, validated and marked as allocated to `role` (frameworks
/// that are not MULTI_ROLE leave the allocation out; Mesos fills it in).
fn task_resources(task: &pb::TaskInfo, role: &str) -> Result<Resources, LaunchError> {
    let r = Resources::from_proto(&task.resources)
        .map_err(|e| LaunchError::TaskResources(e.to_string()))?;
    check_allocation(&r, role)?;
    Ok(r.unallocate().allocate(role))
}

fn executor_resources(executor: &pb::ExecutorInfo, role: &str) -> Result<Resources, LaunchError> {
    let r = Resources::from_proto(&executor.resources)
        .map_err(|e| LaunchError::ExecutorResources(e.to_string()))?;
    check_allocation(&r, role)?;
    Ok(r.unallocate().allocate(role))
}

fn check_allocation(r: &Resources, role: &str) -> Result<(), LaunchError> {
    for resource in r {
        if let Some(allocated) = &resource.allocation_role {
            if allocated != role {
                return Err(LaunchError::WrongAllocation {
                    resource: resource.to_string(),
                    allocated: allocated.clone(),
                    role: role.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The task as sent to the agent: resources carry the allocation role.
fn with_allocation(task: &pb::TaskInfo, role: &str) -> pb::TaskInfo {
    let mut task = task.clone();
    if let Ok(r) = Resources::from_proto(&task.resources) {
        task.resources = r.unallocate().allocate(role).to_proto();
    }
    if let Some(e) = &mut task.executor {
        if let Ok(r) = Resources::from_proto(&e.resources) {
            e.resources = r.unallocate().allocate(role).to_proto();
        }
    }
    task
}

/// An executor with its framework id set and resources allocated.
fn with_executor_defaults(
    e: &pb::ExecutorInfo,
    framework_id: &str,
    role: &str,
) -> pb::ExecutorInfo {
    let mut e = e.clone();
    if e.framework_id.is_none() {
        e.framework_id = Some(pb::FrameworkId {
            value: framework_id.to_string(),
        });
    }
    if let Ok(r) = Resources::from_proto(&e.resources) {
        e.resources = r.unallocate().allocate(role).to_proto();
    }
    e
}

/// The change of form a RESERVE, UNRESERVE, CREATE or DESTROY inside an
/// ACCEPT makes, on resources allocated to the offer's role.
fn reservation_conversion(
    kind: pb::offer::operation::Type,
    op: &pb::offer::Operation,
    role: &str,
    principal: Option<&str>,
) -> Result<ResourceConversion, OperationError> {
    use pb::offer::operation::Type as Op;
    let missing = |operation, field| OperationError::Missing { operation, field };
    let conversion = match kind {
        Op::Reserve => {
            let r = op.reserve.as_ref().ok_or(missing("RESERVE", "reserve"))?;
            reservation::reserve(&r.resources, principal)?
        }
        Op::Unreserve => {
            let r = op
                .unreserve
                .as_ref()
                .ok_or(missing("UNRESERVE", "unreserve"))?;
            reservation::unreserve(&r.resources)?
        }
        Op::Create => {
            let c = op.create.as_ref().ok_or(missing("CREATE", "create"))?;
            reservation::volumes(&c.volumes, true)?
        }
        Op::Destroy => {
            let d = op.destroy.as_ref().ok_or(missing("DESTROY", "destroy"))?;
            reservation::volumes(&d.volumes, false)?
        }
        _ => return Err(OperationError::NotReservation(format!("{kind:?}"))),
    };
    Ok(reservation::allocated_to(conversion, role))
}
