//! Ranges: sets of integers written as intervals, such as `ports:[31000-32000]`.
//!
//! A [`Ranges`] value is always kept in the normal form Mesos coalesces
//! ranges into: intervals sorted by start, with overlapping *and adjacent*
//! intervals merged (`[1-2, 3-5]` is `[1-5]`). Because the form is unique,
//! equality is plain structural equality, and containment, union and
//! subtraction are single linear walks over two sorted lists.
//!
//! Two constructors exist because Mesos treats input in two ways: values it
//! builds itself (the `--resources` text, arithmetic) are simply coalesced,
//! while a `Resource` received from a framework or agent must not contain
//! overlapping intervals at all ([`Ranges::from_intervals_strict`]). Both
//! reject an inverted interval (`begin > end`).

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

    /// One interval, `begin..=end`.
    pub fn single(begin: u64, end: u64) -> Result<Ranges> {
        Ranges::from_intervals([(begin, end)])
    }

    /// Builds a set from intervals, rejecting inverted ones (`begin > end`).
    /// Overlapping and adjacent intervals are merged.
    pub fn from_intervals(intervals: impl IntoIterator<Item = (u64, u64)>) -> Result<Ranges> {
        let all = checked(intervals)?;
        Ok(Ranges(normalize(all)))
    }

    /// Builds a set from intervals as a framework or agent sent them, which
    /// Mesos validates strictly: inverted or overlapping intervals are
    /// errors, while adjacent ones (`[1-5, 6-9]`) are fine and merged.
    pub fn from_intervals_strict(
        intervals: impl IntoIterator<Item = (u64, u64)>,
    ) -> Result<Ranges> {
        let mut all = checked(intervals)?;
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

    /// The normalized intervals, in order, as an iterator.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0.iter().copied()
    }

    /// Whether the set holds no number.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many intervals the normal form has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// How many numbers the set holds (saturating at `u64::MAX`).
    pub fn count(&self) -> u64 {
        self.0
            .iter()
            .map(|(b, e)| (e - b).saturating_add(1))
            .fold(0u64, u64::saturating_add)
    }

    /// Whether `n` is in the set.
    pub fn contains_value(&self, n: u64) -> bool {
        // The intervals are sorted and disjoint: find the last one starting
        // at or before `n` and check that it reaches `n`.
        let after = self.0.partition_point(|&(begin, _)| begin <= n);
        after > 0 && self.0[after - 1].1 >= n
    }

    /// Whether every number of `other` is in `self`.
    pub fn contains(&self, other: &Ranges) -> bool {
        // In normal form an interval of `other` that is covered at all is
        // covered by exactly one interval of `self`, and both lists are
        // sorted, so one forward walk decides.
        let mut mine = self.0.iter().peekable();
        'next: for &(begin, end) in &other.0 {
            while let Some(&&(b, e)) = mine.peek() {
                if e < begin {
                    mine.next();
                    continue;
                }
                if b <= begin && end <= e {
                    continue 'next;
                }
                return false;
            }
            return false;
        }
        true
    }

    /// The union of two sets.
    pub fn union(&self, other: &Ranges) -> Ranges {
        let mut merged = Vec::with_capacity(self.0.len() + other.0.len());
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x <= y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            if let Some(&interval) = next {
                push_coalesced(&mut merged, interval);
            }
        }
        Ranges(merged)
    }

    /// The numbers of `self` that are not in `other`.
    pub fn difference(&self, other: &Ranges) -> Ranges {
        let mut result = Vec::with_capacity(self.0.len());
        let mut theirs = other.0.iter().peekable();
        for &(begin, end) in &self.0 {
            // `start` is the first number of this interval not yet decided.
            let mut start = begin;
            let mut consumed = false;
            while let Some(&&(b, e)) = theirs.peek() {
                if e < start {
                    theirs.next();
                    continue;
                }
                if b > end {
                    break;
                }
                if b > start {
                    result.push((start, b - 1));
                }
                if e >= end {
                    consumed = true;
                    break;
                }
                start = e + 1;
                theirs.next();
            }
            if !consumed {
                result.push((start, end));
            }
        }
        Ranges(result)
    }

    /// Adds every number of `other` (Mesos `+=`).
    pub fn add(&mut self, other: &Ranges) {
        *self = self.union(other);
    }

    /// Removes every number of `other` that is present (Mesos `-=`); numbers
    /// of `other` that are absent are ignored.
    pub fn subtract(&mut self, other: &Ranges) {
        *self = self.difference(other);
    }
}

