//! The replicated registry: what the master codes against.
//!
//! [`ReplicatedRegistry`] wires the pieces of [`raft`](crate::raft) together
//! for one master and hides openraft behind registry words:
//!
//! ```text
//!   master ── write(ops) ──► openraft leader ── AppendEntries ──► followers
//!     ▲                          │ commit                           │
//!     └──── read() ◄── state machine (model::apply_all) ◄───────────┘
//! ```
//!
//! A master's life with it:
//!
//! 1. [`ReplicatedRegistry::open`] checks the configuration and the work_dir
//!    (`work_dir/registry/`: log, vote, snapshot, cluster identity) and
//!    builds the openraft instance. Nothing is sent yet.
//! 2. The master mounts [`ReplicatedRegistry::service`] on its port and
//!    starts listening, then calls [`ReplicatedRegistry::start`]: it says
//!    `Hello` to the other masters, refuses to go on if they belong to
//!    another cluster or were started with another `--masters`, and when no
//!    master has a cluster yet, the master with the lowest Raft address
//!    among `--masters` initializes one (it chooses the cluster id and
//!    writes the first membership entry; the others wait for it and take
//!    the id from it).
//! 3. It follows [`ReplicatedRegistry::leadership`]. When it becomes leader
//!    it calls [`ReplicatedRegistry::barrier`] before trusting its
//!    [`ReplicatedRegistry::read`], then records changes with
//!    [`ReplicatedRegistry::write`]. A follower's writes fail with
//!    [`WriteError::NotLeader`], naming the leader when known.
//! 4. If Raft stops on a fatal error (a corrupt entry, a failing disk),
//!    [`ReplicatedRegistry::fatal`] completes and the master exits with it.
//!
//! Node ids come from the Raft address ([`node_id`]), so membership changes
//! ([`ReplicatedRegistry::add_master`], [`ReplicatedRegistry::remove_master`])
//! never renumber the others.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::proto::raft::raft_server::RaftServer;
use crate::proto::raft::HelloRequest;
use openraft::error::{CheckIsLeaderError, ClientWriteError, Fatal, ForwardToLeader, RaftError};
use openraft::{ChangeMembers, RaftMetrics, ServerState, SnapshotPolicy};
use tokio::sync::watch;

use crate::model::{Operations, Registry};
use crate::raft::cluster::{ClusterError, ClusterIdentity};
use crate::raft::disk::DiskError;
use crate::raft::log_store::{LogStore, LogStoreError};
use crate::raft::network::{self, Network};
use crate::raft::service::{masters_on_the_wire, RaftService};
use crate::raft::state_machine::{StateMachine, StateMachineError};
pub use crate::raft::types::{node_id, MasterAddress};
use crate::raft::types::{NodeId, Raft, Request};

/// How a master's registry is set up (from its flags).
#[derive(Clone, Debug)]
pub struct Config {
    /// The master's work_dir; the registry lives in `work_dir/registry/`.
    pub work_dir: PathBuf,
    /// This master.
    pub me: MasterAddress,
    /// Every master, this one included (`--masters`).
    pub masters: Vec<MasterAddress>,
    /// `--quorum`: when given it must be a majority of `masters`.
    pub quorum: Option<usize>,
    /// How often the leader sends heartbeats.
    pub heartbeat_interval: Duration,
    /// A follower that hears no leader for a random time in this range
    /// starts an election.
    pub election_timeout: (Duration, Duration),
}

impl Config {
    /// A configuration with the default timings (heartbeat 250 ms, election
    /// timeout 1-2 s) and no `--quorum`.
    pub fn new(
        work_dir: impl Into<PathBuf>,
        me: MasterAddress,
        masters: Vec<MasterAddress>,
    ) -> Config {
        Config {
            work_dir: work_dir.into(),
            me,
            masters,
            quorum: None,
            heartbeat_interval: Duration::from_millis(250),
            election_timeout: (Duration::from_millis(1000), Duration::from_millis(2000)),
        }
    }

    /// The registry directory.
    pub fn registry_dir(&self) -> PathBuf {
        self.work_dir.join("registry")
    }

