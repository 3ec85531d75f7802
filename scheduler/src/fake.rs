//! An in-memory [`Transport`] for the driver's tests: the test plays the
//! master through a [`FakeMaster`].
//!
//! ```text
//!   Driver ── subscribe ──▶ FakeTransport ── (Call, stream) ──▶ FakeMaster::next_subscribe
//!          ── call ───────▶ FakeTransport ── (stream id, Call) ──▶ FakeMaster::next_call
//! ```
//!
//! A SUBSCRIBE succeeds unless a failure was queued with
//! [`FakeMaster::fail_subscribes`]; a call succeeds (202) unless an answer
//! was queued with [`FakeMaster::answer_calls`]. Every wait is bounded by a
//! long deadline, which paused tokio time reaches at once if the driver
//! never does what the test waits for.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::scheduler::{event, Call, Event};
use tokio::sync::mpsc;

use crate::transport::{BoxFuture, Subscription, Transport, TransportError};

/// How long a test waits for the driver (in paused time).
const PATIENCE: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct Script {
    subscribe_failures: VecDeque<TransportError>,
    call_answers: VecDeque<Result<(), TransportError>>,
    streams: u64,
}

/// The driver's side.
pub struct FakeTransport {
    script: Arc<Mutex<Script>>,
    subscribes: mpsc::UnboundedSender<(Call, FakeStream)>,
    calls: mpsc::UnboundedSender<(String, Call)>,
}

/// The test's side: what the driver sent, and the streams to answer on.
pub struct FakeMaster {
    script: Arc<Mutex<Script>>,
    subscribes: mpsc::UnboundedReceiver<(Call, FakeStream)>,
    calls: mpsc::UnboundedReceiver<(String, Call)>,
}

/// One open subscription; dropping it ends the stream.
pub struct FakeStream {
    /// Its stream id.
    pub stream_id: String,
    events: mpsc::UnboundedSender<Event>,
}

/// A fake transport and the master behind it.
pub fn pair() -> (FakeTransport, FakeMaster) {
    let script = Arc::new(Mutex::new(Script::default()));
    let (subscribes_tx, subscribes) = mpsc::unbounded_channel();
    let (calls_tx, calls) = mpsc::unbounded_channel();
    (
        FakeTransport {
            script: script.clone(),
            subscribes: subscribes_tx,
            calls: calls_tx,
        },
        FakeMaster {
            script,
            subscribes,
            calls,
        },
    )
}

impl Transport for FakeTransport {
    fn subscribe(&self, call: Call) -> BoxFuture<'_, Result<Subscription, TransportError>> {
        Box::pin(async move {
            let stream_id = {
                let mut script = self.script.lock().unwrap();
                if let Some(failure) = script.subscribe_failures.pop_front() {
                    return Err(failure);
                }
                script.streams += 1;
                format!("stream-{}", script.streams)
            };
            let (events_tx, events) = mpsc::unbounded_channel();
            let stream = FakeStream {
                stream_id: stream_id.clone(),
                events: events_tx,
            };
            let _ = self.subscribes.send((call, stream));
            Ok(Subscription {
                stream_id,
                events: Box::new(events),
            })
        })
    }

    fn call<'a>(
        &'a self,
        stream_id: &'a str,
        call: Call,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(async move {
            let _ = self.calls.send((stream_id.to_string(), call));
            let answer = self.script.lock().unwrap().call_answers.pop_front();
            answer.unwrap_or(Ok(()))
        })
    }
}

impl FakeMaster {
    /// Makes the next SUBSCRIBEs fail, one failure each.
    pub fn fail_subscribes(&self, failures: Vec<TransportError>) {
        self.script
            .lock()
            .unwrap()
            .subscribe_failures
            .extend(failures);
    }

    /// Answers the next calls with these, one each (then 202 again).
    pub fn answer_calls(&self, answers: Vec<Result<(), TransportError>>) {
        self.script.lock().unwrap().call_answers.extend(answers);
    }

    /// The next SUBSCRIBE the driver sends, and its stream.
    pub async fn next_subscribe(&mut self) -> (Call, FakeStream) {
        tokio::time::timeout(PATIENCE, self.subscribes.recv())
            .await
            .expect("the driver subscribes")
            .expect("the driver is running")
    }

    /// The next call the driver sends, with its stream id.
    pub async fn next_call(&mut self) -> (String, Call) {
        tokio::time::timeout(PATIENCE, self.calls.recv())
            .await
            .expect("the driver sends a call")
            .expect("the driver is running")
    }

    /// The call the driver sent, if one is already there.
    pub fn sent_call(&mut self) -> Option<(String, Call)> {
        self.calls.try_recv().ok()
    }
}

impl FakeStream {
    /// Sends an event on the stream.
    pub fn send(&self, event: Event) {
        self.events
            .send(event)
            .expect("the driver reads the stream");
    }
}

/// SUBSCRIBED with `framework_id` and a heartbeat interval.
pub fn subscribed(framework_id: &str, heartbeat_seconds: f64) -> Event {
    Event {
        r#type: Some(event::Type::Subscribed as i32),
        subscribed: Some(event::Subscribed {
            framework_id: pb::FrameworkId {
                value: framework_id.into(),
            },
            heartbeat_interval_seconds: Some(heartbeat_seconds),
            master_info: None,
        }),
        ..Default::default()
    }
}

/// HEARTBEAT.
pub fn heartbeat() -> Event {
    Event {
        r#type: Some(event::Type::Heartbeat as i32),
        ..Default::default()
    }
}

/// ERROR with a message.
pub fn error(message: &str) -> Event {
    Event {
        r#type: Some(event::Type::Error as i32),
        error: Some(event::Error {
            message: message.into(),
        }),
        ..Default::default()
    }
}

/// A status of `task` on agent `a1`, with a uuid if given.
pub fn status(task: &str, state: pb::TaskState, uuid: Option<&str>) -> pb::TaskStatus {
    pb::TaskStatus {
        task_id: pb::TaskId { value: task.into() },
        state: state as i32,
        agent_id: Some(pb::AgentId { value: "a1".into() }),
        uuid: uuid.map(|u| u.as_bytes().to_vec().into()),
        ..Default::default()
    }
}

/// UPDATE carrying `status`.
pub fn update(status: pb::TaskStatus) -> Event {
    Event {
        r#type: Some(event::Type::Update as i32),
        update: Some(event::Update { status }),
        ..Default::default()
    }
}