fn checked(intervals: impl IntoIterator<Item = (u64, u64)>) -> Result<Vec<(u64, u64)>> {
    intervals
        .into_iter()
        .map(|(begin, end)| {
            if begin > end {
                Err(ResourcesError::InvertedRange { begin, end })
            } else {
                Ok((begin, end))
            }
        })
        .collect()
}

/// Appends an interval that starts at or after the last one, merging it
/// into the last one when they overlap or touch.
fn push_coalesced(merged: &mut Vec<(u64, u64)>, (begin, end): (u64, u64)) {
    match merged.last_mut() {
        Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
        _ => merged.push((begin, end)),
    }
}

fn normalize(mut intervals: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    intervals.sort_unstable();
    let mut merged = Vec::with_capacity(intervals.len());
    for interval in intervals {
        push_coalesced(&mut merged, interval);
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
        assert_eq!(r(&[(5, 5), (5, 5)]).intervals(), &[(5, 5)]);
        assert_eq!(r(&[(0, u64::MAX), (7, 9)]).intervals(), &[(0, u64::MAX)]);
        assert_eq!(r(&[(1, 2), (4, 5)]).len(), 2);
    }

    #[test]
    fn rejects_inverted() {
        assert_eq!(
            Ranges::from_intervals([(5, 4)]),
            Err(ResourcesError::InvertedRange { begin: 5, end: 4 })
        );
        assert!(Ranges::from_intervals_strict([(5, 4)]).is_err());
    }

    #[test]
    fn strict_form_rejects_overlap_but_not_adjacency() {
        assert!(matches!(
            Ranges::from_intervals_strict([(1, 5), (5, 6)]),
            Err(ResourcesError::OverlappingRanges(_))
        ));
        assert!(Ranges::from_intervals_strict([(3, 3), (1, 9)]).is_err());
        assert_eq!(
            Ranges::from_intervals_strict([(6, 6), (1, 5)])
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
        assert_eq!(r(&[(0, u64::MAX)]).count(), u64::MAX);
    }

    #[test]
    fn subtraction_ignores_what_is_absent() {
        let mut a = r(&[(1, 10), (20, 30)]);
        a.subtract(&r(&[(5, 25), (40, 50)]));
        assert_eq!(a.intervals(), &[(1, 4), (26, 30)]);
        a.add(&r(&[(5, 25)]));
        assert_eq!(a.intervals(), &[(1, 30)]);
        assert_eq!(
            r(&[(1, 3)]).difference(&r(&[(2, 2)])).intervals(),
            &[(1, 1), (3, 3)]
        );
    }

    #[test]
    fn containment_is_interval_wise() {
        let a = r(&[(1, 5), (10, 20)]);
        assert!(a.contains(&r(&[(2, 3), (10, 20)])));
        assert!(!a.contains(&r(&[(4, 11)])), "gap 6-9 is missing");
        assert!(!a.contains(&r(&[(21, 21)])));
        assert!(a.contains(&Ranges::new()));
        assert!(!Ranges::new().contains(&a));
        assert!(a.contains_value(10) && a.contains_value(5) && !a.contains_value(7));
        assert!(!a.contains_value(0) && !a.contains_value(21));
    }

    #[test]
    fn prints_like_mesos() {
        assert_eq!(r(&[(1, 2), (4, 4)]).to_string(), "[1-2, 4-4]");
        assert_eq!(Ranges::new().to_string(), "[]");
    }
}