    fn validate(&self) -> Result<(), RegistryError> {
        let config = |message: String| Err(RegistryError::Config(message));
        let listed = masters_text(&self.masters);
        if self.masters.is_empty() {
            return config("--masters is empty; list every master, this one included".into());
        }
        let mut raft_addresses = BTreeSet::new();
        let mut http_addresses = BTreeSet::new();
        for master in &self.masters {
            if !raft_addresses.insert(&master.raft) || !http_addresses.insert(&master.http) {
                return config(format!("--masters={listed} names {master} twice"));
            }
        }
        if !self.masters.contains(&self.me) {
            return config(format!(
                "this master ({}) is not in --masters={listed}; list every master, this one \
                 included, with the address it is reached at",
                self.me
            ));
        }
        let majority = self.masters.len() / 2 + 1;
        if let Some(quorum) = self.quorum {
            if quorum != majority {
                return config(format!(
                    "--quorum={quorum} but --masters lists {} masters, whose majority is \
                     {majority}; set --quorum={majority} or leave it out",
                    self.masters.len()
                ));
            }
        }
        Ok(())
    }

    fn openraft(&self) -> Result<openraft::Config, RegistryError> {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let config = openraft::Config {
            cluster_name: "pando-registry".into(),
            heartbeat_interval: millis(self.heartbeat_interval),
            election_timeout_min: millis(self.election_timeout.0),
            election_timeout_max: millis(self.election_timeout.1),
            // One chunk's JSON stays well below network::MAX_MESSAGE.
            snapshot_max_chunk_size: 1024 * 1024,
            install_snapshot_timeout: millis(self.election_timeout.1).max(1000),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY),
            max_in_snapshot_log_to_keep: LOGS_KEPT_BEHIND_SNAPSHOT,
            ..openraft::Config::default()
        };
        config
            .validate()
            .map_err(|e| RegistryError::Config(format!("invalid Raft timing: {e}")))
    }
}

/// Entries between snapshots.
const SNAPSHOT_EVERY: u64 = 1000;
/// Entries kept in the log behind a snapshot, so that a follower a little
/// behind catches up from the log rather than a whole snapshot.
const LOGS_KEPT_BEHIND_SNAPSHOT: u64 = 100;
/// How long `add_master` waits for the new master to catch up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one `Hello` may take, and the pause between rounds.
const HELLO_TIMEOUT: Duration = Duration::from_secs(1);
const HELLO_RETRY: Duration = Duration::from_millis(250);

/// Who leads the masters, as this master last heard.
///
/// `is_me` holds only while this master leads *and* a quorum has answered
/// it within the longest election timeout; a leader cut off from the others
/// reads `is_me: false, leader: None` until they answer again or someone
/// else is elected.
#[derive(Clone, Debug, PartialEq)]
pub struct Leadership {
    /// The Raft term.
    pub term: u64,
    /// The leader, when one is known.
    pub leader: Option<MasterAddress>,
    /// Whether the leader is this master.
    pub is_me: bool,
}

/// A member's part in the membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    /// Votes and counts toward the quorum.
    Voter,
    /// Receives the log but does not vote (a master being added).
    Learner,
}

/// Why a write, barrier or membership change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// This master is not the leader (or stopped being it before the entry
    /// committed); ask the leader.
    #[error("this master is not the leader{}", leader_text(.leader))]
    NotLeader {
        /// The leader, when known.
        leader: Option<MasterAddress>,
    },
    /// A membership change was refused (another is in progress, the new
    /// master did not catch up, or the change would leave no voter).
    #[error("membership change refused: {0}")]
    Membership(String),
    /// Raft stopped; the master must exit.
    #[error("the registry's Raft stopped: {0}")]
    Fatal(String),
}

fn leader_text(leader: &Option<MasterAddress>) -> String {
    match leader {
        Some(leader) => format!("; the leader is {leader}"),
        None => "; no leader is known yet".into(),
    }
}

