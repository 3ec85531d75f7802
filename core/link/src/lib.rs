//! The master↔agent link: Pando's own protocol between a master and its
//! agents, generated from `proto/pando/agent_link.proto`.
//!
//! An agent opens one bidirectional gRPC stream to the master it believes
//! leads (`AgentLink.Session`) and keeps it for its whole session:
//! [`AgentMessage`]s go up, [`MasterMessage`]s come down. The payloads are
//! the Mesos v1 types of [`pando_proto::mesos::v1`] themselves, so nothing
//! is translated twice between a framework and an executor.
//!
//! This is a crate of its own so that `pando-proto` stays free of tonic:
//! a client of the Mesos APIs (the libmesos bridge, say) links the Mesos
//! types and codecs without the agent link.
//!
//! * [`agent_link_server`]: the service the master serves.
//! * [`agent_link_client`]: the client the agent (and the simulator's
//!   agents) connect with.
//! * [`agent_message::Message`] and [`master_message::Message`]: what each
//!   side may send.

/// The generated `pando.link.v1` package.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/pando.link.v1.rs"));
}

pub use generated::*;
