//! High availability: which master leads, and what changes hands when the
//! leader does.
//!
//! With `--registry=replicated_log` every master runs the same binary with
//! the same `--masters` list. The masters replicate the registry with Raft
//! (the `pando-registry` crate) and Raft elects the leader. This module
//! turns Raft's view of leadership into the master's behaviour:
//!
//! * **becoming leader**: wait until the log's earlier entries are applied,
//!   read the registry, build a fresh [`Master`] from it
//!   ([`Master::recover`]), start the registrar's writer, and put the new
//!   master in place of the standby one. Agents and frameworks now reach a
//!   master that knows them and re-register or re-subscribe;
//! * **losing leadership** (a newer leader, a lost quorum, a failed
//!   registry write): put a standby master in place. Dropping the old one
//!   closes every scheduler stream and agent link it held, so clients go
//!   looking for the new leader, which is exactly what they must do;
//! * **following**: keep the standby's idea of the leader current, for the
//!   307s it answers.
//!
//! Nothing here touches tasks: agents keep running them while masters come
//! and go.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pando_proto::mesos::v1 as pb;
use pando_registry::model::Operations;
use pando_registry::{Config, Leadership, MasterAddress, ReplicatedRegistry, WriteError};
use tokio::sync::{watch, Notify};

use super::flags::MasterFlags;
use super::handle::TenureAnnouncer;
use super::registrar::{Registrar, RegistrarError, RegistryLog};
use super::state::Master;

/// Why the replicated registry could not be set up or kept.
#[derive(Debug, thiserror::Error)]
pub enum HaError {
    /// `--masters`, `--quorum` or the addresses do not fit together.
    #[error("{0}")]
    Membership(String),
    /// The registry refused to open or to join the cluster.
    #[error("registry: {0}")]
    Registry(String),
}

/// The Raft side of a master's configuration, from its flags.
pub fn registry_config(flags: &MasterFlags) -> Result<Config, HaError> {
    let Some(list) = flags.masters.as_deref() else {
        return Err(HaError::Membership(
            "--registry=replicated_log needs --masters=host:port,... naming every master".into(),
        ));
    };
    let mut masters = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, port) = entry.rsplit_once(':').ok_or_else(|| {
            HaError::Membership(format!("--masters entry '{entry}' is not host:port"))
        })?;
        let port: u16 = port.parse().map_err(|_| {
            HaError::Membership(format!("--masters entry '{entry}' has an invalid port"))
        })?;
        let raft = match flags.raft_port {
            Some(raft_port) => format!("{host}:{raft_port}"),
            None => format!("{host}:{port}"),
        };
        masters.push(MasterAddress {
            http: format!("{host}:{port}"),
            raft,
        });
    }
    if masters.is_empty() {
        return Err(HaError::Membership("--masters names no master".into()));
    }
    let quorum = flags.quorum.map(|q| q as usize);
    let majority = masters.len() / 2 + 1;
    match quorum {
        None => {
            return Err(HaError::Membership(format!(
            "--registry=replicated_log needs --quorum (a majority of the {} masters: {majority})",
            masters.len()
        )))
        }
        Some(q) if q != majority => {
            return Err(HaError::Membership(format!(
                "--quorum={q} does not fit --masters: {} masters need a quorum of {majority}",
                masters.len()
            )))
        }
        Some(_) => {}
    }
    let names_me = |m: &&MasterAddress| {
        let Some((host, port)) = m.http.rsplit_once(':') else {
            return false;
        };
        port == flags.port.to_string()
            && (host.parse::<IpAddr>().ok() == Some(flags.ip)
                || flags.hostname.as_deref() == Some(host))
    };
    let me = masters.iter().find(names_me).cloned().ok_or_else(|| {
        HaError::Membership(format!(
            "this master ({}:{}) is not in --masters={list}; give every master the same list, including itself",
            flags.hostname.clone().unwrap_or_else(|| flags.ip.to_string()),
            flags.port
        ))
    })?;
    let election = flags.raft_election_timeout;
    Ok(Config {
        work_dir: flags.work_dir.clone(),
        me,
        masters,
        quorum,
        heartbeat_interval: flags.raft_heartbeat_interval,
        election_timeout: (election, election * 3 / 2),
    })
}

