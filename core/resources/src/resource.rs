//! One resource: a named amount on one agent, with who may use it.
//!
//! A Mesos `Resource` couples a value (a [`Scalar`], [`Ranges`] or a set of
//! strings) with metadata that decides who may use it and how it combines
//! with others:
//!
//! * a **reservation stack**: empty for unreserved resources; each entry
//!   reserves the resource for a role, statically (agent flag) or
//!   dynamically (RESERVE). Later entries *refine* earlier ones to a
//!   sub-role (`eng` then `eng/prod`);
//! * **disk** info for persistent volumes;
//! * **revocable** and **shared** flags;
//! * an **allocation role** once the allocator hands it to a role.
//!
//! Two resources combine (add or subtract) only when everything but the
//! value matches; that rule lives in [`Resource::same_kind`].

use std::collections::BTreeSet;

use crate::error::{ResourcesError, Result};
use crate::ranges::Ranges;
use crate::role;
use crate::scalar::Scalar;

/// The amount of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// A number, e.g. `cpus`.
    Scalar(Scalar),
    /// Intervals, e.g. `ports`.
    Ranges(Ranges),
    /// Named items, e.g. GPUs by index.
    Set(BTreeSet<String>),
}

impl Value {
    /// Whether the value holds nothing (zero, no ranges, no items).
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Scalar(s) => s.is_zero(),
            Value::Ranges(r) => r.is_empty(),
            Value::Set(s) => s.is_empty(),
        }
    }

    /// Whether both values are of the same type.
    pub fn same_type(&self, other: &Value) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// Whether `self` includes all of `other` (same type required).
    pub fn contains(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => a >= b,
            (Value::Ranges(a), Value::Ranges(b)) => a.contains(b),
            (Value::Set(a), Value::Set(b)) => b.is_subset(a),
            _ => false,
        }
    }

    fn add(&mut self, other: &Value) {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => *a += *b,
            (Value::Ranges(a), Value::Ranges(b)) => *a = a.union(b),
            (Value::Set(a), Value::Set(b)) => a.extend(b.iter().cloned()),
            _ => {}
        }
    }

    fn subtract(&mut self, other: &Value) {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => *a = a.saturating_sub(*b),
            (Value::Ranges(a), Value::Ranges(b)) => *a = a.difference(b),
            (Value::Set(a), Value::Set(b)) => a.retain(|item| !b.contains(item)),
            _ => {}
        }
    }
}

/// How a reservation was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReservationKind {
    /// From the agent's `--resources` flag; lasts as long as the agent.
    Static,
    /// Through RESERVE by a framework or operator; undone by UNRESERVE.
    Dynamic,
}

/// One entry of a reservation stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reservation {
    /// Static or dynamic.
    pub kind: ReservationKind,
    /// The role the resource is reserved for.
    pub role: String,
    /// Who made a dynamic reservation.
    pub principal: Option<String>,
    /// Labels attached to a dynamic reservation, as key/value pairs.
    pub labels: Vec<(String, Option<String>)>,
}

impl Reservation {
    /// A static reservation for `role`.
    pub fn static_for(role: &str) -> Reservation {
        Reservation {
            kind: ReservationKind::Static,
            role: role.to_string(),
            principal: None,
            labels: Vec::new(),
        }
    }

    /// A dynamic reservation for `role`, made by `principal`.
    pub fn dynamic_for(role: &str, principal: Option<&str>) -> Reservation {
        Reservation {
            kind: ReservationKind::Dynamic,
            role: role.to_string(),
            principal: principal.map(str::to_string),
            labels: Vec::new(),
        }
    }
}

/// Persistent-volume information carried by a `disk` resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DiskInfo {
    /// The persistence id, present for persistent volumes.
    pub persistence_id: Option<String>,
    /// The principal that created the volume.
    pub persistence_principal: Option<String>,
    /// Where the volume appears inside the container.
    pub container_path: Option<String>,
    /// `true` for a read-write volume, `false` for read-only.
    pub read_write: bool,
    /// The disk source kind (`PATH`, `MOUNT`, ...), if not the root disk.
    pub source: Option<String>,
}

/// A resource: a name, a value and the metadata that says who may use it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource {
    /// The resource name, e.g. `cpus`, `mem`, `disk`, `ports`, `gpus`.
    pub name: String,
    /// The amount.
    pub value: Value,
    /// Reservations, outermost (least specific role) first.
    pub reservations: Vec<Reservation>,
    /// Disk and persistent-volume info.
    pub disk: Option<DiskInfo>,
    /// Revocable resources may be taken back at any time.
    pub revocable: bool,
    /// Shared resources (persistent volumes) may be used by many tasks.
    pub shared: bool,
    /// The role this resource is allocated to, once allocated.
    pub allocation_role: Option<String>,
    /// The resource provider that owns it, if not the agent itself.
    pub provider_id: Option<String>,
}

impl Resource {
    /// An unreserved resource with no metadata.
    pub fn new(name: &str, value: Value) -> Resource {
        Resource {
            name: name.to_string(),
            value,
            reservations: Vec::new(),
            disk: None,
            revocable: false,
            shared: false,
            allocation_role: None,
            provider_id: None,
        }
    }

    /// An unreserved scalar resource.
    pub fn scalar(name: &str, amount: Scalar) -> Resource {
        Resource::new(name, Value::Scalar(amount))
    }

    /// The role it is reserved for (the innermost reservation), or `*`.
    pub fn reservation_role(&self) -> &str {
        self.reservations
            .last()
            .map_or(role::UNRESERVED, |r| r.role.as_str())
    }

