//! The master's state: frameworks, agents, tasks and offers, in one owner.
//!
//! [`Master`] is the one place where master state lives. The HTTP handlers,
//! the agent link and the timers all lock it (a plain mutex, never held
//! across an `.await`), call one method, and unlock. A method changes the
//! state and pushes what must be said to the outside world into channels it
//! holds: scheduler events into each framework's stream, operator events
//! into each operator subscriber's stream, and [`MasterMessage`]s into each
//! agent's link. Nothing here blocks or performs I/O, so every method is
//! quick and the order of events is the order of the calls.
//!
//! The methods are spread over files by subject: `framework.rs` holds the
//! scheduler calls, `agent.rs` the agent link, `offer.rs` ACCEPT and the
//! allocator's decisions, `operator.rs` the operator calls. This file holds
//! the records and the helpers they share.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pando_link::{master_message, MasterMessage};
use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::master as operator;
use pando_proto::mesos::v1::scheduler as sched;
use pando_proto::task_state::is_terminal;
use pando_proto::MESOS_VERSION;
use pando_resources::Resources;
use tokio::sync::{mpsc, Notify};

use crate::allocator::{Allocator, Config as AllocatorConfig, Time};

use super::completed::CompletedTasks;
use super::flags::{FlagsError, MasterFlags};
use super::metrics::Metrics;
use super::registrar::Registrar;

pub use pando_registry::model::{operation as registry_op, operation::Operation as RegistryOp};

/// Why the master refused a call. Each variant maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterError {
    /// The call is malformed or names something that does not exist (400).
    #[error("{0}")]
    BadRequest(String),
    /// The caller may not do this now (403).
    #[error("{0}")]
    Forbidden(String),
    /// The thing asked for does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The call conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The master cannot serve it (503).
    #[error("{0}")]
    Unavailable(String),
}

/// Why the master could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A flag's value is invalid.
    #[error(transparent)]
    Flags(#[from] FlagsError),
    /// `--registry` names a registry this build cannot run.
    #[error(
        "unknown --registry={0}: use in_memory (one master) or replicated_log (3 or 5 masters)"
    )]
    Registry(String),
    /// The allocator rejected a flag's value.
    #[error("invalid flag: {0}")]
    Allocator(#[from] crate::allocator::AllocatorError),
}

/// The sending half of a framework's event stream.
#[derive(Debug, Clone)]
pub struct FrameworkStream {
    /// The `Mesos-Stream-Id` of the connection.
    pub stream_id: String,
    /// Events for the connection's response body.
    pub sender: mpsc::UnboundedSender<sched::Event>,
}

/// A framework the master knows: subscribed, or disconnected within its
/// failover timeout, or recovered from an agent's re-registration.
#[derive(Debug)]
pub struct Framework {
    /// Its FrameworkInfo, with `id` set.
    pub info: pb::FrameworkInfo,
    /// The connection, while subscribed.
    pub stream: Option<FrameworkStream>,
    /// Whether it receives offers (it is connected and not deactivated).
    pub active: bool,
    /// Roles suppressed at SUBSCRIBE/UPDATE_FRAMEWORK or by SUPPRESS.
    pub suppressed_roles: BTreeSet<String>,
    /// Offer constraints it gave.
    pub offer_constraints: Option<sched::OfferConstraints>,
    /// When it first subscribed (seconds since the epoch).
    pub registered_time: Option<f64>,
    /// When it last re-subscribed.
    pub reregistered_time: Option<f64>,
    /// When it disconnected or was removed.
    pub unregistered_time: Option<f64>,
    /// When it is removed unless it re-subscribes first (while disconnected).
    pub failover_deadline: Option<Instant>,
    /// Tasks launched and not yet completed, by task id.
    pub tasks: BTreeMap<String, pb::Task>,
    /// Tasks on unreachable agents (partition-aware frameworks only).
    pub unreachable_tasks: BTreeMap<String, pb::Task>,
    /// Completed tasks, newest last, bounded by the flag.
    pub completed_tasks: CompletedTasks,
    /// Executors it runs, by (agent id, executor id).
    pub executors: BTreeMap<(String, String), pb::ExecutorInfo>,
    /// Its outstanding offers.
    pub offers: BTreeSet<u64>,
    /// Its outstanding inverse offers.
    pub inverse_offers: BTreeSet<u64>,
    /// Whether it was only seen in an agent's re-registration.
    pub recovered: bool,
}

