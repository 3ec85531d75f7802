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
        let template = Client::new(&masters[0], DEFAULT_TIMEOUT)?;
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
