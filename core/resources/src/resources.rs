//! `Resources`: a bag of resources with the arithmetic Mesos users rely on.
//!
//! A [`Resources`] keeps each kind of resource once: adding `cpus:1` to
//! `cpus:2` gives `cpus:3`, while `cpus:1` reserved for `eng` stays a
//! separate entry, because reservations, disk info and flags are part of a
//! resource's identity ([`Resource::addable`]). Entries keep the order in
//! which they first appeared, so output is deterministic.
//!
//! Shared resources (shared persistent volumes) are counted instead of
//! summed, as in Mesos: adding the same shared volume twice keeps one entry
//! whose count is two ([`Resources::count`]), and subtracting it once
//! leaves one use.
//!
//! On top of addition sit
//!
//! * containment (`a.contains(&b)`: is every part of `b` inside `a`?), and
//!   equality as containment both ways, independent of order;
//! * subtraction that never goes negative: scalars that reach zero and
//!   emptied ranges or sets disappear;
//! * the filters the allocator needs (unreserved, reserved for a role,
//!   allocatable to a role, revocable, shared...);
//! * reservation stack operations on a whole collection; and
//! * the conversions to [`ResourceQuantities`], which dominant shares and
//!   quota are computed on.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::error::{ResourcesError, Result};
use crate::quantities::{ResourceLimits, ResourceQuantities};
use crate::ranges::Ranges;
use crate::resource::{Reservation, Resource, Value};
use crate::scalar::Scalar;

/// One entry: a resource and, for shared resources, how many times it is
/// held.
#[derive(Debug, Clone)]
struct Entry {
    resource: Resource,
    /// Uses of a shared resource; always 1 for non-shared ones.
    count: u64,
}

impl Entry {
    fn one(resource: Resource) -> Entry {
        Entry { resource, count: 1 }
    }

    fn is_empty(&self) -> bool {
        (self.resource.shared && self.count == 0) || self.resource.value.is_empty()
    }

    /// Mesos `Resource_::contains`.
    fn contains(&self, other: &Entry) -> bool {
        if self.resource.shared != other.resource.shared {
            return false;
        }
        if self.resource.shared {
            return self.count >= other.count && self.resource.equivalent(&other.resource);
        }
        self.resource.contains(&other.resource)
    }
}

/// A collection of resources, merged by kind.
#[derive(Debug, Clone, Default)]
pub struct Resources(Vec<Entry>);

impl PartialEq for Resources {
    /// Equal when each contains the other, whatever the order of entries.
    fn eq(&self, other: &Resources) -> bool {
        self.contains(other) && other.contains(self)
    }
}

impl Eq for Resources {}

impl Resources {
    /// No resources.
    pub fn new() -> Resources {
        Resources(Vec::new())
    }

    /// Collects resources, merging those of the same kind and dropping
    /// empty ones.
    pub fn from_resources(resources: impl IntoIterator<Item = Resource>) -> Resources {
        let mut all = Resources::new();
        for r in resources {
            all.add(r);
        }
        all
    }