impl Framework {
    /// A framework record for this info, not yet connected.
    pub fn new(info: pb::FrameworkInfo) -> Framework {
        Framework {
            info,
            stream: None,
            active: false,
            suppressed_roles: BTreeSet::new(),
            offer_constraints: None,
            registered_time: None,
            reregistered_time: None,
            unregistered_time: None,
            failover_deadline: None,
            tasks: BTreeMap::new(),
            unreachable_tasks: BTreeMap::new(),
            completed_tasks: CompletedTasks::default(),
            executors: BTreeMap::new(),
            offers: BTreeSet::new(),
            inverse_offers: BTreeSet::new(),
            recovered: false,
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        self.info.id.as_ref().map_or("", |i| i.value.as_str())
    }

    /// Whether a scheduler is connected.
    pub fn connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Whether it declared the capability.
    pub fn has_capability(&self, capability: pb::framework_info::capability::Type) -> bool {
        self.info
            .capabilities
            .iter()
            .any(|c| c.r#type == Some(capability as i32))
    }

    /// Whether it is partition-aware (TASK_UNREACHABLE instead of TASK_LOST).
    pub fn partition_aware(&self) -> bool {
        self.has_capability(pb::framework_info::capability::Type::PartitionAware)
    }

    /// The roles it subscribed to: `roles` for MULTI_ROLE frameworks, else
    /// `role` (default `*`).
    pub fn roles(&self) -> BTreeSet<String> {
        if self.has_capability(pb::framework_info::capability::Type::MultiRole) {
            self.info.roles.iter().cloned().collect()
        } else {
            [self.info.role.clone().unwrap_or_else(|| "*".to_string())]
                .into_iter()
                .collect()
        }
    }

    /// Sends an event if a scheduler is connected; returns whether it was.
    pub fn send(&self, event: sched::Event) -> bool {
        match &self.stream {
            Some(stream) => stream.sender.send(event).is_ok(),
            None => false,
        }
    }
}

/// The sending end of an agent's link session, as the master holds it.
///
/// Messages are boxed: a `MasterMessage` is a oneof of every master→agent
/// message (about 3 KB inline, for RunTask's TaskInfo), and an unbounded
/// channel allocates its slots 32 at a time, so an unboxed channel cost
/// each connected agent about 100 KB before it was sent anything.
pub type AgentLinkSender = mpsc::UnboundedSender<Box<MasterMessage>>;

/// An agent the master has admitted and not removed.
#[derive(Debug)]
pub struct Agent {
    /// Its AgentInfo, with `id` set and resources as registered.
    pub info: pb::AgentInfo,
    /// The Pando version it runs.
    pub version: String,
    /// `ip:port` of its HTTP API, as it reported it.
    pub address: Option<String>,
    /// Capabilities it declared.
    pub capabilities: Vec<pb::agent_info::Capability>,
    /// The link to it, while connected.
    pub link: Option<AgentLinkSender>,
    /// Which link session is current; stale sessions' events are ignored.
    pub session: u64,
    /// Deactivated by the operator (no offers).
    pub deactivated: bool,
    /// Draining (DRAIN_AGENT): no offers, tasks are being killed.
    pub drain_info: Option<pb::DrainInfo>,
    /// Its total resources: static ones plus dynamic reservations.
    pub total: Resources,
    /// Dynamic reservations and volumes, as checkpointed on the agent.
    pub checkpointed: Vec<pb::Resource>,
    /// Pings sent without a pong since.
    pub missed_pings: u32,
    /// Whether a pong arrived since the last ping.
    pub pong_received: bool,
    /// When it registered.
    pub registered_time: f64,
    /// When it last re-registered.
    pub reregistered_time: Option<f64>,
    /// Tasks on it, as (framework id, task id).
    pub tasks: BTreeSet<(String, String)>,
    /// Executors on it, by (framework id, executor id).
    pub executors: BTreeMap<(String, String), pb::ExecutorInfo>,
}

impl Agent {
    /// A newly (re)admitted agent on a live link session, active, with no
    /// tasks yet and its pings in good standing.
    pub fn new(
        info: pb::AgentInfo,
        version: String,
        address: Option<String>,
        capabilities: Vec<pb::agent_info::Capability>,
        (link, session): (AgentLinkSender, u64),
        total: Resources,
    ) -> Agent {
        Agent {
            info,
            version,
            address,
            capabilities,
            link: Some(link),
            session,
            deactivated: false,
            drain_info: None,
            total,
            checkpointed: Vec::new(),
            missed_pings: 0,
            pong_received: true,
            registered_time: unix_now(),
            reregistered_time: None,
            tasks: BTreeSet::new(),
            executors: BTreeMap::new(),
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        self.info.id.as_ref().map_or("", |i| i.value.as_str())
    }

    /// Whether its link is up.
    pub fn connected(&self) -> bool {
        self.link.is_some()
    }

    /// Sends a message over its link if it is up.
    pub fn send(&self, message: master_message::Message) -> bool {
        match &self.link {
            Some(link) => link
                .send(Box::new(MasterMessage {
                    message: Some(message),
                }))
                .is_ok(),
            None => false,
        }
    }

    /// `ip:port` of its HTTP endpoints (its hostname and port when it did
    /// not say).
    pub fn endpoint(&self) -> String {
        self.address
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.info.hostname, self.info.port.unwrap_or(5051)))
    }

    /// The IP part of its endpoint.
    pub fn ip(&self) -> String {
        let endpoint = self.endpoint();
        endpoint
            .rsplit_once(':')
            .map_or(endpoint.clone(), |(ip, _)| ip.to_string())
    }
}

/// An outstanding offer, as the master sent it.
#[derive(Debug, Clone)]
pub struct OfferRecord {
    /// The offer as sent.
    pub offer: pb::Offer,
    /// Its framework.
    pub framework: String,
    /// Its agent.
    pub agent: String,
}

/// An outstanding inverse offer.
#[derive(Debug, Clone)]
pub struct InverseOfferRecord {
    /// The inverse offer as sent.
    pub inverse_offer: pb::InverseOffer,
    /// Its framework.
    pub framework: String,
    /// Its agent.
    pub agent: String,
}

/// An agent marked unreachable: it may come back and re-register.
#[derive(Debug, Clone)]
pub struct UnreachableAgent {
    /// Its info when it was removed.
    pub info: pb::AgentInfo,
    /// When it became unreachable (seconds since the epoch).
    pub since: f64,
}

/// An operator API subscriber (`SUBSCRIBE` on `/api/v1`).
#[derive(Debug)]
pub struct OperatorStream {
    /// Events for its response body.
    pub sender: mpsc::UnboundedSender<operator::Event>,
}

/// The master: everything it knows, and the channels it speaks through.
#[derive(Debug)]
pub struct Master {
    /// Its flags.
    pub flags: Arc<MasterFlags>,
    /// Its identity, as sent in SUBSCRIBED and `/master/state`.
    pub info: pb::MasterInfo,
    /// When it started (monotonic), the origin of allocator time.
    pub started: Instant,
    /// When it started, in seconds since the epoch.
    pub start_time: f64,
    /// The pure allocator.
    pub allocator: Allocator,
    /// Known frameworks, by id.
    pub frameworks: BTreeMap<String, Framework>,
    /// Removed frameworks, newest last, bounded by the flag.
    pub completed_frameworks: VecDeque<Framework>,
    /// Admitted agents, by id.
    pub agents: BTreeMap<String, Agent>,
    /// Agents marked unreachable, by id.
    pub unreachable_agents: BTreeMap<String, UnreachableAgent>,
    /// Agents marked gone: they are told to shut down if they come back.
    pub gone_agents: BTreeMap<String, f64>,
    /// Outstanding offers by the allocator's offer number.
    pub offers: HashMap<u64, OfferRecord>,
    /// Outstanding inverse offers by number.
    pub inverse_offers: HashMap<u64, InverseOfferRecord>,
    /// Role weights set by flag or UPDATE_WEIGHTS.
    pub weights: BTreeMap<String, f64>,
    /// Quota configurations by role.
    pub quotas: BTreeMap<String, pb::quota::QuotaConfig>,
    /// The maintenance schedule.
    pub maintenance: pb::maintenance::Schedule,
    /// Machines in DOWN mode.
    pub machines_down: BTreeSet<(String, String)>,
    /// Maintenance responses by (hostname, ip) then framework.
    pub inverse_offer_responses: BTreeMap<(String, String), BTreeMap<String, bool>>,
    /// Operator API subscribers.
    pub operator_streams: Vec<OperatorStream>,
    /// Counters for `/metrics/snapshot`.
    pub metrics: Metrics,
    /// A verbosity level set by SET_LOGGING_LEVEL, until when.
    pub logging_override: Option<(u32, Instant)>,
    /// Wakes the allocation loop when an event makes a cycle worthwhile.
    pub wake_allocator: Arc<Notify>,
    /// Whether this master leads (a standby master serves only reads and
    /// redirects the rest).
    pub elected: bool,
    /// The leading master, when known (this master's info when it leads).
    pub leader: Option<pb::MasterInfo>,
    /// When this master was elected (seconds since the epoch).
    pub elected_time: Option<f64>,
    /// Where registry changes go (see `registrar.rs`).
    pub registrar: Registrar,
    /// The registry in this process, with `--registry=in_memory`.
    pub local_registry: Option<Arc<std::sync::Mutex<pando_registry::Registry>>>,
    /// Agents the registry holds that have not re-registered with this
    /// master yet (after a failover), by id; no offers until they do.
    pub recovered_agents: BTreeMap<String, pando_registry::model::registry::Agent>,
    /// When recovered agents that have not re-registered become unreachable.
    pub recovery_deadline: Option<Instant>,
    /// When the registry was last pruned of old unreachable and gone agents.
    pub last_registry_gc: Option<Instant>,
    /// Adapter records, as the registry will hold them (see `records.rs`).
    pub records: super::records::Records,
    next_framework: u64,
    next_agent: u64,
    next_inverse_offer: u64,
}

impl Master {
    /// A master with no agents or frameworks, configured by `flags`, over a
    /// registry held in this process.
    pub fn new(flags: MasterFlags) -> Result<Master, StartError> {
        let registry = Arc::new(std::sync::Mutex::new(pando_registry::Registry::default()));
        let mut master = Master::with_registrar(flags, Registrar::in_memory(registry.clone()))?;
        master.local_registry = Some(registry);
        let info = master.info.clone();
        master
            .registrar
            .record(RegistryOp::Elected(registry_op::Elected { info }));
        Ok(master)
    }

