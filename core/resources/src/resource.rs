//! One resource: a named amount on one agent, with who may use it.
//!
//! A Mesos `Resource` couples a [`Value`] (a [`Scalar`], [`Ranges`] or a
//! [`Set`]) with metadata that decides who may use it and how it combines
//! with others:
//!
//! * a **reservation stack**: empty for unreserved resources. Each entry
//!   reserves the resource for a role, statically (agent flag) or
//!   dynamically (RESERVE). Each later entry *refines* the one before to a
//!   strict sub-role (`eng`, then `eng/prod`); the last entry is the role
//!   the resource is reserved for;
//! * **disk** info: persistent volumes and disk sources (PATH, MOUNT, ...);
//! * the **revocable** and **shared** flags;
//! * the **allocation role**, once the allocator hands it to a role;
//! * the **resource provider** that owns it, if not the agent itself.
//!
//! Two resources combine only when everything but the value matches, with
//! Mesos's extra rules for disks: see [`Resource::addable`] and
//! [`Resource::subtractable`]. [`crate::Resources`] applies them.

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::error::{ResourcesError, Result};
use crate::ranges::Ranges;
use crate::role;
use crate::scalar::Scalar;
use crate::set::Set;

/// The amount of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// A number, e.g. `cpus`, `mem`, `disk`.
    Scalar(Scalar),
    /// Intervals, e.g. `ports`.
    Ranges(Ranges),
    /// Named items.
    Set(Set),
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

    /// The Mesos name of the type: `SCALAR`, `RANGES` or `SET`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "SCALAR",
            Value::Ranges(_) => "RANGES",
            Value::Set(_) => "SET",
        }
    }

    /// The scalar, if this is one.
    pub fn as_scalar(&self) -> Option<Scalar> {
        match self {
            Value::Scalar(s) => Some(*s),
            _ => None,
        }
    }

    /// The ranges, if this is a ranges value.
    pub fn as_ranges(&self) -> Option<&Ranges> {
        match self {
            Value::Ranges(r) => Some(r),
            _ => None,
        }
    }

    /// The set, if this is a set value.
    pub fn as_set(&self) -> Option<&Set> {
        match self {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }

    /// Whether `self` includes all of `other`; values of different types
    /// never contain each other.
    pub fn contains(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => a >= b,
            (Value::Ranges(a), Value::Ranges(b)) => a.contains(b),
            (Value::Set(a), Value::Set(b)) => a.contains(b),
            _ => false,
        }
    }

    /// Adds `other` into `self`; does nothing if the types differ.
    pub fn add(&mut self, other: &Value) {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => *a += *b,
            (Value::Ranges(a), Value::Ranges(b)) => a.add(b),
            (Value::Set(a), Value::Set(b)) => a.add(b),
            _ => {}
        }
    }

    /// Removes `other` from `self` as far as it is present (scalars floor
    /// at zero); does nothing if the types differ.
    pub fn subtract(&mut self, other: &Value) {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => *a = a.saturating_sub(*b),
            (Value::Ranges(a), Value::Ranges(b)) => a.subtract(b),
            (Value::Set(a), Value::Set(b)) => a.subtract(b),
            _ => {}
        }
    }
}

impl fmt::Display for Value {
    /// Mesos text form: `1.5`, `[1-2, 5-9]`, `{a, b}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Scalar(s) => s.fmt(f),
            Value::Ranges(r) => r.fmt(f),
            Value::Set(s) => s.fmt(f),
        }
    }
}

/// One key/value label, as attached to reservations and disk sources.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// The key.
    pub key: String,
    /// The value; a label may be a bare key.
    pub value: Option<String>,
}

/// A list of labels. Like Mesos, two lists are equal when they hold the
/// same labels in any order; the written order is kept for the wire.
#[derive(Debug, Clone, Default)]
pub struct Labels(pub Vec<Label>);

impl Labels {
    /// Labels from `(key, value)` pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Labels {
        Labels(
            pairs
                .into_iter()
                .map(|(key, value)| Label {
                    key: key.to_string(),
                    value: value.map(str::to_string),
                })
                .collect(),
        )
    }

    fn sorted(&self) -> Vec<&Label> {
        let mut sorted: Vec<&Label> = self.0.iter().collect();
        sorted.sort();
        sorted
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Labels) -> bool {
        self.0.len() == other.0.len() && self.sorted() == other.sorted()
    }
}

