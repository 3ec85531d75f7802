//! The executor side of the v1 executor HTTP API: Pando's counterpart of
//! Mesos's executor library (`src/executor/executor.cpp`).
//!
//! A [`Driver`] owns the connection to the agent and hands the executor
//! logic a channel of [`Incoming`] items. Two tasks do the I/O:
//!
//! ```text
//!   executor logic ──send_update──▶ pending (kept until ACKNOWLEDGED)
//!         │                             │
//!         │                        sender task ── POST UPDATE/MESSAGE/HEARTBEAT (in order, 202)
//!         ▼
//!   Incoming ◀── subscription task ◀── POST SUBSCRIBE (200, RecordIO events)
//! ```
//!
//! The subscription task SUBSCRIBEs with every unacknowledged update and
//! task, reads the RecordIO event stream, and re-subscribes when the stream
//! breaks. A SUBSCRIBE whose connection is up is never abandoned on a
//! timer: a busy agent answers late, and one that registered the executor
//! on a stream the executor already hung up would send its LAUNCH into the
//! void. Only the registration window bounds it (the agent's own
//! registration timeout ends the container sooner anyway). Likewise an
//! UPDATE that does not reach the agent (the agent's accept queue was full,
//! say) is posted again with a backoff, on the live subscription: it does
//! not break the subscription, which for a framework that does not
//! checkpoint would end the executor and fail its task. As in Mesos, a framework that checkpoints keeps its executor
//! through an agent restart: the driver retries with a random backoff up to
//! `MESOS_SUBSCRIPTION_BACKOFF_MAX` until `MESOS_RECOVERY_TIMEOUT` runs out.
//! A framework that does not checkpoint gets a synthesized SHUTDOWN event
//! as soon as the connection breaks, as does one whose recovery timed out.
//! SIGTERM to the executor counts as a SHUTDOWN too. After any SHUTDOWN the
//! driver reports [`Incoming::ShutdownExpired`] once
//! `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` has passed, so the executor can
//! kill what is left and exit before the agent destroys the container.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use pando_proto::mesos::v1::executor::{call, event, Call, Event};
use pando_proto::mesos::v1::{TaskId, TaskInfo, TaskStatus};
use pando_proto::recordio::Decoder;
use prost::Message as _;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use crate::env::ExecutorEnv;
use crate::http::{AgentClient, HttpError, PROTOBUF};

/// The agent's executor API path.
pub const EXECUTOR_API: &str = "/api/v1/executor";
/// How long the agent may take to answer an UPDATE, MESSAGE or HEARTBEAT
/// call before the call counts as failed (and the executor re-subscribes).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Mesos's interval between HEARTBEAT calls.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// How long a first subscription may take before the executor gives up;
/// it bounds an unanswered SUBSCRIBE too.
pub const REGISTRATION_WINDOW: Duration = Duration::from_secs(60);
/// The first pause before an UPDATE that did not reach the agent is posted
/// again; it doubles up to [`CALL_RETRY_MAX`].
pub const CALL_RETRY_MIN: Duration = Duration::from_millis(50);
/// The longest pause between posts of an UPDATE that does not get through.
pub const CALL_RETRY_MAX: Duration = Duration::from_secs(2);

/// Why a driver operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The executor logic dropped its receiver; nothing more can be told.
    #[error("the executor stopped listening to its agent connection")]
    Closed,
}

/// What the driver hands to the executor logic.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// An event from the agent, or a SHUTDOWN the driver synthesized.
    Event(Box<Event>),
    /// The event stream broke after a subscription; the driver is
    /// re-subscribing (or has synthesized a SHUTDOWN).
    Disconnected,
    /// The shutdown grace period after a SHUTDOWN has run out.
    ShutdownExpired,
}

/// Updates and tasks the agent has not acknowledged yet.
#[derive(Debug, Default)]
struct Pending {
    /// In the order they were sent, so a re-subscription replays them in
    /// order.
    updates: Vec<call::Update>,
    /// Tasks for which no update has been acknowledged.
    tasks: Vec<TaskInfo>,
    /// Tasks with at least one acknowledged update, so a task tracked after
    /// its first acknowledgement (a nested container that launched late) is
    /// not listed as unacknowledged.
    acknowledged_tasks: HashSet<String>,
}

