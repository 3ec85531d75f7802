//! The agent's side of the master↔agent link (`pando.link.v1.AgentLink`).
//!
//! The agent opens one bidirectional stream to a master, sends
//! RegisterAgent (no id yet) or ReregisterAgent (with its id and what it
//! runs), and waits for AgentRegistered, AgentReregistered or ShutdownAgent.
//! It then answers every Ping with a Pong and hands every other message to
//! the [`Agent`]. If the stream breaks, or no Ping arrives for
//! `ping_interval × max_ping_timeouts`, it reconnects with a randomised,
//! doubling backoff and re-registers. With several masters it tries each in
//! turn until one accepts.

use std::sync::Arc;
use std::time::Duration;

use pando_link as link;
use pando_link::agent_link_client::AgentLinkClient;
use pando_link::agent_message::Message as Up;
use pando_link::master_message::Message as Down;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::agent::Agent;

/// How a session with the master ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The master told the agent to shut down.
    #[error("the master asked this agent to shut down: {0}")]
    Shutdown(String),
    /// The master is a standby; `leader` is the leader it named, if any.
    #[error("master {master} is not the leader")]
    NotLeader {
        /// The master tried.
        master: String,
        /// The leader's `host:port`, when the standby knows it.
        leader: Option<String>,
    },
    /// The master could not be reached or the stream broke.
    #[error("link to master {master} broke: {reason}")]
    Broken {
        /// The master tried.
        master: String,
        /// What happened.
        reason: String,
    },
}

/// The longest wait between registration attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long the agent waits for the master's answer to a registration.
pub const REGISTRATION_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// How soon the agent asks again while the masters are electing a leader.
const ELECTION_RETRY: Duration = Duration::from_millis(300);

