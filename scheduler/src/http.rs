//! The v1 scheduler HTTP API as a [`Transport`]: `POST /api/v1/scheduler`
//! in JSON or protobuf, to whichever of a list of masters leads.
//!
//! ```text
//!   subscribe ─▶ last leader, then each master in turn
//!                  200 ──▶ Mesos-Stream-Id + RecordIO events (decoded)
//!                  307 ──▶ Location //host:port/path ──▶ that master
//!                  503 / no connection ──▶ the next master
//!                  other 4xx ──▶ Refused (the SUBSCRIBE itself is wrong)
//!   call ──────▶ the master the subscription is with, Mesos-Stream-Id set
//!                  202 ──▶ Ok · 307 NotLeader · 503 NoLeader · 4xx Refused
//! ```
//!
//! One pass over the masters per SUBSCRIBE: the [`Driver`](crate::Driver)
//! owns backoff and retries, so a transport never sleeps. A call goes only
//! to the master that holds its subscription (a stream id means nothing to
//! another master); when that master stops leading its stream ends too, and
//! the driver subscribes again through here, which finds the new leader.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use pando_proto::codec::ContentType;
use pando_proto::json;
use pando_proto::mesos::v1::scheduler::{Call, Event};
use prost::Message as _;

use crate::client::{leader_address, master_list, Client, ClientError, RecordStream};
use crate::transport::{BoxFuture, EventStream, Subscription, Transport, TransportError};

/// The master's scheduler API path.
pub const SCHEDULER_API: &str = "/api/v1/scheduler";
/// The header that names a subscription on every call.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";
/// How long connecting and each answer (a SUBSCRIBE: its head) may take
/// unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most redirects one SUBSCRIBE follows from one master.
const MAX_REDIRECTS: usize = 3;

/// The subscription calls go to.
#[derive(Debug, Clone)]
struct Current {
    stream_id: String,
    /// A client for the master that holds it.
    master: Client,
}

/// The scheduler HTTP API over a list of masters.
#[derive(Debug)]
pub struct HttpTransport {
    /// The masters, `host:port` each.
    masters: Vec<String>,
    /// Timeout and credentials for every request; its address is swapped
    /// per master.
    template: Client,
    /// The encoding of calls and events.
    content_type: ContentType,
    /// The latest subscription; `None` before the first.
    current: Mutex<Option<Current>>,
}

impl HttpTransport {
    /// A transport for `masters` (`host:port`, or several joined by
    /// commas) speaking `content_type`.
    pub fn new(masters: &str, content_type: ContentType) -> Result<HttpTransport, ClientError> {
        let masters = master_list(masters)?;
        // Calls go over keep-alive connections: a framework makes many.
        let template = Client::new(&masters[0], DEFAULT_TIMEOUT)?.with_keep_alive();
        Ok(HttpTransport {
            masters,
            template,
            content_type,
            current: Mutex::new(None),
        })
    }

    /// Sets how long connecting and each answer may take.
    pub fn with_timeout(mut self, timeout: Duration) -> HttpTransport {
        self.template = self.template.with_timeout(timeout);
        self
    }

    /// Sends HTTP Basic credentials (the framework's principal and secret)
    /// with every request.
    pub fn with_basic_auth(mut self, principal: &str, secret: &str) -> HttpTransport {
        self.template = self.template.with_basic_auth(principal, secret);
        self
    }

    /// The master the latest subscription is with.
    pub fn leader(&self) -> Option<String> {
        self.current().as_ref().map(|c| c.master.addr().to_string())
    }

    fn current(&self) -> MutexGuard<'_, Option<Current>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The masters in the order a SUBSCRIBE tries them: the last leader
    /// first.
    fn order(&self) -> Vec<String> {
        let mut order = self.masters.clone();
        if let Some(leader) = self.leader() {
            order.retain(|m| *m != leader);
            order.insert(0, leader);
        }
        order
    }

    async fn open(&self, call: Call) -> Result<Subscription, TransportError> {
        let body = self.content_type.encode(&call);
        let mut tried = Vec::new();
        let mut no_leader = false;
        for first in self.order() {
            let mut addr = first;
            for _ in 0..=MAX_REDIRECTS {
                let master = self
                    .template
                    .at(&addr)
                    .map_err(|e| TransportError::Unreachable(e.to_string()))?;
                let (reply, stream) = match master
                    .open_stream(SCHEDULER_API, self.content_type, &[], body.clone())
                    .await
                {
                    Ok(opened) => opened,
                    Err(e) => {
                        tried.push(e.to_string());
                        break;
                    }
                };
                match reply.status {
                    200 => {
                        let stream_id = reply.header(STREAM_ID_HEADER).unwrap_or_default();
                        *self.current() = Some(Current {
                            stream_id: stream_id.to_string(),
                            master,
                        });
                        return Ok(Subscription {
                            stream_id: stream_id.to_string(),
                            events: Box::new(HttpEvents {
                                stream,
                                content_type: self.content_type,
                            }),
                        });
                    }
                    307 => {
                        let location = reply.header("location").unwrap_or_default();
                        match leader_address(location).filter(|l| *l != addr) {
                            Some(leader) => addr = leader,
                            None => {
                                tried.push(format!("{addr} redirects to '{location}'"));
                                break;
                            }
                        }
                    }
                    503 => {
                        no_leader = true;
                        let text = stream.into_text(master.timeout()).await;
                        tried.push(format!("{addr} answered 503: {text}"));
                        break;
                    }
                    status => {
                        let reason = stream.into_text(master.timeout()).await;
                        return Err(TransportError::Refused { status, reason });
                    }
                }
            }
        }
        let tried = tried.join("; ");
        Err(if no_leader {
            TransportError::NoLeader(tried)
        } else {
            TransportError::Unreachable(tried)
        })
    }

