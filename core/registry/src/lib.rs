//! The registry: the part of the master's state that outlives a master.
//!
//! Mesos kept it in a Paxos replicated log beside ZooKeeper; Pando's masters
//! replicate it among themselves with Raft. What it holds is small and
//! changes rarely: which agents were admitted (and which were marked
//! unreachable or gone), the frameworks, dynamic reservations and volumes,
//! quota, weights and the maintenance schedule, and the records adapters
//! next to the master keep (namespaced keys with versioned values). Tasks
//! are not in it: a newly elected leader learns them from the agents when
//! they re-register.
//!
//! [`model`] is the state and how an operation changes it; it is pure, and
//! every master applies the same operations in the same order. [`raft`] is
//! the machinery that makes them do so: openraft with a log on disk and
//! tonic between the masters; [`replicated`] is
//! the handle the master uses.

pub mod model;
pub mod raft;
pub mod replicated;

pub use model::{Operation, Registry};
pub use replicated::{
    Config, Leadership, MasterAddress, MemberRole, RegistryError, ReplicatedRegistry, WriteError,
};