/// Why the registry cannot open or start.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The flags contradict each other.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The file system refused.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file in the registry is damaged; the master must not start on it.
    #[error(
        "the registry is corrupt: {path} at byte {offset}{}: {reason}. The master will not \
         start on a damaged log. Restore {path} from a backup; or remove this master from \
         the registry on the leader, delete its registry directory, start it and add it \
         again, so that it copies the registry from the others (a voter that forgets its \
         log could help elect a leader without the latest entries)",
        corrupt_index(*.index)
    )]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// The log index expected there, when it is the log.
        index: Option<u64>,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The work_dir belongs to a master at another address.
    #[error(
        "{work_dir} belongs to the master whose Raft address was {recorded}, but this master's \
         is {me}; start it with its old address, or give it a fresh --work_dir"
    )]
    OtherAddress {
        /// The registry directory.
        work_dir: PathBuf,
        /// The address recorded there.
        recorded: String,
        /// This master's.
        me: String,
    },
    /// The work_dir belongs to another cluster than the masters' own.
    #[error(
        "{work_dir} belongs to cluster {ours}, but master {peer} is in cluster {theirs}: this \
         work_dir is from another cluster. Start this master with the work_dir it used in this \
         cluster, or remove {work_dir} so that it joins as a new, empty master"
    )]
    OtherCluster {
        /// The registry directory.
        work_dir: PathBuf,
        /// The cluster recorded there.
        ours: String,
        /// The peer that disagrees.
        peer: String,
        /// The peer's cluster.
        theirs: String,
    },
    /// Two new masters disagree on who the masters are.
    #[error(
        "master {peer} was started with --masters={theirs} but this master with \
         --masters={ours}; start every master with the same --masters"
    )]
    MastersMismatch {
        /// The peer.
        peer: String,
        /// Its `--masters`.
        theirs: String,
        /// Ours.
        ours: String,
    },
    /// openraft refused to start or initialize.
    #[error("the registry's Raft failed: {0}")]
    Raft(String),
}

fn corrupt_index(index: Option<u64>) -> String {
    index
        .map(|i| format!(" (log index {i})"))
        .unwrap_or_default()
}

impl From<LogStoreError> for RegistryError {
    fn from(e: LogStoreError) -> RegistryError {
        match e {
            LogStoreError::Disk(e) => e.into(),
            LogStoreError::Corrupt {
                path,
                index,
                offset,
                reason,
            } => RegistryError::Corrupt {
                path,
                index,
                offset,
                reason,
            },
            LogStoreError::Encode { index, source } => {
                RegistryError::Raft(format!("cannot encode log entry {index}: {source}"))
            }
        }
    }
}

/// A file other than the log: a damaged one is damaged from its start.
impl From<DiskError> for RegistryError {
    fn from(e: DiskError) -> RegistryError {
        match e {
            DiskError::Io {
                action,
                path,
                source,
            } => RegistryError::Io {
                action,
                path,
                source,
            },
            DiskError::Corrupt { path, reason } => RegistryError::Corrupt {
                path,
                index: None,
                offset: 0,
                reason,
            },
        }
    }
}

impl From<StateMachineError> for RegistryError {
    fn from(e: StateMachineError) -> RegistryError {
        match e {
            StateMachineError::Disk(e) => e.into(),
            StateMachineError::Registry(e) => RegistryError::Raft(e.to_string()),
        }
    }
}

/// One master's handle on the replicated registry; clones share it.
#[derive(Clone)]
pub struct ReplicatedRegistry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ReplicatedRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedRegistry")
            .field("me", &self.inner.config.me)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: Config,
    me: NodeId,
    raft: Raft,
    /// Shared with `raft`: read for `read()`.
    state_machine: StateMachine,
    cluster: Arc<ClusterIdentity>,
    leadership: watch::Receiver<Leadership>,
    /// Set by `shutdown`, so that `fatal` does not report our own stop.
    shutting_down: AtomicBool,
}

