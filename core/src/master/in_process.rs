//! The in-process transport of `pando-scheduler`'s driver: a framework in
//! the master's own process (the YARN face) gets the driver's ordering,
//! retries, acknowledgements and reconciliation, with no HTTP in between.
//!
//! ```text
//!   pando_scheduler::Driver ── subscribe ──► InProcess ── waits until this master leads
//!                                              └─► MasterHandle::scheduler_call(SUBSCRIBE)
//!                            ── call ───────► InProcess ──► MasterHandle::scheduler_call
//! ```
//!
//! Unlike [`Session`](super::session::Session), which re-subscribes by
//! itself, this transport opens one subscription per `subscribe` and lets
//! the driver decide when to open the next: when the stream ends (the
//! master object behind it was replaced at a leadership change), the driver
//! subscribes again with its framework id, and this transport waits until
//! the master of this process leads before it does.

use pando_proto::mesos::v1::scheduler::{Call, Event};
use pando_scheduler::transport::{BoxFuture, EventStream, Subscription, Transport, TransportError};

use super::handle::{self, MasterHandle, Reply};
use super::scheduler::{CallContext, CallError, ValidatedCall};
use super::state::MasterError;

/// Scheduler calls straight into the master of this process.
#[derive(Debug, Clone)]
pub struct InProcess {
    handle: MasterHandle,
    principal: Option<String>,
}

impl InProcess {
    /// A transport into `handle`'s master, acting as `principal`.
    pub fn new(handle: MasterHandle, principal: Option<String>) -> InProcess {
        InProcess { handle, principal }
    }

    fn context(&self, stream_id: Option<&str>) -> CallContext {
        CallContext {
            stream_id: stream_id.map(str::to_string),
            principal: self.principal.clone(),
        }
    }

    async fn run(&self, stream_id: Option<&str>, call: Call) -> Result<Reply, TransportError> {
        let call = ValidatedCall::new(call, self.principal.as_deref()).map_err(|e| {
            TransportError::Refused {
                status: 400,
                reason: format!("Failed to validate scheduler::Call: {e}"),
            }
        })?;
        self.handle
            .scheduler_call(&self.context(stream_id), call)
            .await
            .map_err(|e| transport_error(stream_id, e))
    }
}

/// The driver's view of a refusal: what HTTP would have answered.
fn transport_error(stream_id: Option<&str>, error: CallError) -> TransportError {
    let refused = |status: u16, reason: String| TransportError::Refused { status, reason };
    match error {
        CallError::NotLeader {
            leader: Some(leader),
        } => TransportError::NotLeader {
            master: "this master".into(),
            location: format!(
                "{}:{}",
                leader.hostname.as_deref().unwrap_or_default(),
                leader.port
            ),
        },
        CallError::NotLeader { leader: None } => TransportError::NoLeader(error.to_string()),
        CallError::LostLeadership(_) => TransportError::NoLeader(error.to_string()),
        // A stream this master does not hold (it replaced the master that
        // did, or the stream closed): the subscription is gone.
        CallError::Refused(MasterError::Forbidden(_)) if stream_id.is_some() => {
            TransportError::Gone(stream_id.unwrap_or_default().to_string())
        }
        CallError::Refused(e @ MasterError::Forbidden(_)) => refused(403, e.to_string()),
        CallError::Refused(e @ MasterError::NotFound(_)) => refused(404, e.to_string()),
        CallError::Refused(e @ MasterError::Conflict(_)) => refused(409, e.to_string()),
        CallError::Refused(e @ MasterError::Unavailable(_)) => {
            TransportError::NoLeader(e.to_string())
        }
        CallError::Refused(e @ MasterError::BadRequest(_)) => refused(400, e.to_string()),
        CallError::StreamIdOnSubscribe => refused(400, error.to_string()),
        CallError::Unknown => refused(501, error.to_string()),
    }
}

/// A subscription's events, straight from the master's channel. Dropping
/// it tells the master the framework disconnected.
struct Events(handle::EventStream);

impl EventStream for Events {
    fn next(&mut self) -> BoxFuture<'_, Option<Result<Event, TransportError>>> {
        Box::pin(async move { self.0.next().await.map(Ok) })
    }
}

