//! Property tests for resource arithmetic: the algebra Mesos users rely on
//! must hold for any resources, not just the examples in the unit tests.
//!
//! Generated resources mix scalars, ranges and sets; unreserved, statically
//! reserved and refined reservations; revocable flags and allocation roles;
//! plus persistent volumes, shared or not. Ranges and sets are sets, so
//! `{a} + {a} - {a}` is empty in Mesos too: where a law needs `b` to be
//! disjoint from `a`, `b` draws its ports and items from another pool.

#![allow(clippy::unwrap_used)]

use pando_resources::{
    DiskInfo, Ranges, Reservation, Resource, ResourceQuantities, Resources, Scalar, Set, Value,
    VolumeMode,
};
use proptest::prelude::*;

fn scalar() -> impl Strategy<Value = Scalar> {
    (0u64..10_000_000).prop_map(Scalar::from_millis)
}

fn ranges() -> impl Strategy<Value = Ranges> {
    ranges_from(0)
}

fn ranges_from(base: u64) -> impl Strategy<Value = Ranges> {
    prop::collection::vec((0u64..2000, 0u64..50), 1..6).prop_map(move |pairs| {
        Ranges::from_intervals(pairs.into_iter().map(|(b, len)| (base + b, base + b + len)))
            .unwrap()
    })
}

/// A reservation stack: none, `eng` (static or dynamic), or `eng` refined
/// to `eng/web`; or the same for `ops`.
fn reservations() -> impl Strategy<Value = Vec<Reservation>> {
    (prop::sample::select(vec!["eng", "ops"]), 0usize..4).prop_map(|(role, depth)| match depth {
        0 => vec![],
        1 => vec![Reservation::static_for(role)],
        2 => vec![Reservation::dynamic_for(role, Some("p"))],
        _ => vec![
            Reservation::static_for(role),
            Reservation::dynamic_for(&format!("{role}/web"), None),
        ],
    })
}

/// Resources whose ports and items come from pool `pool` (0 or 1), so that
/// pool-0 and pool-1 resources never overlap.
fn resource_in(pool: u64) -> impl Strategy<Value = Resource> {
    let items: Vec<&'static str> = if pool == 0 {
        vec!["0", "1", "2", "3"]
    } else {
        vec!["4", "5", "6", "7"]
    };
    let value = prop_oneof![
        (prop::sample::select(vec!["cpus", "mem", "disk"]), scalar())
            .prop_map(|(n, s)| (n, Value::Scalar(s))),
        ranges_from(pool * 10_000).prop_map(|r| ("ports", Value::Ranges(r))),
        prop::collection::btree_set(prop::sample::select(items), 1..4)
            .prop_map(|s| ("gpus", Value::Set(s.into_iter().collect::<Set>()))),
    ];
    let allocation = prop::option::of(prop::sample::select(vec!["eng", "eng/web"]));
    (value, reservations(), any::<bool>(), allocation).prop_map(
        |((name, value), reservations, revocable, allocation)| {
            let mut r = Resource::new(name, value);
            for reservation in reservations {
                r.push_reservation(reservation).unwrap();
            }
            r.revocable = revocable;
            r.allocation_role = allocation.map(str::to_string);
            r
        },
    )
}

/// A persistent volume from pool `pool`, possibly shared.
fn volume_in(pool: u64) -> impl Strategy<Value = Resource> {
    (0u64..3, 1u64..100, any::<bool>()).prop_map(move |(id, size, shared)| {
        let mut r = Resource::scalar("disk", Scalar::from_units(size));
        r.push_reservation(Reservation::dynamic_for("eng", Some("p")))
            .unwrap();
        r.disk = Some(DiskInfo::persistent_volume(
            &format!("vol-{pool}-{id}"),
            None,
            "data",
            VolumeMode::ReadWrite,
        ));
        r.shared = shared;
        r
    })
}

fn any_resource_in(pool: u64) -> impl Strategy<Value = Resource> {
    prop_oneof![
        4 => resource_in(pool),
        1 => volume_in(pool),
    ]
}

fn resources() -> impl Strategy<Value = Resources> {
    prop::collection::vec(any_resource_in(0), 0..8).prop_map(Resources::from_resources)
}

fn other_resources() -> impl Strategy<Value = Resources> {
    prop::collection::vec(any_resource_in(1), 0..8).prop_map(Resources::from_resources)
}