    /// The entries, one per kind (a shared resource appears once whatever
    /// its count).
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.0.iter())
    }

    /// Whether there is nothing here.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many distinct entries there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Adds one resource, merging it with an entry it is addable to; an
    /// empty resource is ignored. The resource is assumed valid (as
    /// [`Resource::from_proto`] and [`Resources::parse`] guarantee).
    pub fn add(&mut self, resource: Resource) {
        self.add_entry(Entry::one(resource));
    }

    fn add_entry(&mut self, entry: Entry) {
        if entry.is_empty() {
            return;
        }
        match self
            .0
            .iter_mut()
            .find(|mine| mine.resource.addable(&entry.resource))
        {
            Some(mine) if mine.resource.shared => {
                mine.count = mine.count.saturating_add(entry.count)
            }
            Some(mine) => mine.resource.add_value(&entry.resource.value),
            None => self.0.push(entry),
        }
    }

    /// Subtracts one resource as far as it is present; entries that become
    /// empty are dropped. Nothing ever goes negative.
    pub fn subtract(&mut self, resource: &Resource) {
        self.subtract_entry(resource, 1);
    }

    fn subtract_entry(&mut self, resource: &Resource, count: u64) {
        if resource.value.is_empty() {
            return;
        }
        let Some(index) = self
            .0
            .iter()
            .position(|mine| mine.resource.subtractable(resource))
        else {
            return;
        };
        let mine = &mut self.0[index];
        let gone = if mine.resource.shared {
            // Subtracting more uses than held removes the entry, as a
            // negative count does in Mesos.
            mine.count <= count
        } else {
            // A scalar asked to go below zero is removed, not floored.
            let below_zero = matches!(
                (&mine.resource.value, &resource.value),
                (Value::Scalar(a), Value::Scalar(b)) if b >= a
            );
            mine.resource.subtract_value(&resource.value);
            below_zero || mine.resource.value.is_empty()
        };
        if gone {
            self.0.remove(index);
        } else if mine.resource.shared {
            mine.count -= count;
        }
    }

    /// Subtracts all of `other`, failing (and changing nothing) if `self`
    /// does not contain it.
    pub fn checked_sub(&self, other: &Resources) -> Result<Resources> {
        if !self.contains(other) {
            return Err(ResourcesError::NotContained(other.to_string()));
        }
        Ok(self.clone() - other)
    }

    /// Whether `self` holds an entry that includes `r` (one use of it, if
    /// shared). An empty resource is always contained.
    pub fn contains_resource(&self, r: &Resource) -> bool {
        r.value.is_empty()
            || self.0.iter().any(|mine| {
                if r.shared {
                    mine.resource.shared && mine.count >= 1 && mine.resource.equivalent(r)
                } else {
                    !mine.resource.shared && mine.resource.contains(r)
                }
            })
    }

    /// Whether every part of `other` is in `self`. Non-shared persistent
    /// volumes are used up as they are matched, so one volume does not
    /// contain two identical ones.
    pub fn contains(&self, other: &Resources) -> bool {
        let mut remaining: Option<Resources> = None;
        for wanted in &other.0 {
            let pool = remaining.as_ref().unwrap_or(self);
            if !pool.0.iter().any(|mine| mine.contains(wanted)) {
                return false;
            }
            if wanted.resource.is_persistent_volume() {
                remaining
                    .get_or_insert_with(|| self.clone())
                    .subtract_entry(&wanted.resource, wanted.count);
            }
        }
        true
    }

    /// Whether the amounts by name cover `quantities`, counting scalars by
    /// value, sets by items and ranges by numbers, whatever the metadata.
    pub fn contains_quantities(&self, quantities: &ResourceQuantities) -> bool {
        let have = self.quantities();
        quantities
            .iter()
            .all(|(name, amount)| have.get(name) >= amount)
    }

    /// How many uses of `r` are held: the count of an equal shared entry,
    /// 1 for an equal non-shared entry, else 0.
    pub fn count(&self, r: &Resource) -> u64 {
        self.0
            .iter()
            .find(|mine| mine.resource.equivalent(r))
            .map_or(0, |mine| if mine.resource.shared { mine.count } else { 1 })
    }

    /// Keeps the resources for which `keep` holds.
    pub fn filter(&self, keep: impl Fn(&Resource) -> bool) -> Resources {
        Resources(
            self.0
                .iter()
                .filter(|e| keep(&e.resource))
                .cloned()
                .collect(),
        )
    }

    /// Rebuilds the collection with every resource changed by `change`,
    /// merging entries that become addable.
    fn map(&self, change: impl Fn(&mut Resource)) -> Resources {
        let mut result = Resources::new();
        for entry in &self.0 {
            let mut entry = entry.clone();
            change(&mut entry.resource);
            result.add_entry(entry);
        }
        result
    }

    /// Fallible [`Resources::map`].
    fn try_map(&self, change: impl Fn(&mut Resource) -> Result<()>) -> Result<Resources> {
        let mut result = Resources::new();
        for entry in &self.0 {
            let mut entry = entry.clone();
            change(&mut entry.resource)?;
            result.add_entry(entry);
        }
        Ok(result)
    }

    /// Total scalar amount of `name`, over all reservations and flags
    /// (zero when absent).
    pub fn scalar(&self, name: &str) -> Scalar {
        self.iter()
            .filter(|r| r.name == name)
            .filter_map(|r| r.value.as_scalar())
            .sum()
    }

    /// Total scalar amount of `name`, or `None` if there is no scalar
    /// resource of that name (Mesos `get<Value::Scalar>`).
    pub fn get_scalar(&self, name: &str) -> Option<Scalar> {
        let mut amounts = self
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| r.value.as_scalar())
            .peekable();
        amounts.peek()?;
        Some(amounts.sum())
    }

    /// All ranges of `name`, over all reservations and flags.
    pub fn ranges(&self, name: &str) -> Ranges {
        self.iter()
            .filter(|r| r.name == name)
            .filter_map(|r| r.value.as_ranges())
            .fold(Ranges::new(), |a, b| a.union(b))
    }

    /// Total `cpus`.
    pub fn cpus(&self) -> Scalar {
        self.scalar("cpus")
    }

    /// Total `gpus`.
    pub fn gpus(&self) -> Scalar {
        self.scalar("gpus")
    }

    /// Total `mem` in MB.
    pub fn mem(&self) -> Scalar {
        self.scalar("mem")
    }

    /// Total `disk` in MB.
    pub fn disk(&self) -> Scalar {
        self.scalar("disk")
    }

    /// All `ports`, over all reservations.
    pub fn ports(&self) -> Ranges {
        self.ranges("ports")
    }

    /// The resources named `name`.
    pub fn get(&self, name: &str) -> Resources {
        self.filter(|r| r.name == name)
    }

    /// The scalar resources.
    pub fn scalars(&self) -> Resources {
        self.filter(|r| matches!(r.value, Value::Scalar(_)))
    }

    /// The resource names present.
    pub fn names(&self) -> BTreeSet<String> {
        self.iter().map(|r| r.name.clone()).collect()
    }

    /// Unreserved resources.
    pub fn unreserved(&self) -> Resources {
        self.filter(Resource::is_unreserved)
    }

    /// Reserved resources: for exactly `role` when given, else all of them.
    pub fn reserved(&self, role: Option<&str>) -> Resources {
        self.filter(|r| r.is_reserved(role))
    }

    /// Reserved resources grouped by the role they are reserved for.
    pub fn reservations(&self) -> BTreeMap<String, Resources> {
        let mut result: BTreeMap<String, Resources> = BTreeMap::new();
        for entry in self.0.iter().filter(|e| !e.resource.is_unreserved()) {
            result
                .entry(entry.resource.reservation_role().to_string())
                .or_default()
                .add_entry(entry.clone());
        }
        result
    }

    /// What a framework in `role` may be offered: unreserved resources and
    /// those reserved for `role` or its ancestors.
    pub fn allocatable_to(&self, role: &str) -> Resources {
        self.filter(|r| r.is_allocatable_to(role))
    }

    /// Resources reserved for `role` or a descendant of it.
    pub fn reserved_to_role_subtree(&self, role: &str) -> Resources {
        self.filter(|r| r.is_reserved_to_role_subtree(role))
    }

    /// Resources allocated to `role` or a descendant of it.
    pub fn allocated_to_role_subtree(&self, role: &str) -> Resources {
        self.filter(|r| r.is_allocated_to_role_subtree(role))
    }

    /// Revocable resources.
    pub fn revocable(&self) -> Resources {
        self.filter(|r| r.revocable)
    }

    /// Non-revocable resources.
    pub fn non_revocable(&self) -> Resources {
        self.filter(|r| !r.revocable)
    }

    /// Shared resources.
    pub fn shared(&self) -> Resources {
        self.filter(|r| r.shared)
    }

    /// Non-shared resources.
    pub fn non_shared(&self) -> Resources {
        self.filter(|r| !r.shared)
    }

    /// Persistent volumes.
    pub fn persistent_volumes(&self) -> Resources {
        self.filter(Resource::is_persistent_volume)
    }

    /// The same resources, marked as allocated to `role`.
    pub fn allocate(&self, role: &str) -> Resources {
        self.map(|r| r.allocation_role = Some(role.to_string()))
    }

    /// The same resources, with allocation marks removed.
    pub fn unallocate(&self) -> Resources {
        self.map(|r| r.allocation_role = None)
    }

    /// Allocated resources grouped by allocation role; unallocated ones are
    /// left out.
    pub fn allocations(&self) -> BTreeMap<String, Resources> {
        let mut result: BTreeMap<String, Resources> = BTreeMap::new();
        for entry in &self.0 {
            if let Some(role) = &entry.resource.allocation_role {
                result
                    .entry(role.clone())
                    .or_default()
                    .add_entry(entry.clone());
            }
        }
        result
    }

    /// The same resources with `reservation` pushed on every stack (RESERVE
    /// or a refinement). Fails if it does not refine some resource's
    /// current reservation.
    pub fn push_reservation(&self, reservation: &Reservation) -> Result<Resources> {
        self.try_map(|r| r.push_reservation(reservation.clone()))
    }

    /// The same resources with the innermost reservation popped from every
    /// stack (UNRESERVE). Fails if some resource is unreserved or only
    /// statically reserved.
    pub fn pop_reservation(&self) -> Result<Resources> {
        self.try_map(|r| r.pop_reservation().map(drop))
    }

    /// The same resources with every reservation removed.
    pub fn to_unreserved(&self) -> Resources {
        self.map(|r| r.reservations.clear())
    }

    /// Only the scalar amounts, as plain unreserved resources with no
    /// metadata (Mesos `createStrippedScalarQuantity`).
    pub fn create_stripped_scalar_quantity(&self) -> Resources {
        Resources::from_resources(
            self.iter()
                .filter_map(|r| r.value.as_scalar().map(|s| Resource::scalar(&r.name, s))),
        )
    }

    /// Scalar totals by name, stripped of reservations and flags; ranges
    /// and sets are left out. This is what DRF shares are computed on.
    pub fn scalar_quantities(&self) -> ResourceQuantities {
        let mut q = ResourceQuantities::default();
        for r in self {
            if let Value::Scalar(s) = r.value {
                q.add(&r.name, s);
            }
        }
        q
    }

    /// Totals by name counting every type, as Mesos's
    /// `ResourceQuantities::fromResources` does: scalars by value, sets by
    /// number of items, ranges by number of values.
    pub fn quantities(&self) -> ResourceQuantities {
        let mut q = ResourceQuantities::default();
        for r in self {
            let amount = match &r.value {
                Value::Scalar(s) => *s,
                Value::Set(items) => Scalar::from_units(items.len() as u64),
                Value::Ranges(ranges) => Scalar::from_units(ranges.count()),
            };
            q.add(&r.name, amount);
        }
        q
    }

    /// Shrinks the scalar resources to fit within `target` quantities,
    /// in entry order, as Mesos's `shrinkResources` does (without its
    /// shuffle): names absent from `target` are dropped, and indivisible
    /// resources that do not fit whole are left out.
    pub fn shrink_to(&self, target: &ResourceQuantities) -> Resources {
        let mut left = target.clone();
        let mut result = Resources::new();
        for entry in &self.0 {
            let room = left.get(&entry.resource.name);
            if room.is_zero() {
                continue;
            }
            let mut entry = entry.clone();
            if entry.resource.shrink(room) {
                if let Some(amount) = entry.resource.value.as_scalar() {
                    left.subtract(&entry.resource.name, amount);
                }
                result.add_entry(entry);
            }
        }
        result
    }

    /// Shrinks the scalar resources to fit within `limits`, in entry order:
    /// names without a limit are kept whole, and indivisible resources that
    /// do not fit whole are left out.
    pub fn shrink_to_limits(&self, limits: &ResourceLimits) -> Resources {
        let mut left = limits.clone();
        let mut result = Resources::new();
        for entry in &self.0 {
            let Some(room) = left.get(&entry.resource.name) else {
                result.add_entry(entry.clone());
                continue;
            };
            let mut entry = entry.clone();
            if entry.resource.shrink(room) {
                if let Some(amount) = entry.resource.value.as_scalar() {
                    left.set(&entry.resource.name, room.saturating_sub(amount));
                }
                result.add_entry(entry);
            }
        }
        result
    }

    /// Applies a conversion: takes `consumed` out and puts `converted` in,
    /// failing if `consumed` is not all here.
    pub fn apply(&self, conversion: &ResourceConversion) -> Result<Resources> {
        let mut result = self.checked_sub(&conversion.consumed)?;
        result += &conversion.converted;
        Ok(result)
    }
}

