//! Ranges: sets of integers written as intervals, such as `ports:[31000-32000]`.
//!
//! A [`Ranges`] value is always normalized the way Mesos coalesces ranges:
//! sorted, with overlapping and adjacent intervals merged (`[1-2,3-5]` is
//! `[1-5]`). That makes equality, containment and subtraction simple walks.

use std::fmt;

use crate::error::{ResourcesError, Result};

/// A normalized set of inclusive `u64` intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    /// An empty set.
    pub fn new() -> Ranges {
        Ranges(Vec::new())
    }

    /// Builds a set from intervals, rejecting inverted ones (`begin > end`).
    /// Overlaps are merged, as Mesos does for resource values.
    pub fn from_intervals(intervals: impl IntoIterator<Item = (u64, u64)>) -> Result<Ranges> {
        let mut all = Vec::new();
        for (begin, end) in intervals {
            if begin > end {
                return Err(ResourcesError::InvertedRange { begin, end });
            }
            all.push((begin, end));
        }
        Ok(Ranges(normalize(all)))
    }

    /// Builds a set from intervals as a framework or agent sent them, which
    /// Mesos validates strictly: inverted or overlapping intervals are errors.
    pub fn from_intervals_strict(
        intervals: impl IntoIterator<Item = (u64, u64)>,
    ) -> Result<Ranges> {
        let mut all: Vec<(u64, u64)> = Vec::new();
        for (begin, end) in intervals {
            if begin > end {
                return Err(ResourcesError::InvertedRange { begin, end });
            }
            all.push((begin, end));
        }
        all.sort_unstable();
        if let Some(pair) = all.windows(2).find(|w| w[1].0 <= w[0].1) {
            return Err(ResourcesError::OverlappingRanges(format!(
                "{}-{}, {}-{}",
                pair[0].0, pair[0].1, pair[1].0, pair[1].1
            )));
        }
        Ok(Ranges(normalize(all)))
    }

    /// The normalized intervals, in order.
    pub fn intervals(&self) -> &[(u64, u64)] {
        &self.0
    }

    /// Whether the set holds no number.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many numbers the set holds.
    pub fn count(&self) -> u64 {
        self.0
            .iter()
            .map(|(b, e)| (e - b).saturating_add(1))
            .fold(0u64, u64::saturating_add)
    }

    /// Whether `n` is in the set.
    pub fn contains_value(&self, n: u64) -> bool {
        self.0.iter().any(|&(b, e)| b <= n && n <= e)
    }

    /// Whether every number of `other` is in `self`.
    pub fn contains(&self, other: &Ranges) -> bool {
        other
            .0
            .iter()
            .all(|&(ob, oe)| self.0.iter().any(|&(b, e)| b <= ob && oe <= e))
    }

    /// The union of two sets.
    pub fn union(&self, other: &Ranges) -> Ranges {
        Ranges(normalize(self.0.iter().chain(&other.0).copied().collect()))
    }

    /// The numbers of `self` that are not in `other`.
    pub fn difference(&self, other: &Ranges) -> Ranges {
        let mut result = Vec::new();
        for &(mut begin, end) in &self.0 {
            let mut consumed = false;
            for &(ob, oe) in &other.0 {
                if oe < begin || ob > end {
                    continue;
                }
                if ob > begin {
                    result.push((begin, ob - 1));
                }
                if oe >= end {
                    consumed = true;
                    break;
                }
                begin = oe + 1;
            }
            if !consumed {
                result.push((begin, end));
            }
        }
        Ranges(normalize(result))
    }
}

fn normalize(mut intervals: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    intervals.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
    for (begin, end) in intervals {
        match merged.last_mut() {
            Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((begin, end)),
        }
    }
    merged
}

impl fmt::Display for Ranges {
    /// Mesos text form: `[31000-32000, 33000-33001]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, (b, e)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{b}-{e}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &[(u64, u64)]) -> Ranges {
        Ranges::from_intervals(v.iter().copied()).unwrap()
    }

    #[test]
    fn coalesces_overlapping_and_adjacent() {
        assert_eq!(r(&[(3, 5), (1, 2), (4, 9)]).intervals(), &[(1, 9)]);
        assert_eq!(r(&[(1, 1), (3, 3)]).intervals(), &[(1, 1), (3, 3)]);
    }

    #[test]
    fn rejects_inverted() {
        assert_eq!(
            Ranges::from_intervals([(5, 4)]),
            Err(ResourcesError::InvertedRange { begin: 5, end: 4 })
        );
    }

    #[test]
    fn strict_form_rejects_overlap() {
        assert!(matches!(
            Ranges::from_intervals_strict([(1, 5), (5, 6)]),
            Err(ResourcesError::OverlappingRanges(_))
        ));
        assert_eq!(
            Ranges::from_intervals_strict([(1, 5), (6, 6)])
                .unwrap()
                .intervals(),
            &[(1, 6)]
        );
    }

    #[test]
    fn subtracts_and_contains() {
        let ports = r(&[(31000, 32000)]);
        let used = r(&[(31000, 31000), (31500, 31600)]);
        let left = ports.difference(&used);
        assert_eq!(left.intervals(), &[(31001, 31499), (31601, 32000)]);
        assert!(ports.contains(&used));
        assert!(!left.contains(&used));
        assert_eq!(left.union(&used), ports);
        assert_eq!(ports.count(), 1001);
        assert_eq!(
            r(&[(0, u64::MAX)]).difference(&r(&[(0, u64::MAX)])),
            Ranges::new()
        );
    }
}
