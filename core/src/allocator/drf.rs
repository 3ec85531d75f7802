//! Dominant Resource Fairness: who is furthest behind, and so goes first.
//!
//! A client's (a role's or a framework's) *share* of a resource is what it
//! has been allocated divided by the cluster total; its *dominant share* is
//! the largest of those shares, divided by its weight. DRF offers resources
//! to the client with the smallest dominant share first.
//!
//! Roles form a tree (`eng`, `eng/prod`), and Mesos sorts it level by level:
//! siblings by the dominant share of their whole subtree, then the children
//! of the first sibling, and so on. Sorting leaf roles by the *sequence* of
//! their ancestors' subtree shares ([`RoleKey`]) gives exactly that order
//! with one flat sort.

use std::cmp::Ordering;

use pando_resources::{ResourceQuantities, Scalar};

/// A dominant share, ordered totally (shares are finite, non-negative).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share(pub f64);

impl Eq for Share {}

impl PartialOrd for Share {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Share {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The dominant share of `allocated` within `total`, divided by `weight`.
///
/// Resources the cluster has none of are ignored, and so are names in
/// `excluded` (Mesos's `--fair_sharing_excluded_resource_names`, e.g. gpus).
pub fn dominant_share(
    allocated: &ResourceQuantities,
    total: &ResourceQuantities,
    weight: f64,
    excluded: &[String],
) -> Share {
    let mut dominant = 0.0_f64;
    for (name, amount) in allocated.iter() {
        if excluded.iter().any(|e| e == name) {
            continue;
        }
        let whole = total.get(name);
        if whole == Scalar::ZERO {
            continue;
        }
        dominant = dominant.max(amount.millis() as f64 / whole.millis() as f64);
    }
    let weight = if weight > 0.0 { weight } else { 1.0 };
    Share(dominant / weight)
}

/// The sort key of a leaf role: the weighted subtree share of each of its
/// ancestors from the top, then its own, then its name as a tie-breaker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoleKey {
    /// Shares from the top-level ancestor down to the role itself.
    pub path_shares: Vec<(Share, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, u64)]) -> ResourceQuantities {
        ResourceQuantities::from_pairs(pairs.iter().map(|(n, m)| (*n, Scalar::from_millis(*m))))
    }

    #[test]
    fn dominant_share_is_the_largest_weighted_share() {
        let total = q(&[("cpus", 10_000), ("mem", 100_000)]);
        let share = dominant_share(&q(&[("cpus", 1_000), ("mem", 50_000)]), &total, 1.0, &[]);
        assert_eq!(share, Share(0.5));
        let weighted = dominant_share(&q(&[("cpus", 1_000), ("mem", 50_000)]), &total, 2.0, &[]);
        assert_eq!(weighted, Share(0.25));
        let excluded = dominant_share(&q(&[("mem", 50_000)]), &total, 1.0, &["mem".into()]);
        assert_eq!(excluded, Share(0.0));
    }
}
