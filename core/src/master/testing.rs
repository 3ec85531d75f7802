//! A master in this process with one agent on a channel, for tests of the
//! code that sits on top of the master (sessions, transports): no sockets,
//! the agent link is a channel the test reads and writes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pando_link::{agent_message, master_message, MasterMessage, RegisterAgent};
use pando_proto::mesos::v1 as pb;
use tokio::sync::mpsc;

use super::handle::{MasterHandle, TenureAnnouncer};
use super::registrar::Registrar;
use super::{Master, MasterFlags};

/// How long a test waits for something that should happen at once.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);

/// The master, its tenure, and one registered agent.
pub(crate) struct Cluster {
    pub(crate) handle: MasterHandle,
    tenure: TenureAnnouncer,
    flags: MasterFlags,
    agent: mpsc::UnboundedReceiver<Box<MasterMessage>>,
    pub(crate) agent_id: String,
    agent_session: u64,
    // Keeps the disconnect channel open, as the server's loop does.
    _disconnects: mpsc::UnboundedReceiver<(String, String)>,
}

impl Cluster {
    /// A leading master with one agent of 4 cpus and 1 GB.
    pub(crate) fn new() -> Cluster {
        let flags = MasterFlags::with_defaults([127, 0, 0, 1].into(), 5050, "/tmp".into());
        let master = Master::new(flags.clone()).expect("master");
        let (disconnects_tx, disconnects) = mpsc::unbounded_channel();
        let (handle, tenure) =
            MasterHandle::new(Arc::new(Mutex::new(master)), disconnects_tx, true);
        let (link, agent) = mpsc::unbounded_channel();
        let register = RegisterAgent {
            agent_info: pb::AgentInfo {
                hostname: "agent-1".into(),
                resources: scalars(4.0, 1024.0),
                ..Default::default()
            },
            ..Default::default()
        };
        let (agent_id, agent_session) = handle
            .lock()
            .expect("lock")
            .register_agent(register, link)
            .expect("agent registers");
        let mut cluster = Cluster {
            handle,
            tenure,
            flags,
            agent,
            agent_id,
            agent_session,
            _disconnects: disconnects,
        };
        assert!(matches!(
            cluster.heard_by_agent(),
            master_message::Message::Registered(_)
        ));
        cluster
    }

    pub(crate) fn allocate(&self) {
        self.handle.lock().expect("lock").run_allocation();
    }

    pub(crate) fn heard_by_agent(&mut self) -> master_message::Message {
        let message = self.agent.try_recv().expect("a message for the agent");
        message.message.expect("a message body")
    }

    /// A message the master sent the agent, if one is waiting.
    pub(crate) fn try_heard_by_agent(&mut self) -> Option<master_message::Message> {
        self.agent.try_recv().ok().and_then(|m| m.message)
    }

    pub(crate) fn agent_says(&self, message: agent_message::Message) {
        self.handle.lock().expect("lock").agent_message(
            &self.agent_id,
            self.agent_session,
            message,
        );
    }

    /// Replaces the master with a standby, as `ha.rs` does when this
    /// master loses the lead.
    pub(crate) fn step_down(&self) {
        let standby = Master::standby(self.flags.clone(), None).expect("standby");
        let old = std::mem::replace(&mut *self.handle.lock().expect("lock"), standby);
        drop(old);
        self.tenure.installed(false);
    }

    /// Installs a master recovered from the registry the old one
    /// wrote, as `ha.rs` does when this master wins an election.
    pub(crate) fn take_over(&self, registry: &pando_registry::Registry) {
        let registrar = Registrar::in_memory(Arc::new(Mutex::new(registry.clone())));
        let master = Master::recover(self.flags.clone(), registry, registrar).expect("recover");
        *self.handle.lock().expect("lock") = master;
        self.tenure.installed(true);
    }

    pub(crate) fn registry(&self) -> pando_registry::Registry {
        let master = self.handle.lock().expect("lock");
        let registry = master.local_registry.as_ref().expect("in-memory registry");
        let snapshot = registry.lock().expect("registry").clone();
        snapshot
    }
}

pub(crate) fn scalars(cpus: f64, mem: f64) -> Vec<pb::Resource> {
    [("cpus", cpus), ("mem", mem)]
        .into_iter()
        .map(|(name, value)| pb::Resource {
            name: name.into(),
            r#type: pb::value::Type::Scalar as i32,
            scalar: Some(pb::value::Scalar { value }),
            ..Default::default()
        })
        .collect()
}

/// A `sleep 100` command task of 1 cpu and 64 MB on `agent_id`.
pub(crate) fn sleeper(task_id: &str, agent_id: &pb::AgentId) -> pb::TaskInfo {
    pb::TaskInfo {
        name: "sleep".into(),
        task_id: pb::TaskId {
            value: task_id.into(),
        },
        agent_id: agent_id.clone(),
        resources: scalars(1.0, 64.0),
        command: Some(pb::CommandInfo {
            value: Some("sleep 100".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Cluster {
    /// The agent reports `task_id` of `framework_id` RUNNING, with a fresh
    /// uuid, which it returns.
    pub(crate) fn agent_reports_running(&self, framework_id: &str, task_id: &str) -> Vec<u8> {
        let uuid = uuid::Uuid::new_v4().as_bytes().to_vec();
        self.agent_says(agent_message::Message::StatusUpdate(
            pando_link::StatusUpdate {
                framework_id: pb::FrameworkId {
                    value: framework_id.to_string(),
                },
                status: pb::TaskStatus {
                    task_id: pb::TaskId {
                        value: task_id.into(),
                    },
                    state: pb::TaskState::TaskRunning as i32,
                    uuid: Some(uuid.clone().into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        ));
        uuid
    }
}