    /// A master that does not lead: it knows no agents or frameworks, and
    /// answers reads with its (empty) view and the rest with a redirect to
    /// `leader`.
    pub fn standby(
        flags: MasterFlags,
        leader: Option<pb::MasterInfo>,
    ) -> Result<Master, StartError> {
        let (registrar, _writer) = Registrar::queued();
        let mut master = Master::with_registrar(flags, registrar)?;
        master.elected = false;
        master.elected_time = None;
        master.leader = leader;
        Ok(master)
    }

    /// A master with no agents or frameworks whose registry changes go to
    /// `registrar`.
    pub fn with_registrar(flags: MasterFlags, registrar: Registrar) -> Result<Master, StartError> {
        let local_registry = None;
        let records = super::records::Records::new(super::records::Limits::from_flags(&flags));
        let now = unix_now();
        let mut config = AllocatorConfig {
            offer_timeout: flags.offer_timeout,
            ..AllocatorConfig::default()
        };
        if let Some(min) = flags.parsed_min_allocatable()? {
            config.min_allocatable_resources = min;
        }
        flags.parsed_roles()?;
        let mut allocator = Allocator::new(config);
        let mut weights = BTreeMap::new();
        for (role_name, weight) in flags.parsed_weights()? {
            allocator.update_weight(&role_name, weight)?;
            weights.insert(role_name, weight);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let ip = match flags.ip {
            std::net::IpAddr::V4(v4) => u32::from_le_bytes(v4.octets()),
            std::net::IpAddr::V6(_) => 0,
        };
        let hostname = flags
            .hostname
            .clone()
            .unwrap_or_else(|| flags.ip.to_string());
        let info = pb::MasterInfo {
            id,
            ip,
            port: u32::from(flags.port),
            pid: Some(format!("master@{}:{}", flags.ip, flags.port)),
            hostname: Some(hostname.clone()),
            version: Some(MESOS_VERSION.to_string()),
            address: Some(pb::Address {
                hostname: Some(hostname),
                ip: Some(flags.ip.to_string()),
                port: i32::from(flags.port),
            }),
            domain: None,
            capabilities: vec![pb::master_info::Capability {
                r#type: Some(pb::master_info::capability::Type::AgentUpdate as i32),
            }],
        };
        let mut master = Master {
            flags: Arc::new(flags),
            info,
            started: Instant::now(),
            start_time: unix_now(),
            allocator,
            frameworks: BTreeMap::new(),
            completed_frameworks: VecDeque::new(),
            agents: BTreeMap::new(),
            unreachable_agents: BTreeMap::new(),
            gone_agents: BTreeMap::new(),
            offers: HashMap::new(),
            inverse_offers: HashMap::new(),
            weights,
            quotas: BTreeMap::new(),
            maintenance: pb::maintenance::Schedule::default(),
            machines_down: BTreeSet::new(),
            inverse_offer_responses: BTreeMap::new(),
            operator_streams: Vec::new(),
            metrics: Metrics::default(),
            logging_override: None,
            wake_allocator: Arc::new(Notify::new()),
            elected: true,
            leader: None,
            elected_time: None,
            registrar,
            local_registry,
            recovered_agents: BTreeMap::new(),
            recovery_deadline: None,
            last_registry_gc: None,
            records,
            next_framework: 0,
            next_agent: 0,
            next_inverse_offer: 1,
        };
        master.leader = Some(master.info.clone());
        master.elected_time = Some(now);
        Ok(master)
    }

    /// The allocator's clock: time since the master started.
    pub fn now(&self) -> Time {
        Time(u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Asks the allocation loop for an early cycle if events are waiting.
    ///
    /// Only events that bring new demand or new supply call it: an agent
    /// joining, a framework subscribing or reviving, weights, quota and
    /// reservations changing. Resources that come back (a decline, the
    /// unused part of an accept, a finished task) wait for the next batch
    /// cycle, as in Mesos: offering them at once would hand them to whoever
    /// is next in line while the declining framework's short filter runs,
    /// which skews weighted shares towards the lighter roles.
    pub fn poke_allocator(&self) {
        if self.allocator.needs_allocation() {
            self.wake_allocator.notify_one();
        }
    }

    /// A fresh framework id: `<master id>-<sequence>`, as Mesos makes them.
    pub fn new_framework_id(&mut self) -> String {
        let id = format!("{}-{:04}", self.info.id, self.next_framework);
        self.next_framework += 1;
        id
    }

    /// A fresh agent id: `<master id>-S<sequence>`.
    pub fn new_agent_id(&mut self) -> String {
        let id = format!("{}-S{}", self.info.id, self.next_agent);
        self.next_agent += 1;
        id
    }

    /// A fresh link session number. Numbers are unique in the process, not
    /// only in this `Master`: a master that leads again after a failover
    /// must not take an old session's stale messages for a new one's.
    pub fn new_session(&mut self) -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Records a framework's current info in the registry.
    pub fn record_framework(&mut self, framework_id: &str) {
        let Some(fw) = self.frameworks.get(framework_id) else {
            return;
        };
        let op = RegistryOp::AddFramework(registry_op::AddFramework {
            info: fw.info.clone(),
            registered_time: fw.registered_time.map(time_info),
        });
        self.registrar.record(op);
    }

    /// Records an agent's drain and deactivation state in the registry.
    pub fn record_agent_state(&mut self, agent_id: &str) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let op = RegistryOp::SetAgentState(registry_op::SetAgentState {
            id: pb::AgentId {
                value: agent_id.to_string(),
            },
            drain_info: agent.drain_info,
            deactivated: agent.deactivated,
        });
        self.registrar.record(op);
    }

    /// Records an agent's dynamic reservations and volumes in the registry.
    pub fn record_checkpoint(&mut self, agent_id: &str) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let op = RegistryOp::CheckpointResources(registry_op::CheckpointResources {
            id: pb::AgentId {
                value: agent_id.to_string(),
            },
            resources: agent.checkpointed.clone(),
        });
        self.registrar.record(op);
    }

    /// Records an admitted agent in the registry: its info, its dynamic
    /// reservations and volumes, and what the operator decided about it.
    pub fn record_agent(&mut self, agent_id: &str) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let id = pb::AgentId {
            value: agent_id.to_string(),
        };
        let ops = [
            RegistryOp::AdmitAgent(registry_op::AdmitAgent {
                info: agent.info.clone(),
            }),
            RegistryOp::CheckpointResources(registry_op::CheckpointResources {
                id: id.clone(),
                resources: agent.checkpointed.clone(),
            }),
            RegistryOp::SetAgentState(registry_op::SetAgentState {
                id,
                drain_info: agent.drain_info,
                deactivated: agent.deactivated,
            }),
        ];
        for op in ops {
            self.registrar.record(op);
        }
    }

