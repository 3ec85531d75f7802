//! The scheduler side of the v1 scheduler API: Pando's counterpart of
//! Mesos's scheduler library (`src/scheduler/scheduler.cpp`) and of
//! libmesos's `MesosSchedulerDriver`.
//!
//! A [`Driver`] owns the framework's connection to the masters and hands the
//! framework logic a channel of [`Incoming`] items. Two tasks do the I/O,
//! both through a [`Transport`]:
//!
//! ```text
//!   framework logic ──accept/decline/kill/...──▶ outbox (FIFO)
//!         ▲                                        │
//!         │                           sender task ── call(stream id) ── 202 ──▶ Ok to the caller
//!         │                                        │   transient failure: back off, send again
//!         │                                        │   4xx: Refused to the caller
//!      Incoming ◀── subscription task ◀── subscribe ── SUBSCRIBED, OFFERS, UPDATE, ...
//!                        │  UPDATE with a uuid ──▶ ACKNOWLEDGE into the outbox (implicit acks)
//!                        └─ re-SUBSCRIBED ──▶ RECONCILE of the known live tasks into the outbox
//! ```
//!
//! The subscription task SUBSCRIBEs with the framework id as soon as it has
//! one (from the [`Config`]'s FrameworkInfo or the first SUBSCRIBED), so a
//! re-subscription after a broken stream or a change of leader is a
//! failover of the same framework, never a new one. A stream is dead when
//! it ends, breaks, or stays silent for [`MISSED_HEARTBEATS`] heartbeat
//! intervals (the interval SUBSCRIBED announced; the master sends HEARTBEAT
//! events every interval). Five is what the Mesos scheduler HTTP API
//! documentation suggests to schedulers ("Network partitions" in
//! `docs/scheduler-http-api.md`); pymesos reads heartbeats but does not
//! time them out, so a half-open TCP connection hangs it forever. The
//! task then subscribes again after a randomised, doubling backoff, and
//! after every re-subscription it reconciles the tasks it knows are not
//! terminal (it tracks task states from UPDATEs and from its own LAUNCHes),
//! so an update lost in a failover comes back.
//!
//! The sender task delivers calls one at a time, in the order they were
//! made, each on the current subscription. A call that fails transiently
//! (no connection, 503, a 307 from a master that stopped leading, a
//! subscription that was replaced) waits for the next subscription if need
//! be and is sent again after a backoff; the calls behind it wait, so order
//! holds across a failover. A 4xx refusal is final and goes back to the
//! caller with the master's reason. TEARDOWN is sent once and ends the
//! driver either way. A call redirected (307) by the master the
//! subscription is with also ends that subscription, in case the master
//! keeps the stream open after it stopped leading.
//!
//! A SUBSCRIBE refused with a 4xx, or an ERROR event (the master removed the
//! framework), ends the driver: the logic gets [`Incoming::Error`] and then
//! the channel closes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::scheduler::{call, event, Call};
use pando_proto::task_state::is_terminal;
use rand::Rng as _;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::transport::{Subscription, Transport, TransportError};

/// The heartbeat interval assumed until SUBSCRIBED announces one (Mesos's
/// default).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// How many heartbeat intervals of silence make a stream dead.
pub const MISSED_HEARTBEATS: u32 = 5;
/// The first pause before a SUBSCRIBE or a call is tried again; it doubles
/// up to [`BACKOFF_MAX`] (and a random part of it is taken off, so many
/// frameworks do not come back in step).
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest pause between tries. Mesos's documentation suggests up to
/// 15 s; Pando's masters elect a new leader in about a second, so a
/// framework should not sleep through most of a failover.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Why a driver call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The master refused the call for good (4xx): sending it again would
    /// not help.
    #[error("the master refused {call} with {status}: {reason}")]
    Refused {
        /// The call type, as Mesos names it (`ACCEPT`).
        call: &'static str,
        /// The HTTP status.
        status: u16,
        /// The master's explanation.
        reason: String,
    },
    /// A call that is sent only once (TEARDOWN) did not get through.
    #[error("{call} did not reach the master: {source}")]
    Undelivered {
        /// The call type.
        call: &'static str,
        /// What the transport said.
        source: TransportError,
    },
    /// The driver was stopped (or the framework logic stopped listening)
    /// before the call got through.
    #[error("the scheduler driver has stopped")]
    Stopped,
}

