//! Quantities and limits: resource amounts by name, stripped of metadata.
//!
//! Dominant shares, quota guarantees and quota limits do not care whether a
//! CPU is reserved, revocable or allocated; they only count. Mesos counts
//! with two small sorted maps from resource name to [`Scalar`], and so do
//! we:
//!
//! * [`ResourceQuantities`]: an absent name means zero. Used for what a
//!   role holds, what the cluster has and minimum allocatable amounts.
//! * [`ResourceLimits`]: an absent name means *no limit*, and a present
//!   zero is a real limit of zero. Used for quota limits.
//!
//! Both parse Mesos's `name:value;name:value` text (scalars only), as the
//! `--min_allocatable_resources` flag and quota tools use it.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{ResourcesError, Result};
use crate::parse::{parse_value, TextValue};
use crate::scalar::Scalar;

/// Scalar amounts by resource name, with no other metadata; absent names
/// are zero, and zero amounts are never stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ResourceQuantities(BTreeMap<String, Scalar>);

impl ResourceQuantities {
    /// No quantities.
    pub fn new() -> ResourceQuantities {
        ResourceQuantities::default()
    }

    /// Quantities from `(name, amount)` pairs; repeated names add up.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, Scalar)>) -> Self {
        let mut q = ResourceQuantities::default();
        for (name, amount) in pairs {
            q.add(name, amount);
        }
        q
    }

    /// Parses Mesos quantity text such as `cpus:10;mem:4096`. Only scalar
    /// values are allowed, zero amounts are dropped, and repeated names add
    /// up (Mesos `ResourceQuantities::fromString`).
    pub fn parse(text: &str) -> Result<ResourceQuantities> {
        let mut q = ResourceQuantities::default();
        for (name, amount) in parse_scalar_pairs(text)? {
            q.add(&name, amount);
        }
        Ok(q)
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
        match self.0.get_mut(name) {
            Some(current) => *current += amount,
            None => {
                self.0.insert(name.to_string(), amount);
            }
        }
    }

    /// Subtracts `amount` of `name`, dropping the name when it reaches zero.
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

    /// The resource names present, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Whether there are no quantities.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many names have a non-zero amount.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl std::ops::AddAssign<&ResourceQuantities> for ResourceQuantities {
    fn add_assign(&mut self, other: &ResourceQuantities) {
        self.add_all(other);
    }
}

impl std::ops::SubAssign<&ResourceQuantities> for ResourceQuantities {
    /// Subtracts, flooring each name at zero (absent).
    fn sub_assign(&mut self, other: &ResourceQuantities) {
        self.subtract_all(other);
    }
}

impl std::ops::Add<&ResourceQuantities> for ResourceQuantities {
    type Output = ResourceQuantities;
    fn add(mut self, other: &ResourceQuantities) -> ResourceQuantities {
        self += other;
        self
    }
}

impl std::ops::Sub<&ResourceQuantities> for ResourceQuantities {
    type Output = ResourceQuantities;
    fn sub(mut self, other: &ResourceQuantities) -> ResourceQuantities {
        self -= other;
        self
    }
}

impl fmt::Display for ResourceQuantities {
    /// Mesos form: `cpus:1; mem:128`, or `{}` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_map(f, &self.0)
    }
}

/// Upper bounds by resource name; a name without a limit is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ResourceLimits(BTreeMap<String, Scalar>);

impl ResourceLimits {
    /// No limits at all.
    pub fn new() -> ResourceLimits {
        ResourceLimits::default()
    }

    /// Limits from `(name, limit)` pairs; a later pair for the same name
    /// wins.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, Scalar)>) -> Self {
        let mut limits = ResourceLimits::default();
        for (name, limit) in pairs {
            limits.set(name, limit);
        }
        limits
    }

    /// Parses Mesos limit text such as `cpus:10;mem:0`. Only scalar values
    /// are allowed, zero is a real limit, and a name may appear only once
    /// (Mesos `ResourceLimits::fromString`).
    pub fn parse(text: &str) -> Result<ResourceLimits> {
        let mut limits = ResourceLimits::default();
        for (name, limit) in parse_scalar_pairs(text)? {
            if limits.0.contains_key(&name) {
                return Err(ResourcesError::ParseQuantity {
                    input: name,
                    reason: "duplicate names are not allowed".into(),
                });
            }
            limits.set(&name, limit);
        }
        Ok(limits)
    }

    /// The limit for `name`, or `None` when unlimited.
    pub fn get(&self, name: &str) -> Option<Scalar> {
        self.0.get(name).copied()
    }

    /// Sets (or replaces) the limit for `name`.
    pub fn set(&mut self, name: &str, limit: Scalar) {
        self.0.insert(name.to_string(), limit);
    }

    /// Removes the limit for `name`, making it unlimited.
    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    /// Whether every quantity of `quantities` is within its limit.
    pub fn contains(&self, quantities: &ResourceQuantities) -> bool {
        quantities
            .iter()
            .all(|(name, amount)| self.get(name).is_none_or(|limit| amount <= limit))
    }

    /// Whether these limits are at least as loose as `other` for every
    /// name: any name limited here must be limited there, at most as high.
    pub fn contains_limits(&self, other: &ResourceLimits) -> bool {
        self.0
            .iter()
            .all(|(name, mine)| other.get(name).is_some_and(|theirs| theirs <= *mine))
    }

    /// Lowers each finite limit by the quantity consumed, flooring at zero;
    /// unlimited names stay unlimited.
    pub fn subtract_quantities(&mut self, quantities: &ResourceQuantities) {
        for (name, limit) in self.0.iter_mut() {
            *limit = limit.saturating_sub(quantities.get(name));
        }
    }

    /// `(name, limit)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Scalar)> {
        self.0.iter().map(|(n, a)| (n.as_str(), *a))
    }

    /// Whether no name is limited.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many names are limited.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for ResourceLimits {
    /// Mesos form: `cpus:1; mem:128`, or `{}` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_map(f, &self.0)
    }
}

