//! A handle on the master of this process: what transports, in-process
//! sessions and leader-only services hold instead of the lock itself.
//!
//! ```text
//!   http/scheduler.rs ──┐
//!   session.rs ─────────┼─► MasterHandle::scheduler_call ─► lock, Master::scheduler_call, unlock
//!                       │                                      │
//!                       │                     await the registry barrier, then the reply
//!   leader.rs ──────────┴─► MasterHandle::tenure() ◄── ha.rs announces each master it installs
//! ```
//!
//! With `--registry=replicated_log` the master object behind the lock is
//! replaced whenever leadership changes hands (`ha.rs`): a standby master
//! in place of a leading one, or a master recovered from the registry when
//! this process wins an election. Whoever holds a handle sees each swap as
//! a new [`Tenure`], and so knows when to re-subscribe or to start and stop
//! work that only the leader may do.

use std::sync::{Arc, Mutex, MutexGuard};

use pando_proto::mesos::v1::scheduler as sched;
use tokio::sync::{mpsc, watch};

use super::framework::Subscription;
use super::scheduler::{Answer, CallContext, CallError, CallOutcome, ValidatedCall};
use super::state::{Master, MasterError};

/// A stream whose connection closed: (framework id, stream id).
pub type Disconnect = (String, String);

/// Which master object this process runs now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tenure {
    /// Grows by one each time a master object is installed.
    pub generation: u64,
    /// Whether the installed master leads.
    pub leading: bool,
}

/// A cloneable handle on the master in this process.
#[derive(Debug, Clone)]
pub struct MasterHandle {
    state: Arc<Mutex<Master>>,
    disconnects: mpsc::UnboundedSender<Disconnect>,
    tenure: watch::Receiver<Tenure>,
}

/// The sending side of the master's tenure, kept by whoever installs
/// master objects (the server, `ha.rs`).
#[derive(Debug, Clone)]
pub struct TenureAnnouncer {
    tenure: Arc<watch::Sender<Tenure>>,
}

impl TenureAnnouncer {
    /// Announces that a master object (leading or not) was installed.
    pub fn installed(&self, leading: bool) {
        self.tenure.send_modify(|t| {
            t.generation += 1;
            t.leading = leading;
        });
    }
}

impl MasterHandle {
    /// A handle on `state`, whose closed streams are reported to
    /// `disconnects`, and the announcer for its tenures. `leading` says
    /// whether the master in `state` leads now.
    pub fn new(
        state: Arc<Mutex<Master>>,
        disconnects: mpsc::UnboundedSender<Disconnect>,
        leading: bool,
    ) -> (MasterHandle, TenureAnnouncer) {
        let (sender, tenure) = watch::channel(Tenure {
            generation: 0,
            leading,
        });
        (
            MasterHandle {
                state,
                disconnects,
                tenure,
            },
            TenureAnnouncer {
                tenure: Arc::new(sender),
            },
        )
    }

    /// Locks the master; a poisoned lock means the master cannot serve.
    pub fn lock(&self) -> Result<MutexGuard<'_, Master>, MasterError> {
        self.state
            .lock()
            .map_err(|_| MasterError::Unavailable("master state is unavailable".into()))
    }

    /// The shared state itself, for the loops that own it with the handle.
    pub fn state(&self) -> &Arc<Mutex<Master>> {
        &self.state
    }

    /// The tenure now, and a way to wait for the next one.
    pub fn tenure(&self) -> watch::Receiver<Tenure> {
        self.tenure.clone()
    }

    /// Waits until the master of this process leads, and returns that
    /// tenure. Returns `None` if the master stopped for good.
    pub async fn leading(&self) -> Option<Tenure> {
        let mut tenure = self.tenure.clone();
        let now = tenure.wait_for(|t| t.leading).await.ok()?;
        Some(*now)
    }

    /// Runs one scheduler call and waits until the registry holds what it
    /// changed. A SUBSCRIBE's stream reports its own close when dropped.
    pub async fn scheduler_call(
        &self,
        context: &CallContext,
        call: ValidatedCall,
    ) -> Result<Reply, CallError> {
        let Answer { outcome, barrier } = {
            let mut master = self.lock()?;
            master.scheduler_call(context, call)?
        };
        if !barrier.passed() {
            barrier.wait().await.map_err(CallError::LostLeadership)?;
        }
        Ok(match outcome {
            CallOutcome::Subscribed(subscription) => Reply::Subscribed(EventStream {
                guard: StreamGuard {
                    framework_id: subscription.framework_id.clone(),
                    stream_id: subscription.stream_id.clone(),
                    disconnects: self.disconnects.clone(),
                },
                subscription,
            }),
            CallOutcome::Accepted => Reply::Accepted,
            CallOutcome::Updated => Reply::Updated,
        })
    }

    /// Counts a call that did not decode or validate.
    pub fn count_invalid_scheduler_call(&self) {
        if let Ok(mut master) = self.lock() {
            master.count_invalid_scheduler_call();
        }
    }
}

/// What a scheduler call answered, once the registry holds it.
#[derive(Debug)]
pub enum Reply {
    /// SUBSCRIBE: the framework's event stream.
    Subscribed(EventStream),
    /// Taken (202).
    Accepted,
    /// UPDATE_FRAMEWORK applied (200).
    Updated,
}

/// A subscribed framework's events. Dropping it tells the master that the
/// connection closed, as a broken HTTP stream does.
#[derive(Debug)]
pub struct EventStream {
    subscription: Subscription,
    guard: StreamGuard,
}

impl EventStream {
    /// The framework's id (the requested one, if SUBSCRIBE was refused).
    pub fn framework_id(&self) -> &str {
        &self.subscription.framework_id
    }

    /// The stream's id: calls on it carry it as their `Mesos-Stream-Id`.
    pub fn stream_id(&self) -> &str {
        &self.subscription.stream_id
    }

    /// The next event; `None` once the master closed the stream (the
    /// framework was removed or failed over, or the master stepped down).
    pub async fn next(&mut self) -> Option<sched::Event> {
        self.subscription.events.recv().await
    }

    /// The events and the guard that reports the close, for a transport
    /// that moves them into a response body.
    pub fn into_parts(self) -> (mpsc::UnboundedReceiver<sched::Event>, StreamGuard) {
        (self.subscription.events, self.guard)
    }
}

/// Reports a closed scheduler stream when dropped.
#[derive(Debug)]
pub struct StreamGuard {
    framework_id: String,
    stream_id: String,
    disconnects: mpsc::UnboundedSender<Disconnect>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let _ = self.disconnects.send((
            std::mem::take(&mut self.framework_id),
            std::mem::take(&mut self.stream_id),
        ));
    }
}
