//! `pando-scheduler`: the Rust scheduler driver for Pando (and any Mesos
//! master), and the one HTTP client of the workspace's tools.
//!
//! ```text
//!   framework logic ◀── Incoming ── Driver ── Transport ─┬─ HttpTransport ── /api/v1/scheduler (JSON | protobuf)
//!         └──── accept / decline / kill / ... ──▶ │       └─ (in-process session on the master)
//!   operator tools ── client::Client ── /master/state, /master/redirect, /files/read, ...
//! ```
//!
//! * [`driver`]: the [`Driver`] subscribes, survives broken streams and
//!   leader changes with the same framework id, keeps calls in order and
//!   retries them, acknowledges updates and reconciles after a failover.
//! * [`transport`]: the [`Transport`] seam a driver talks through.
//! * [`http`]: the v1 scheduler HTTP API as a transport, over a list of
//!   masters (307 and 503 lead it to the leader).
//! * [`client`]: a small HTTP/1.1 client with deadlines whose errors name
//!   the address, for the operator API, the agents' APIs and the transport.
//!
//! Glossary: an *offer* is a set of an agent's resources the master lends a
//! framework; a *role* is the name under which a framework is offered
//! resources (and the key of quota and reservations); a *task* runs on an
//! agent inside an *executor*, within a *container*; *acknowledging* an
//! update tells the agent it may stop resending it; *reconciling* asks the
//! master for the latest state of tasks.
//!
//! This crate must not depend on `pando-core`, tonic or axum: the libmesos
//! JNI bridge, a cdylib, links it.

pub mod client;
pub mod driver;
#[cfg(test)]
mod fake;
pub mod http;
pub mod transport;

pub use driver::{Config, Driver, DriverError, Incoming};
pub use http::HttpTransport;
pub use transport::{EventStream, Subscription, Transport, TransportError};
