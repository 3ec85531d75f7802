//! The seam between the [`Driver`](crate::Driver) and a master: how a
//! SUBSCRIBE and the other scheduler calls reach it.
//!
//! ```text
//!   Driver ── subscribe(Call) ──▶ Transport ──▶ Subscription { stream_id, events }
//!          ── call(stream_id, Call) ──▶ Transport ──▶ Ok (202) | TransportError
//! ```
//!
//! A transport has two jobs and nothing else: open a subscription (the
//! `Mesos-Stream-Id` and a stream of decoded events) and deliver one
//! non-SUBSCRIBE call on a subscription. Ordering, retries, backoff,
//! acknowledgements and reconciliation all live in the driver, so each
//! transport stays small: [`HttpTransport`](crate::HttpTransport) speaks the
//! v1 HTTP API, and an in-process transport can call a master it lives in.
//!
//! The trait is object-safe (the driver keeps an `Arc<dyn Transport>`), so
//! its methods return boxed futures; a transport writes them as
//! `Box::pin(async move { ... })`. [`EventStream`] is implemented for tokio
//! channel receivers of events, which is all an in-process transport needs
//! to hand its events over.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use pando_proto::mesos::v1::scheduler::{Call, Event};
use tokio::sync::mpsc;

/// A boxed future that can cross tasks: what the trait methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a transport could not open a subscription or deliver a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No master could be reached (each is named with why).
    #[error("cannot reach a master: {0}")]
    Unreachable(String),
    /// The masters answered but none is leading (503).
    #[error("no master is leading: {0}")]
    NoLeader(String),
    /// The master the subscription is with no longer leads (307).
    #[error("{master} is not the leading master any more (it redirects to {location})")]
    NotLeader {
        /// The master that redirected.
        master: String,
        /// Its `Location` header.
        location: String,
    },
    /// The subscription the call names is gone (its stream broke or was
    /// replaced by a newer one).
    #[error("the subscription {0} is gone")]
    Gone(String),
    /// The master answered with a status the call cannot get past by being
    /// sent again (4xx), or a server error (5xx other than 503).
    #[error("the master answered {status}: {reason}")]
    Refused {
        /// The HTTP status (or its equivalent for a non-HTTP transport).
        status: u16,
        /// The master's explanation.
        reason: String,
    },
    /// The event stream broke or could not be decoded.
    #[error("the event stream broke: {0}")]
    Broken(String),
}

impl TransportError {
    /// Whether sending the same call again later may succeed: everything
    /// but a 4xx refusal. A 4xx says the call itself is wrong (400), or
    /// the framework may not make it (401, 403).
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Refused { status, .. } => *status >= 500,
            _ => true,
        }
    }
}

/// An open subscription: its stream id and its events.
pub struct Subscription {
    /// The `Mesos-Stream-Id` every call on this subscription carries.
    pub stream_id: String,
    /// The events, SUBSCRIBED first.
    pub events: Box<dyn EventStream>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("stream_id", &self.stream_id)
            .finish_non_exhaustive()
    }
}

/// A subscription's events, decoded.
pub trait EventStream: Send {
    /// The next event; `None` when the master ended the stream, an error
    /// when it broke.
    fn next(&mut self) -> BoxFuture<'_, Option<Result<Event, TransportError>>>;
}

/// How scheduler calls reach a master.
pub trait Transport: Send + Sync + 'static {
    /// Sends a SUBSCRIBE, following the masters to the leader, and returns
    /// the open subscription.
    fn subscribe(&self, call: Call) -> BoxFuture<'_, Result<Subscription, TransportError>>;

    /// Sends any other call on the subscription `stream_id`; `Ok` once the
    /// master accepted it (202).
    fn call<'a>(
        &'a self,
        stream_id: &'a str,
        call: Call,
    ) -> BoxFuture<'a, Result<(), TransportError>>;
}

impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn subscribe(&self, call: Call) -> BoxFuture<'_, Result<Subscription, TransportError>> {
        (**self).subscribe(call)
    }

    fn call<'a>(
        &'a self,
        stream_id: &'a str,
        call: Call,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        (**self).call(stream_id, call)
    }
}

impl EventStream for mpsc::UnboundedReceiver<Event> {
    fn next(&mut self) -> BoxFuture<'_, Option<Result<Event, TransportError>>> {
        Box::pin(async move { self.recv().await.map(Ok) })
    }
}

impl EventStream for mpsc::Receiver<Event> {
    fn next(&mut self) -> BoxFuture<'_, Option<Result<Event, TransportError>>> {
        Box::pin(async move { self.recv().await.map(Ok) })
    }
}