impl ReplicatedRegistry {
    /// Opens `work_dir/registry` (creating it), checks it and builds the
    /// openraft instance. Does not contact the other masters.
    pub async fn open(config: Config) -> Result<ReplicatedRegistry, RegistryError> {
        config.validate()?;
        let raft_config = Arc::new(config.openraft()?);
        let dir = config.registry_dir();
        std::fs::create_dir_all(&dir)
            .and_then(|()| crate::raft::disk::sync_dir(&dir))
            .map_err(|source| RegistryError::Io {
                action: "create",
                path: dir.clone(),
                source,
            })?;
        let cluster = Arc::new(
            ClusterIdentity::open(&dir, &config.me.raft).map_err(|e| cluster_error(e, &dir, ""))?,
        );
        let log_store = LogStore::open(&dir)?;
        let state_machine = StateMachine::open(&dir)?;
        let me = config.me.node_id();
        let raft = Raft::new(
            me,
            raft_config,
            Network::new(cluster.clone()),
            log_store,
            state_machine.clone(),
        )
        .await
        .map_err(|e| RegistryError::Raft(e.to_string()))?;
        // The lease is the longest election timeout: openraft's followers
        // refuse to vote for another candidate until that long after they
        // last heard from the leader (its own leader lease), so the leader
        // cannot have been replaced sooner. The shortest timeout made a
        // leader on a starved machine give up needlessly.
        let leadership = watch_leadership(&raft, me, config.election_timeout.1);
        Ok(ReplicatedRegistry {
            inner: Arc::new(Inner {
                config,
                me,
                raft,
                state_machine,
                cluster,
                leadership,
                shutting_down: AtomicBool::new(false),
            }),
        })
    }

    /// The tonic service (`pando.raft.v1.Raft`) to mount on the master's
    /// port or its `--raft_port`.
    pub fn service(&self) -> RaftServer<RaftService> {
        RaftService::new(
            self.inner.raft.clone(),
            self.inner.cluster.clone(),
            &self.inner.config.masters,
        )
        .into_server()
    }