    /// A fresh inverse offer number.
    pub fn new_inverse_offer(&mut self) -> u64 {
        let n = self.next_inverse_offer;
        self.next_inverse_offer += 1;
        n
    }

    /// The wire id of the allocator's offer `n`.
    pub fn offer_id(&self, n: u64) -> pb::OfferId {
        pb::OfferId {
            value: format!("{}-O{}", self.info.id, n),
        }
    }

    /// The allocator's offer number for a wire offer id, if it is ours.
    pub fn offer_number(&self, id: &pb::OfferId) -> Option<u64> {
        id.value
            .strip_prefix(&self.info.id)
            .and_then(|rest| rest.strip_prefix("-O"))
            .and_then(|n| n.parse().ok())
    }

    /// The wire id of inverse offer `n`.
    pub fn inverse_offer_id(&self, n: u64) -> pb::OfferId {
        pb::OfferId {
            value: format!("{}-I{}", self.info.id, n),
        }
    }

    /// The number of a wire inverse offer id, if it is ours.
    pub fn inverse_offer_number(&self, id: &pb::OfferId) -> Option<u64> {
        id.value
            .strip_prefix(&self.info.id)
            .and_then(|rest| rest.strip_prefix("-I"))
            .and_then(|n| n.parse().ok())
    }