impl Eq for Labels {}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.sorted().hash(state);
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

/// One entry of a reservation stack (Mesos `Resource.ReservationInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reservation {
    /// Static or dynamic.
    pub kind: ReservationKind,
    /// The role the resource is reserved for.
    pub role: String,
    /// Who made a dynamic reservation.
    pub principal: Option<String>,
    /// Labels a framework attached to a dynamic reservation.
    pub labels: Option<Labels>,
}

impl Reservation {
    /// A static reservation for `role`.
    pub fn static_for(role: &str) -> Reservation {
        Reservation {
            kind: ReservationKind::Static,
            role: role.to_string(),
            principal: None,
            labels: None,
        }
    }

    /// A dynamic reservation for `role`, made by `principal`.
    pub fn dynamic_for(role: &str, principal: Option<&str>) -> Reservation {
        Reservation {
            kind: ReservationKind::Dynamic,
            role: role.to_string(),
            principal: principal.map(str::to_string),
            labels: None,
        }
    }

    /// The same reservation, with labels.
    pub fn with_labels(mut self, labels: Labels) -> Reservation {
        self.labels = Some(labels);
        self
    }
}

/// The identity of a persistent volume.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Persistence {
    /// The volume's id, unique on its agent within its role.
    pub id: String,
    /// The principal that created the volume.
    pub principal: Option<String>,
}

/// Whether a volume may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VolumeMode {
    /// Read-write (`RW`).
    ReadWrite,
    /// Read-only (`RO`).
    ReadOnly,
}

/// Where a persistent volume appears inside the container using it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Volume {
    /// The path inside the container, relative to its sandbox if relative.
    pub container_path: String,
    /// Read-write or read-only.
    pub mode: VolumeMode,
    /// A host path, for the rare volumes that name one.
    pub host_path: Option<String>,
}

/// The kind of a disk source (Mesos `DiskInfo.Source.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiskSourceKind {
    /// A directory on a shared filesystem; divisible.
    Path,
    /// A whole mounted filesystem; used whole.
    Mount,
    /// A raw block device; used whole.
    Block,
    /// Unformatted storage, e.g. from a CSI plugin.
    Raw,
}

impl DiskSourceKind {
    /// The Mesos name of the kind: `PATH`, `MOUNT`, `BLOCK` or `RAW`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskSourceKind::Path => "PATH",
            DiskSourceKind::Mount => "MOUNT",
            DiskSourceKind::Block => "BLOCK",
            DiskSourceKind::Raw => "RAW",
        }
    }
}

/// Where a `disk` resource comes from, when it is not the agent's root
/// disk.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DiskSource {
    /// PATH, MOUNT, BLOCK or RAW.
    pub kind: DiskSourceKind,
    /// The root directory of a PATH or MOUNT source.
    pub root: Option<String>,
    /// The CSI vendor, for disks from a resource provider.
    pub vendor: Option<String>,
    /// The CSI volume id.
    pub id: Option<String>,
    /// CSI volume metadata.
    pub metadata: Option<Labels>,
    /// The disk profile it was created with.
    pub profile: Option<String>,
}

impl DiskSource {
    /// A source of `kind` with an optional root and nothing else.
    pub fn new(kind: DiskSourceKind, root: Option<&str>) -> DiskSource {
        DiskSource {
            kind,
            root: root.map(str::to_string),
            vendor: None,
            id: None,
            metadata: None,
            profile: None,
        }
    }
}

/// Disk information carried by a `disk` resource (Mesos
/// `Resource.DiskInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DiskInfo {
    /// Present for persistent volumes.
    pub persistence: Option<Persistence>,
    /// How a task mounts the volume.
    pub volume: Option<Volume>,
    /// The disk source, if not the root disk.
    pub source: Option<DiskSource>,
}