    async fn post(&self, stream_id: &str, call: Call) -> Result<(), TransportError> {
        let current = self.current().clone();
        let Some(current) = current.filter(|c| c.stream_id == stream_id) else {
            return Err(TransportError::Gone(stream_id.to_string()));
        };
        let master = &current.master;
        let reply = master
            .post(
                SCHEDULER_API,
                self.content_type,
                &[(STREAM_ID_HEADER, stream_id)],
                self.content_type.encode(&call),
            )
            .await
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        match reply.status {
            200 | 202 => Ok(()),
            307 => Err(TransportError::NotLeader {
                master: master.addr().to_string(),
                location: reply.header("location").unwrap_or_default().to_string(),
            }),
            503 => Err(TransportError::NoLeader(format!(
                "{} answered 503: {}",
                master.addr(),
                reply.text()
            ))),
            status => Err(TransportError::Refused {
                status,
                reason: reply.text(),
            }),
        }
    }
}

impl Transport for HttpTransport {
    fn subscribe(&self, call: Call) -> BoxFuture<'_, Result<Subscription, TransportError>> {
        Box::pin(self.open(call))
    }

    fn call<'a>(
        &'a self,
        stream_id: &'a str,
        call: Call,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.post(stream_id, call))
    }
}

/// A SUBSCRIBE's RecordIO body, decoded into events.
struct HttpEvents {
    stream: RecordStream,
    content_type: ContentType,
}

impl HttpEvents {
    async fn next_event(&mut self) -> Option<Result<Event, TransportError>> {
        let record = match self.stream.next().await {
            Ok(Some(record)) => record,
            Ok(None) => return None,
            Err(e) => return Some(Err(TransportError::Broken(e.to_string()))),
        };
        Some(decode_event(self.content_type, &record))
    }
}

impl EventStream for HttpEvents {
    fn next(&mut self) -> BoxFuture<'_, Option<Result<Event, TransportError>>> {
        Box::pin(self.next_event())
    }
}

