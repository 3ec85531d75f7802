//! Property tests for resource arithmetic: the algebra Mesos users rely on
//! must hold for any resources, not just the examples in the unit tests.

#![allow(clippy::unwrap_used)]

use pando_resources::{Ranges, Reservation, Resource, Resources, Scalar, Value};
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

fn resource() -> impl Strategy<Value = Resource> {
    resource_in(0)
}

/// Resources whose ports and GPU ids come from one of two disjoint pools,
/// so that sums of pool-0 and pool-1 resources never overlap: ranges and
/// sets are sets, and `{a} + {a} - {a}` is empty in Mesos too.
fn resource_in(pool: u64) -> impl Strategy<Value = Resource> {
    let gpu_ids: Vec<&'static str> = if pool == 0 {
        vec!["0", "1", "2", "3"]
    } else {
        vec!["4", "5", "6", "7"]
    };
    let value = prop_oneof![
        (prop::sample::select(vec!["cpus", "mem", "disk"]), scalar())
            .prop_map(|(n, s)| (n, Value::Scalar(s))),
        ranges_from(pool * 10_000).prop_map(|r| ("ports", Value::Ranges(r))),
        prop::collection::btree_set(prop::sample::select(gpu_ids), 1..4).prop_map(|s| (
            "gpus",
            Value::Set(s.into_iter().map(str::to_string).collect())
        )),
    ];
    let role = prop::option::of(prop::sample::select(vec!["eng", "ops"]));
    (value, role, any::<bool>()).prop_map(|((name, value), role, revocable)| {
        let mut r = Resource::new(name, value);
        if let Some(role) = role {
            r.push_reservation(Reservation::static_for(role)).unwrap();
        }
        r.revocable = revocable;
        r
    })
}

fn resources() -> impl Strategy<Value = Resources> {
    prop::collection::vec(resource(), 0..8).prop_map(Resources::from_resources)
}

fn other_resources() -> impl Strategy<Value = Resources> {
    prop::collection::vec(resource_in(1), 0..8).prop_map(Resources::from_resources)
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
    fn addition_is_commutative_and_associative(a in resources(), b in resources(), c in resources()) {
        prop_assert_eq!(a.clone() + &b, b.clone() + &a);
        prop_assert_eq!((a.clone() + &b) + &c, a + &(b + &c));
    }

    #[test]
    fn containment_is_reflexive_and_transitive(a in resources(), b in resources(), c in resources()) {
        prop_assert!(a.contains(&a));
        let ab = a.clone() + &b;
        let abc = ab.clone() + &c;
        prop_assert!(abc.contains(&ab) && ab.contains(&a) && abc.contains(&a));
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
    }

    #[test]
    fn scalars_keep_three_decimals(millis in 0u64..1_000_000_000_000) {
        let s = Scalar::from_millis(millis);
        prop_assert_eq!(Scalar::from_f64(s.as_f64()).unwrap(), s);
        prop_assert_eq!(Scalar::from_f64(s.to_string().parse::<f64>().unwrap()).unwrap(), s);
    }

    #[test]
    fn protobuf_round_trip_preserves_resources(a in resources()) {
        prop_assert_eq!(Resources::from_proto(&a.to_proto()).unwrap(), a);
    }

    #[test]
    fn text_round_trip_preserves_static_resources(a in resources()) {
        let plain = a.filter(|r| !r.revocable);
        let text = plain.to_string();
        prop_assert_eq!(Resources::parse(&text).unwrap(), plain, "{}", text);
    }
}