/// The registry's log, as the registrar's writer sees it.
struct RaftLog(ReplicatedRegistry);

impl RegistryLog for RaftLog {
    async fn append(&self, batch: Operations) -> Result<(), RegistrarError> {
        match self.0.write(batch).await {
            Ok(_) => Ok(()),
            Err(e) => Err(RegistrarError::Failed(e.to_string())),
        }
    }
}

/// A leader's MasterInfo as a standby knows it: enough for redirects and
/// `/master/state`'s `leader_info`.
fn leader_info(address: &MasterAddress) -> pb::MasterInfo {
    let (host, port) = address
        .http
        .rsplit_once(':')
        .map_or((address.http.as_str(), 0), |(h, p)| {
            (h, p.parse::<u32>().unwrap_or(0))
        });
    let ip = host
        .parse::<std::net::Ipv4Addr>()
        .map_or(0, |v4| u32::from_le_bytes(v4.octets()));
    pb::MasterInfo {
        id: String::new(),
        ip,
        port,
        pid: Some(format!("master@{host}:{port}")),
        hostname: Some(host.to_string()),
        version: Some(pando_proto::MESOS_VERSION.to_string()),
        address: Some(pb::Address {
            hostname: Some(host.to_string()),
            ip: Some(host.to_string()),
            port: i32::try_from(port).unwrap_or(0),
        }),
        domain: None,
        capabilities: Vec::new(),
    }
}

/// Follows Raft's leadership and swaps the master in `state` to match,
/// until `stop` changes. Returns an error only when the registry stopped
/// for good (a corrupt log, a storage failure).
///
/// A leader cut off from the others stops counting itself leader once no
/// quorum has answered it for the longest election timeout (the registry's
/// lease, from openraft's quorum-acknowledgement clock), which is before
/// the others may elect a new leader; it then steps down to standby, so two
/// masters never serve at once. A read-index round per check was tried
/// first, but under a burst of registrations it waited behind the apply
/// queue and deposed healthy leaders.
pub async fn supervise(
    registry: ReplicatedRegistry,
    flags: MasterFlags,
    state: Arc<Mutex<Master>>,
    tenure: TenureAnnouncer,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), HaError> {
    let election = flags.raft_election_timeout * 3 / 2;
    let check = flags.raft_heartbeat_interval.max(Duration::from_millis(50));
    // Taking over reads the registry once a quorum confirms the lead; on a
    // loaded machine that can take a while, and giving up early only
    // delays the next try.
    let take_over_within = (election * 4).max(Duration::from_secs(5));
    let mut leadership = registry.leadership();
    let seat = Seat {
        flags: &flags,
        state: &state,
        tenure: &tenure,
        wake: &wake,
    };
    // The term this master leads in, while it does, and its writer.
    let mut leading: Option<(u64, tokio::task::JoinHandle<()>)> = None;
    let ended = loop {
        let view: Leadership = leadership.borrow_and_update().clone();
        let writer_ended = leading.as_ref().is_some_and(|(_, w)| w.is_finished());
        let still_leading = leading
            .as_ref()
            .is_some_and(|(term, _)| view.is_me && *term == view.term)
            && !writer_ended;
        if leading.is_some() && !still_leading {
            if let Err(e) = step_down(&mut leading, seat, &view, "a new term or leader") {
                break Err(e);
            }
        }
        if view.is_me && leading.is_none() {
            match tokio::time::timeout(take_over_within, take_over(&registry, seat)).await {
                Ok(Ok(writer)) => leading = Some((view.term, writer)),
                Ok(Err(e)) => tracing::warn!("could not take over as leader: {e}"),
                Err(_) => tracing::warn!("no quorum confirmed this master's leadership yet"),
            }
        } else if !view.is_me {
            let leader = view.leader.as_ref().map(leader_info);
            if let Ok(mut m) = state.lock() {
                if !m.elected {
                    m.leader = leader;
                }
            }
        }
        // Leading: see every `check` that the writer still writes. Raft
        // says this master leads but it does not serve yet: try again
        // shortly.
        let recheck = if leading.is_some() || view.is_me {
            check
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            changed = leadership.changed() => {
                if changed.is_err() {
                    break Ok(());
                }
            }
            () = tokio::time::sleep(recheck) => {
                if leading.as_ref().is_some_and(|(_, w)| w.is_finished()) {
                    if let Err(e) = step_down(&mut leading, seat, &view, "a registry write failed") {
                        break Err(e);
                    }
                }
            }
            message = registry.fatal() => break Err(HaError::Registry(message)),
            _ = stop.changed() => break Ok(()),
        }
    };
    // The writer is this loop's task: it ends here too.
    if let Some((_, writer)) = leading.take() {
        writer.abort();
        let _ = writer.await;
    }
    ended
}