impl DiskInfo {
    /// The disk info of a persistent volume on the root disk.
    pub fn persistent_volume(
        id: &str,
        principal: Option<&str>,
        container_path: &str,
        mode: VolumeMode,
    ) -> DiskInfo {
        DiskInfo {
            persistence: Some(Persistence {
                id: id.to_string(),
                principal: principal.map(str::to_string),
            }),
            volume: Some(Volume {
                container_path: container_path.to_string(),
                mode,
                host_path: None,
            }),
            source: None,
        }
    }

    /// The persistence id, for persistent volumes.
    pub fn persistence_id(&self) -> Option<&str> {
        self.persistence.as_ref().map(|p| p.id.as_str())
    }

    /// Whether two disk infos describe the same disk, as Mesos compares
    /// them: same source and same persistence id. The volume (how a task
    /// mounts it) and the creating principal do not matter.
    pub fn same_disk(&self, other: &DiskInfo) -> bool {
        self.source == other.source && self.persistence_id() == other.persistence_id()
    }
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
    /// Disk and persistent-volume info; only `disk` resources carry it.
    pub disk: Option<DiskInfo>,
    /// Revocable resources may be taken back at any time.
    pub revocable: bool,
    /// Shared resources (persistent volumes only) may be used by many
    /// tasks at once.
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

    /// An unreserved ranges resource.
    pub fn ranges(name: &str, ranges: Ranges) -> Resource {
        Resource::new(name, Value::Ranges(ranges))
    }

