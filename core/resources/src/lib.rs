//! Mesos resource math for Pando.
//!
//! Everything the allocator, the master and the agent count is a
//! [`Resources`]: a bag of [`Resource`]s, each a name and a value
//! ([`Scalar`], [`Ranges`] or a set) plus the metadata that says who may use
//! it (reservations for [`role`]s, persistent-volume disk info, revocable and
//! shared flags, the role it is allocated to).
//!
//! ```text
//!   --resources text / JSON ──parse──┐
//!   protobuf Resource ──from_proto───┼──► Resources ──► + − contains filters
//!                                    │         │
//!                                    │         └──► ResourceQuantities (DRF, quota)
//!   protobuf Resource ◄──to_proto────┘
//! ```
//!
//! The semantics follow Mesos 1.11: fixed-point scalars, coalesced ranges,
//! reservation refinement, hierarchical roles.

pub mod error;
pub mod parse;
pub mod proto;
pub mod ranges;
pub mod resource;
pub mod resources;
pub mod role;
pub mod scalar;

pub use error::ResourcesError;
pub use parse::parse_attributes;
pub use ranges::Ranges;
pub use resource::{DiskInfo, Reservation, ReservationKind, Resource, Value};
pub use resources::{ResourceQuantities, Resources};
pub use scalar::Scalar;
