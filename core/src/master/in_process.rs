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
