//! Mesos resource math for Pando.
//!
//! Everything the allocator, the master and the agent count is a
//! [`Resources`]: a bag of [`Resource`]s, each a name and a [`Value`]
//! ([`Scalar`], [`Ranges`] or [`Set`]) plus the metadata that says who may
//! use it: a stack of [`Reservation`]s for [`role`]s, disk info for
//! persistent volumes, the revocable and shared flags, and the role it is
//! allocated to.
//!
//! ```text
//!   --resources text / JSON ──parse──┐
//!   protobuf Resource ──from_proto───┼──► Resources ──► + − contains filters
//!                                    │         │          reservations
//!   protobuf Resource ◄──to_proto────┘         │
//!                                              └──► ResourceQuantities / ResourceLimits
//!                                                   (DRF shares, quota)
//! ```
//!
//! ```
//! use pando_resources::{Reservation, Resources, Scalar};
//!
//! let agent = Resources::parse("cpus:8;mem:4096;cpus(eng):2;ports:[31000-32000]")?;
//! // What a framework in `eng/web` may be offered: unreserved plus `eng`'s.
//! let offer = agent.allocatable_to("eng/web").allocate("eng/web");
//! assert_eq!(offer.cpus(), Scalar::from_units(10));
//!
//! // A task uses part of it; the rest stays free, and nothing goes negative.
//! let task = Resources::parse("cpus:1.5;mem:512")?.allocate("eng/web");
//! let left = offer.checked_sub(&task)?;
//! assert_eq!(left.cpus(), Scalar::from_millis(8_500));
//!
//! // RESERVE for a sub-role refines the existing reservation.
//! let refined = agent
//!     .reserved(Some("eng"))
//!     .push_reservation(&Reservation::dynamic_for("eng/web", Some("ops")))?;
//! assert!(refined.iter().all(|r| r.reservation_role() == "eng/web"));
//! # Ok::<(), pando_resources::ResourcesError>(())
//! ```
//!
//! The semantics follow Mesos 1.11 (`resources.cpp`, `values.cpp`,
//! `roles.cpp`, `resource_quantities.cpp`): fixed-point scalars with three
//! decimals, coalesced ranges, Mesos's addable/subtractable rules,
//! reservation refinement and hierarchical roles. Validation happens at the
//! edges ([`Resources::parse`], [`Resource::from_proto`]); the arithmetic
//! assumes valid resources and never panics.

pub mod error;
pub mod parse;
pub mod proto;
pub mod quantities;
pub mod ranges;
pub mod resource;
pub mod resources;
pub mod role;
pub mod scalar;
pub mod set;
pub mod summary;

pub use error::ResourcesError;
pub use parse::parse_attributes;
pub use proto::ResourceFormat;
pub use quantities::{ResourceLimits, ResourceQuantities};
pub use ranges::Ranges;
pub use resource::{
    DiskInfo, DiskSource, DiskSourceKind, Label, Labels, Persistence, Reservation, ReservationKind,
    Resource, Value, Volume, VolumeMode,
};
pub use resources::{ResourceConversion, Resources};
pub use scalar::Scalar;
pub use set::Set;