#[derive(Debug)]
struct Inner {
    env: ExecutorEnv,
    client: AgentClient,
    pending: Mutex<Pending>,
    outbox: mpsc::UnboundedSender<Call>,
    /// Woken when a call failed in transport, to force a re-subscription
    /// that resends the pending updates.
    reconnect: Notify,
    /// Set once the shutdown watchdog runs.
    shutdown_armed: AtomicBool,
}

/// The executor's connection to its agent. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Driver {
    inner: Arc<Inner>,
}

impl Driver {
    /// Starts subscribing to the agent named in `env`; events arrive on the
    /// returned channel. Must be called inside a tokio runtime.
    pub fn start(env: ExecutorEnv) -> (Driver, mpsc::UnboundedReceiver<Incoming>) {
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
        let driver = Driver {
            inner: Arc::new(Inner {
                client: AgentClient::new(env.agent_endpoint.clone())
                    .with_bearer(env.authentication_token.as_ref().map(|t| t.0.as_str())),
                env,
                pending: Mutex::new(Pending::default()),
                outbox,
                reconnect: Notify::new(),
                shutdown_armed: AtomicBool::new(false),
            }),
        };
        tokio::spawn(sender_loop(driver.clone(), outbox_rx));
        tokio::spawn(terminate_on_sigterm(driver.clone(), incoming_tx.clone()));
        tokio::spawn(subscription_loop(driver.clone(), incoming_tx));
        (driver, incoming_rx)
    }

    /// The executor environment.
    pub fn env(&self) -> &ExecutorEnv {
        &self.inner.env
    }

    /// A client for the agent, for operator API calls.
    pub fn client(&self) -> &AgentClient {
        &self.inner.client
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn call(&self, kind: call::Type) -> Call {
        Call {
            executor_id: self.inner.env.executor_id.clone(),
            framework_id: self.inner.env.framework_id.clone(),
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    /// Sends a status update and keeps it until the agent acknowledges it.
    pub fn send_update(&self, status: TaskStatus) -> Result<(), DriverError> {
        let update = call::Update { status };
        self.pending().updates.push(update.clone());
        let mut call = self.call(call::Type::Update);
        call.update = Some(update);
        self.inner
            .outbox
            .send(call)
            .map_err(|_| DriverError::Closed)
    }

    /// Sends opaque data to the scheduler, best effort.
    pub fn send_message(&self, data: Bytes) -> Result<(), DriverError> {
        let mut call = self.call(call::Type::Message);
        call.message = Some(call::Message { data });
        self.inner
            .outbox
            .send(call)
            .map_err(|_| DriverError::Closed)
    }

    /// Remembers a launched task until one of its updates is acknowledged.
    pub fn track_task(&self, task: TaskInfo) {
        let mut pending = self.pending();
        if !pending.acknowledged_tasks.contains(&task.task_id.value) {
            pending.tasks.push(task);
        }
    }

    /// Forgets a task the agent learns about another way (its container
    /// was waited on to the end).
    pub fn untrack_task(&self, task_id: &TaskId) {
        self.pending().tasks.retain(|t| &t.task_id != task_id);
    }

    /// How many updates still await acknowledgement.
    pub fn unacknowledged_updates(&self) -> usize {
        self.pending().updates.len()
    }

    /// Applies an ACKNOWLEDGED event; returns whether the update was known.
    fn acknowledge(&self, ack: &event::Acknowledged) -> bool {
        let mut pending = self.pending();
        let before = pending.updates.len();
        pending
            .updates
            .retain(|u| u.status.uuid.as_deref() != Some(&ack.uuid[..]));
        let known = pending.updates.len() != before;
        if known {
            pending.tasks.retain(|t| t.task_id != ack.task_id);
            pending.acknowledged_tasks.insert(ack.task_id.value.clone());
        }
        known
    }

    /// The SUBSCRIBE call, carrying what the agent has not acknowledged.
    fn subscribe_call(&self) -> Call {
        let pending = self.pending();
        let mut call = self.call(call::Type::Subscribe);
        call.subscribe = Some(call::Subscribe {
            unacknowledged_tasks: pending.tasks.clone(),
            unacknowledged_updates: pending.updates.clone(),
        });
        call
    }

    /// Starts the shutdown grace period watchdog, once.
    fn arm_shutdown(&self, tx: &mpsc::UnboundedSender<Incoming>) {
        if self.inner.shutdown_armed.swap(true, Ordering::SeqCst) {
            return;
        }
        let grace = self.inner.env.shutdown_grace_period;
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = tx.send(Incoming::ShutdownExpired);
        });
    }

    /// Delivers a SHUTDOWN the agent did not send, as Mesos's library does
    /// when it gives up on the agent.
    fn synthesize_shutdown(&self, tx: &mpsc::UnboundedSender<Incoming>) {
        let event = Event {
            r#type: Some(event::Type::Shutdown as i32),
            ..Default::default()
        };
        self.arm_shutdown(tx);
        let _ = tx.send(Incoming::Event(Box::new(event)));
    }
}

/// Treats SIGTERM like a SHUTDOWN event, so an executor that is asked to
/// stop (by an agent without cgroups, or by an operator) kills its tasks
/// within the shutdown grace period instead of orphaning them.
async fn terminate_on_sigterm(driver: Driver, tx: mpsc::UnboundedSender<Incoming>) {
    let Ok(mut sigterm) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        tracing::warn!("cannot handle SIGTERM; it will end the executor at once");
        return;
    };
    if sigterm.recv().await.is_some() {
        tracing::info!("received SIGTERM; shutting down");
        driver.synthesize_shutdown(&tx);
    }
}