    /// Whether no reservation applies.
    pub fn is_unreserved(&self) -> bool {
        self.reservations.is_empty()
    }

    /// Whether it is reserved for exactly `role`.
    pub fn is_reserved_to(&self, role: &str) -> bool {
        !self.is_unreserved() && self.reservation_role() == role
    }

    /// Whether a framework in `role` may be offered it: it is unreserved,
    /// reserved for `role`, or reserved for an ancestor of `role`.
    pub fn is_allocatable_to(&self, role: &str) -> bool {
        let reserved = self.reservation_role();
        self.is_unreserved() || reserved == role || role::is_strict_subrole_of(role, reserved)
    }

    /// Whether it is a persistent volume.
    pub fn is_persistent_volume(&self) -> bool {
        self.disk
            .as_ref()
            .is_some_and(|d| d.persistence_id.is_some())
    }

    /// Whether the innermost reservation is dynamic.
    pub fn is_dynamically_reserved(&self) -> bool {
        self.reservations
            .last()
            .is_some_and(|r| r.kind == ReservationKind::Dynamic)
    }

    /// Adds a refinement: the new reservation's role must be a strict
    /// sub-role of the current one (or any role, if unreserved), and
    /// refinements are always dynamic.
    pub fn push_reservation(&mut self, reservation: Reservation) -> Result<()> {
        let mut refined = self.reservations.clone();
        refined.push(reservation);
        validate_stack(&refined)?;
        self.reservations = refined;
        Ok(())
    }

    /// Removes the innermost reservation (UNRESERVE); only dynamic ones can
    /// be removed.
    pub fn pop_reservation(&mut self) -> Result<Reservation> {
        match self.reservations.last() {
            None => Err(ResourcesError::InvalidRefinement(
                "resource is not reserved".into(),
            )),
            Some(r) if r.kind == ReservationKind::Static => Err(ResourcesError::InvalidRefinement(
                format!("static reservation for '{}' cannot be unreserved", r.role),
            )),
            Some(_) => self.reservations.pop().ok_or_else(|| {
                ResourcesError::InvalidRefinement("resource is not reserved".into())
            }),
        }
    }

    /// Checks the reservation stack (valid roles, each refining the last,
    /// only the first static) and the allocation role.
    pub fn validate(&self) -> Result<()> {
        validate_stack(&self.reservations)?;
        if let Some(role) = &self.allocation_role {
            role::validate(role)?;
        }
        Ok(())
    }

    /// Whether two resources differ only in their value, so they can be
    /// added or subtracted (Mesos's "addable"/"subtractable" rules).
    /// Persistent volumes that are not shared never merge with each other.
    pub fn same_kind(&self, other: &Resource) -> bool {
        self.name == other.name
            && self.value.same_type(&other.value)
            && self.reservations == other.reservations
            && self.disk == other.disk
            && self.revocable == other.revocable
            && self.shared == other.shared
            && self.allocation_role == other.allocation_role
            && self.provider_id == other.provider_id
    }

    pub(crate) fn add_value(&mut self, other: &Value) {
        self.value.add(other);
    }

    pub(crate) fn subtract_value(&mut self, other: &Value) {
        self.value.subtract(other);
    }
}

/// Checks a reservation stack: valid roles other than `*`, each a strict
/// sub-role of the one before, and only the first may be static.
fn validate_stack(stack: &[Reservation]) -> Result<()> {
    let mut previous: Option<&Reservation> = None;
    for reservation in stack {
        role::validate(&reservation.role)?;
        if reservation.role == role::UNRESERVED {
            return Err(ResourcesError::InvalidRefinement(
                "a reservation cannot be for the '*' role".into(),
            ));
        }
        if let Some(prev) = previous {
            if !role::is_strict_subrole_of(&reservation.role, &prev.role) {
                return Err(ResourcesError::InvalidRefinement(format!(
                    "role '{}' does not refine '{}'",
                    reservation.role, prev.role
                )));
            }
            if reservation.kind == ReservationKind::Static {
                return Err(ResourcesError::InvalidRefinement(
                    "a refinement must be a dynamic reservation".into(),
                ));
            }
        }
        previous = Some(reservation);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(n: f64) -> Resource {
        Resource::scalar("cpus", Scalar::from_f64(n).unwrap())
    }

    #[test]
    fn refinement_stack() {
        let mut r = cpus(1.0);
        r.push_reservation(Reservation::static_for("eng")).unwrap();
        assert!(r
            .push_reservation(Reservation::dynamic_for("ops", None))
            .is_err());
        assert!(r
            .push_reservation(Reservation::static_for("eng/prod"))
            .is_err());
        r.push_reservation(Reservation::dynamic_for("eng/prod", Some("ops")))
            .unwrap();
        assert_eq!(r.reservation_role(), "eng/prod");
        assert!(r.is_allocatable_to("eng/prod"));
        assert!(r.is_allocatable_to("eng/prod/web"));
        assert!(!r.is_allocatable_to("eng"));
        r.validate().unwrap();
        r.pop_reservation().unwrap();
        assert_eq!(r.reservation_role(), "eng");
        assert!(r.pop_reservation().is_err(), "static cannot be unreserved");
    }

    #[test]
    fn allocatable_follows_hierarchy() {
        let mut r = cpus(1.0);
        assert!(r.is_allocatable_to("anything"));
        r.push_reservation(Reservation::static_for("eng")).unwrap();
        assert!(r.is_allocatable_to("eng"));
        assert!(r.is_allocatable_to("eng/prod"));
        assert!(!r.is_allocatable_to("engineering"));
        assert!(!r.is_allocatable_to("*"));
    }
}