    /// Joins the cluster; call it once the service is listening.
    ///
    /// Says `Hello` to every other master, retrying until each has answered
    /// or a majority (this master included) has. Fails if a peer is in
    /// another cluster than this work_dir, or if neither has a cluster yet
    /// and their `--masters` differ. If no master has a cluster, the one
    /// with the lowest Raft address initializes it with the `--masters`
    /// membership and the others wait until they learn its id. Returns once
    /// this master belongs to the cluster; it does not wait for a leader. A
    /// master that is not (yet) a voter, one being added, returns too and
    /// receives the log once the leader adds it.
    pub async fn start(&self) -> Result<(), RegistryError> {
        let config = &self.inner.config;
        let majority = config.masters.len() / 2 + 1;
        let peers: Vec<MasterAddress> = config
            .masters
            .iter()
            .filter(|m| **m != config.me)
            .cloned()
            .collect();
        let initializer = config
            .masters
            .iter()
            .min_by(|a, b| a.raft.cmp(&b.raft))
            .cloned()
            .unwrap_or_else(|| config.me.clone());
        let i_initialize = initializer == config.me;

        // Hello until every peer or a majority has answered.
        let mut answered: HashMap<MasterAddress, Vec<String>> = HashMap::new();
        let mut announced_wait = false;
        loop {
            let asking: Vec<MasterAddress> = peers
                .iter()
                .filter(|p| !answered.contains_key(*p))
                .cloned()
                .collect();
            for (peer, reply) in self.hello_all(&asking).await {
                self.check_hello(&peer, &reply)?;
                answered.insert(peer, reply.voters);
            }
            if answered.len() == peers.len() || answered.len() + 1 >= majority {
                break;
            }
            if !announced_wait {
                tracing::info!(
                    answered = answered.len(),
                    masters = config.masters.len(),
                    "waiting for a majority of the masters to answer"
                );
                announced_wait = true;
            }
            tokio::time::sleep(HELLO_RETRY).await;
        }

        let initialized = self
            .inner
            .raft
            .is_initialized()
            .await
            .map_err(|e| RegistryError::Raft(e.to_string()))?;
        let anyone_has_members = answered.values().any(|voters| !voters.is_empty());
        let me = config.me.to_string();
        match self.inner.cluster.id() {
            Some(_) if initialized || !i_initialize || anyone_has_members => {
                let known_voter = answered.values().any(|voters| voters.contains(&me))
                    || self
                        .members()
                        .iter()
                        .any(|(m, role)| *m == config.me && *role == MemberRole::Voter);
                if !known_voter {
                    tracing::info!(
                        "this master is not a voter of the registry yet; it receives the log \
                         once the leader adds it (add_master)"
                    );
                }
                Ok(())
            }
            // We chose the id but stopped before the first entry: finish.
            Some(_) => self.initialize().await,
            None if i_initialize => {
                let id = uuid::Uuid::new_v4().to_string();
                self.inner
                    .cluster
                    .adopt(&id)
                    .map_err(|e| cluster_error(e, &config.registry_dir(), ""))?;
                tracing::info!(cluster = id, "initializing a new registry cluster");
                self.initialize().await
            }
            None => {
                tracing::info!(
                    initializer = %initializer,
                    "no master has a registry yet; waiting for the master with the lowest Raft \
                     address to initialize it"
                );
                while self.inner.cluster.id().is_none() {
                    tokio::time::sleep(HELLO_RETRY).await;
                    for (peer, reply) in self.hello_all(&peers).await {
                        self.check_hello(&peer, &reply)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Asks each of `peers` `Hello` at once; returns those that answered.
    async fn hello_all(
        &self,
        peers: &[MasterAddress],
    ) -> Vec<(MasterAddress, crate::proto::raft::HelloReply)> {
        let request = HelloRequest {
            masters: masters_on_the_wire(&self.inner.config.masters),
            cluster: self.inner.cluster.id().unwrap_or_default(),
        };
        let mut asks = tokio::task::JoinSet::new();
        for peer in peers {
            let peer = peer.clone();
            let request = request.clone();
            asks.spawn(async move {
                let mut client = network::connect_lazy(&peer.raft).ok()?;
                let mut message = tonic::Request::new(request);
                message.set_timeout(HELLO_TIMEOUT);
                let reply = tokio::time::timeout(HELLO_TIMEOUT, client.hello(message))
                    .await
                    .ok()?
                    .map_err(|status| {
                        tracing::debug!(peer = %peer, %status, "Hello went unanswered");
                    })
                    .ok()?;
                Some((peer, reply.into_inner()))
            });
        }
        let mut replies = Vec::new();
        while let Some(joined) = asks.join_next().await {
            if let Ok(Some(reply)) = joined {
                replies.push(reply);
            }
        }
        replies
    }

    /// Checks one peer's `Hello` reply against this master, adopting its
    /// cluster id if we have none.
    fn check_hello(
        &self,
        peer: &MasterAddress,
        reply: &crate::proto::raft::HelloReply,
    ) -> Result<(), RegistryError> {
        let config = &self.inner.config;
        let ours = self.inner.cluster.id();
        match (&ours, reply.cluster.is_empty()) {
            (None, true) => {
                let our_masters = masters_on_the_wire(&config.masters);
                if reply.masters != our_masters {
                    return Err(RegistryError::MastersMismatch {
                        peer: peer.to_string(),
                        theirs: reply.masters.join(","),
                        ours: our_masters.join(","),
                    });
                }
            }
            (Some(_), true) => {}
            (_, false) => self
                .inner
                .cluster
                .adopt(&reply.cluster)
                .map_err(|e| cluster_error(e, &config.registry_dir(), &peer.to_string()))?,
        }
        Ok(())
    }

    async fn initialize(&self) -> Result<(), RegistryError> {
        let members: BTreeMap<NodeId, MasterAddress> = self
            .inner
            .config
            .masters
            .iter()
            .map(|m| (m.node_id(), m.clone()))
            .collect();
        match self.inner.raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Someone's log reached us first: we are initialized already.
            Err(RaftError::APIError(e)) => {
                tracing::info!(reason = %e, "the registry was already initialized");
                Ok(())
            }
            Err(RaftError::Fatal(e)) => Err(RegistryError::Raft(e.to_string())),
        }
    }

    /// Who leads, updated from openraft's metrics.
    pub fn leadership(&self) -> watch::Receiver<Leadership> {
        self.inner.leadership.clone()
    }

    /// Appends `ops` through Raft; `Ok(log index)` once committed and
    /// applied on this master.
    ///
    /// A leader cut off from a quorum keeps the write waiting (its
    /// [`Leadership`] already says `is_me: false`) until the others answer
    /// or a new leader's term reaches it, which then fails the write with
    /// `NotLeader`. A caller that bounds the wait with a timeout must treat
    /// the outcome as unknown: the entry may still commit.
    pub async fn write(&self, ops: Operations) -> Result<u64, WriteError> {
        match self.inner.raft.client_write(Request::new(&ops)).await {
            Ok(response) => Ok(response.log_id.index),
            Err(e) => Err(self.client_write_error(e)),
        }
    }

    /// The registry as applied on this master.
    pub async fn read(&self) -> Registry {
        self.inner.state_machine.applied().registry
    }

    /// The index of the last entry applied on this master (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.inner
            .state_machine
            .applied()
            .last_applied
            .map_or(0, |id| id.index)
    }

    /// For a new leader: `Ok` once this master is leader and everything
    /// committed before its term is applied here, so `read` is complete.
    pub async fn barrier(&self) -> Result<(), WriteError> {
        match self.inner.raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward))) => {
                Err(self.not_leader(forward))
            }
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                Err(WriteError::NotLeader { leader: None })
            }
            Err(RaftError::Fatal(e)) => Err(WriteError::Fatal(e.to_string())),
        }
    }

    /// Adds a master by joint consensus: first as a learner, then, once it
    /// has caught up, as a voter. Leader only.
    pub async fn add_master(&self, m: MasterAddress) -> Result<(), WriteError> {
        let id = m.node_id();
        let raft = &self.inner.raft;
        let added = raft
            .add_learner(id, m.clone(), false)
            .await
            .map_err(|e| self.client_write_error(e))?;
        let target = added.log_id.index;
        let caught_up = raft
            .wait(Some(CATCH_UP_TIMEOUT))
            .metrics(
                |metrics| {
                    metrics
                        .replication
                        .as_ref()
                        .and_then(|r| r.get(&id).copied().flatten())
                        .is_some_and(|matched| matched.index >= target)
                },
                "the new master to catch up",
            )
            .await;
        if caught_up.is_err() {
            if !self.inner.leadership.borrow().is_me {
                return Err(WriteError::NotLeader {
                    leader: self.inner.leadership.borrow().leader.clone(),
                });
            }
            return Err(WriteError::Membership(format!(
                "{m} did not catch up with the log within {CATCH_UP_TIMEOUT:?}; check that it \
                 is running and reachable at {}",
                m.raft
            )));
        }
        raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(|e| self.client_write_error(e))?;
        tracing::info!(master = %m, "added a master to the registry's voters");
        Ok(())
    }

    /// Removes a master (voter or learner) by joint consensus. Leader only.
    pub async fn remove_master(&self, m: MasterAddress) -> Result<(), WriteError> {
        let id = m.node_id();
        let is_voter = self
            .members()
            .iter()
            .any(|(member, role)| member.node_id() == id && *role == MemberRole::Voter);
        let change = if is_voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.inner
            .raft
            .change_membership(change, false)
            .await
            .map_err(|e| self.client_write_error(e))?;
        tracing::info!(master = %m, "removed a master from the registry");
        Ok(())
    }

    /// The current voters and learners.
    pub fn members(&self) -> Vec<(MasterAddress, MemberRole)> {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| {
                let role = if voters.contains(id) {
                    MemberRole::Voter
                } else {
                    MemberRole::Learner
                };
                (node.clone(), role)
            })
            .collect()
    }

    /// Builds a snapshot now and purges the log it covers (beyond what
    /// openraft does on its own every few thousand entries).
    pub async fn compact(&self) -> Result<(), WriteError> {
        let raft = &self.inner.raft;
        let applied = self.applied_index();
        raft.trigger()
            .snapshot()
            .await
            .map_err(|e| WriteError::Fatal(e.to_string()))?;
        raft.wait(Some(Duration::from_secs(10)))
            .metrics(
                |m| m.snapshot.is_some_and(|s| s.index >= applied),
                "the snapshot to be built",
            )
            .await
            .map_err(|e| WriteError::Fatal(e.to_string()))?;
        raft.trigger()
            .purge_log(applied)
            .await
            .map_err(|e| WriteError::Fatal(e.to_string()))
    }

    /// Completes with a message if Raft stopped on a fatal error (a corrupt
    /// entry, a storage I/O error). Never completes after [`Self::shutdown`].
    pub async fn fatal(&self) -> String {
        let mut metrics = self.inner.raft.metrics();
        loop {
            let stopped = match &metrics.borrow_and_update().running_state {
                Ok(()) => None,
                Err(Fatal::Stopped) if self.inner.shutting_down.load(Ordering::SeqCst) => None,
                Err(e) => Some(format!("the registry's Raft stopped: {e}")),
            };
            if let Some(message) = stopped {
                return message;
            }
            if metrics.changed().await.is_err() {
                if self.inner.shutting_down.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                return "the registry's Raft stopped".into();
            }
        }
    }

    /// Stops Raft on this master.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "the registry's Raft did not stop cleanly");
        }
    }

    fn client_write_error(
        &self,
        e: RaftError<NodeId, ClientWriteError<NodeId, MasterAddress>>,
    ) -> WriteError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
                self.not_leader(forward)
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                WriteError::Membership(e.to_string())
            }
            RaftError::Fatal(e) => WriteError::Fatal(e.to_string()),
        }
    }

    fn not_leader(&self, forward: ForwardToLeader<NodeId, MasterAddress>) -> WriteError {
        let leader = forward.leader_node.or_else(|| {
            let id = forward.leader_id?;
            self.members()
                .into_iter()
                .map(|(m, _)| m)
                .find(|m| m.node_id() == id)
        });
        let leader = leader.filter(|l| l.node_id() != self.inner.me);
        WriteError::NotLeader { leader }
    }
}