/// POSTs non-SUBSCRIBE calls one at a time, so the agent sees updates in
/// the order they were made, and sends a HEARTBEAT call every 30 minutes.
async fn sender_loop(driver: Driver, mut outbox: mpsc::UnboundedReceiver<Call>) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    heartbeat.tick().await;
    loop {
        let call = tokio::select! {
            call = outbox.recv() => match call {
                Some(call) => call,
                None => return,
            },
            _ = heartbeat.tick() => driver.call(call::Type::Heartbeat),
        };
        post_call(&driver, &call).await;
    }
}

/// Whether an UPDATE still awaits its acknowledgement (one that came
/// through a re-subscription need not be posted again).
fn still_pending(driver: &Driver, call: &Call) -> bool {
    let Some(uuid) = call.update.as_ref().and_then(|u| u.status.uuid.as_ref()) else {
        return false;
    };
    driver
        .pending()
        .updates
        .iter()
        .any(|u| u.status.uuid.as_ref() == Some(uuid))
}

/// Posts one call until the agent answers it. An UPDATE that fails in
/// transport (no connection, no answer within [`CALL_TIMEOUT`]) is posted
/// again after a doubling backoff for as long as it is unacknowledged: the
/// agent drops duplicates by uuid, and if the agent is really gone the
/// event stream breaks and the subscription task takes over. MESSAGE and
/// HEARTBEAT are best effort, as in Mesos. A refusal is not retried here:
/// 403 (the agent does not count us as subscribed, it may have restarted)
/// and 503 (it is still recovering) force a fresh SUBSCRIBE, which carries
/// the pending updates.
async fn post_call(driver: &Driver, call: &Call) {
    let kind = call.r#type();
    let body = Bytes::from(call.encode_to_vec());
    let mut backoff = CALL_RETRY_MIN;
    let mut failures = 0u32;
    loop {
        let posted = tokio::time::timeout(
            CALL_TIMEOUT,
            driver
                .client()
                .post_as(EXECUTOR_API, PROTOBUF, body.clone()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(HttpError::Connect {
                endpoint: driver.env().agent_endpoint.clone(),
                source: std::io::ErrorKind::TimedOut.into(),
            })
        });
        match posted {
            Ok(response) if response.status == hyper::StatusCode::ACCEPTED => {
                if failures > 0 {
                    tracing::info!(call = kind.as_str_name(), failures, "call got through");
                }
                return;
            }
            Ok(response) => {
                tracing::warn!(
                    call = kind.as_str_name(),
                    status = %response.status,
                    body = %String::from_utf8_lossy(&response.body),
                    "agent refused a call"
                );
                if matches!(
                    response.status,
                    hyper::StatusCode::FORBIDDEN | hyper::StatusCode::SERVICE_UNAVAILABLE
                ) {
                    driver.inner.reconnect.notify_waiters();
                }
                return;
            }
            Err(error) if kind == call::Type::Update => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(call = kind.as_str_name(), %error, "call to the agent failed; posting it again");
                }
            }
            Err(error) => {
                tracing::warn!(call = kind.as_str_name(), %error, "call to the agent failed; dropped");
                return;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(CALL_RETRY_MAX);
        if !still_pending(driver, call) {
            return;
        }
    }
}