fn write_map(f: &mut fmt::Formatter<'_>, map: &BTreeMap<String, Scalar>) -> fmt::Result {
    if map.is_empty() {
        return f.write_str("{}");
    }
    for (i, (name, amount)) in map.iter().enumerate() {
        if i > 0 {
            f.write_str("; ")?;
        }
        write!(f, "{name}:{amount}")?;
    }
    Ok(())
}

/// Splits `name:value;...` text into names and scalar values, as Mesos's
/// quantity and limit parsers do.
fn parse_scalar_pairs(text: &str) -> Result<Vec<(String, Scalar)>> {
    let error = |input: &str, reason: String| ResourcesError::ParseQuantity {
        input: input.to_string(),
        reason,
    };
    let mut pairs = Vec::new();
    for token in text.split(';').filter(|t| !t.is_empty()) {
        let parts: Vec<&str> = token.split(':').filter(|p| !p.is_empty()).collect();
        let [name, value] = parts.as_slice() else {
            return Err(error(token, "missing or extra ':'".into()));
        };
        let amount = match parse_value(value).map_err(|reason| error(token, reason))? {
            TextValue::Scalar(number) => {
                Scalar::from_f64(number).map_err(|e| error(token, e.to_string()))?
            }
            _ => return Err(error(token, "only scalar values are allowed".into())),
        };
        pairs.push((name.trim().to_string(), amount));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, u64)]) -> ResourceQuantities {
        ResourceQuantities::from_pairs(pairs.iter().map(|(n, u)| (*n, Scalar::from_units(*u))))
    }

    #[test]
    fn quantities_add_subtract_and_contain() {
        let mut a = q(&[("cpus", 4), ("mem", 100)]);
        a += &q(&[("cpus", 1), ("gpus", 1)]);
        assert_eq!(a, q(&[("cpus", 5), ("gpus", 1), ("mem", 100)]));
        a -= &q(&[("gpus", 2), ("disk", 1), ("mem", 50)]);
        assert_eq!(a, q(&[("cpus", 5), ("mem", 50)]), "gpus dropped at zero");
        assert!(a.contains(&q(&[("cpus", 5)])));
        assert!(!a.contains(&q(&[("disk", 1)])));
        assert!(a.contains(&ResourceQuantities::new()));
        assert_eq!(a.get("disk"), Scalar::ZERO);
        assert_eq!(a.to_string(), "cpus:5; mem:50");
        assert_eq!(ResourceQuantities::new().to_string(), "{}");
        assert_eq!(a.names().collect::<Vec<_>>(), vec!["cpus", "mem"]);
    }

    #[test]
    fn parses_quantity_text() {
        let parsed = ResourceQuantities::parse("cpus:1.5;mem:0;cpus:0.5; disk : 10").unwrap();
        assert_eq!(
            parsed,
            ResourceQuantities::from_pairs([
                ("cpus", Scalar::from_units(2)),
                ("disk", Scalar::from_units(10)),
            ])
        );
        assert!(ResourceQuantities::parse("ports:[1-2]").is_err());
        assert!(ResourceQuantities::parse("cpus:-1").is_err());
        assert!(ResourceQuantities::parse("cpus").is_err());
        assert!(ResourceQuantities::parse("").unwrap().is_empty());
    }

    #[test]
    fn limits_treat_absent_as_unlimited() {
        let limits = ResourceLimits::parse("cpus:2;mem:0").unwrap();
        assert_eq!(limits.get("mem"), Some(Scalar::ZERO));
        assert_eq!(limits.get("disk"), None);
        assert!(limits.contains(&q(&[("cpus", 2), ("disk", 1000)])));
        assert!(!limits.contains(&q(&[("mem", 1)])));
        assert!(ResourceLimits::parse("cpus:1;cpus:2").is_err());

        let looser = ResourceLimits::from_pairs([("cpus", Scalar::from_units(4))]);
        assert!(looser.contains_limits(&limits));
        assert!(!limits.contains_limits(&looser), "mem is limited here only");
        assert!(ResourceLimits::new().contains_limits(&limits));

        let mut left = limits.clone();
        left.subtract_quantities(&q(&[("cpus", 3), ("disk", 1)]));
        assert_eq!(left.get("cpus"), Some(Scalar::ZERO));
        assert_eq!(left.get("disk"), None);
        assert_eq!(limits.to_string(), "cpus:2; mem:0");
    }
}
