//! The master's end of the agent link: the tonic `AgentLink` service.
//!
//! Each agent session is one bidirectional stream. The first message must
//! be RegisterAgent or ReregisterAgent; the master answers on the stream
//! and from then on reads messages in a task of its own, handing each to
//! [`Master::agent_message`] under the lock. When the stream ends, the agent
//! is disconnected (not yet unreachable: that takes missed pings).

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::{Stream, StreamExt};
use pando_link::agent_link_server::AgentLink;
use pando_link::agent_message::Message as FromAgent;
use pando_link::{AgentMessage, MasterMessage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::state::{Master, MasterError};

/// The AgentLink service, sharing the master's state.
#[derive(Debug, Clone)]
pub struct AgentLinkService {
    master: Arc<Mutex<Master>>,
}

impl AgentLinkService {
    /// A service over the master's state.
    pub fn new(master: Arc<Mutex<Master>>) -> AgentLinkService {
        AgentLinkService { master }
    }
}

/// The header that names the leader in a follower's refusal.
pub const LEADER_METADATA: &str = "pando-leader";

/// A standby master's refusal: UNAVAILABLE, with the leader's `host:port`
/// in the `pando-leader` metadata when it is known, so the agent goes there
/// next.
fn not_the_leader(master: &Master) -> Status {
    let Some(leader) = &master.leader else {
        return Status::unavailable("no leading master is elected");
    };
    let host = leader
        .address
        .as_ref()
        .and_then(|a| a.ip.clone())
        .or_else(|| leader.hostname.clone())
        .unwrap_or_default();
    let address = format!("{host}:{}", leader.port);
    let mut status =
        Status::unavailable(format!("not the leading master; the leader is {address}"));
    if let Ok(value) = address.parse() {
        status.metadata_mut().insert(LEADER_METADATA, value);
    }
    status
}

type MasterStream = Pin<Box<dyn Stream<Item = Result<MasterMessage, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl AgentLink for AgentLinkService {
    type SessionStream = MasterStream;

    async fn session(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .and_then(|m| m.message)
            .ok_or_else(|| {
                Status::invalid_argument("the session must start with a registration")
            })?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let (registered, barrier) = {
            let mut master = self
                .master
                .lock()
                .map_err(|_| Status::internal("master state is poisoned"))?;
            if !master.elected {
                return Err(not_the_leader(&master));
            }
            let registered = match first {
                FromAgent::Register(register) => master.register_agent(register, sender),
                FromAgent::Reregister(reregister) => master.reregister_agent(reregister, sender),
                _ => Err(MasterError::BadRequest(
                    "the session must start with RegisterAgent or ReregisterAgent".into(),
                )),
            };
            (registered, master.registrar.barrier())
        };
        // The agent hears it is registered only once the registry says so.
        if !barrier.passed() {
            barrier.wait().await.map_err(|e| {
                Status::unavailable(format!("not the leading master any more: {e}"))
            })?;
        }
        let (agent_id, session) = match registered {
            Ok(pair) => pair,
            Err(MasterError::Forbidden(message)) => {
                // A gone agent already got ShutdownAgent on the stream.
                let stream = UnboundedReceiverStream::new(receiver).map(|m| Ok(*m));
                tracing::warn!("refused agent: {message}");
                return Ok(Response::new(Box::pin(stream)));
            }
            Err(e) => return Err(Status::invalid_argument(e.to_string())),
        };
        let master = self.master.clone();
        tokio::spawn(async move {
            loop {
                let next = inbound.message().await;
                let message = match next {
                    Ok(Some(AgentMessage { message: Some(m) })) => m,
                    Ok(Some(AgentMessage { message: None })) => continue,
                    Ok(None) | Err(_) => break,
                };
                match master.lock() {
                    Ok(mut m) => m.agent_message(&agent_id, session, message),
                    Err(_) => break,
                }
            }
            if let Ok(mut m) = master.lock() {
                m.agent_disconnected(&agent_id, session);
            }
        });
        let stream = UnboundedReceiverStream::new(receiver).map(|m| Ok(*m));
        Ok(Response::new(Box::pin(stream)))
    }
}