    /// Sends an event to every operator subscriber, forgetting the gone.
    pub fn publish(&mut self, event: operator::Event) {
        self.operator_streams
            .retain(|s| s.sender.send(event.clone()).is_ok());
    }

    /// Moves a framework's task to its completed list, bounded by the flag.
    pub fn complete_task(&mut self, framework_id: &str, task_id: &str) {
        let limit = self.flags.max_completed_tasks_per_framework;
        let Some(fw) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(task) = fw.tasks.remove(task_id) else {
            return;
        };
        if let Some(agent) = self.agents.get_mut(&task.agent_id.value) {
            agent
                .tasks
                .remove(&(framework_id.to_string(), task_id.to_string()));
        }
        fw.completed_tasks.push(&task, limit);
    }

    /// Applies a status update to a task the master tracks: its state,
    /// its status history, and (on becoming terminal) the recovery of its
    /// resources. Returns the task's framework-facing record, or `None` if
    /// the task is unknown.
    pub fn update_task(
        &mut self,
        framework_id: &str,
        status: &pb::TaskStatus,
        latest_state: Option<i32>,
    ) -> Option<pb::Task> {
        let fw = self.frameworks.get_mut(framework_id)?;
        let task_id = status.task_id.value.clone();
        let task = fw
            .tasks
            .get_mut(&task_id)
            .or_else(|| fw.unreachable_tasks.get_mut(&task_id))?;
        let was_terminal = is_terminal(task.state);
        let new_state = latest_state.unwrap_or(status.state);
        task.state = new_state;
        task.status_update_state = Some(status.state);
        task.status_update_uuid = status.uuid.clone();
        // Keep one status per state, without `data`, as Mesos does.
        let mut kept = status.clone();
        kept.data = None;
        if task.statuses.last().map(|s| s.state) != Some(status.state) {
            // A task sees two or three states; growing by one keeps a
            // 370-byte status from costing a four-slot vector.
            task.statuses.reserve_exact(1);
            task.statuses.push(kept);
        } else if let Some(last) = task.statuses.last_mut() {
            *last = kept;
        }
        let snapshot = task.clone();
        if !was_terminal && is_terminal(new_state) {
            let resources = Resources::from_proto(&snapshot.resources).unwrap_or_default();
            let agent_id = snapshot.agent_id.value.clone();
            // Recovered resources wait for the next batch cycle.
            let _ = self.allocator.recover(framework_id, &agent_id, &resources);
        }
        self.metrics
            .count_task_state(was_terminal, status.state, new_state);
        Some(snapshot)
    }