impl Transport for InProcess {
    fn subscribe(&self, call: Call) -> BoxFuture<'_, Result<Subscription, TransportError>> {
        Box::pin(async move {
            // On a standby, wait: the subscription belongs to this process's
            // master once it leads again.
            if self.handle.leading().await.is_none() {
                return Err(TransportError::Unreachable("the master stopped".into()));
            }
            match self.run(None, call).await? {
                Reply::Subscribed(stream) => Ok(Subscription {
                    stream_id: stream.stream_id().to_string(),
                    events: Box::new(Events(stream)),
                }),
                Reply::Accepted | Reply::Updated => Err(TransportError::Broken(
                    "SUBSCRIBE was answered without a stream".into(),
                )),
            }
        })
    }

    fn call<'a>(
        &'a self,
        stream_id: &'a str,
        call: Call,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(async move { self.run(Some(stream_id), call).await.map(|_| ()) })
    }
}

#[cfg(test)]
mod tests {
    //! The scheduler driver on the in-process transport: a framework in the
    //! master's process gets offers, launches, has its updates acknowledged
    //! for it, and follows this master through a leadership change.

    use std::time::Duration;

    use pando_link::master_message;
    use pando_proto::mesos::v1 as pb;
    use pando_scheduler::{Config, Driver, Incoming};
    use tokio::sync::mpsc;

    use super::InProcess;
    use crate::master::testing::{sleeper, Cluster, PATIENCE};

    async fn next<T>(
        incoming: &mut mpsc::UnboundedReceiver<Incoming>,
        wanted: impl Fn(Incoming) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let item = tokio::time::timeout_at(deadline, incoming.recv())
                .await
                .expect("the driver hands over what was expected in time")
                .expect("the driver runs");
            if let Some(found) = wanted(item) {
                return found;
            }
        }
    }

    fn subscribed(item: Incoming) -> Option<(pb::FrameworkId, bool)> {
        match item {
            Incoming::Subscribed {
                framework_id,
                reregistered,
                ..
            } => Some((framework_id, reregistered)),
            _ => None,
        }
    }

    fn start(cluster: &Cluster) -> (Driver, mpsc::UnboundedReceiver<Incoming>) {
        let framework = pb::FrameworkInfo {
            user: "nobody".into(),
            name: "in-process-driver".into(),
            failover_timeout: Some(3600.0),
            ..Default::default()
        };
        let config = Config::new(framework)
            .with_backoff(Duration::from_millis(10), Duration::from_millis(100));
        Driver::start(config, InProcess::new(cluster.handle.clone(), None))
    }

    #[tokio::test]
    async fn the_driver_launches_and_acknowledges_through_the_master_in_its_process() {
        let mut cluster = Cluster::new();
        let (driver, mut incoming) = start(&cluster);
        let (framework_id, reregistered) = next(&mut incoming, subscribed).await;
        assert!(!reregistered);

        cluster.allocate();
        let offer = next(&mut incoming, |item| match item {
            Incoming::Offers(mut offers) => Some(offers.remove(0)),
            _ => None,
        })
        .await;
        let task = sleeper("t1", &offer.agent_id);
        driver
            .launch(offer.id, vec![task], None)
            .await
            .expect("the launch is taken");
        let master_message::Message::RunTask(run) = cluster.heard_by_agent() else {
            panic!("the agent is told to run the task");
        };
        assert_eq!(run.task.task_id.value, "t1");

        let uuid = cluster.agent_reports_running(&framework_id.value, "t1");
        let status = next(&mut incoming, |item| match item {
            Incoming::Update(status) => Some(status),
            _ => None,
        })
        .await;
        assert_eq!(status.state, pb::TaskState::TaskRunning as i32);
        // Implicit acknowledgement: the driver answered for the framework.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let acked = loop {
            if let Some(message) = cluster.try_heard_by_agent() {
                break message;
            }
            assert!(tokio::time::Instant::now() < deadline, "no acknowledgement");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let master_message::Message::Acknowledgement(ack) = acked else {
            panic!("the agent hears of the acknowledgement, not {acked:?}");
        };
        assert_eq!(ack.uuid.as_ref(), uuid.as_slice());
        driver.stop().await;
    }

    #[tokio::test]
    async fn the_driver_waits_out_a_standby_and_resubscribes_as_the_same_framework() {
        let cluster = Cluster::new();
        let (driver, mut incoming) = start(&cluster);
        let (framework_id, _) = next(&mut incoming, subscribed).await;
        let registry = cluster.registry();

        cluster.step_down();
        next(&mut incoming, |item| {
            matches!(item, Incoming::Disconnected(_)).then_some(())
        })
        .await;
        cluster.take_over(&registry);
        let (again, reregistered) = next(&mut incoming, subscribed).await;
        assert_eq!(again, framework_id);
        assert!(reregistered);
        driver
            .revive(vec![])
            .await
            .expect("calls reach the new master");
        driver.stop().await;
    }
}
