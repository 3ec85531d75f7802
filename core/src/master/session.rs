//! In-process scheduler sessions: a framework that lives in the master's
//! process (the YARN face, say) subscribes and calls without HTTP, through
//! the same [`Master::scheduler_call`](super::Master::scheduler_call) the
//! HTTP API uses.
//!
//! ```text
//!   framework logic ──Session::call──► MasterHandle::scheduler_call (Mesos-Stream-Id = the session's)
//!          ▲
//!          └── SessionEvents::next ◄── EventStream ◄── SUBSCRIBE (with the framework id once known)
//!                    │ stream closed (leadership moved, master replaced)
//!                    └─► wait until this process leads again ─► SUBSCRIBE again
//! ```
//!
//! A session outlives the master object it subscribed to. When leadership
//! changes hands, `ha.rs` replaces that object and its stream closes; the
//! session then waits until the master of this process leads again and
//! re-subscribes with its framework id, exactly as an HTTP framework
//! follows the leader. An ERROR event (the framework was removed, or
//! another scheduler took it over) ends the session: every later call and
//! read returns [`SessionError::Ended`] instead of waiting.
//!
//! Dropping [`SessionEvents`] closes the stream, which the master treats as
//! a disconnected framework: its failover timeout starts.

use std::sync::{Arc, Mutex, PoisonError};

use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::scheduler as sched;

use super::handle::{EventStream, MasterHandle, Reply};
use super::scheduler::{CallContext, CallError, ValidatedCall, ValidationError};
use super::state::MasterError;

