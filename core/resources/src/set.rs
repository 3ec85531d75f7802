//! Sets: resources made of named items, such as `gpus:{0,1}` or `zones:{a,b}`.
//!
//! A Mesos `Value.Set` is a list of distinct strings. Adding two sets keeps
//! each item once, subtracting removes the items present, and one set
//! contains another when it has every item of it. [`Set`] keeps the items
//! sorted, so equality ignores the order they were written in, as Mesos's
//! does.
//!
//! A `Resource` received from a framework or agent must not list an item
//! twice; [`Set::from_items_strict`] enforces that, while building a set
//! from an iterator simply drops repeats.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{ResourcesError, Result};

/// A set of distinct string items.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Set(BTreeSet<String>);

impl Set {
    /// An empty set.
    pub fn new() -> Set {
        Set(BTreeSet::new())
    }

    /// Builds a set from items as a framework or agent sent them: Mesos
    /// rejects a set that lists an item twice.
    pub fn from_items_strict(items: impl IntoIterator<Item = String>) -> Result<Set> {
        let mut set = BTreeSet::new();
        for item in items {
            if set.contains(&item) {
                return Err(ResourcesError::DuplicateSetItem(item));
            }
            set.insert(item);
        }
        Ok(Set(set))
    }

    /// Whether the set has no item.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many items the set has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The items, in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.iter().map(String::as_str)
    }

    /// Whether `item` is in the set.
    pub fn contains_item(&self, item: &str) -> bool {
        self.0.contains(item)
    }

    /// Whether every item of `other` is in `self`.
    pub fn contains(&self, other: &Set) -> bool {
        other.0.is_subset(&self.0)
    }

    /// Adds one item; returns whether it was new.
    pub fn insert(&mut self, item: impl Into<String>) -> bool {
        self.0.insert(item.into())
    }

    /// Adds every item of `other` (Mesos `+=`).
    pub fn add(&mut self, other: &Set) {
        self.0.extend(other.0.iter().cloned());
    }

    /// Removes every item of `other` that is present (Mesos `-=`).
    pub fn subtract(&mut self, other: &Set) {
        self.0.retain(|item| !other.0.contains(item));
    }

    /// The items of either set.
    pub fn union(&self, other: &Set) -> Set {
        Set(self.0.union(&other.0).cloned().collect())
    }

    /// The items of `self` that are not in `other`.
    pub fn difference(&self, other: &Set) -> Set {
        Set(self.0.difference(&other.0).cloned().collect())
    }
}

impl<S: Into<String>> FromIterator<S> for Set {
    /// Collects items, keeping each once.
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Set {
        Set(iter.into_iter().map(Into::into).collect())
    }
}

impl fmt::Display for Set {
    /// Mesos text form: `{a, b}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(item)?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> Set {
        items.iter().copied().collect()
    }

    #[test]
    fn adds_and_subtracts_items() {
        let mut gpus = set(&["0", "1"]);
        gpus.add(&set(&["1", "2"]));
        assert_eq!(gpus, set(&["2", "1", "0"]));
        gpus.subtract(&set(&["0", "9"]));
        assert_eq!(gpus, set(&["1", "2"]));
        assert_eq!(gpus.len(), 2);
        assert!(gpus.contains_item("2") && !gpus.contains_item("0"));
        assert_eq!(set(&["a"]).union(&set(&["b"])), set(&["a", "b"]));
        assert_eq!(set(&["a", "b"]).difference(&set(&["b"])), set(&["a"]));
    }

    #[test]
    fn containment_is_subset() {
        assert!(set(&["a", "b"]).contains(&set(&["b"])));
        assert!(set(&["a"]).contains(&Set::new()));
        assert!(!set(&["a"]).contains(&set(&["a", "b"])));
    }

    #[test]
    fn strict_form_rejects_duplicates() {
        assert_eq!(
            Set::from_items_strict(["a".to_string(), "a".to_string()]),
            Err(ResourcesError::DuplicateSetItem("a".into()))
        );
        assert_eq!(set(&["a", "a"]).len(), 1);
    }

    #[test]
    fn prints_like_mesos() {
        assert_eq!(set(&["b", "a"]).to_string(), "{a, b}");
        assert_eq!(Set::new().to_string(), "{}");
    }
}
