//! The master: one owner of cluster state behind the Mesos v1 APIs.
//!
//! ```text
//!  frameworks ──HTTP──► http::scheduler ─┐
//!  operators  ──HTTP──► http::operator  ─┼─► Master (state.rs) ──► Allocator (pure)
//!  tools      ──HTTP──► http::legacy    ─┘        │   ▲
//!  agents     ──gRPC──► link (AgentLink) ─────────┘   │ offers, rescinds
//!                                                     │
//!  server.rs: the port, the allocation / ping / housekeeping loops
//! ```
//!
//! [`state::Master`] holds frameworks, agents, tasks and offers, and the
//! channels to every connected framework, operator subscriber and agent.
//! The files split its methods by subject: [`framework`] (scheduler calls),
//! [`offer`] (ACCEPT and the allocator's decisions), [`agent`] (the agent
//! link), [`operator`] (the operator calls and state views),
//! [`maintenance`]. [`http`] and [`link`] translate the wire into those
//! calls; [`server`] runs it all.

// Mesos still carries deprecated fields on the wire (FrameworkInfo.role,
// GetTasks.pending_tasks...); a master must read and write them.
#![allow(deprecated)]

pub mod agent;
pub mod completed;
pub mod flags;
pub mod framework;
pub mod ha;
pub mod handle;
pub mod http;
pub mod in_process;
pub mod leader;
pub mod link;
pub mod maintenance;
pub mod metrics;
pub mod offer;
pub mod operator;
pub mod records;
pub mod recovery;
pub mod registrar;
pub mod reservation;
pub mod scheduler;
pub mod server;
pub mod session;
pub mod state;
#[cfg(test)]
mod testing;

pub use flags::MasterFlags;
pub use handle::MasterHandle;
pub use server::{run, BoundMaster};
pub use state::{Master, MasterError};