    /// Forwards a status update to its framework (when connected) and tells
    /// operator subscribers.
    pub fn forward_update(&mut self, framework_id: &str, status: pb::TaskStatus) {
        let state = status.state;
        if let Some(fw) = self.frameworks.get(framework_id) {
            fw.send(sched::Event {
                r#type: Some(sched::event::Type::Update as i32),
                update: Some(sched::event::Update {
                    status: status.clone(),
                }),
                ..Default::default()
            });
        }
        self.publish(operator::Event {
            r#type: Some(operator::event::Type::TaskUpdated as i32),
            task_updated: Some(operator::event::TaskUpdated {
                framework_id: pb::FrameworkId {
                    value: framework_id.to_string(),
                },
                status,
                state,
            }),
            ..Default::default()
        });
    }

    /// A status update the master itself generates (no uuid, so the
    /// framework need not acknowledge it).
    pub fn master_status(
        &self,
        task_id: &pb::TaskId,
        agent_id: Option<&pb::AgentId>,
        state: pb::TaskState,
        reason: pb::task_status::Reason,
        message: impl Into<String>,
    ) -> pb::TaskStatus {
        pb::TaskStatus {
            task_id: task_id.clone(),
            state: state as i32,
            message: Some(message.into()),
            source: Some(pb::task_status::Source::Master as i32),
            reason: Some(reason as i32),
            agent_id: agent_id.cloned(),
            timestamp: Some(unix_now()),
            ..Default::default()
        }
    }