/// Why a session call or read failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SessionError {
    /// The framework was torn down or taken over; the session is over.
    #[error("the scheduler session ended: {0}")]
    Ended(String),
    /// No stream is open right now (the session is re-subscribing after a
    /// leadership change); try again shortly.
    #[error("the scheduler session is not subscribed right now")]
    NotSubscribed,
    /// The call is not a valid scheduler call.
    #[error("Failed to validate scheduler::Call: {0}")]
    Invalid(#[from] ValidationError),
    /// The master refused the call.
    #[error(transparent)]
    Refused(#[from] CallError),
    /// The master of this process stopped for good.
    #[error("the master stopped")]
    MasterStopped,
}

/// What both halves of a session know.
#[derive(Debug, Default)]
struct Current {
    framework_id: Option<String>,
    stream_id: Option<String>,
    ended: Option<String>,
}

#[derive(Debug)]
struct Shared {
    handle: MasterHandle,
    principal: Option<String>,
    current: Mutex<Current>,
}

impl Shared {
    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        // The guarded data stays consistent across a panic elsewhere: each
        // field is written whole.
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Validates `call` as this session's principal and runs it on the
    /// stream `stream_id` (none for SUBSCRIBE).
    async fn run(
        &self,
        stream_id: Option<String>,
        call: sched::Call,
    ) -> Result<Result<Reply, CallError>, ValidationError> {
        let call = ValidatedCall::new(call, self.principal.as_deref())?;
        let context = CallContext {
            stream_id,
            principal: self.principal.clone(),
        };
        Ok(self.handle.scheduler_call(&context, call).await)
    }

    fn end(&self, why: String) {
        let mut current = self.current();
        current.stream_id = None;
        current.ended.get_or_insert(why);
    }
}

/// The calling half of an in-process scheduler session. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

/// The event half of an in-process scheduler session.
#[derive(Debug)]
pub struct SessionEvents {
    shared: Arc<Shared>,
    subscribe: sched::call::Subscribe,
    stream: Option<EventStream>,
}

impl Session {
    /// A session for the framework described by `subscribe` (its
    /// FrameworkInfo may carry an id, to take over an existing
    /// framework), authenticated as `principal`. Nothing is sent until
    /// the first [`SessionEvents::next`].
    pub fn new(
        handle: MasterHandle,
        subscribe: sched::call::Subscribe,
        principal: Option<String>,
    ) -> (Session, SessionEvents) {
        let framework_id = subscribe
            .framework_info
            .id
            .as_ref()
            .map(|id| id.value.clone())
            .filter(|v| !v.is_empty());
        let shared = Arc::new(Shared {
            handle,
            principal,
            current: Mutex::new(Current {
                framework_id,
                ..Current::default()
            }),
        });
        (
            Session {
                shared: shared.clone(),
            },
            SessionEvents {
                shared,
                subscribe,
                stream: None,
            },
        )
    }

    /// The framework's id, once the master gave one.
    pub fn framework_id(&self) -> Option<String> {
        self.shared.current().framework_id.clone()
    }

    /// Makes a call on the current stream. The call's `framework_id` is
    /// filled in. A TEARDOWN that succeeds ends the session.
    pub async fn call(&self, mut call: sched::Call) -> Result<(), SessionError> {
        let (framework_id, stream_id) = {
            let current = self.shared.current();
            if let Some(why) = &current.ended {
                return Err(SessionError::Ended(why.clone()));
            }
            match (&current.framework_id, &current.stream_id) {
                (Some(f), Some(s)) => (f.clone(), s.clone()),
                _ => return Err(SessionError::NotSubscribed),
            }
        };
        call.framework_id = Some(pb::FrameworkId {
            value: framework_id,
        });
        let teardown = call.r#type == Some(sched::call::Type::Teardown as i32);
        match self.shared.run(Some(stream_id), call).await? {
            Ok(_) => {
                if teardown {
                    self.shared.end("the framework was torn down".into());
                }
                Ok(())
            }
            // The stream this call named is gone (the master was replaced
            // and does not know it): the events half re-subscribes.
            Err(CallError::NotLeader { .. })
            | Err(CallError::LostLeadership(_))
            | Err(CallError::Refused(MasterError::Forbidden(_))) => {
                Err(SessionError::NotSubscribed)
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl SessionEvents {
    /// The next event for the framework. Subscribes first, and again
    /// whenever the stream closes while the framework lives on; waits while
    /// this process's master stands by. SUBSCRIBED comes again after each
    /// re-subscription, so the framework knows to reconcile.
    pub async fn next(&mut self) -> Result<sched::Event, SessionError> {
        loop {
            if let Some(why) = &self.shared.current().ended {
                return Err(SessionError::Ended(why.clone()));
            }
            let Some(stream) = self.stream.as_mut() else {
                self.stream = Some(self.subscribe().await?);
                continue;
            };
            let Some(event) = stream.next().await else {
                // The master object behind the stream is gone, or it closed
                // the stream: subscribe again once this process leads.
                self.stream = None;
                self.shared.current().stream_id = None;
                continue;
            };
            if event.r#type == Some(sched::event::Type::Error as i32) {
                let message = event
                    .error
                    .as_ref()
                    .map_or_else(String::new, |e| e.message.clone());
                self.shared.end(message);
                self.stream = None;
            }
            return Ok(event);
        }
    }

    async fn subscribe(&mut self) -> Result<EventStream, SessionError> {
        let handle = self.shared.handle.clone();
        loop {
            let tenure = handle.leading().await.ok_or(SessionError::MasterStopped)?;
            let framework_id = self.shared.current().framework_id.clone();
            let mut subscribe = self.subscribe.clone();
            subscribe.framework_info.id =
                framework_id.clone().map(|value| pb::FrameworkId { value });
            let call = sched::Call {
                framework_id: subscribe.framework_info.id.clone(),
                r#type: Some(sched::call::Type::Subscribe as i32),
                subscribe: Some(subscribe),
                ..Default::default()
            };
            match self.shared.run(None, call).await? {
                Ok(Reply::Subscribed(stream)) => {
                    let mut current = self.shared.current();
                    current.framework_id = Some(stream.framework_id().to_string())
                        .filter(|id| !id.is_empty())
                        .or(framework_id);
                    current.stream_id = Some(stream.stream_id().to_string());
                    return Ok(stream);
                }
                Ok(_) => return Err(SessionError::Ended("SUBSCRIBE opened no stream".into())),
                // Leadership moved between the wait and the call: wait for
                // the next tenure.
                Err(CallError::NotLeader { .. }) | Err(CallError::LostLeadership(_)) => {
                    let mut next = handle.tenure();
                    let _ = next.wait_for(|t| t.generation != tenure.generation).await;
                }
                Err(e) => {
                    self.shared.end(e.to_string());
                    return Err(e.into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! A framework in the master's process, walked through the whole life of
    //! a task without HTTP: SUBSCRIBE → offer → ACCEPT → the agent runs it →
    //! status → ACKNOWLEDGE; then a leadership change and a teardown.

    use std::time::Duration;

    use pando_link::{agent_message, master_message};
    use pando_proto::mesos::v1 as pb;
    use pando_proto::mesos::v1::scheduler as sched;

    use super::{Session, SessionError, SessionEvents};
    use crate::master::testing::{sleeper, Cluster, PATIENCE};

    fn session(cluster: &Cluster, name: &str) -> (Session, SessionEvents) {
        let subscribe = sched::call::Subscribe {
            framework_info: pb::FrameworkInfo {
                user: "nobody".into(),
                name: name.into(),
                failover_timeout: Some(3600.0),
                ..Default::default()
            },
            ..Default::default()
        };
        Session::new(cluster.handle.clone(), subscribe, None)
    }

    async fn next(events: &mut SessionEvents) -> sched::Event {
        tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("an event in time")
            .expect("the session lives")
    }

    async fn next_of(events: &mut SessionEvents, kind: sched::event::Type) -> sched::Event {
        loop {
            let event = next(events).await;
            if event.r#type == Some(kind as i32) {
                return event;
            }
        }
    }

    fn call(kind: sched::call::Type) -> sched::Call {
        sched::Call {
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_session_walks_a_task_from_offer_to_acknowledgement_without_http() {
        let mut cluster = Cluster::new();
        let (session, mut events) = session(&cluster, "in-process");

        let subscribed = next_of(&mut events, sched::event::Type::Subscribed).await;
        let framework_id = subscribed
            .subscribed
            .expect("subscribed")
            .framework_id
            .value;
        assert_eq!(
            session.framework_id().as_deref(),
            Some(framework_id.as_str())
        );

        cluster.allocate();
        let offers = next_of(&mut events, sched::event::Type::Offers).await;
        let offer = offers.offers.expect("offers").offers.remove(0);
        assert_eq!(offer.agent_id.value, cluster.agent_id);

        let task = sleeper("t1", &offer.agent_id);
        let mut accept = call(sched::call::Type::Accept);
        accept.accept = Some(sched::call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![pb::offer::Operation {
                r#type: Some(pb::offer::operation::Type::Launch as i32),
                launch: Some(pb::offer::operation::Launch {
                    task_infos: vec![task],
                }),
                ..Default::default()
            }],
            filters: None,
        });
        session.call(accept).await.expect("ACCEPT is taken");

        let master_message::Message::RunTask(run) = cluster.heard_by_agent() else {
            panic!("the agent is told to run the task");
        };
        assert_eq!(run.task.task_id.value, "t1");
        assert_eq!(run.framework.id.expect("framework id").value, framework_id);

        let uuid = cluster.agent_reports_running(&framework_id, "t1");
        let update = next_of(&mut events, sched::event::Type::Update).await;
        let status = update.update.expect("update").status;
        assert_eq!(status.state, pb::TaskState::TaskRunning as i32);

        let mut ack = call(sched::call::Type::Acknowledge);
        ack.acknowledge = Some(sched::call::Acknowledge {
            agent_id: status.agent_id.clone().expect("agent id"),
            task_id: status.task_id.clone(),
            uuid: uuid.clone().into(),
        });
        session.call(ack).await.expect("ACKNOWLEDGE is taken");
        let master_message::Message::Acknowledgement(acked) = cluster.heard_by_agent() else {
            panic!("the agent hears of the acknowledgement");
        };
        assert_eq!(acked.uuid.as_ref(), uuid.as_slice());
    }

    #[tokio::test]
    async fn a_session_resubscribes_with_its_framework_id_when_this_master_leads_again() {
        let cluster = Cluster::new();
        let (session, mut events) = session(&cluster, "survivor");
        let first = next_of(&mut events, sched::event::Type::Subscribed).await;
        let framework_id = first.subscribed.expect("subscribed").framework_id.value;
        // Mesos follows SUBSCRIBED with a HEARTBEAT at once.
        next_of(&mut events, sched::event::Type::Heartbeat).await;
        let registry = cluster.registry();

        cluster.step_down();
        // Standing by, the session waits instead of failing...
        let waiting = tokio::time::timeout(Duration::from_millis(200), events.next()).await;
        assert!(waiting.is_err(), "no event while this master stands by");
        // ...and calls are refused as not subscribed, not lost in a hang.
        assert_eq!(
            session.call(call(sched::call::Type::Revive)).await,
            Err(SessionError::NotSubscribed)
        );

        cluster.take_over(&registry);
        let again = next_of(&mut events, sched::event::Type::Subscribed).await;
        assert_eq!(
            again.subscribed.expect("subscribed").framework_id.value,
            framework_id
        );
        session
            .call(call(sched::call::Type::Revive))
            .await
            .expect("calls work on the new stream");
        let master = cluster.handle.lock().expect("lock");
        let framework = master
            .frameworks
            .get(&framework_id)
            .expect("the same framework");
        assert!(framework.connected() && !framework.recovered);
    }

    /// The session is over: a call fails and a read returns at once, both
    /// with `Ended`.
    async fn assert_ended(session: &Session, events: &mut SessionEvents) {
        assert!(matches!(
            session.call(call(sched::call::Type::Revive)).await,
            Err(SessionError::Ended(_))
        ));
        let read = tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("no hang");
        assert!(matches!(read, Err(SessionError::Ended(_))));
    }

    #[tokio::test]
    async fn a_session_whose_framework_was_torn_down_answers_with_an_error() {
        let cluster = Cluster::new();
        let (session, mut events) = session(&cluster, "short-lived");
        next_of(&mut events, sched::event::Type::Subscribed).await;

        session
            .call(call(sched::call::Type::Teardown))
            .await
            .expect("TEARDOWN is taken");
        assert_ended(&session, &mut events).await;
    }

    #[tokio::test]
    async fn a_session_removed_by_the_operator_ends_with_the_masters_error() {
        let cluster = Cluster::new();
        let (session, mut events) = session(&cluster, "removed");
        let first = next_of(&mut events, sched::event::Type::Subscribed).await;
        let framework_id = first.subscribed.expect("subscribed").framework_id.value;
        next_of(&mut events, sched::event::Type::Heartbeat).await;

        cluster
            .handle
            .lock()
            .expect("lock")
            .remove_framework(&framework_id);
        // The stream closes; the session tries again and the master says
        // why it may not.
        let error = next(&mut events).await;
        assert_eq!(error.r#type, Some(sched::event::Type::Error as i32));
        assert_eq!(
            error.error.expect("error").message,
            "Framework has been removed"
        );
        assert_ended(&session, &mut events).await;
    }

    #[tokio::test]
    async fn a_failure_event_always_carries_an_exit_status() {
        let cluster = Cluster::new();
        let (_session, mut events) = session(&cluster, "executor-owner");
        let first = next_of(&mut events, sched::event::Type::Subscribed).await;
        let framework_id = first.subscribed.expect("subscribed").framework_id;
        // An agent that does not know how its executor ended (it died
        // while the agent was down) reports no status...
        cluster.agent_says(agent_message::Message::ExecutorExited(
            pando_link::ExecutorExited {
                framework_id,
                executor_id: pb::ExecutorId {
                    value: "custom".into(),
                },
                status: None,
            },
        ));
        // ...and the framework still gets one, as from Mesos: pymesos
        // reads it unconditionally.
        let failure = next_of(&mut events, sched::event::Type::Failure).await;
        let failure = failure.failure.expect("failure");
        assert_eq!(failure.executor_id.expect("executor").value, "custom");
        assert_eq!(failure.status, Some(-1));
    }
}