/// What the driver hands to the framework logic.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The master (re-)subscribed the framework.
    Subscribed {
        /// The framework's id, the same across re-subscriptions.
        framework_id: pb::FrameworkId,
        /// The master that answered.
        master_info: Option<pb::MasterInfo>,
        /// Whether this driver had been subscribed before (a failover or a
        /// broken stream, not the first subscription).
        reregistered: bool,
    },
    /// Resource offers.
    Offers(Vec<pb::Offer>),
    /// Inverse offers (maintenance).
    InverseOffers(Vec<pb::InverseOffer>),
    /// An offer is no longer valid.
    Rescind(pb::OfferId),
    /// An inverse offer is no longer valid.
    RescindInverseOffer(pb::OfferId),
    /// A task status update. With implicit acknowledgements the driver
    /// acknowledges it once it is handed over; with explicit ones the logic
    /// calls [`Driver::acknowledge`].
    Update(pb::TaskStatus),
    /// An offer operation's status update.
    OperationUpdate(pb::OperationStatus),
    /// Data an executor sent to the framework.
    Message {
        /// The executor's agent.
        agent_id: pb::AgentId,
        /// The executor.
        executor_id: pb::ExecutorId,
        /// The opaque data.
        data: Bytes,
    },
    /// An agent or an executor failed.
    Failure {
        /// The agent, if one failed or the executor ran on it.
        agent_id: Option<pb::AgentId>,
        /// The executor that ended, if it was one.
        executor_id: Option<pb::ExecutorId>,
        /// The executor's exit status.
        status: Option<i32>,
    },
    /// The master sent ERROR or refused the SUBSCRIBE for good; the driver
    /// has stopped and the channel closes after this.
    Error(String),
    /// The stream broke (or could not be opened); the driver is subscribing
    /// again. Sent once per outage.
    Disconnected(TransportError),
}

/// How the driver subscribes and behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The framework to subscribe; with an id, a failover of it.
    framework_info: pb::FrameworkInfo,
    /// Roles the framework subscribes with offers suppressed.
    suppressed_roles: Vec<String>,
    /// Whether the driver acknowledges every update itself.
    implicit_acknowledgements: bool,
    /// The first and longest pause between tries.
    backoff: (Duration, Duration),
}

impl Config {
    /// Subscribes `framework_info` with implicit acknowledgements.
    pub fn new(framework_info: pb::FrameworkInfo) -> Config {
        Config {
            framework_info,
            suppressed_roles: Vec::new(),
            implicit_acknowledgements: true,
            backoff: (BACKOFF_MIN, BACKOFF_MAX),
        }
    }

    /// Leaves acknowledging updates to the logic ([`Driver::acknowledge`]).
    pub fn explicit_acknowledgements(mut self) -> Config {
        self.implicit_acknowledgements = false;
        self
    }

    /// Subscribes with offers of these roles suppressed.
    pub fn with_suppressed_roles(mut self, roles: Vec<String>) -> Config {
        self.suppressed_roles = roles;
        self
    }

    /// Sets the first and the longest pause between tries.
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Config {
        self.backoff = (min, max.max(min));
        self
    }
}

/// Where the driver's subscription stands, as the sender task sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Session {
    /// Not subscribed: calls wait.
    Connecting,
    /// Subscribed on this stream id.
    Subscribed(String),
    /// The driver stopped: calls fail.
    Ended,
}

/// A call in the outbox, with whoever waits for its answer.
#[derive(Debug)]
struct Outgoing {
    call: Call,
    reply: Option<oneshot::Sender<Result<(), DriverError>>>,
}

/// What the driver remembers across subscriptions.
#[derive(Debug, Default)]
struct State {
    /// Set by the config or the first SUBSCRIBED.
    framework_id: Option<pb::FrameworkId>,
    /// The tasks not known to be terminal, by id: what a reconciliation
    /// after a re-subscription asks about.
    live_tasks: BTreeMap<String, call::reconcile::Task>,
    /// Set by TEARDOWN: a stream that ends now is not re-subscribed.
    tearing_down: bool,
}

/// What the driver's tasks share.
struct Shared {
    transport: Arc<dyn Transport>,
    config: Config,
    state: Mutex<State>,
    outbox: mpsc::UnboundedSender<Outgoing>,
    session: watch::Sender<Session>,
    /// The stream id of a subscription whose master redirected a call
    /// elsewhere (it no longer leads): its stream is dropped even if the
    /// master keeps it open.
    stale: watch::Sender<Option<String>>,
    /// Set to true to stop both tasks.
    stop: watch::Sender<bool>,
}

