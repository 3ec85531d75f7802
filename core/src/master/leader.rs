//! Leader-only services: work that runs on the leading master and nowhere
//! else, such as the YARN ResourceManager face.
//!
//! ```text
//!   ha.rs installs a master ──► Tenure { generation, leading }
//!                                      │
//!            LeaderServices::run ◄─────┘
//!              leading:  each service's `lead(term)` starts, once per tenure
//!              a new tenure, or shutdown:  `term.stepped_down()` fires,
//!                        the service returns, and is awaited (aborted after
//!                        STOP_GRACE if it does not)
//! ```
//!
//! A service gets a [`LeaderTerm`]: the handle on the master it leads with,
//! and a signal for the end of the term. While a service is not running
//! (this master stands by), the parts of it that face clients (a listener
//! that runs on every master) refuse work with [`MasterHandle::leader`],
//! which names the leader to go to.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use pando_proto::mesos::v1 as pb;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::handle::{MasterHandle, Tenure};

/// How long a stepping-down service may take to return before it is
/// aborted.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long a service that failed waits before it is started again in the
/// same term.
pub const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Why a leader-only service stopped before its term ended.
#[derive(Debug, thiserror::Error)]
#[error("leader service {service} failed: {reason}")]
pub struct LeaderServiceError {
    /// The service's name.
    pub service: &'static str,
    /// What went wrong.
    pub reason: String,
}

/// The future a service runs for one term.
pub type Leading = Pin<Box<dyn Future<Output = Result<(), LeaderServiceError>> + Send>>;

/// A service that runs only while this master leads.
pub trait LeaderService: Send + Sync + 'static {
    /// Its name, for logs.
    fn name(&self) -> &'static str;

    /// Runs for one term: starts when this master takes over, and must
    /// return soon after `term.stepped_down()` completes. Returning early
    /// with an error restarts it after [`RESTART_DELAY`] while the term
    /// lasts; returning `Ok` early ends it for the term.
    fn lead(self: Arc<Self>, term: LeaderTerm) -> Leading;
}

/// One term of leadership, as a service sees it.
#[derive(Debug, Clone)]
pub struct LeaderTerm {
    handle: MasterHandle,
    generation: u64,
    ended: watch::Receiver<bool>,
}

impl LeaderTerm {
    /// The master this term leads with.
    pub fn handle(&self) -> &MasterHandle {
        &self.handle
    }

    /// Which installed master this term belongs to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the term has ended.
    pub fn is_over(&self) -> bool {
        *self.ended.borrow()
    }

    /// Completes when the term ends: this master stepped down, lost its
    /// registry, or is shutting down.
    pub async fn stepped_down(&mut self) {
        let _ = self.ended.wait_for(|over| *over).await;
    }
}

/// Where a refused request should go: the leading master, when known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("this master is not the leader{}", leader_suffix(.leader.as_deref()))]
pub struct NotLeading {
    /// The leader, when one is known.
    pub leader: Option<Box<pb::MasterInfo>>,
}

fn leader_suffix(leader: Option<&pb::MasterInfo>) -> String {
    leader
        .and_then(|l| {
            l.hostname
                .clone()
                .map(|h| format!("; the leader is {h}:{}", l.port))
        })
        .unwrap_or_default()
}

impl MasterHandle {
    /// Whether the master of this process leads; when it does not, where
    /// the leader is, for services that must refuse work while standing by.
    pub fn leader(&self) -> Result<(), NotLeading> {
        match self.lock() {
            Ok(master) if master.elected => Ok(()),
            Ok(master) => Err(NotLeading {
                leader: master.leader.clone().map(Box::new),
            }),
            Err(_) => Err(NotLeading { leader: None }),
        }
    }
}

/// Starts and stops the leader-only services as the tenure changes.
pub struct LeaderServices {
    handle: MasterHandle,
    services: Vec<Arc<dyn LeaderService>>,
}

impl std::fmt::Debug for LeaderServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.services.iter().map(|s| s.name()).collect();
        f.debug_struct("LeaderServices")
            .field("services", &names)
            .finish_non_exhaustive()
    }
}

impl LeaderServices {
    /// The services to run on `handle`'s master while it leads.
    pub fn new(handle: MasterHandle, services: Vec<Arc<dyn LeaderService>>) -> LeaderServices {
        LeaderServices { handle, services }
    }