    /// An unreserved set resource.
    pub fn set(name: &str, set: Set) -> Resource {
        Resource::new(name, Value::Set(set))
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

    /// Whether it is reserved: to any role when `role` is `None`, else to
    /// exactly that role (Mesos `isReserved`).
    pub fn is_reserved(&self, role: Option<&str>) -> bool {
        !self.is_unreserved() && role.is_none_or(|role| role == self.reservation_role())
    }

    /// Whether it is reserved for exactly `role`.
    pub fn is_reserved_to(&self, role: &str) -> bool {
        self.is_reserved(Some(role))
    }

    /// Whether a framework in `role` may be offered it: it is unreserved,
    /// reserved for `role`, or reserved for an ancestor of `role`.
    pub fn is_allocatable_to(&self, role: &str) -> bool {
        let reserved = self.reservation_role();
        self.is_unreserved() || reserved == role || role::is_strict_subrole_of(role, reserved)
    }

    /// Whether it is reserved for `role` or one of its descendants.
    pub fn is_reserved_to_role_subtree(&self, role: &str) -> bool {
        !self.is_unreserved() && role::is_in_subtree(self.reservation_role(), role)
    }

    /// Whether it is allocated to `role` or one of its descendants.
    pub fn is_allocated_to_role_subtree(&self, role: &str) -> bool {
        self.allocation_role
            .as_deref()
            .is_some_and(|allocated| role::is_in_subtree(allocated, role))
    }

    /// Whether the innermost reservation is dynamic.
    pub fn is_dynamically_reserved(&self) -> bool {
        self.reservations
            .last()
            .is_some_and(|r| r.kind == ReservationKind::Dynamic)
    }

    /// Whether the reservation stack has more than one entry.
    pub fn has_refined_reservations(&self) -> bool {
        self.reservations.len() > 1
    }

    /// Whether it is a persistent volume.
    pub fn is_persistent_volume(&self) -> bool {
        self.disk.as_ref().is_some_and(|d| d.persistence.is_some())
    }

    /// Whether it is a disk with a source of `kind`.
    pub fn is_disk(&self, kind: DiskSourceKind) -> bool {
        self.disk
            .as_ref()
            .and_then(|d| d.source.as_ref())
            .is_some_and(|s| s.kind == kind)
    }

    /// Whether a resource provider owns it.
    pub fn has_resource_provider(&self) -> bool {
        self.provider_id.is_some()
    }

    /// Adds a reservation on top of the stack. Mesos's rules apply: the
    /// role must be valid and not `*`, and a refinement (any reservation
    /// but the first) must be dynamic and for a strict sub-role of the
    /// current reservation role.
    pub fn push_reservation(&mut self, reservation: Reservation) -> Result<()> {
        check_reservation(self.reservations.last(), &reservation)?;
        self.reservations.push(reservation);
        Ok(())
    }

    /// Removes the innermost reservation, as UNRESERVE does. Only a dynamic
    /// reservation can be removed.
    pub fn pop_reservation(&mut self) -> Result<Reservation> {
        match self.reservations.last() {
            None => Err(ResourcesError::InvalidRefinement(format!(
                "'{}' is not reserved",
                self.name
            ))),
            Some(r) if r.kind == ReservationKind::Static => {
                Err(ResourcesError::InvalidRefinement(format!(
                    "the static reservation of '{}' for '{}' cannot be removed",
                    self.name, r.role
                )))
            }
            Some(_) => self.reservations.pop().ok_or_else(|| {
                ResourcesError::InvalidRefinement(format!("'{}' is not reserved", self.name))
            }),
        }
    }

    /// Checks the rules Mesos's `Resources::validate` applies to a resource
    /// in the post-refinement format: a name; disk info only on `disk`, and
    /// no root for BLOCK or RAW sources; a valid reservation stack; sharing
    /// only for persistent volumes; a valid allocation role.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| ResourcesError::InvalidResource {
            name: self.name.clone(),
            reason,
        };
        if self.name.is_empty() {
            return Err(invalid("empty resource name".into()));
        }
        if let Some(disk) = &self.disk {
            if self.name != "disk" {
                return Err(invalid(format!(
                    "disk info should not be set for a '{}' resource",
                    self.name
                )));
            }
            if let Some(source) = &disk.source {
                if matches!(source.kind, DiskSourceKind::Block | DiskSourceKind::Raw)
                    && source.root.is_some()
                {
                    return Err(invalid(format!(
                        "a {} disk source cannot have a root",
                        source.kind.as_str()
                    )));
                }
            }
        }
        let mut previous = None;
        for reservation in &self.reservations {
            check_reservation(previous, reservation)?;
            previous = Some(reservation);
        }
        if self.shared {
            if self.name != "disk" {
                return Err(invalid(format!(
                    "a '{}' resource cannot be shared",
                    self.name
                )));
            }
            if !self.is_persistent_volume() {
                return Err(invalid("only persistent volumes can be shared".into()));
            }
        }
        if let Some(role) = &self.allocation_role {
            role::validate(role)?;
        }
        Ok(())
    }

    /// Whether everything but the value matches, comparing disks as Mesos
    /// does (`compareResourceMetadata`).
    pub fn same_metadata(&self, other: &Resource) -> bool {
        self.name == other.name
            && self.value.same_type(&other.value)
            && self.allocation_role == other.allocation_role
            && self.reservations == other.reservations
            && match (&self.disk, &other.disk) {
                (None, None) => true,
                (Some(a), Some(b)) => a.same_disk(b),
                _ => false,
            }
            && self.revocable == other.revocable
            && self.provider_id == other.provider_id
            && self.shared == other.shared
    }

    /// Mesos's `Resource ==`: same metadata (disks compared by
    /// [`DiskInfo::same_disk`]) and the same value.
    pub fn equivalent(&self, other: &Resource) -> bool {
        self.same_metadata(other) && self.value == other.value
    }

    /// Whether `other` can be merged into `self` as one resource (Mesos
    /// `addable`). Metadata must match; besides, shared resources merge
    /// only with an equal one (their count goes up instead), and MOUNT and
    /// BLOCK disks, RAW disks with an id and non-shared persistent volumes
    /// never merge, because each is a distinct thing.
    pub fn addable(&self, other: &Resource) -> bool {
        if self.shared || other.shared {
            return self.shared && other.shared && self.equivalent(other);
        }
        if !self.same_metadata(other) {
            return false;
        }
        !self.is_indivisible()
    }

    /// Whether this resource is one distinct thing that never merges or
    /// splits: a MOUNT or BLOCK disk, a RAW disk with an id, or a
    /// persistent volume.
    fn is_indivisible(&self) -> bool {
        self.disk.as_ref().is_some_and(|disk| {
            let distinct_source = disk.source.as_ref().is_some_and(|s| match s.kind {
                DiskSourceKind::Path => false,
                DiskSourceKind::Mount | DiskSourceKind::Block => true,
                DiskSourceKind::Raw => s.id.is_some(),
            });
            distinct_source || disk.persistence.is_some()
        })
    }

    /// Whether `other` can be taken out of `self` (Mesos `subtractable`).
    /// Metadata must match; shared resources, MOUNT and BLOCK disks, RAW
    /// disks with an id and persistent volumes only subtract when they are
    /// [`equivalent`](Resource::equivalent).
    pub fn subtractable(&self, other: &Resource) -> bool {
        if self.shared || other.shared {
            return self.shared && other.shared && self.equivalent(other);
        }
        if !self.same_metadata(other) {
            return false;
        }
        !self.is_indivisible() || self.equivalent(other)
    }

    /// Whether `self` includes all of `other` (Mesos `contains` on two
    /// resources): subtractable, and the value includes the other value.
    pub fn contains(&self, other: &Resource) -> bool {
        self.subtractable(other) && self.value.contains(&other.value)
    }

    /// Shrinks a scalar resource to at most `target`, as Mesos's
    /// `Resources::shrink` does. Returns `false`, leaving it unchanged, if
    /// it cannot be divided (a MOUNT disk, a persistent volume, ...) or is
    /// not a scalar.
    pub fn shrink(&mut self, target: Scalar) -> bool {
        let Value::Scalar(current) = self.value else {
            return false;
        };
        if current <= target {
            return true;
        }
        if self.disk.is_some() {
            let mut smaller = self.clone();
            smaller.value = Value::Scalar(target);
            if !self.contains(&smaller) {
                return false;
            }
        }
        self.value = Value::Scalar(target);
        true
    }

    pub(crate) fn add_value(&mut self, other: &Value) {
        self.value.add(other);
    }

    pub(crate) fn subtract_value(&mut self, other: &Value) {
        self.value.subtract(other);
    }
}