/// Resources in the `--resources` syntax: scalars, ranges and sets,
/// unreserved or statically reserved.
fn flag_resources() -> impl Strategy<Value = Resources> {
    let one = (
        resource_in(0),
        prop::option::of(prop::sample::select(vec!["eng", "ops/a"])),
    )
        .prop_map(|(mut r, role)| {
            r.reservations.clear();
            r.revocable = false;
            r.allocation_role = None;
            if let Some(role) = role {
                r.push_reservation(Reservation::static_for(role)).unwrap();
            }
            r
        });
    prop::collection::vec(one, 0..8).prop_map(Resources::from_resources)
}

proptest! {
    #[test]
    fn adding_then_subtracting_gives_back_the_original(a in resources(), b in other_resources()) {
        let sum = a.clone() + &b;
        prop_assert!(sum.contains(&a));
        prop_assert!(sum.contains(&b));
        prop_assert_eq!(sum - &b, a);
    }

    #[test]
    fn scalar_sums_subtract_exactly(a in resources(), b in resources()) {
        // With scalars only, (a + b) - b == a holds for any a and b.
        let a = a.scalars().non_shared().filter(|r| !r.is_persistent_volume());
        let b = b.scalars().non_shared().filter(|r| !r.is_persistent_volume());
        prop_assert_eq!((a.clone() + &b) - &b, a);
    }

    #[test]
    fn a_sum_contains_its_parts(a in resources(), b in resources()) {
        let sum = a.clone() + &b;
        prop_assert!(sum.contains(&a));
        prop_assert!(sum.contains(&b));
    }

    #[test]
    fn addition_is_commutative_and_associative(a in resources(), b in resources(), c in resources()) {
        prop_assert_eq!(a.clone() + &b, b.clone() + &a);
        prop_assert_eq!((a.clone() + &b) + &c, a + &(b + &c));
    }

    #[test]
    fn containment_is_reflexive_and_transitive(a in resources(), b in resources(), c in resources()) {
        prop_assert!(a.contains(&a));
        prop_assert!(a.contains(&Resources::new()));
        let ab = a.clone() + &b;
        let abc = ab.clone() + &c;
        prop_assert!(abc.contains(&ab) && ab.contains(&a) && abc.contains(&a));
        // Transitivity on arbitrary triples, not only on sums.
        if a.contains(&b) && b.contains(&c) {
            prop_assert!(a.contains(&c));
        }
    }

    #[test]
    fn subtraction_never_goes_negative(a in resources(), b in resources()) {
        let left = a.clone() - &b;
        prop_assert!(a.contains(&left));
        for r in &left {
            prop_assert!(!r.value.is_empty());
        }
        for name in ["cpus", "mem", "disk"] {
            prop_assert!(left.scalar(name) <= a.scalar(name));
        }
        prop_assert!(a.checked_sub(&b).is_ok() == a.contains(&b));
        if a.contains(&b) {
            prop_assert_eq!(left + &b, a);
        }
    }

    #[test]
    fn quantities_follow_the_resources(a in resources(), b in other_resources()) {
        let sum = a.clone() + &b;
        let mut q = a.scalar_quantities();
        q.add_all(&b.scalar_quantities());
        // Shared volumes count once however often they are held, so only
        // non-shared sums add up exactly.
        if a.shared().is_empty() && b.shared().is_empty() {
            prop_assert_eq!(sum.scalar_quantities(), q);
        }
        prop_assert!(sum.quantities().contains(&a.quantities()));
        prop_assert!(sum.contains_quantities(&b.quantities()));
    }

    #[test]
    fn filters_partition(a in resources()) {
        prop_assert_eq!(a.unreserved() + &a.reserved(None), a.clone());
        prop_assert_eq!(a.revocable() + &a.non_revocable(), a.clone());
        prop_assert_eq!(a.shared() + &a.non_shared(), a.clone());
        for role in ["eng", "eng/web", "ops", "x"] {
            let allocatable = a.allocatable_to(role);
            prop_assert!(a.contains(&allocatable));
            for r in &allocatable {
                let below = role.starts_with(&format!("{}/", r.reservation_role()));
                let ok = r.is_unreserved() || r.reservation_role() == role || below;
                prop_assert!(ok, "{} offered to {}", r, role);
            }
        }
        prop_assert_eq!(a.allocate("eng").unallocate(), a.unallocate());
    }

    #[test]
    fn ranges_stay_normalized(a in ranges(), b in ranges()) {
        for r in [a.union(&b), a.difference(&b)] {
            for pair in r.intervals().windows(2) {
                prop_assert!(pair[0].1.saturating_add(1) < pair[1].0, "{:?}", r);
            }
            for &(begin, end) in r.intervals() {
                prop_assert!(begin <= end);
            }
        }
        prop_assert_eq!(a.difference(&b).count() + b.difference(&a).count()
            + 2 * a.difference(&a.difference(&b)).count(), a.count() + b.count());
        prop_assert!(a.union(&b).contains(&a));
        prop_assert!(a.contains(&a.difference(&b)));
        let overlaps = a
            .difference(&b)
            .iter()
            .any(|(x, y)| b.contains(&Ranges::single(x, y).unwrap()));
        prop_assert!(!overlaps);
        prop_assert_eq!(a.union(&b).difference(&b), a.difference(&b));
    }

    #[test]
    fn ranges_agree_with_a_naive_model(
        a in prop::collection::vec((0u64..60, 0u64..6), 0..6),
        b in prop::collection::vec((0u64..60, 0u64..6), 0..6),
    ) {
        use std::collections::BTreeSet;
        let model = |v: &[(u64, u64)]| -> BTreeSet<u64> {
            v.iter().flat_map(|&(s, l)| s..=s + l).collect()
        };
        let ranges = |v: &[(u64, u64)]| Ranges::from_intervals(v.iter().map(|&(s, l)| (s, s + l))).unwrap();
        let (ma, mb) = (model(&a), model(&b));
        let (ra, rb) = (ranges(&a), ranges(&b));
        let numbers = |r: &Ranges| -> BTreeSet<u64> { r.iter().flat_map(|(x, y)| x..=y).collect() };
        prop_assert_eq!(numbers(&ra.union(&rb)), ma.union(&mb).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(numbers(&ra.difference(&rb)), ma.difference(&mb).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(ra.contains(&rb), mb.is_subset(&ma));
        prop_assert_eq!(ra.count(), ma.len() as u64);
        for n in 0..70 {
            prop_assert_eq!(ra.contains_value(n), ma.contains(&n));
        }
    }

    #[test]
    fn scalars_keep_three_decimals(millis in 0u64..1_000_000_000_000) {
        let s = Scalar::from_millis(millis);
        prop_assert_eq!(Scalar::from_f64(s.as_f64()).unwrap(), s);
        prop_assert_eq!(Scalar::from_f64(s.to_string().parse::<f64>().unwrap()).unwrap(), s);
    }

    #[test]
    fn scalar_conversion_rounds_to_the_nearest_thousandth(value in 0.0f64..1e9) {
        let s = Scalar::from_f64(value).unwrap();
        prop_assert!((s.as_f64() - value).abs() <= 0.0005 + value * 1e-12);
    }

    #[test]
    fn scalar_conversion_rejects_negative_values(value in -1e9f64..-1e-9) {
        prop_assert!(Scalar::from_f64(value).is_err());
    }

    #[test]
    fn protobuf_round_trip_preserves_resources(a in resources()) {
        // Mesos writes each entry once, whatever a shared resource's count
        // (`Resources::operator RepeatedPtrField` copies every entry once),
        // so protobuf carries shared resources but not their counts; it
        // carries everything else exactly.
        let back = Resources::from_proto(&a.to_proto()).unwrap();
        prop_assert_eq!(back.len(), a.len());
        prop_assert_eq!(back.non_shared(), a.non_shared());
        for r in &a {
            let expected = if r.shared { 1 } else { a.count(r) };
            prop_assert_eq!(back.count(r), expected, "{}", r);
        }
    }

    #[test]
    fn text_round_trip_preserves_flag_resources(a in flag_resources()) {
        let text = a.to_string();
        prop_assert_eq!(Resources::parse(&text).unwrap(), a, "{}", text);
    }

    #[test]
    fn json_round_trip_preserves_flag_resources(a in flag_resources()) {
        let items: Vec<String> = a.to_proto().iter().map(pando_proto::json::to_json).collect();
        let json = format!("[{}]", items.join(","));
        prop_assert_eq!(Resources::parse(&json).unwrap(), a, "{}", json);
    }

    #[test]
    fn quantity_text_round_trips(pairs in prop::collection::vec(
        (prop::sample::select(vec!["cpus", "mem", "disk", "gpus"]), scalar()), 0..5)
    ) {
        let q = ResourceQuantities::from_pairs(pairs.iter().map(|(n, s)| (*n, *s)));
        let text = q.to_string().replace("{}", "");
        prop_assert_eq!(ResourceQuantities::parse(&text).unwrap(), q);
    }
}