    /// Gives up all outstanding offers of a framework or on an agent, as
    /// the allocator's rescind decisions say, and tells the frameworks.
    pub fn rescind(&mut self, decisions: Vec<crate::allocator::Decision>) {
        for decision in decisions {
            if let crate::allocator::Decision::Rescind { offer, .. } = decision {
                self.drop_offer(offer, true);
            }
        }
    }

    /// Forgets an outstanding offer; with `tell`, sends RESCIND.
    pub fn drop_offer(&mut self, offer: u64, tell: bool) {
        let Some(record) = self.offers.remove(&offer) else {
            return;
        };
        self.metrics.offers_rescinded += u64::from(tell);
        if let Some(fw) = self.frameworks.get_mut(&record.framework) {
            fw.offers.remove(&offer);
            if tell {
                fw.send(sched::Event {
                    r#type: Some(sched::event::Type::Rescind as i32),
                    rescind: Some(sched::event::Rescind {
                        offer_id: record.offer.id.clone(),
                    }),
                    ..Default::default()
                });
            }
        }
    }

    /// Sends a message to an agent if it is connected.
    pub fn send_to_agent(&self, agent_id: &str, message: master_message::Message) -> bool {
        self.agents
            .get(agent_id)
            .is_some_and(|agent| agent.send(message))
    }

    /// The resources used on agents by a framework's tasks and executors.
    pub fn used_by(&self, fw: &Framework) -> Resources {
        let mut used = Resources::new();
        for task in fw.tasks.values() {
            if !is_terminal(task.state) {
                used += Resources::from_proto(&task.resources).unwrap_or_default();
            }
        }
        for executor in fw.executors.values() {
            used += Resources::from_proto(&executor.resources).unwrap_or_default();
        }
        used
    }

    /// The resources offered to a framework and not yet answered.
    pub fn offered_to(&self, fw: &Framework) -> Resources {
        let mut offered = Resources::new();
        for n in &fw.offers {
            if let Some(record) = self.offers.get(n) {
                offered += Resources::from_proto(&record.offer.resources).unwrap_or_default();
            }
        }
        offered
    }

    /// Uptime in seconds.
    pub fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// Seconds since the Unix epoch, as Mesos's JSON and TaskStatus carry it.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A TimeInfo for a moment given in seconds since the epoch.
pub fn time_info(seconds: f64) -> pb::TimeInfo {
    pb::TimeInfo {
        nanoseconds: (seconds * 1e9) as i64,
    }
}

/// A fresh random status update uuid, as 16 bytes.
pub fn new_uuid_bytes() -> Bytes {
    Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes())
}