/// The framework's connection to the masters. Cheap to clone; dropping
/// every clone stops the driver's tasks.
#[derive(Clone)]
pub struct Driver {
    shared: Arc<Shared>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("framework_id", &self.framework_id())
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// Starts subscribing through `transport`; what the master sends
    /// arrives on the returned channel. Must be called inside a tokio
    /// runtime.
    pub fn start(
        config: Config,
        transport: impl Transport,
    ) -> (Driver, mpsc::UnboundedReceiver<Incoming>) {
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
        let state = State {
            framework_id: config.framework_info.id.clone(),
            ..State::default()
        };
        let shared = Arc::new(Shared {
            transport: Arc::new(transport),
            config,
            state: Mutex::new(state),
            outbox,
            session: watch::Sender::new(Session::Connecting),
            stale: watch::Sender::new(None),
            stop: watch::Sender::new(false),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(send_calls(shared.clone(), outbox_rx));
        tasks.spawn(keep_subscribed(shared.clone(), incoming_tx));
        let driver = Driver {
            shared,
            tasks: Arc::new(Mutex::new(tasks)),
        };
        (driver, incoming_rx)
    }

    /// The framework's id, once known.
    pub fn framework_id(&self) -> Option<pb::FrameworkId> {
        self.shared.state().framework_id.clone()
    }

    /// Stops subscribing and sending, and waits for both tasks to end.
    /// Calls not yet delivered fail with [`DriverError::Stopped`]; the
    /// framework stays registered with the master until its failover
    /// timeout runs out.
    pub async fn stop(&self) {
        self.shared.stop.send_replace(true);
        let mut tasks =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        while tasks.join_next().await.is_some() {}
    }

    /// Sends `call` (any type but SUBSCRIBE) after every call made before
    /// it, and returns once the master accepted it. The driver fills in the
    /// framework id.
    pub async fn call(&self, call: Call) -> Result<(), DriverError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .outbox
            .send(Outgoing {
                call,
                reply: Some(reply),
            })
            .map_err(|_| DriverError::Stopped)?;
        answer.await.unwrap_or(Err(DriverError::Stopped))
    }

    /// ACCEPTs offers with operations. The tasks it launches count as live
    /// (they are reconciled after a re-subscription) until an update says
    /// they ended.
    pub async fn accept(
        &self,
        offer_ids: Vec<pb::OfferId>,
        operations: Vec<pb::offer::Operation>,
        filters: Option<pb::Filters>,
    ) -> Result<(), DriverError> {
        let launched = launched_tasks(&operations);
        {
            let mut state = self.shared.state();
            for task in &launched {
                state
                    .live_tasks
                    .insert(task.task_id.value.clone(), task.clone());
            }
        }
        let mut call = new_call(call::Type::Accept);
        call.accept = Some(call::Accept {
            offer_ids,
            operations,
            filters,
        });
        let result = self.call(call).await;
        if matches!(result, Err(DriverError::Refused { .. })) {
            let mut state = self.shared.state();
            for task in &launched {
                state.live_tasks.remove(&task.task_id.value);
            }
        }
        result
    }

    /// ACCEPTs one offer with a LAUNCH of `tasks`.
    pub async fn launch(
        &self,
        offer_id: pb::OfferId,
        tasks: Vec<pb::TaskInfo>,
        filters: Option<pb::Filters>,
    ) -> Result<(), DriverError> {
        let launch = pb::offer::Operation {
            r#type: Some(pb::offer::operation::Type::Launch as i32),
            launch: Some(pb::offer::operation::Launch { task_infos: tasks }),
            ..Default::default()
        };
        self.accept(vec![offer_id], vec![launch], filters).await
    }

    /// DECLINEs offers, with a filter (how long not to offer them again).
    pub async fn decline(
        &self,
        offer_ids: Vec<pb::OfferId>,
        filters: Option<pb::Filters>,
    ) -> Result<(), DriverError> {
        let mut call = new_call(call::Type::Decline);
        call.decline = Some(call::Decline { offer_ids, filters });
        self.call(call).await
    }

    /// REVIVEs offers for `roles` (every role if empty), clearing filters.
    pub async fn revive(&self, roles: Vec<String>) -> Result<(), DriverError> {
        let mut call = new_call(call::Type::Revive);
        call.revive = Some(call::Revive { roles });
        self.call(call).await
    }

    /// SUPPRESSes offers for `roles` (every role if empty).
    pub async fn suppress(&self, roles: Vec<String>) -> Result<(), DriverError> {
        let mut call = new_call(call::Type::Suppress);
        call.suppress = Some(call::Suppress { roles });
        self.call(call).await
    }

    /// KILLs a task.
    pub async fn kill(
        &self,
        task_id: pb::TaskId,
        agent_id: Option<pb::AgentId>,
    ) -> Result<(), DriverError> {
        let mut call = new_call(call::Type::Kill);
        call.kill = Some(call::Kill {
            task_id,
            agent_id,
            kill_policy: None,
        });
        self.call(call).await
    }

    /// SHUTs DOWN an executor.
    pub async fn shutdown(
        &self,
        executor_id: pb::ExecutorId,
        agent_id: pb::AgentId,
    ) -> Result<(), DriverError> {
        let mut call = new_call(call::Type::Shutdown);
        call.shutdown = Some(call::Shutdown {
            executor_id,
            agent_id,
        });
        self.call(call).await
    }

    /// ACKNOWLEDGEs an update (with explicit acknowledgements). An update
    /// without a uuid needs none: nothing is sent.
    pub async fn acknowledge(&self, status: &pb::TaskStatus) -> Result<(), DriverError> {
        match acknowledge_call(status) {
            Some(call) => self.call(call).await,
            None => Ok(()),
        }
    }

    /// RECONCILEs `tasks`; with none, the master sends the state of every
    /// task of the framework.
    pub async fn reconcile(&self, tasks: Vec<call::reconcile::Task>) -> Result<(), DriverError> {
        self.call(reconcile_call(tasks)).await
    }

    /// Sends a MESSAGE to an executor.
    pub async fn message(
        &self,
        agent_id: pb::AgentId,
        executor_id: pb::ExecutorId,
        data: Bytes,
    ) -> Result<(), DriverError> {
        let mut call = new_call(call::Type::Message);
        call.message = Some(call::Message {
            agent_id,
            executor_id,
            data,
        });
        self.call(call).await
    }

    /// UPDATE_FRAMEWORKs: new FrameworkInfo (roles, capabilities...) and
    /// suppressed roles.
    pub async fn update_framework(
        &self,
        framework_info: pb::FrameworkInfo,
        suppressed_roles: Vec<String>,
    ) -> Result<(), DriverError> {
        let mut call = new_call(call::Type::UpdateFramework);
        call.update_framework = Some(call::UpdateFramework {
            framework_info,
            suppressed_roles,
            offer_constraints: None,
        });
        self.call(call).await
    }

    /// TEARs the framework DOWN (the master kills its tasks) and stops the
    /// driver. Sent once, after the calls before it.
    pub async fn teardown(&self) -> Result<(), DriverError> {
        self.shared.state().tearing_down = true;
        let result = self.call(new_call(call::Type::Teardown)).await;
        self.stop().await;
        result
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a call nobody waits for (an implicit ACKNOWLEDGE, the
    /// RECONCILE after a re-subscription); a failure is logged.
    fn enqueue(&self, call: Call) {
        let _ = self.outbox.send(Outgoing { call, reply: None });
    }

    /// The SUBSCRIBE call, with the framework id once there is one.
    fn subscribe_call(&self) -> Call {
        let mut framework_info = self.config.framework_info.clone();
        framework_info.id = self.state().framework_id.clone();
        let mut call = new_call(call::Type::Subscribe);
        call.framework_id = framework_info.id.clone();
        call.subscribe = Some(call::Subscribe {
            framework_info,
            suppressed_roles: self.config.suppressed_roles.clone(),
            offer_constraints: None,
        });
        call
    }

    /// Notes a task's new state: live, or gone once terminal.
    fn track(&self, status: &pb::TaskStatus) {
        let mut state = self.state();
        if is_terminal(status.state()) {
            state.live_tasks.remove(&status.task_id.value);
        } else {
            state.live_tasks.insert(
                status.task_id.value.clone(),
                call::reconcile::Task {
                    task_id: status.task_id.clone(),
                    agent_id: status.agent_id.clone(),
                },
            );
        }
    }

    /// Queues a RECONCILE of the live tasks, if there are any.
    fn reconcile_live_tasks(&self) {
        let tasks: Vec<_> = self.state().live_tasks.values().cloned().collect();
        if !tasks.is_empty() {
            tracing::info!(
                tasks = tasks.len(),
                "reconciling the live tasks after re-subscribing"
            );
            self.enqueue(reconcile_call(tasks));
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.config.backoff.0, self.config.backoff.1)
    }
}

/// A call of `kind` with nothing else set.
fn new_call(kind: call::Type) -> Call {
    Call {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn reconcile_call(tasks: Vec<call::reconcile::Task>) -> Call {
    let mut call = new_call(call::Type::Reconcile);
    call.reconcile = Some(call::Reconcile { tasks });
    call
}

/// The ACKNOWLEDGE of an update, if it carries a uuid.
fn acknowledge_call(status: &pb::TaskStatus) -> Option<Call> {
    let uuid = status.uuid.clone().filter(|u| !u.is_empty())?;
    let mut call = new_call(call::Type::Acknowledge);
    call.acknowledge = Some(call::Acknowledge {
        agent_id: status.agent_id.clone().unwrap_or_default(),
        task_id: status.task_id.clone(),
        uuid,
    });
    Some(call)
}

/// The tasks LAUNCH and LAUNCH_GROUP operations start.
fn launched_tasks(operations: &[pb::offer::Operation]) -> Vec<call::reconcile::Task> {
    let infos = operations.iter().flat_map(|op| {
        let launch = op.launch.iter().flat_map(|l| l.task_infos.iter());
        let group = op
            .launch_group
            .iter()
            .flat_map(|g| g.task_group.tasks.iter());
        launch.chain(group)
    });
    infos
        .map(|task| call::reconcile::Task {
            task_id: task.task_id.clone(),
            agent_id: Some(task.agent_id.clone()),
        })
        .collect()
}

/// A doubling pause with jitter: each pause is between half and all of
/// the current step.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            step: min,
        }
    }

    fn next(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(self.max);
        let half = step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }

    fn reset(&mut self) {
        self.step = self.min;
    }
}

/// Resolves once the driver is told to stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Delivers the outbox's calls one at a time, in order.
async fn send_calls(shared: Arc<Shared>, mut outbox: mpsc::UnboundedReceiver<Outgoing>) {
    let mut stop = shared.stop.subscribe();
    let mut session = shared.session.subscribe();
    loop {
        let outgoing = tokio::select! {
            outgoing = outbox.recv() => match outgoing {
                Some(outgoing) => outgoing,
                None => return,
            },
            () = stopped(&mut stop) => return,
        };
        let kind = outgoing.call.r#type();
        let result = tokio::select! {
            result = deliver(&shared, &mut session, outgoing.call) => result,
            () = stopped(&mut stop) => Err(DriverError::Stopped),
        };
        match (outgoing.reply, result) {
            (Some(reply), result) => {
                let _ = reply.send(result);
            }
            (None, Err(error)) => {
                tracing::warn!(call = kind.as_str_name(), %error, "call failed");
            }
            (None, Ok(())) => {}
        }
    }
}

/// Sends one call until the master accepts it or refuses it for good.
async fn deliver(
    shared: &Shared,
    session: &mut watch::Receiver<Session>,
    call: Call,
) -> Result<(), DriverError> {
    let kind = call.r#type();
    let name = kind.as_str_name();
    let once = kind == call::Type::Teardown;
    let mut backoff = shared.backoff();
    let mut failures = 0u32;
    loop {
        let stream_id = {
            let current = session
                .wait_for(|s| *s != Session::Connecting)
                .await
                .map_err(|_| DriverError::Stopped)?;
            match &*current {
                Session::Subscribed(stream_id) => stream_id.clone(),
                _ => return Err(DriverError::Stopped),
            }
        };
        let mut attempt = call.clone();
        attempt.framework_id = shared.state().framework_id.clone();
        match shared.transport.call(&stream_id, attempt).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(call = name, failures, "call got through");
                }
                return Ok(());
            }
            Err(TransportError::Refused { status, reason }) if status < 500 => {
                return Err(DriverError::Refused {
                    call: name,
                    status,
                    reason,
                });
            }
            Err(source) if once => {
                return Err(DriverError::Undelivered { call: name, source });
            }
            Err(error) => {
                if matches!(error, TransportError::NotLeader { .. }) {
                    shared.stale.send_replace(Some(stream_id));
                }
                failures += 1;
                if failures == 1 {
                    tracing::warn!(call = name, %error, "call did not get through; sending it again");
                }
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
}

/// How one subscription ended.
enum Ended {
    /// The stream broke: subscribe again.
    Broken(TransportError),
    /// The driver is done (ERROR, stop, or nobody listens).
    Done,
}

/// Subscribes, pumps events, and subscribes again until the driver stops.
async fn keep_subscribed(shared: Arc<Shared>, incoming: mpsc::UnboundedSender<Incoming>) {
    let mut stop = shared.stop.subscribe();
    let mut backoff = shared.backoff();
    let mut subscriptions = 0u64;
    // Whether the current outage was reported: once per outage.
    let mut reported = false;
    loop {
        let attempt = tokio::select! {
            attempt = shared.transport.subscribe(shared.subscribe_call()) => attempt,
            () = stopped(&mut stop) => break,
        };
        let reason = match attempt {
            Ok(subscription) => {
                let pumped = pump(
                    &shared,
                    subscription,
                    &incoming,
                    &mut stop,
                    &mut subscriptions,
                )
                .await;
                match pumped {
                    (Ended::Done, _) => break,
                    (Ended::Broken(reason), subscribed) => {
                        if subscribed {
                            backoff.reset();
                            reported = false;
                        }
                        reason
                    }
                }
            }
            Err(error) if !error.is_transient() => {
                let _ = incoming.send(Incoming::Error(format!(
                    "the master refused SUBSCRIBE: {error}"
                )));
                break;
            }
            Err(error) => error,
        };
        shared.session.send_replace(Session::Connecting);
        if shared.state().tearing_down {
            break;
        }
        tracing::info!(%reason, "not subscribed; subscribing again");
        if !reported {
            reported = true;
            if incoming.send(Incoming::Disconnected(reason)).is_err() {
                break;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next()) => {}
            () = stopped(&mut stop) => break,
        }
    }
    shared.session.send_replace(Session::Ended);
}

/// Reads one subscription's events until it ends; also says whether it
/// got as far as SUBSCRIBED.
async fn pump(
    shared: &Shared,
    mut subscription: Subscription,
    incoming: &mpsc::UnboundedSender<Incoming>,
    stop: &mut watch::Receiver<bool>,
    subscriptions: &mut u64,
) -> (Ended, bool) {
    let mut interval = DEFAULT_HEARTBEAT_INTERVAL;
    let mut subscribed = false;
    let mut stale = shared.stale.subscribe();
    loop {
        let silence = interval * MISSED_HEARTBEATS;
        let next = tokio::select! {
            next = subscription.events.next() => next,
            Ok(()) = stale.changed() => {
                if stale.borrow_and_update().as_deref() == Some(subscription.stream_id.as_str()) {
                    let reason = "the master no longer leads (it redirected a call)".to_string();
                    return (Ended::Broken(TransportError::Broken(reason)), subscribed);
                }
                continue;
            }
            () = tokio::time::sleep(silence) => {
                let reason = format!(
                    "no event for {}s ({MISSED_HEARTBEATS} heartbeat intervals)",
                    silence.as_secs_f64()
                );
                return (Ended::Broken(TransportError::Broken(reason)), subscribed);
            }
            () = stopped(stop) => return (Ended::Done, subscribed),
        };
        let event = match next {
            None => {
                let reason = "the master closed the event stream".to_string();
                return (Ended::Broken(TransportError::Broken(reason)), subscribed);
            }
            Some(Err(error)) => return (Ended::Broken(error), subscribed),
            Some(Ok(event)) => event,
        };
        let item = match event.r#type() {
            event::Type::Subscribed => {
                let Some(body) = event.subscribed else {
                    continue;
                };
                if let Some(seconds) = body
                    .heartbeat_interval_seconds
                    .filter(|s| s.is_finite() && *s > 0.0)
                {
                    interval = Duration::from_secs_f64(seconds);
                }
                shared.state().framework_id = Some(body.framework_id.clone());
                shared
                    .session
                    .send_replace(Session::Subscribed(subscription.stream_id.clone()));
                subscribed = true;
                let reregistered = *subscriptions > 0;
                *subscriptions += 1;
                if reregistered {
                    shared.reconcile_live_tasks();
                }
                Incoming::Subscribed {
                    framework_id: body.framework_id,
                    master_info: body.master_info,
                    reregistered,
                }
            }
            event::Type::Offers => {
                Incoming::Offers(event.offers.map(|o| o.offers).unwrap_or_default())
            }
            event::Type::InverseOffers => Incoming::InverseOffers(
                event
                    .inverse_offers
                    .map(|o| o.inverse_offers)
                    .unwrap_or_default(),
            ),
            event::Type::Rescind => match event.rescind {
                Some(rescind) => Incoming::Rescind(rescind.offer_id),
                None => continue,
            },
            event::Type::RescindInverseOffer => match event.rescind_inverse_offer {
                Some(rescind) => Incoming::RescindInverseOffer(rescind.inverse_offer_id),
                None => continue,
            },
            event::Type::Update => {
                let Some(update) = event.update else {
                    continue;
                };
                shared.track(&update.status);
                let ack = if shared.config.implicit_acknowledgements {
                    acknowledge_call(&update.status)
                } else {
                    None
                };
                if incoming.send(Incoming::Update(update.status)).is_err() {
                    return (Ended::Done, subscribed);
                }
                if let Some(ack) = ack {
                    shared.enqueue(ack);
                }
                continue;
            }
            event::Type::UpdateOperationStatus => match event.update_operation_status {
                Some(update) => Incoming::OperationUpdate(update.status),
                None => continue,
            },
            event::Type::Message => match event.message {
                Some(message) => Incoming::Message {
                    agent_id: message.agent_id,
                    executor_id: message.executor_id,
                    data: message.data,
                },
                None => continue,
            },
            event::Type::Failure => match event.failure {
                Some(failure) => Incoming::Failure {
                    agent_id: failure.agent_id,
                    executor_id: failure.executor_id,
                    status: failure.status,
                },
                None => continue,
            },
            event::Type::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                tracing::warn!(%message, "the master sent ERROR; the driver stops");
                let _ = incoming.send(Incoming::Error(message));
                return (Ended::Done, subscribed);
            }
            event::Type::Heartbeat | event::Type::Unknown => continue,
        };
        if incoming.send(item).is_err() {
            return (Ended::Done, subscribed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{self, FakeMaster};
    use pb::TaskState::{TaskFinished, TaskRunning};

    fn framework() -> pb::FrameworkInfo {
        pb::FrameworkInfo {
            user: "root".into(),
            name: "test".into(),
            ..Default::default()
        }
    }

    fn offer_id(id: &str) -> pb::OfferId {
        pb::OfferId { value: id.into() }
    }

    async fn next(incoming: &mut mpsc::UnboundedReceiver<Incoming>) -> Incoming {
        tokio::time::timeout(Duration::from_secs(3600), incoming.recv())
            .await
            .expect("the driver hands something over")
            .expect("the driver is running")
    }

    /// A driver subscribed as framework `fw-1` on a fake master.
    async fn subscribed(
        config: Config,
    ) -> (
        Driver,
        mpsc::UnboundedReceiver<Incoming>,
        FakeMaster,
        fake::FakeStream,
    ) {
        let (transport, mut master) = fake::pair();
        let (driver, mut incoming) = Driver::start(config, transport);
        let (_, stream) = master.next_subscribe().await;
        stream.send(fake::subscribed("fw-1", 15.0));
        assert!(matches!(
            next(&mut incoming).await,
            Incoming::Subscribed {
                reregistered: false,
                ..
            }
        ));
        (driver, incoming, master, stream)
    }

    fn kind(call: &Call) -> call::Type {
        call.r#type()
    }

    #[tokio::test(start_paused = true)]
    async fn resubscribes_with_the_same_framework_id_after_the_stream_breaks() {
        let (transport, mut master) = fake::pair();
        let (driver, mut incoming) = Driver::start(Config::new(framework()), transport);
        let (first, stream) = master.next_subscribe().await;
        assert_eq!(first.framework_id, None);
        stream.send(fake::subscribed("fw-1", 15.0));
        assert_eq!(
            next(&mut incoming).await,
            Incoming::Subscribed {
                framework_id: pb::FrameworkId {
                    value: "fw-1".into()
                },
                master_info: None,
                reregistered: false,
            }
        );

        drop(stream);
        assert!(matches!(
            next(&mut incoming).await,
            Incoming::Disconnected(TransportError::Broken(_))
        ));
        let (again, stream) = master.next_subscribe().await;
        let id = Some(pb::FrameworkId {
            value: "fw-1".into(),
        });
        assert_eq!(again.framework_id, id);
        assert_eq!(again.subscribe.unwrap().framework_info.id, id);
        stream.send(fake::subscribed("fw-1", 15.0));
        assert!(matches!(
            next(&mut incoming).await,
            Incoming::Subscribed {
                reregistered: true,
                ..
            }
        ));
        assert_eq!(driver.framework_id(), id);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_silent_for_five_heartbeats_is_dead() {
        let (transport, mut master) = fake::pair();
        let (_driver, mut incoming) = Driver::start(Config::new(framework()), transport);
        let (_, stream) = master.next_subscribe().await;
        stream.send(fake::subscribed("fw-1", 2.0));
        next(&mut incoming).await;
        // Heartbeats keep it alive...
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            stream.send(fake::heartbeat());
        }
        // ...silence does not; the stream is left open.
        match next(&mut incoming).await {
            Incoming::Disconnected(TransportError::Broken(reason)) => {
                assert_eq!(reason, "no event for 10s (5 heartbeat intervals)")
            }
            other => panic!("expected a disconnection, got {other:?}"),
        }
        let (again, _stream) = master.next_subscribe().await;
        assert_eq!(again.framework_id.unwrap().value, "fw-1");
    }

    #[tokio::test(start_paused = true)]
    async fn reconciles_the_live_tasks_after_resubscribing() {
        let (driver, mut incoming, mut master, stream) = subscribed(Config::new(framework())).await;
        for (task, state) in [
            ("t1", TaskRunning),
            ("t2", TaskRunning),
            ("t3", TaskRunning),
            ("t3", TaskFinished),
        ] {
            stream.send(fake::update(fake::status(task, state, None)));
            next(&mut incoming).await;
        }
        // A task launched but not yet updated is live too.
        let task = pb::TaskInfo {
            name: "t4".into(),
            task_id: pb::TaskId { value: "t4".into() },
            agent_id: pb::AgentId { value: "a2".into() },
            ..Default::default()
        };
        driver
            .launch(offer_id("o1"), vec![task], None)
            .await
            .unwrap();
        assert_eq!(kind(&master.next_call().await.1), call::Type::Accept);

        drop(stream);
        next(&mut incoming).await;
        let (_, stream) = master.next_subscribe().await;
        stream.send(fake::subscribed("fw-1", 15.0));
        next(&mut incoming).await;
        let (stream_id, reconcile) = master.next_call().await;
        assert_eq!(stream_id, stream.stream_id);
        let tasks: Vec<(String, String)> = reconcile
            .reconcile
            .unwrap()
            .tasks
            .into_iter()
            .map(|t| (t.task_id.value, t.agent_id.unwrap().value))
            .collect();
        assert_eq!(
            tasks,
            [("t1", "a1"), ("t2", "a1"), ("t4", "a2")].map(|(t, a)| (t.to_string(), a.to_string()))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn calls_are_kept_in_order_and_a_503_is_retried() {
        let (driver, _incoming, mut master, stream) = subscribed(Config::new(framework())).await;
        master.answer_calls(vec![Err(TransportError::NoLeader(
            "m1 answered 503".into(),
        ))]);
        let (first, second, third) = tokio::join!(
            driver.decline(vec![offer_id("o1")], None),
            driver.decline(vec![offer_id("o2")], None),
            driver.revive(vec![]),
        );
        assert_eq!((first, second, third), (Ok(()), Ok(()), Ok(())));
        let mut sent = Vec::new();
        while let Some((stream_id, call)) = master.sent_call() {
            assert_eq!(stream_id, stream.stream_id);
            assert_eq!(call.framework_id.as_ref().unwrap().value, "fw-1");
            let offer = call
                .decline
                .as_ref()
                .map(|d| d.offer_ids[0].value.clone())
                .unwrap_or_default();
            sent.push(format!("{} {offer}", kind(&call).as_str_name()));
        }
        assert_eq!(sent, ["DECLINE o1", "DECLINE o1", "DECLINE o2", "REVIVE "]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_400_is_reported_not_retried() {
        let (driver, _incoming, mut master, _stream) = subscribed(Config::new(framework())).await;
        master.answer_calls(vec![Err(TransportError::Refused {
            status: 400,
            reason: "Offer o1 is no longer valid".into(),
        })]);
        let refused = driver.decline(vec![offer_id("o1")], None).await;
        assert_eq!(
            refused,
            Err(DriverError::Refused {
                call: "DECLINE",
                status: 400,
                reason: "Offer o1 is no longer valid".into()
            })
        );
        driver.revive(vec![]).await.unwrap();
        assert_eq!(kind(&master.next_call().await.1), call::Type::Decline);
        assert_eq!(kind(&master.next_call().await.1), call::Type::Revive);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_made_while_disconnected_goes_on_the_next_subscription() {
        let (driver, mut incoming, mut master, stream) = subscribed(Config::new(framework())).await;
        drop(stream);
        next(&mut incoming).await;
        let kill = tokio::spawn({
            let driver = driver.clone();
            async move { driver.kill(pb::TaskId { value: "t1".into() }, None).await }
        });
        let (_, stream) = master.next_subscribe().await;
        stream.send(fake::subscribed("fw-1", 15.0));
        let (stream_id, call) = master.next_call().await;
        assert_eq!(
            (stream_id, kind(&call)),
            (stream.stream_id.clone(), call::Type::Kill)
        );
        assert_eq!(kill.await.unwrap(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_redirected_by_a_master_that_stopped_leading_moves_to_the_new_leader() {
        let (driver, mut incoming, mut master, old) = subscribed(Config::new(framework())).await;
        master.answer_calls(vec![Err(TransportError::NotLeader {
            master: "m1:5050".into(),
            location: "//m2:5050/api/v1/scheduler".into(),
        })]);
        let revive = tokio::spawn({
            let driver = driver.clone();
            async move { driver.revive(vec![]).await }
        });
        assert_eq!(master.next_call().await.0, old.stream_id);
        // The old stream is still open, but the driver subscribes again.
        let (_, new) = master.next_subscribe().await;
        assert!(matches!(
            next(&mut incoming).await,
            Incoming::Disconnected(TransportError::Broken(_))
        ));
        new.send(fake::subscribed("fw-1", 15.0));
        let (stream_id, call) = master.next_call().await;
        assert_eq!(
            (stream_id, kind(&call)),
            (new.stream_id.clone(), call::Type::Revive)
        );
        assert_eq!(revive.await.unwrap(), Ok(()));
        drop(old);
    }

    #[tokio::test(start_paused = true)]
    async fn implicit_acknowledgements_are_sent_for_updates_with_a_uuid() {
        let (driver, mut incoming, mut master, stream) = subscribed(Config::new(framework())).await;
        stream.send(fake::update(fake::status("t1", TaskRunning, None)));
        stream.send(fake::update(fake::status("t1", TaskFinished, Some("u-2"))));
        assert!(matches!(next(&mut incoming).await, Incoming::Update(_)));
        assert!(matches!(next(&mut incoming).await, Incoming::Update(_)));
        let (_, ack) = master.next_call().await;
        let ack = ack.acknowledge.expect("an ACKNOWLEDGE");
        assert_eq!(
            (
                ack.task_id.value.as_str(),
                ack.agent_id.value.as_str(),
                &ack.uuid[..]
            ),
            ("t1", "a1", &b"u-2"[..])
        );
        // Nothing for the update without a uuid.
        driver.revive(vec![]).await.unwrap();
        assert_eq!(kind(&master.next_call().await.1), call::Type::Revive);
    }

    #[tokio::test(start_paused = true)]
    async fn explicit_acknowledgements_wait_for_the_logic() {
        let config = Config::new(framework()).explicit_acknowledgements();
        let (driver, mut incoming, mut master, stream) = subscribed(config).await;
        stream.send(fake::update(fake::status("t1", TaskRunning, Some("u-1"))));
        let Incoming::Update(status) = next(&mut incoming).await else {
            panic!("expected an update");
        };
        driver.revive(vec![]).await.unwrap();
        assert_eq!(kind(&master.next_call().await.1), call::Type::Revive);
        driver.acknowledge(&status).await.unwrap();
        let (_, ack) = master.next_call().await;
        assert_eq!(&ack.acknowledge.unwrap().uuid[..], b"u-1");
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_event_ends_the_driver() {
        let (driver, mut incoming, _master, stream) = subscribed(Config::new(framework())).await;
        stream.send(fake::error("Framework has been removed"));
        assert_eq!(
            next(&mut incoming).await,
            Incoming::Error("Framework has been removed".into())
        );
        assert_eq!(incoming.recv().await, None);
        assert_eq!(driver.revive(vec![]).await, Err(DriverError::Stopped));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_subscribe_ends_the_driver_with_the_reason() {
        let (transport, master) = fake::pair();
        master.fail_subscribes(vec![TransportError::Refused {
            status: 400,
            reason: "'FrameworkInfo.roles' contains an invalid role".into(),
        }]);
        let (_driver, mut incoming) = Driver::start(Config::new(framework()), transport);
        match next(&mut incoming).await {
            Incoming::Error(message) => assert!(message.contains("invalid role"), "{message}"),
            other => panic!("expected an error, got {other:?}"),
        }
        assert_eq!(incoming.recv().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_master_is_reported_once_and_tried_again() {
        let (transport, mut master) = fake::pair();
        let unreachable = TransportError::Unreachable("cannot connect to m1:5050".into());
        master.fail_subscribes(vec![
            unreachable.clone(),
            unreachable.clone(),
            unreachable.clone(),
        ]);
        // A transport shared as a trait object drives a driver too.
        let transport: Arc<dyn Transport> = Arc::new(transport);
        let (_driver, mut incoming) = Driver::start(Config::new(framework()), transport);
        assert_eq!(
            next(&mut incoming).await,
            Incoming::Disconnected(unreachable)
        );
        let (_, stream) = master.next_subscribe().await;
        stream.send(fake::subscribed("fw-1", 15.0));
        assert!(matches!(
            next(&mut incoming).await,
            Incoming::Subscribed {
                reregistered: false,
                ..
            }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn teardown_is_sent_once_and_stops_the_driver() {
        let (driver, mut incoming, mut master, _stream) =
            subscribed(Config::new(framework())).await;
        driver.teardown().await.unwrap();
        assert_eq!(kind(&master.next_call().await.1), call::Type::Teardown);
        assert_eq!(incoming.recv().await, None);
    }
}