    /// Follows the tenure until `stop` changes, then stops every running
    /// service and waits for it.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut tenure = self.handle.tenure();
        loop {
            let now: Tenure = *tenure.borrow_and_update();
            let mut term = None;
            if now.leading {
                term = Some(self.start_term(now.generation));
            }
            // Wait for the tenure to change (or shutdown), restarting
            // services that fail meanwhile.
            let shutting_down = loop {
                let wake = {
                    let failure = async {
                        match term.as_mut() {
                            Some(t) => t.next_failure().await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        changed = tenure.changed() => Wake::Tenure { closed: changed.is_err() },
                        _ = stop.changed() => Wake::Stop,
                        failed = failure => Wake::Failed(failed),
                    }
                };
                match wake {
                    Wake::Tenure { closed } => break closed,
                    Wake::Stop => break true,
                    Wake::Failed(service) => {
                        if let (Some(t), Some(service)) = (term.as_mut(), service) {
                            t.restart_later(service);
                        }
                    }
                }
            };
            if let Some(t) = term {
                t.end().await;
            }
            if shutting_down {
                return;
            }
        }
    }

    fn start_term(&self, generation: u64) -> RunningTerm {
        let (end, ended) = watch::channel(false);
        let term = LeaderTerm {
            handle: self.handle.clone(),
            generation,
            ended,
        };
        let mut running = RunningTerm {
            end,
            term,
            tasks: JoinSet::new(),
        };
        for service in &self.services {
            tracing::info!(
                service = service.name(),
                generation,
                "starting leader service"
            );
            running.start(service.clone(), Duration::ZERO);
        }
        running
    }
}

/// What woke the supervisor.
enum Wake {
    /// A new master was installed (or the announcer is gone).
    Tenure { closed: bool },
    /// The process is shutting down.
    Stop,
    /// A service failed during the term.
    Failed(Option<Arc<dyn LeaderService>>),
}

/// The services of one term, while it lasts.
struct RunningTerm {
    end: watch::Sender<bool>,
    term: LeaderTerm,
    tasks: JoinSet<(Arc<dyn LeaderService>, Result<(), LeaderServiceError>)>,
}

impl RunningTerm {
    fn start(&mut self, service: Arc<dyn LeaderService>, delay: Duration) {
        let term = self.term.clone();
        self.tasks.spawn(async move {
            if !delay.is_zero() {
                let mut waiting = term.clone();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = waiting.stepped_down() => return (service, Ok(())),
                }
            }
            let result = service.clone().lead(term).await;
            (service, result)
        });
    }

    /// The next service that failed during the term, if any; pending while
    /// all run.
    async fn next_failure(&mut self) -> Option<Arc<dyn LeaderService>> {
        loop {
            match self.tasks.join_next().await {
                None => std::future::pending::<()>().await,
                Some(Ok((service, Err(e)))) => {
                    tracing::warn!("{e}; restarting it in {RESTART_DELAY:?}");
                    return Some(service);
                }
                Some(Ok((service, Ok(())))) => {
                    tracing::info!(service = service.name(), "leader service finished");
                }
                Some(Err(e)) => tracing::error!("a leader service panicked or was cancelled: {e}"),
            }
        }
    }

    fn restart_later(&mut self, service: Arc<dyn LeaderService>) {
        if !self.term.is_over() {
            self.start(service, RESTART_DELAY);
        }
    }

    /// Ends the term and waits for every service, aborting those that do
    /// not return within [`STOP_GRACE`].
    async fn end(mut self) {
        let _ = self.end.send(true);
        let all_returned = async {
            while let Some(ended) = self.tasks.join_next().await {
                match ended {
                    Ok((service, Err(e))) => {
                        tracing::warn!(service = service.name(), "stopped with an error: {e}")
                    }
                    Ok((service, Ok(()))) => {
                        tracing::info!(service = service.name(), "leader service stopped")
                    }
                    Err(e) => tracing::error!("a leader service panicked: {e}"),
                }
            }
        };
        if tokio::time::timeout(STOP_GRACE, all_returned)
            .await
            .is_err()
        {
            tracing::warn!("leader services did not stop within {STOP_GRACE:?}; aborting them");
            self.tasks.shutdown().await;
        }
    }
}
