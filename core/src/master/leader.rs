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

#[cfg(test)]
mod tests {
    //! Leader services follow the tenure: they start when this master
    //! leads, stop when it stands by, start again on the next term, and
    //! stop for good at shutdown.

    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::sync::{mpsc, watch};

    use super::{LeaderService, LeaderServiceError, LeaderServices, LeaderTerm, Leading};
    use crate::master::handle::{MasterHandle, TenureAnnouncer};
    use crate::master::{Master, MasterFlags};

    /// Counts its own starts and stops; fails its first `failures` runs.
    #[derive(Default)]
    struct Counter {
        starts: AtomicU64,
        stops: AtomicU64,
        failures: AtomicU64,
        generations: Mutex<Vec<u64>>,
    }

    impl LeaderService for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }

        fn lead(self: Arc<Self>, mut term: LeaderTerm) -> Leading {
            Box::pin(async move {
                self.starts.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut g) = self.generations.lock() {
                    g.push(term.generation());
                }
                let failing = self
                    .failures
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if failing {
                    self.stops.fetch_add(1, Ordering::SeqCst);
                    return Err(LeaderServiceError {
                        service: "counter",
                        reason: "told to fail".into(),
                    });
                }
                term.stepped_down().await;
                self.stops.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        }
    }

    struct Harness {
        tenure: TenureAnnouncer,
        counter: Arc<Counter>,
        stop: watch::Sender<bool>,
        supervisor: tokio::task::JoinHandle<()>,
        _disconnects: mpsc::UnboundedReceiver<(String, String)>,
    }

    impl Harness {
        fn start(leading: bool, failures: u64) -> Harness {
            let flags = MasterFlags::with_defaults([127, 0, 0, 1].into(), 5050, "/tmp".into());
            let master = Master::new(flags).expect("master");
            let (tx, disconnects) = mpsc::unbounded_channel();
            let (handle, tenure) = MasterHandle::new(Arc::new(Mutex::new(master)), tx, leading);
            let counter = Arc::new(Counter {
                failures: AtomicU64::new(failures),
                ..Counter::default()
            });
            let services = LeaderServices::new(handle, vec![counter.clone()]);
            let (stop, stopped) = watch::channel(false);
            let supervisor = tokio::spawn(services.run(stopped));
            Harness {
                tenure,
                counter,
                stop,
                supervisor,
                _disconnects: disconnects,
            }
        }

        fn counts(&self) -> (u64, u64) {
            (
                self.counter.starts.load(Ordering::SeqCst),
                self.counter.stops.load(Ordering::SeqCst),
            )
        }

        /// Lets the supervisor and the service run until they settle at
        /// `expected` (starts, stops), with simulated time.
        async fn settles_at(&self, expected: (u64, u64)) {
            for _ in 0..1000 {
                if self.counts() == expected {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(self.counts(), expected, "(starts, stops)");
        }

        async fn shut_down(self) -> (u64, u64) {
            let _ = self.stop.send(true);
            let counts = {
                let counter = self.counter.clone();
                self.supervisor.await.expect("the supervisor ends");
                (
                    counter.starts.load(Ordering::SeqCst),
                    counter.stops.load(Ordering::SeqCst),
                )
            };
            counts
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_runs_only_while_this_master_leads() {
        let harness = Harness::start(false, 0);
        harness.settles_at((0, 0)).await;

        harness.tenure.installed(true);
        harness.settles_at((1, 0)).await;

        harness.tenure.installed(false);
        harness.settles_at((1, 1)).await;

        harness.tenure.installed(true);
        harness.settles_at((2, 1)).await;
        assert_eq!(
            *harness.counter.generations.lock().expect("generations"),
            vec![1, 3],
            "each start belongs to the tenure that leads"
        );

        assert_eq!(harness.shut_down().await, (2, 2), "shutdown stops it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_leading_term_restarts_the_service_once() {
        let harness = Harness::start(true, 0);
        harness.settles_at((1, 0)).await;
        // Re-elected in a new term without standing by in between.
        harness.tenure.installed(true);
        harness.settles_at((2, 1)).await;
        assert_eq!(harness.shut_down().await, (2, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_service_is_restarted_within_its_term() {
        let harness = Harness::start(true, 2);
        // Two failed runs, then one that lasts.
        harness.settles_at((3, 2)).await;
        assert_eq!(harness.shut_down().await, (3, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_standby_master_refuses_work_and_names_the_leader() {
        let flags = MasterFlags::with_defaults([127, 0, 0, 1].into(), 5050, "/tmp".into());
        let leader = Master::new(flags.clone()).expect("master").info;
        let standby = Master::standby(flags, Some(leader)).expect("standby");
        let (tx, _rx) = mpsc::unbounded_channel();
        let (handle, _tenure) = MasterHandle::new(Arc::new(Mutex::new(standby)), tx, false);
        let refusal = handle.leader().expect_err("a standby refuses");
        assert_eq!(
            refusal.to_string(),
            "this master is not the leader; the leader is 127.0.0.1:5050"
        );
    }
}
