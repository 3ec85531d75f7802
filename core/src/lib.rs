//! The Pando master.
//!
//! The master's pieces arrive issue by issue: the pure allocator first, then
//! the scheduler and operator APIs around one owner of master state, then the
//! Raft-replicated registry. Everything here speaks the types of
//! [`pando_proto`] and counts resources with [`pando_resources`], re-exported
//! so that callers need one import.

pub mod allocator;
pub mod master;

pub use pando_proto as proto;
pub use pando_resources as resources;