/// Keeps the agent registered until a master sends ShutdownAgent.
///
/// Each round tries the masters in the order given; a standby that names
/// the leader sends the agent there next. A round in which some master said
/// no leader is elected yet is retried soon, without growing the backoff:
/// an election takes about a second.
pub async fn run(agent: Arc<Agent>) -> LinkError {
    let factor = agent.config.backoff_factor;
    let mut backoff = factor;
    loop {
        let mut queue: std::collections::VecDeque<String> =
            agent.config.masters.iter().cloned().collect();
        let mut tried = std::collections::BTreeSet::new();
        let mut electing = false;
        while let Some(master) = queue.pop_front() {
            if !tried.insert(master.clone()) {
                continue;
            }
            match session(&agent, &master).await {
                Err(LinkError::Shutdown(message)) => return LinkError::Shutdown(message),
                Err(LinkError::NotLeader {
                    leader: Some(leader),
                    ..
                }) => {
                    tracing::info!("master {master} is a standby; trying the leader {leader}");
                    queue.push_front(leader);
                }
                Err(LinkError::NotLeader { leader: None, .. }) => electing = true,
                Err(e) => tracing::warn!("{e}"),
                Ok(()) => {
                    // A session that registered resets the backoff; the
                    // leader may have moved, so the next masters are tried
                    // at once.
                    backoff = factor;
                    electing = true;
                }
            }
        }
        let wait = if electing {
            jitter(ELECTION_RETRY.min(backoff))
        } else {
            jitter(backoff)
        };
        tracing::info!("retrying registration in {wait:?}");
        tokio::time::sleep(wait).await;
        if !electing {
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// A random duration in `[0, upper]`.
fn jitter(upper: Duration) -> Duration {
    let random = uuid::Uuid::new_v4().as_u128() as u64 as f64 / u64::MAX as f64;
    upper.mul_f64(random)
}

/// One session: connect, register, serve until the stream ends. `Ok` means
/// the agent registered and later lost the stream.
async fn session(agent: &Arc<Agent>, master: &str) -> Result<(), LinkError> {
    let broken = |reason: String| LinkError::Broken {
        master: master.to_string(),
        reason,
    };
    let url = if master.starts_with("http://") || master.starts_with("https://") {
        master.to_string()
    } else {
        format!("http://{master}")
    };
    let mut client = AgentLinkClient::connect(url)
        .await
        .map_err(|e| broken(e.to_string()))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let first = {
        let state = agent.lock();
        if state.info.id.is_some() {
            None
        } else {
            Some(link::RegisterAgent {
                agent_info: state.info.clone(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
                capabilities: crate::agent::agent_capabilities(),
                endpoint: Some(agent.endpoint.to_string()),
            })
        }
    };
    let first = match first {
        Some(register) => Up::Register(register),
        None => Up::Reregister(agent.reregistration()),
    };
    tx.send(link::AgentMessage {
        message: Some(first),
    })
    .map_err(|e| broken(e.to_string()))?;
    let response = client
        .session(UnboundedReceiverStream::new(rx))
        .await
        .map_err(|status| {
            if status.code() == tonic::Code::Unavailable {
                let leader = status
                    .metadata()
                    .get("pando-leader")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .filter(|l| l != master);
                LinkError::NotLeader {
                    master: master.to_string(),
                    leader,
                }
            } else {
                broken(status.to_string())
            }
        })?;
    let mut inbound = response.into_inner();
    let answer = tokio::time::timeout(REGISTRATION_ANSWER_TIMEOUT, inbound.message())
        .await
        .map_err(|_| broken("no answer to the registration".into()))?
        .map_err(|e| broken(e.to_string()))?
        .ok_or_else(|| broken("the master closed the stream".into()))?;
    let (ping_interval, max_timeouts) = match answer.message {
        Some(Down::Registered(r)) => {
            tracing::info!(
                "registered with master {master} as agent {}",
                r.agent_id.value
            );
            agent.set_link(Some(tx.clone()));
            agent.registered(r.agent_id, r.master_info);
            (r.ping_interval_seconds, r.max_ping_timeouts)
        }
        Some(Down::Reregistered(r)) => {
            tracing::info!(
                "re-registered with master {master} as agent {}",
                r.agent_id.value
            );
            agent.set_link(Some(tx.clone()));
            agent.registered(r.agent_id, r.master_info);
            for fw in &r.completed_frameworks {
                agent.shutdown_framework(fw);
            }
            (r.ping_interval_seconds, r.max_ping_timeouts)
        }
        Some(Down::Shutdown(s)) => {
            return Err(LinkError::Shutdown(s.message.unwrap_or_default()));
        }
        other => {
            return Err(broken(format!(
                "expected a registration answer, got {other:?}"
            )))
        }
    };
    let silence = Duration::from_secs_f64(
        (ping_interval.max(0.01) * f64::from(max_timeouts.max(1))).min(86_400.0),
    );
    let result = serve(agent, master, &tx, &mut inbound, silence).await;
    agent.disconnected();
    match result {
        Err(LinkError::Shutdown(m)) => Err(LinkError::Shutdown(m)),
        Err(e) => {
            tracing::warn!("{e}");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

async fn serve(
    agent: &Arc<Agent>,
    master: &str,
    tx: &mpsc::UnboundedSender<link::AgentMessage>,
    inbound: &mut tonic::Streaming<link::MasterMessage>,
    silence: Duration,
) -> Result<(), LinkError> {
    let broken = |reason: String| LinkError::Broken {
        master: master.to_string(),
        reason,
    };
    loop {
        let next = tokio::time::timeout(silence, inbound.message()).await;
        let message = match next {
            Err(_) => return Err(broken(format!("no ping for {silence:?}"))),
            Ok(Err(e)) => return Err(broken(e.to_string())),
            Ok(Ok(None)) => return Err(broken("the master closed the stream".into())),
            Ok(Ok(Some(m))) => m,
        };
        match message.message {
            Some(Down::Ping(_)) => {
                let _ = tx.send(link::AgentMessage {
                    message: Some(Up::Pong(link::Pong {})),
                });
            }
            Some(Down::Shutdown(s)) => {
                return Err(LinkError::Shutdown(s.message.unwrap_or_default()));
            }
            Some(other) => agent.handle_master(other),
            None => {}
        }
    }
}
