//! `Resources`: a bag of resources with the arithmetic Mesos users rely on.
//!
//! A [`Resources`] keeps each kind of resource once: adding `cpus:1` to
//! `cpus:2` gives `cpus:3`, while `cpus:1` reserved for `eng` stays a
//! separate entry, because reservations, disk info and flags are part of a
//! resource's identity ([`Resource::same_kind`]). On top of that sit
//!
//! * containment (`a.contains(&b)`: is every part of `b` inside `a`?),
//! * subtraction that never goes negative,
//! * the filters the allocator needs (unreserved, reserved for a role,
//!   allocatable to a role, revocable...), and
//! * [`ResourceQuantities`]: scalar totals by name, stripped of metadata,
//!   which is what dominant shares and quota limits are computed on.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{ResourcesError, Result};
use crate::ranges::Ranges;
use crate::resource::{Resource, Value};
use crate::scalar::Scalar;

/// A collection of resources, merged by kind.
#[derive(Debug, Clone, Default)]
pub struct Resources(Vec<Resource>);

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

    /// The entries, one per kind.
    pub fn iter(&self) -> std::slice::Iter<'_, Resource> {
        self.0.iter()
    }

    /// Whether there is nothing here.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many distinct entries there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Adds one resource, merging it with an entry of the same kind.
    pub fn add(&mut self, resource: Resource) {
        if resource.value.is_empty() {
            return;
        }
        match self.0.iter_mut().find(|r| r.same_kind(&resource)) {
            Some(existing) => existing.add_value(&resource.value),
            None => self.0.push(resource),
        }
    }

    /// Subtracts one resource as far as it is present; entries that become
    /// empty are dropped. Nothing ever goes negative.
    pub fn subtract(&mut self, resource: &Resource) {
        if let Some(index) = self.0.iter().position(|r| r.same_kind(resource)) {
            self.0[index].subtract_value(&resource.value);
            if self.0[index].value.is_empty() {
                self.0.remove(index);
            }
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

    /// Whether `self` holds a resource of the same kind that includes `r`.
    pub fn contains_resource(&self, r: &Resource) -> bool {
        r.value.is_empty()
            || self
                .0
                .iter()
                .any(|mine| mine.same_kind(r) && mine.value.contains(&r.value))
    }

    /// Whether every part of `other` is in `self`.
    pub fn contains(&self, other: &Resources) -> bool {
        other.0.iter().all(|r| self.contains_resource(r))
    }

    /// Keeps the resources for which `keep` holds.
    pub fn filter(&self, keep: impl Fn(&Resource) -> bool) -> Resources {
        Resources(self.0.iter().filter(|r| keep(r)).cloned().collect())
    }

    /// Total scalar amount of `name`, over all reservations and flags.
    pub fn scalar(&self, name: &str) -> Scalar {
        self.0
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| match r.value {
                Value::Scalar(s) => Some(s),
                _ => None,
            })
            .fold(Scalar::ZERO, |a, b| a + b)
    }

    /// Total `cpus`.
    pub fn cpus(&self) -> Scalar {
        self.scalar("cpus")
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
        self.0
            .iter()
            .filter(|r| r.name == "ports")
            .filter_map(|r| match &r.value {
                Value::Ranges(ranges) => Some(ranges.clone()),
                _ => None,
            })
            .fold(Ranges::new(), |a, b| a.union(&b))
    }

    /// Unreserved resources.
    pub fn unreserved(&self) -> Resources {
        self.filter(Resource::is_unreserved)
    }

    /// Reserved resources: for exactly `role` when given, else all of them.
    pub fn reserved(&self, role: Option<&str>) -> Resources {
        match role {
            Some(role) => self.filter(|r| r.is_reserved_to(role)),
            None => self.filter(|r| !r.is_unreserved()),
        }
    }

    /// What a framework in `role` may be offered: unreserved resources and
    /// those reserved for `role` or its ancestors.
    pub fn allocatable_to(&self, role: &str) -> Resources {
        self.filter(|r| r.is_allocatable_to(role))
    }

    /// Revocable resources.
    pub fn revocable(&self) -> Resources {
        self.filter(|r| r.revocable)
    }

    /// Non-revocable resources.
    pub fn non_revocable(&self) -> Resources {
        self.filter(|r| !r.revocable)
    }

    /// Persistent volumes.
    pub fn persistent_volumes(&self) -> Resources {
        self.filter(Resource::is_persistent_volume)
    }

    /// The same resources, marked as allocated to `role`.
    pub fn allocate(&self, role: &str) -> Resources {
        // Entries are distinct kinds and all get the same mark, so they stay
        // distinct: no merging needed.
        Resources(
            self.0
                .iter()
                .cloned()
                .map(|mut r| {
                    r.allocation_role = Some(role.to_string());
                    r
                })
                .collect(),
        )
    }

    /// The same resources, with allocation marks removed.
    pub fn unallocate(&self) -> Resources {
        Resources::from_resources(self.0.iter().cloned().map(|mut r| {
            r.allocation_role = None;
            r
        }))
    }

    /// The same resources with every reservation removed.
    pub fn to_unreserved(&self) -> Resources {
        Resources::from_resources(self.0.iter().cloned().map(|mut r| {
            r.reservations.clear();
            r
        }))
    }

    /// Scalar totals by name, stripped of reservations and flags.
    pub fn scalar_quantities(&self) -> ResourceQuantities {
        let mut q = ResourceQuantities::default();
        for r in &self.0 {
            if let Value::Scalar(s) = r.value {
                q.add(&r.name, s);
            }
        }
        q
    }
}