/// Checks that `next` may sit on top of `current` in a reservation stack.
fn check_reservation(current: Option<&Reservation>, next: &Reservation) -> Result<()> {
    role::validate(&next.role)?;
    if next.role == role::UNRESERVED {
        return Err(ResourcesError::InvalidRefinement(
            "role '*' cannot be reserved".into(),
        ));
    }
    if let Some(current) = current {
        if next.kind == ReservationKind::Static {
            return Err(ResourcesError::InvalidRefinement(format!(
                "a refined reservation (for '{}') cannot be static",
                next.role
            )));
        }
        if !role::is_strict_subrole_of(&next.role, &current.role) {
            return Err(ResourcesError::InvalidRefinement(format!(
                "role '{}' is not a refinement of '{}'",
                next.role, current.role
            )));
        }
    }
    Ok(())
}

impl fmt::Display for Resource {
    /// A short text form, in the `--resources` syntax where it can be:
    /// `cpus(eng):2`, `disk(eng)[vol1:data]<SHARED>:64`, `cpus{REV}:1`,
    /// `cpus(allocated: eng)(eng):2`. Only the innermost reservation role
    /// is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(role) = &self.allocation_role {
            write!(f, "(allocated: {role})")?;
        }
        if !self.is_unreserved() {
            write!(f, "({})", self.reservation_role())?;
        }
        if let Some(disk) = &self.disk {
            f.write_str("[")?;
            if let Some(source) = &disk.source {
                f.write_str(source.kind.as_str())?;
                if let Some(root) = &source.root {
                    write!(f, ":{root}")?;
                }
                if disk.persistence.is_some() {
                    f.write_str(",")?;
                }
            }
            if let Some(id) = disk.persistence_id() {
                f.write_str(id)?;
            }
            if let Some(volume) = &disk.volume {
                write!(f, ":{}", volume.container_path)?;
            }
            f.write_str("]")?;
        }
        if self.revocable {
            f.write_str("{REV}")?;
        }
        if self.shared {
            f.write_str("<SHARED>")?;
        }
        write!(f, ":{}", self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(n: f64) -> Resource {
        Resource::scalar("cpus", Scalar::from_f64(n).unwrap())
    }

    fn volume(id: &str, size: u64) -> Resource {
        let mut r = Resource::scalar("disk", Scalar::from_units(size));
        r.push_reservation(Reservation::dynamic_for("eng", Some("ops")))
            .unwrap();
        r.disk = Some(DiskInfo::persistent_volume(
            id,
            Some("ops"),
            "data",
            VolumeMode::ReadWrite,
        ));
        r
    }

    #[test]
    fn refinement_stack() {
        let mut r = cpus(1.0);
        r.push_reservation(Reservation::static_for("eng")).unwrap();
        assert!(
            r.push_reservation(Reservation::dynamic_for("ops", None))
                .is_err(),
            "ops does not refine eng"
        );
        assert!(
            r.push_reservation(Reservation::dynamic_for("eng", None))
                .is_err(),
            "a role does not refine itself"
        );
        assert!(
            r.push_reservation(Reservation::static_for("eng/prod"))
                .is_err(),
            "refinements are dynamic"
        );
        r.push_reservation(Reservation::dynamic_for("eng/prod", Some("ops")))
            .unwrap();
        r.push_reservation(Reservation::dynamic_for("eng/prod/web", None))
            .unwrap();
        assert_eq!(r.reservation_role(), "eng/prod/web");
        assert!(r.has_refined_reservations());
        assert!(r.is_dynamically_reserved());
        r.validate().unwrap();
        assert_eq!(r.pop_reservation().unwrap().role, "eng/prod/web");
        r.pop_reservation().unwrap();
        assert_eq!(r.reservation_role(), "eng");
        assert!(r.pop_reservation().is_err(), "static cannot be unreserved");
        let mut plain = cpus(1.0);
        assert!(plain.pop_reservation().is_err());
        assert!(plain
            .push_reservation(Reservation::dynamic_for("*", None))
            .is_err());
        assert!(plain
            .push_reservation(Reservation::dynamic_for("a b", None))
            .is_err());
    }

    #[test]
    fn validate_catches_hand_built_stacks() {
        let mut r = cpus(1.0);
        r.reservations = vec![
            Reservation::dynamic_for("eng", None),
            Reservation::dynamic_for("engineering", None),
        ];
        assert!(r.validate().is_err());
        r.reservations = vec![
            Reservation::static_for("eng"),
            Reservation::static_for("eng/a"),
        ];
        assert!(r.validate().is_err());
    }

    #[test]
    fn allocatable_follows_hierarchy() {
        let mut r = cpus(1.0);
        assert!(r.is_allocatable_to("anything"));
        assert!(r.is_allocatable_to("*"));
        r.push_reservation(Reservation::static_for("eng")).unwrap();
        assert!(r.is_allocatable_to("eng"));
        assert!(r.is_allocatable_to("eng/prod"));
        assert!(r.is_allocatable_to("eng/prod/web"));
        assert!(!r.is_allocatable_to("engineering"));
        assert!(!r.is_allocatable_to("*"));
        r.push_reservation(Reservation::dynamic_for("eng/prod", None))
            .unwrap();
        assert!(!r.is_allocatable_to("eng"), "refined to eng/prod");
        assert!(!r.is_allocatable_to("eng/dev"));
        assert!(r.is_allocatable_to("eng/prod/web"));
        assert!(r.is_reserved_to("eng/prod") && !r.is_reserved_to("eng"));
        assert!(r.is_reserved(None) && r.is_reserved(Some("eng/prod")));
        assert!(r.is_reserved_to_role_subtree("eng"));
        assert!(!r.is_reserved_to_role_subtree("eng/dev"));
    }

    #[test]
    fn allocation_subtree() {
        let mut r = cpus(1.0);
        assert!(!r.is_allocated_to_role_subtree("eng"));
        r.allocation_role = Some("eng/prod".into());
        assert!(r.is_allocated_to_role_subtree("eng"));
        assert!(r.is_allocated_to_role_subtree("eng/prod"));
        assert!(!r.is_allocated_to_role_subtree("eng/prod/web"));
    }

    #[test]
    fn disk_rules() {
        let v = volume("v1", 64);
        assert!(v.is_persistent_volume());
        v.validate().unwrap();
        assert!(!v.addable(&v), "non-shared volumes never merge");
        assert!(v.subtractable(&v) && v.contains(&v));
        assert!(!v.contains(&volume("v1", 32)), "a volume is used whole");
        assert!(!v.contains(&volume("v2", 64)));

        let mut other_mount = volume("v1", 64);
        other_mount.disk.as_mut().unwrap().volume = None;
        assert!(
            v.equivalent(&other_mount),
            "the mount point is not identity"
        );

        let mut cpus_with_disk = cpus(1.0);
        cpus_with_disk.disk = Some(DiskInfo::default());
        assert!(cpus_with_disk.validate().is_err());

        let mut shared_cpus = cpus(1.0);
        shared_cpus.shared = true;
        assert!(shared_cpus.validate().is_err());

        let mut mount = Resource::scalar("disk", Scalar::from_units(100));
        mount.disk = Some(DiskInfo {
            source: Some(DiskSource::new(DiskSourceKind::Mount, Some("/mnt/a"))),
            ..DiskInfo::default()
        });
        assert!(!mount.addable(&mount));
        assert!(mount.contains(&mount));
        let mut half = mount.clone();
        assert!(!half.shrink(Scalar::from_units(50)), "MOUNT is indivisible");
        assert_eq!(half, mount);

        let mut path = Resource::scalar("disk", Scalar::from_units(100));
        path.disk = Some(DiskInfo {
            source: Some(DiskSource::new(DiskSourceKind::Path, Some("/data"))),
            ..DiskInfo::default()
        });
        assert!(path.addable(&path));
        assert!(path.shrink(Scalar::from_units(50)));
        assert_eq!(path.value, Value::Scalar(Scalar::from_units(50)));

        let mut raw = Resource::scalar("disk", Scalar::from_units(1));
        raw.disk = Some(DiskInfo {
            source: Some(DiskSource::new(DiskSourceKind::Raw, Some("/x"))),
            ..DiskInfo::default()
        });
        assert!(raw.validate().is_err(), "RAW has no root");
    }

    #[test]
    fn shared_resources_combine_only_when_equal() {
        let mut a = volume("v1", 64);
        a.shared = true;
        a.validate().unwrap();
        assert!(a.addable(&a.clone()));
        let mut b = a.clone();
        b.value = Value::Scalar(Scalar::from_units(32));
        assert!(!a.addable(&b) && !a.subtractable(&b));
        assert!(
            !a.addable(&volume("v1", 64)),
            "shared never merges with non-shared"
        );
    }

    #[test]
    fn labels_compare_in_any_order() {
        let a = Labels::from_pairs([("a", Some("1")), ("b", None)]);
        let b = Labels::from_pairs([("b", None), ("a", Some("1"))]);
        assert_eq!(a, b);
        assert_ne!(a, Labels::from_pairs([("a", Some("1"))]));
        let r1 = Reservation::dynamic_for("eng", None).with_labels(a);
        let r2 = Reservation::dynamic_for("eng", None).with_labels(b);
        assert_eq!(r1, r2);
        assert_ne!(r1, Reservation::dynamic_for("eng", None));
    }

    #[test]
    fn shrinks_scalars_only() {
        let mut c = cpus(4.0);
        assert!(c.shrink(Scalar::from_units(5)));
        assert_eq!(c, cpus(4.0));
        assert!(c.shrink(Scalar::from_units(1)));
        assert_eq!(c, cpus(1.0));
        let mut ports = Resource::ranges("ports", Ranges::single(1, 5).unwrap());
        assert!(!ports.shrink(Scalar::ZERO));
    }

    #[test]
    fn short_text_form() {
        let mut r = cpus(2.0);
        r.push_reservation(Reservation::static_for("eng")).unwrap();
        r.revocable = true;
        assert_eq!(r.to_string(), "cpus(eng){REV}:2");
        let mut v = volume("v1", 64);
        v.shared = true;
        assert_eq!(v.to_string(), "disk(eng)[v1:data]<SHARED>:64");
        v.allocation_role = Some("eng".into());
        assert_eq!(
            v.to_string(),
            "disk(allocated: eng)(eng)[v1:data]<SHARED>:64"
        );
    }
}