fn cluster_error(e: ClusterError, dir: &std::path::Path, peer: &str) -> RegistryError {
    match e {
        ClusterError::Disk(e) => e.into(),
        ClusterError::OtherAddress { recorded, me, .. } => RegistryError::OtherAddress {
            work_dir: dir.to_path_buf(),
            recorded,
            me,
        },
        ClusterError::OtherCluster { ours, theirs, .. } => RegistryError::OtherCluster {
            work_dir: dir.to_path_buf(),
            ours,
            peer: peer.to_string(),
            theirs,
        },
    }
}

fn masters_text(masters: &[MasterAddress]) -> String {
    masters
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Follows openraft's metrics and publishes who leads.
///
/// openraft refreshes its metrics at least every tick (1.5 heartbeats), so
/// a leader that stops hearing from a quorum notices within a tick of its
/// lease running out.
fn watch_leadership(raft: &Raft, me: NodeId, lease: Duration) -> watch::Receiver<Leadership> {
    let mut metrics = raft.metrics();
    let (tx, rx) = watch::channel(leadership_of(&metrics.borrow_and_update(), me, lease));
    tokio::spawn(async move {
        while metrics.changed().await.is_ok() {
            let now = leadership_of(&metrics.borrow_and_update(), me, lease);
            tx.send_if_modified(|current| {
                let changed = *current != now;
                if changed {
                    tracing::info!(term = now.term, leader = ?now.leader.as_ref().map(|l| l.to_string()), is_me = now.is_me, "registry leadership");
                    *current = now;
                }
                changed
            });
        }
    });
    rx
}

/// Who leads, from one metrics report.
///
/// A leader whose last acknowledgement from a quorum is older than `lease`
/// (the longest election timeout) no longer counts itself leader: by then
/// the others may be electing a new one, and a master that cannot reach a
/// quorum should stop acting for the cluster (as a Mesos master abdicates
/// when it loses ZooKeeper). It counts itself leader again as soon as a
/// quorum answers.
fn leadership_of(
    metrics: &RaftMetrics<NodeId, MasterAddress>,
    me: NodeId,
    lease: Duration,
) -> Leadership {
    let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
    let mut leader_id = metrics.current_leader;
    let is_me = leader_id == Some(me) && metrics.state == ServerState::Leader;
    let lease_held = metrics
        .millis_since_quorum_ack
        .is_none_or(|ms| ms < lease_ms);
    if is_me && !lease_held {
        leader_id = None;
    }
    let leader = leader_id.and_then(|id| {
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .cloned()
    });
    Leadership {
        term: metrics.current_term,
        is_me: is_me && lease_held,
        leader,
    }
}
