//! Raft between the masters, built on openraft.
//!
//! openraft runs the protocol; this module supplies what it asks of an
//! application, one concept per file:
//!
//! ```text
//!  ReplicatedRegistry::write(ops)          peers' RaftRequests
//!            │                                   │
//!            ▼                                   ▼
//!     openraft::Raft ◄──────────────────── service (tonic server)
//!       │    │    │
//!       │    │    └──► network (tonic clients) ──► peers' service
//!       │    └───────► log_store   (log, vote: files, fsync'd)
//!       └────────────► state_machine (model::apply_all; snapshots)
//! ```
//!
//! - [`types`]: the type configuration, node ids and [`MasterAddress`](types::MasterAddress);
//! - [`record`]: the `len | crc32 | payload` framing of the files;
//! - [`disk`]: atomically replaced small files;
//! - [`log_store`]: the log and the vote;
//! - [`state_machine`]: the registry as applied, and its snapshots;
//! - [`cluster`]: which cluster this work_dir belongs to;
//! - [`network`]: openraft's RPCs to a peer over tonic;
//! - [`service`]: the tonic service answering them.

pub mod cluster;
pub mod disk;
pub mod log_store;
pub mod network;
pub mod record;
pub mod service;
pub mod state_machine;
pub mod types;

#[cfg(test)]
mod storage_suite;