/// Subscribes, pumps events, and re-subscribes until told to stop.
async fn subscription_loop(driver: Driver, tx: mpsc::UnboundedSender<Incoming>) {
    let env = driver.env().clone();
    let mut ever_subscribed = false;
    let mut give_up_at: Option<Instant> = None;
    loop {
        // The window runs from the first attempt of each (re)subscription,
        // and bounds every attempt in it: a SUBSCRIBE still unanswered is
        // not abandoned before then.
        let window = if ever_subscribed {
            env.recovery_timeout
        } else {
            env.recovery_timeout.min(REGISTRATION_WINDOW)
        };
        let deadline = *give_up_at.get_or_insert_with(|| Instant::now() + window);
        let body = Bytes::from(driver.subscribe_call().encode_to_vec());
        let mut subscribed = false;
        let opened = tokio::time::timeout_at(
            deadline,
            driver.client().open_as(EXECUTOR_API, PROTOBUF, body),
        )
        .await
        .unwrap_or_else(|_| {
            Err(HttpError::Connect {
                endpoint: env.agent_endpoint.clone(),
                source: std::io::ErrorKind::TimedOut.into(),
            })
        });
        match opened {
            Ok(response) if response.status() == hyper::StatusCode::OK => {
                subscribed = pump(&driver, response.into_body(), &tx, deadline).await;
            }
            Ok(response) => {
                tracing::warn!(status = %response.status(), "agent refused SUBSCRIBE");
            }
            Err(error) => tracing::debug!(%error, "SUBSCRIBE failed"),
        }
        if tx.is_closed() {
            return;
        }
        if subscribed {
            ever_subscribed = true;
            give_up_at = None;
            tracing::info!("disconnected from the agent");
            let _ = tx.send(Incoming::Disconnected);
        }
        if ever_subscribed && !env.checkpoint {
            tracing::info!("the framework does not checkpoint; shutting down");
            driver.synthesize_shutdown(&tx);
            return;
        }
        // A stream that just broke starts the recovery window.
        let deadline = *give_up_at.get_or_insert_with(|| Instant::now() + env.recovery_timeout);
        let now = Instant::now();
        if now >= deadline {
            tracing::info!("could not reach the agent in time; shutting down");
            driver.synthesize_shutdown(&tx);
            return;
        }
        let backoff = jitter(env.subscription_backoff_max).max(Duration::from_millis(10));
        tokio::time::sleep(backoff.min(deadline - now)).await;
    }
}

/// A random duration in `[0, max]`.
fn jitter(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    let random = uuid::Uuid::new_v4().as_u64_pair().0;
    Duration::from_nanos(random % nanos)
}

/// Reads one subscription's event stream until it ends; returns whether it
/// got as far as SUBSCRIBED, which must come by `subscribed_by`.
async fn pump(
    driver: &Driver,
    mut body: hyper::body::Incoming,
    tx: &mpsc::UnboundedSender<Incoming>,
    subscribed_by: Instant,
) -> bool {
    let mut decoder = Decoder::default();
    let mut subscribed = false;
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            _ = driver.inner.reconnect.notified() => return subscribed,
            _ = tokio::time::sleep_until(subscribed_by), if !subscribed => {
                tracing::warn!("no SUBSCRIBED event within the registration window");
                return false;
            }
        };
        let data = match frame {
            None => return subscribed,
            Some(Err(error)) => {
                tracing::debug!(%error, "event stream broke");
                return subscribed;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        decoder.push(&data);
        loop {
            let record = match decoder.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "corrupt event stream");
                    return subscribed;
                }
            };
            // The agent's own events: prost's decoding is enough (no
            // check of proto2 required fields, which needs the reflection
            // tables this avoids building).
            let event = match Event::decode(&record[..]) {
                Ok(event) => event,
                Err(error) => {
                    tracing::warn!(%error, "undecodable event ignored");
                    continue;
                }
            };
            match event.r#type() {
                event::Type::Subscribed => subscribed = true,
                event::Type::Acknowledged => {
                    if let Some(ack) = &event.acknowledged {
                        if !driver.acknowledge(ack) {
                            tracing::warn!(task = %ack.task_id.value, "acknowledgement for an unknown update");
                        }
                    }
                }
                event::Type::Shutdown => driver.arm_shutdown(tx),
                _ => {}
            }
            if tx.send(Incoming::Event(Box::new(event))).is_err() {
                return subscribed;
            }
        }
    }
}