/// Stops leading: the writer stops and a standby master takes the place of
/// the leading one.
fn step_down(
    leading: &mut Option<(u64, tokio::task::JoinHandle<()>)>,
    seat: Seat<'_>,
    view: &Leadership,
    why: &str,
) -> Result<(), HaError> {
    if let Some((_, writer)) = leading.take() {
        writer.abort();
    }
    tracing::warn!(
        term = view.term,
        "this master is no longer the leader: {why}"
    );
    install_standby(seat, view)
}

/// Where master objects are installed, and who hears of each.
#[derive(Clone, Copy)]
struct Seat<'a> {
    /// The flags every master object is built with.
    flags: &'a MasterFlags,
    /// The shared state the HTTP API and the agent link lock.
    state: &'a Arc<Mutex<Master>>,
    /// Tells sessions and leader services which master now sits there.
    tenure: &'a TenureAnnouncer,
    /// The allocation loop's wake-up, handed to each new master.
    wake: &'a Arc<Notify>,
}

/// Puts a standby master in place of whatever `state` holds.
fn install_standby(seat: Seat<'_>, view: &Leadership) -> Result<(), HaError> {
    let Seat {
        flags,
        state,
        tenure,
        wake,
    } = seat;
    let leader = view
        .leader
        .as_ref()
        .filter(|_| !view.is_me)
        .map(leader_info);
    let mut standby =
        Master::standby(flags.clone(), leader).map_err(|e| HaError::Registry(e.to_string()))?;
    standby.wake_allocator = wake.clone();
    let old = match state.lock() {
        Ok(mut m) => std::mem::replace(&mut *m, standby),
        Err(_) => return Err(HaError::Registry("master state is poisoned".into())),
    };
    // Dropped outside the lock: this closes every stream it held.
    drop(old);
    tenure.installed(false);
    Ok(())
}

/// Becomes the leading master: reads the registry once every earlier entry
/// is applied and installs a master recovered from it.
async fn take_over(
    registry: &ReplicatedRegistry,
    seat: Seat<'_>,
) -> Result<tokio::task::JoinHandle<()>, HaError> {
    let Seat {
        flags,
        state,
        tenure,
        wake,
    } = seat;
    let started = Instant::now();
    registry
        .barrier()
        .await
        .map_err(|e: WriteError| HaError::Registry(e.to_string()))?;
    let snapshot = registry.read().await;
    let fetch_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (registrar, writer) = Registrar::queued();
    if let Ok(mut m) = registrar.metrics.lock() {
        m.state_fetch_ms = fetch_ms;
        m.registry_size_bytes = prost::Message::encoded_len(&snapshot) as u64;
    }
    let mut master = Master::recover(flags.clone(), &snapshot, registrar)
        .map_err(|e| HaError::Registry(e.to_string()))?;
    master.wake_allocator = wake.clone();
    let task = tokio::spawn(writer.run(RaftLog(registry.clone())));
    let old = match state.lock() {
        Ok(mut m) => std::mem::replace(&mut *m, master),
        Err(_) => return Err(HaError::Registry("master state is poisoned".into())),
    };
    drop(old);
    tenure.installed(true);
    wake.notify_one();
    tracing::info!(
        fetch_ms,
        agents = snapshot.agents.len(),
        frameworks = snapshot.frameworks.len(),
        "elected leading master"
    );
    Ok(task)
}