/// A change of form of some resources, such as RESERVE (unreserved to
/// reserved) or CREATE (reserved disk to a persistent volume): the total
/// amount is unchanged, only the metadata differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceConversion {
    /// What is taken out.
    pub consumed: Resources,
    /// What is put back in its place.
    pub converted: Resources,
}

/// Iterator over the entries of a [`Resources`].
#[derive(Debug, Clone)]
pub struct Iter<'a>(std::slice::Iter<'a, Entry>);

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Resource;

    fn next(&mut self) -> Option<&'a Resource> {
        self.0.next().map(|e| &e.resource)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|e| &e.resource)
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Owning iterator over the entries of a [`Resources`].
#[derive(Debug)]
pub struct IntoIter(std::vec::IntoIter<Entry>);

impl Iterator for IntoIter {
    type Item = Resource;

    fn next(&mut self) -> Option<Resource> {
        self.0.next().map(|e| e.resource)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for IntoIter {}

impl IntoIterator for Resources {
    type Item = Resource;
    type IntoIter = IntoIter;
    fn into_iter(self) -> IntoIter {
        IntoIter(self.0.into_iter())
    }
}

impl<'a> IntoIterator for &'a Resources {
    type Item = &'a Resource;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl FromIterator<Resource> for Resources {
    fn from_iter<I: IntoIterator<Item = Resource>>(iter: I) -> Resources {
        Resources::from_resources(iter)
    }
}

impl From<Resource> for Resources {
    fn from(resource: Resource) -> Resources {
        Resources::from_resources([resource])
    }
}

impl std::ops::AddAssign<Resources> for Resources {
    fn add_assign(&mut self, other: Resources) {
        for entry in other.0 {
            self.add_entry(entry);
        }
    }
}

impl std::ops::AddAssign<&Resources> for Resources {
    fn add_assign(&mut self, other: &Resources) {
        for entry in &other.0 {
            self.add_entry(entry.clone());
        }
    }
}

impl std::ops::Add<&Resources> for Resources {
    type Output = Resources;
    fn add(mut self, other: &Resources) -> Resources {
        self += other;
        self
    }
}

impl std::ops::Add<Resources> for Resources {
    type Output = Resources;
    fn add(mut self, other: Resources) -> Resources {
        self += other;
        self
    }
}

impl std::ops::SubAssign<&Resources> for Resources {
    fn sub_assign(&mut self, other: &Resources) {
        for entry in &other.0 {
            self.subtract_entry(&entry.resource, entry.count);
        }
    }
}

impl std::ops::Sub<&Resources> for Resources {
    type Output = Resources;
    fn sub(mut self, other: &Resources) -> Resources {
        self -= other;
        self
    }
}

impl fmt::Display for Resources {
    /// Short text form, entries joined by `; `: `cpus(eng):2; mem:1024;
    /// ports:[31000-32000]`. Shared entries end with their count, as in
    /// Mesos: `disk(eng)[v1:data]<SHARED>:64<2>`.
    /// For unreserved and statically reserved scalars, ranges and sets this
    /// is the `--resources` syntax and parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, entry) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            entry.resource.fmt(f)?;
            if entry.resource.shared {
                write!(f, "<{}>", entry.count)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{DiskInfo, DiskSource, DiskSourceKind, VolumeMode};
    use crate::set::Set;

    fn parse(text: &str) -> Resources {
        Resources::parse(text).unwrap()
    }

    fn volume(id: &str, size: u64, shared: bool) -> Resource {
        let mut r = Resource::scalar("disk", Scalar::from_units(size));
        r.push_reservation(Reservation::dynamic_for("eng", Some("ops")))
            .unwrap();
        r.disk = Some(DiskInfo::persistent_volume(
            id,
            None,
            "data",
            VolumeMode::ReadWrite,
        ));
        r.shared = shared;
        r
    }

    #[test]
    fn merges_by_kind_and_keeps_reservations_apart() {
        let r = parse("cpus:1;cpus:2;cpus(eng):1;mem:10");
        assert_eq!(r.len(), 3);
        assert_eq!(r.cpus(), Scalar::from_units(4));
        assert_eq!(r.unreserved().cpus(), Scalar::from_units(3));
        assert_eq!(r.reserved(Some("eng")).cpus(), Scalar::from_units(1));
        assert_eq!(r.reserved(None).cpus(), Scalar::from_units(1));
        assert_eq!(r.to_string(), "cpus:3; cpus(eng):1; mem:10");
    }

    #[test]
    fn equality_ignores_order() {
        assert_eq!(
            parse("cpus:1;mem:2;ports:[1-2]"),
            parse("ports:[2-2,1-1];mem:2;cpus:1")
        );
        assert_ne!(parse("cpus:1"), parse("cpus:1;mem:1"));
    }

    #[test]
    fn subtraction_never_goes_negative_and_drops_empties() {
        let total = parse("cpus:2;ports:[1-10];zones:{a}");
        let left = total.clone() - &parse("cpus:3;ports:[1-10];zones:{a,b}");
        assert!(left.is_empty(), "{left}");
        assert!(total.checked_sub(&parse("cpus:3")).is_err());
        assert_eq!(
            total.checked_sub(&parse("cpus:0.5")).unwrap(),
            parse("cpus:1.5;ports:[1-10];zones:{a}")
        );
        let mut exact = parse("cpus:2");
        exact -= &parse("cpus:2");
        assert!(exact.is_empty());
        let mut unrelated = parse("cpus:2");
        unrelated -= &parse("cpus(eng):2;mem:5");
        assert_eq!(unrelated, parse("cpus:2"));
    }

    #[test]
    fn containment_respects_reservations() {
        let total = parse("cpus(eng):2;mem:100");
        assert!(total.contains(&parse("cpus(eng):1")));
        assert!(
            !total.contains(&parse("cpus:1")),
            "reserved cpus do not cover unreserved"
        );
        assert!(total
            .allocatable_to("eng/prod")
            .contains(&parse("cpus(eng):2")));
        assert!(!total.allocatable_to("ops").contains(&parse("cpus(eng):1")));
        assert!(total.contains_resource(&Resource::scalar("mem", Scalar::from_units(100))));
        assert!(total.contains_resource(&Resource::scalar("gpus", Scalar::ZERO)));
    }

    #[test]
    fn allocatable_to_follows_refinement() {
        let mut refined = Resource::scalar("cpus", Scalar::from_units(1));
        refined
            .push_reservation(Reservation::static_for("eng"))
            .unwrap();
        refined
            .push_reservation(Reservation::dynamic_for("eng/prod", None))
            .unwrap();
        let all = Resources::from_resources([refined]) + &parse("cpus(eng):2;cpus:4");
        assert_eq!(all.allocatable_to("eng").cpus(), Scalar::from_units(6));
        assert_eq!(all.allocatable_to("eng/prod").cpus(), Scalar::from_units(7));
        assert_eq!(
            all.allocatable_to("eng/prod/x").cpus(),
            Scalar::from_units(7)
        );
        assert_eq!(all.allocatable_to("ops").cpus(), Scalar::from_units(4));
        assert_eq!(
            all.reserved_to_role_subtree("eng").cpus(),
            Scalar::from_units(3)
        );
        assert_eq!(all.reservations().len(), 2);
        assert_eq!(all.reservations()["eng/prod"].cpus(), Scalar::from_units(1));
    }

    #[test]
    fn allocation_marks_are_part_of_identity() {
        let r = parse("cpus:1");
        let allocated = r.allocate("eng");
        assert!(!r.contains(&allocated));
        assert_eq!(allocated.unallocate(), r);
        let both = allocated.clone() + &r.allocate("ops");
        assert_eq!(both.len(), 2);
        assert_eq!(both.allocations().len(), 2);
        assert_eq!(
            both.allocated_to_role_subtree("eng").cpus(),
            Scalar::from_units(1)
        );
        assert_eq!(
            both.unallocate(),
            parse("cpus:2"),
            "merged once unallocated"
        );
    }

    #[test]
    fn reservation_stacks_on_collections() {
        let plain = parse("cpus:1;mem:10");
        let reserved = plain
            .push_reservation(&Reservation::dynamic_for("eng", Some("p")))
            .unwrap();
        assert_eq!(reserved.reserved(Some("eng")).len(), 2);
        let refined = reserved
            .push_reservation(&Reservation::dynamic_for("eng/a", None))
            .unwrap();
        assert!(refined
            .push_reservation(&Reservation::dynamic_for("ops", None))
            .is_err());
        assert_eq!(refined.pop_reservation().unwrap(), reserved);
        assert_eq!(reserved.pop_reservation().unwrap(), plain);
        assert!(plain.pop_reservation().is_err());
        assert!(parse("cpus(eng):1").pop_reservation().is_err(), "static");
        assert_eq!(refined.to_unreserved(), plain);
    }

    #[test]
    fn quantities_ignore_metadata() {
        let r = parse("cpus:1;cpus(eng):2;mem:5;ports:[1-2,5-5];gpus:{a,b}");
        let q = r.scalar_quantities();
        assert_eq!(q.get("cpus"), Scalar::from_units(3));
        assert_eq!(q.get("ports"), Scalar::ZERO);
        assert!(q.contains(&ResourceQuantities::from_pairs([(
            "mem",
            Scalar::from_units(5)
        )])));
        let all = r.quantities();
        assert_eq!(all.get("ports"), Scalar::from_units(3));
        assert_eq!(all.get("gpus"), Scalar::from_units(2));
        assert!(r.contains_quantities(&ResourceQuantities::parse("ports:3;cpus:3").unwrap()));
        assert!(!r.contains_quantities(&ResourceQuantities::parse("ports:4").unwrap()));
        assert_eq!(r.create_stripped_scalar_quantity(), parse("cpus:3;mem:5"));
        assert_eq!(r.get_scalar("cpus"), Some(Scalar::from_units(3)));
        assert_eq!(r.get_scalar("disk"), None);
        assert_eq!(r.get_scalar("ports"), None);
        assert_eq!(r.names().len(), 4);
        assert_eq!(r.scalars().len(), 3);
        assert_eq!(r.get("cpus").len(), 2);
    }

    #[test]
    fn shared_volumes_are_counted() {
        let v = volume("v1", 64, true);
        let mut held = Resources::new();
        held.add(v.clone());
        held.add(v.clone());
        assert_eq!(held.len(), 1);
        assert_eq!(held.count(&v), 2);
        assert_eq!(held.disk(), Scalar::from_units(64), "not summed");
        assert!(held.contains(&Resources::from(v.clone())));
        let twice = held.clone();
        held.subtract(&v);
        assert_eq!(held.count(&v), 1);
        assert!(!held.contains(&twice));
        assert!(twice.contains(&held));
        assert_eq!(held.to_string(), "disk(eng)[v1:data]<SHARED>:64<1>");
        held.subtract(&v);
        assert!(held.is_empty());
        assert_eq!(twice.shared().len(), 1);
        assert!(twice.non_shared().is_empty());
    }

    #[test]
    fn non_shared_volumes_are_distinct() {
        let v = volume("v1", 64, false);
        let two = Resources::from_resources([v.clone(), v.clone()]);
        assert_eq!(two.len(), 2, "identical volumes never merge");
        let one = Resources::from(v.clone());
        assert!(two.contains(&one));
        assert!(!one.contains(&two), "one volume does not contain two");
        assert!(!one.contains(&Resources::from(volume("v1", 32, false))));
        assert_eq!(two.clone() - &one, one);
        assert_eq!(two.persistent_volumes().len(), 2);
    }

    #[test]
    fn mount_disks_are_used_whole() {
        let mut mount = Resource::scalar("disk", Scalar::from_units(100));
        mount.disk = Some(DiskInfo {
            source: Some(DiskSource::new(DiskSourceKind::Mount, Some("/mnt/1"))),
            ..DiskInfo::default()
        });
        let disks = Resources::from_resources([mount.clone(), mount.clone()]);
        assert_eq!(disks.len(), 2);
        let mut half = mount.clone();
        half.value = Value::Scalar(Scalar::from_units(50));
        assert!(!disks.contains_resource(&half));
        let mut left = disks.clone();
        left.subtract(&half);
        assert_eq!(left, disks, "a part of a MOUNT disk is not subtractable");
        let limit = ResourceQuantities::from_pairs([("disk", Scalar::from_units(150))]);
        assert_eq!(disks.shrink_to(&limit), Resources::from(mount));
    }

    #[test]
    fn shrinks_to_quantities_and_limits() {
        let r = parse("cpus:4;cpus(eng):2;mem:100;ports:[1-5]");
        let target = ResourceQuantities::parse("cpus:5;mem:10").unwrap();
        let shrunk = r.shrink_to(&target);
        assert_eq!(shrunk, parse("cpus:4;cpus(eng):1;mem:10"));
        let limits = ResourceLimits::parse("cpus:3").unwrap();
        assert_eq!(
            r.shrink_to_limits(&limits),
            parse("cpus:3;mem:100;ports:[1-5]")
        );
    }

    #[test]
    fn conversions_move_resources_between_forms() {
        let total = parse("cpus:4;mem:100");
        let reserve = ResourceConversion {
            consumed: parse("cpus:1"),
            converted: parse("cpus:1")
                .push_reservation(&Reservation::dynamic_for("eng", None))
                .unwrap(),
        };
        let after = total.apply(&reserve).unwrap();
        assert_eq!(after.reserved(Some("eng")).cpus(), Scalar::from_units(1));
        assert_eq!(after.cpus(), Scalar::from_units(4));
        let too_much = ResourceConversion {
            consumed: parse("cpus:5"),
            converted: Resources::new(),
        };
        assert!(total.apply(&too_much).is_err());
    }

    #[test]
    fn sets_and_ranges_merge() {
        let mut r = Resources::from(Resource::set("gpus", ["0"].into_iter().collect::<Set>()));
        r.add(Resource::set("gpus", ["1"].into_iter().collect::<Set>()));
        r.add(Resource::ranges("ports", Ranges::single(1, 2).unwrap()));
        r.add(Resource::ranges("ports", Ranges::single(3, 4).unwrap()));
        assert_eq!(r.len(), 2);
        assert_eq!(r.to_string(), "gpus:{0, 1}; ports:[1-4]");
        assert_eq!(r.iter().rev().count(), 2);
        assert_eq!(r.into_iter().len(), 2);
    }
}