impl IntoIterator for Resources {
    type Item = Resource;
    type IntoIter = std::vec::IntoIter<Resource>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Resources {
    type Item = &'a Resource;
    type IntoIter = std::slice::Iter<'a, Resource>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<Resource> for Resources {
    fn from_iter<I: IntoIterator<Item = Resource>>(iter: I) -> Resources {
        Resources::from_resources(iter)
    }
}

impl std::ops::AddAssign<Resources> for Resources {
    fn add_assign(&mut self, other: Resources) {
        for r in other {
            self.add(r);
        }
    }
}

impl std::ops::AddAssign<&Resources> for Resources {
    fn add_assign(&mut self, other: &Resources) {
        for r in other {
            self.add(r.clone());
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

impl std::ops::SubAssign<&Resources> for Resources {
    fn sub_assign(&mut self, other: &Resources) {
        for r in other {
            self.subtract(r);
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
    /// Mesos text form: `cpus(eng):2; mem:1024; ports:[31000-32000]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&r.name)?;
            if !r.is_unreserved() {
                write!(f, "({})", r.reservation_role())?;
            }
            if r.revocable {
                f.write_str("{REV}")?;
            }
            match &r.value {
                Value::Scalar(s) => write!(f, ":{s}")?,
                Value::Ranges(ranges) => write!(f, ":{ranges}")?,
                Value::Set(items) => {
                    let items: Vec<&str> = items.iter().map(String::as_str).collect();
                    write!(f, ":{{{}}}", items.join(", "))?
                }
            }
        }
        Ok(())
    }
}

/// Scalar amounts by resource name, with no other metadata: the currency
/// of dominant shares and quota.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceQuantities(BTreeMap<String, Scalar>);

impl ResourceQuantities {
    /// Quantities from `(name, amount)` pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, Scalar)>) -> Self {
        let mut q = ResourceQuantities::default();
        for (name, amount) in pairs {
            q.add(name, amount);
        }
        q
    }

    /// The amount of `name` (zero when absent).
    pub fn get(&self, name: &str) -> Scalar {
        self.0.get(name).copied().unwrap_or_default()
    }

    /// Adds `amount` of `name`.
    pub fn add(&mut self, name: &str, amount: Scalar) {
        if amount.is_zero() {
            return;
        }
        *self.0.entry(name.to_string()).or_default() += amount;
    }

    /// Subtracts `amount` of `name`, flooring at zero.
    pub fn subtract(&mut self, name: &str, amount: Scalar) {
        if let Some(current) = self.0.get_mut(name) {
            *current = current.saturating_sub(amount);
            if current.is_zero() {
                self.0.remove(name);
            }
        }
    }

    /// Adds every quantity of `other`.
    pub fn add_all(&mut self, other: &ResourceQuantities) {
        for (name, amount) in &other.0 {
            self.add(name, *amount);
        }
    }

    /// Subtracts every quantity of `other`, flooring at zero.
    pub fn subtract_all(&mut self, other: &ResourceQuantities) {
        for (name, amount) in &other.0 {
            self.subtract(name, *amount);
        }
    }

    /// Whether every quantity of `other` fits within `self`.
    pub fn contains(&self, other: &ResourceQuantities) -> bool {
        other
            .0
            .iter()
            .all(|(name, amount)| self.get(name) >= *amount)
    }

    /// `(name, amount)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Scalar)> {
        self.0.iter().map(|(n, a)| (n.as_str(), *a))
    }

    /// Whether there are no quantities.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Reservation;

    fn parse(text: &str) -> Resources {
        Resources::parse(text).unwrap()
    }

    #[test]
    fn merges_by_kind_and_keeps_reservations_apart() {
        let r = parse("cpus:1;cpus:2;cpus(eng):1;mem:10");
        assert_eq!(r.len(), 3);
        assert_eq!(r.cpus(), Scalar::from_millis(4000));
        assert_eq!(r.unreserved().cpus(), Scalar::from_millis(3000));
        assert_eq!(r.reserved(Some("eng")).cpus(), Scalar::from_millis(1000));
    }

    #[test]
    fn subtraction_never_goes_negative_and_drops_empties() {
        let total = parse("cpus:2;ports:[1-10]");
        let left = total.clone() - &parse("cpus:3;ports:[1-10]");
        assert!(left.is_empty(), "{left}");
        assert!(total.checked_sub(&parse("cpus:3")).is_err());
        assert_eq!(
            total.checked_sub(&parse("cpus:0.5")).unwrap(),
            parse("cpus:1.5;ports:[1-10]")
        );
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
    }

    #[test]
    fn allocation_marks_are_part_of_identity() {
        let r = parse("cpus:1");
        let allocated = r.allocate("eng");
        assert!(!r.contains(&allocated));
        assert_eq!(allocated.unallocate(), r);
    }

    #[test]
    fn refined_resources_become_unreserved_when_stripped() {
        let mut cpu = Resource::scalar("cpus", Scalar::from_millis(1000));
        cpu.push_reservation(Reservation::dynamic_for("eng", Some("p")))
            .unwrap();
        let r = Resources::from_resources([cpu]);
        assert_eq!(r.to_unreserved(), parse("cpus:1"));
    }

    #[test]
    fn quantities_ignore_metadata() {
        let q = parse("cpus:1;cpus(eng):2;mem:5;ports:[1-2]").scalar_quantities();
        assert_eq!(q.get("cpus"), Scalar::from_millis(3000));
        assert_eq!(q.get("ports"), Scalar::ZERO);
        assert!(q.contains(&ResourceQuantities::from_pairs([(
            "mem",
            Scalar::from_millis(5000)
        )])));
    }
}