/// Decodes one event record. The master's own events need no check of
/// proto2 required fields, so protobuf is decoded by prost alone (no
/// reflection tables).
fn decode_event(content_type: ContentType, record: &Bytes) -> Result<Event, TransportError> {
    let decoded = match content_type {
        ContentType::Json => json::from_json::<Event>(record).map_err(|e| e.to_string()),
        ContentType::Protobuf => Event::decode(&record[..]).map_err(|e| e.to_string()),
    };
    decoded.map_err(|reason| TransportError::Broken(format!("an event does not decode: {reason}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, Full};
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use pando_proto::mesos::v1 as pb;
    use pando_proto::mesos::v1::scheduler::{call, event};
    use std::sync::Arc;
    use tokio::net::TcpListener;
    use tokio::task::JoinSet;

    /// What a fake master answers: status, headers, body.
    type Answer = (u16, Vec<(&'static str, String)>, Bytes);

    /// A fake master on loopback that answers every request with
    /// `answer(content type of the request, its call, its headers)`.
    struct FakeMaster {
        addr: String,
        /// How many connections it accepted.
        connections: Arc<std::sync::atomic::AtomicUsize>,
        _tasks: JoinSet<()>,
    }

    async fn fake_master(
        answer: impl Fn(ContentType, Call, &hyper::HeaderMap) -> Answer + Send + Sync + 'static,
    ) -> FakeMaster {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let answer = Arc::new(answer);
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = answer.clone();
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let answer = answer.clone();
                    async move {
                        let content_type = request
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .and_then(ContentType::from_content_type)
                            .unwrap();
                        let headers = request.headers().clone();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let call: Call = content_type.decode(&body).unwrap();
                        let (status, extra, body) = answer(content_type, call, &headers);
                        let mut response = Response::builder().status(status);
                        for (name, value) in extra {
                            response = response.header(name, value);
                        }
                        Ok::<_, std::convert::Infallible>(response.body(Full::new(body)).unwrap())
                    }
                });
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeMaster {
            addr,
            connections: accepted,
            _tasks: tasks,
        }
    }

    /// A master that leads: SUBSCRIBE opens stream `s-1` with SUBSCRIBED
    /// as framework `fw-1`; other calls are accepted on `s-1` only.
    async fn leader() -> FakeMaster {
        fake_master(|content_type, call, headers| match call.r#type() {
            call::Type::Subscribe => {
                let subscribed = Event {
                    r#type: Some(event::Type::Subscribed as i32),
                    subscribed: Some(event::Subscribed {
                        framework_id: pb::FrameworkId {
                            value: "fw-1".into(),
                        },
                        heartbeat_interval_seconds: Some(15.0),
                        master_info: None,
                    }),
                    ..Default::default()
                };
                let record = pando_proto::recordio::frame(&content_type.encode(&subscribed));
                (200, vec![(STREAM_ID_HEADER, "s-1".to_string())], record)
            }
            _ if headers.get(STREAM_ID_HEADER).is_some_and(|v| v == "s-1") => {
                (202, vec![], Bytes::new())
            }
            _ => (400, vec![], Bytes::from("The stream ID is not valid")),
        })
        .await
    }

    fn refusing(
        status: u16,
        reason: &'static str,
    ) -> impl Fn(ContentType, Call, &hyper::HeaderMap) -> Answer {
        move |_, _, _| (status, vec![], Bytes::from(reason))
    }

    fn subscribe() -> Call {
        Call {
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                framework_info: pb::FrameworkInfo {
                    user: "root".into(),
                    name: "test".into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn revive() -> Call {
        Call {
            r#type: Some(call::Type::Revive as i32),
            ..Default::default()
        }
    }

    async fn first_event(subscription: &mut Subscription) -> Event {
        subscription.events.next().await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn a_subscribe_follows_the_redirect_to_the_leader_and_calls_go_there() {
        for content_type in [ContentType::Json, ContentType::Protobuf] {
            let leader = leader().await;
            let location = format!("//{}/api/v1/scheduler", leader.addr);
            let standby = fake_master(move |_, _, _| {
                (307, vec![("Location", location.clone())], Bytes::new())
            })
            .await;
            let transport = HttpTransport::new(&standby.addr, content_type).unwrap();
            let mut subscription = transport.subscribe(subscribe()).await.unwrap();
            assert_eq!(subscription.stream_id, "s-1");
            assert_eq!(
                first_event(&mut subscription)
                    .await
                    .subscribed
                    .unwrap()
                    .framework_id
                    .value,
                "fw-1"
            );
            assert_eq!(transport.leader(), Some(leader.addr.clone()));
            for _ in 0..3 {
                assert_eq!(transport.call("s-1", revive()).await, Ok(()));
            }
            // The stream's connection, and one kept alive for the calls.
            assert_eq!(
                leader.connections.load(std::sync::atomic::Ordering::SeqCst),
                2
            );
            // A stream id of an older subscription is not sent anywhere.
            assert_eq!(
                transport.call("s-0", revive()).await,
                Err(TransportError::Gone("s-0".into()))
            );
        }
    }

    #[tokio::test]
    async fn a_503_or_a_dead_master_moves_the_subscribe_on_to_the_next_master() {
        let leader = leader().await;
        let standby = fake_master(refusing(503, "No leader elected")).await;
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let masters = format!("{dead},{},{}", standby.addr, leader.addr);
        let transport = HttpTransport::new(&masters, ContentType::Json).unwrap();
        let subscription = transport.subscribe(subscribe()).await.unwrap();
        assert_eq!(subscription.stream_id, "s-1");
        assert_eq!(transport.leader(), Some(leader.addr.clone()));

        // With no leader among them, the error names each master.
        let masters = format!("{dead},{}", standby.addr);
        let transport = HttpTransport::new(&masters, ContentType::Json).unwrap();
        match transport.subscribe(subscribe()).await {
            Err(TransportError::NoLeader(reason)) => {
                assert!(reason.contains(&dead), "{reason}");
                assert!(
                    reason.contains(&format!("{} answered 503: No leader elected", standby.addr)),
                    "{reason}"
                );
            }
            other => panic!("expected NoLeader, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_refused_subscribe_carries_the_masters_reason() {
        let master = fake_master(refusing(400, "Role '' is not a valid role")).await;
        let transport = HttpTransport::new(&master.addr, ContentType::Json).unwrap();
        let refused = transport.subscribe(subscribe()).await.unwrap_err();
        assert_eq!(
            refused,
            TransportError::Refused {
                status: 400,
                reason: "Role '' is not a valid role".into()
            }
        );
        assert!(!refused.is_transient());
    }

    #[tokio::test]
    async fn credentials_go_with_every_request() {
        let master = fake_master(|_, _, headers| {
            // RFC 7617: base64 of "fw:secret".
            match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                Some("Basic Znc6c2VjcmV0") => (503, vec![], Bytes::from("authenticated")),
                _ => (401, vec![], Bytes::from("no credentials")),
            }
        })
        .await;
        let transport = HttpTransport::new(&master.addr, ContentType::Json)
            .unwrap()
            .with_basic_auth("fw", "secret");
        match transport.subscribe(subscribe()).await {
            Err(TransportError::NoLeader(reason)) => assert!(reason.contains("authenticated")),
            other => panic!("expected the authenticated answer, got {other:?}"),
        }
    }
}
