//! Harness tests: build agents, frameworks and roles in memory, run one
//! cycle, and assert exactly what was offered to whom.

use std::time::Duration;

use proptest::prelude::*;

use pando_resources::Reservation;

use super::*;

const SEC: u64 = 1_000_000_000;

fn res(text: &str) -> Resources {
    Resources::parse(text).unwrap()
}

/// The test harness: an allocator plus helpers that speak in offers.
struct Harness {
    allocator: Allocator,
    now: Time,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(Config::default())
    }

    fn with(config: Config) -> Harness {
        Harness {
            allocator: Allocator::new(config),
            now: Time(0),
        }
    }

    fn agent(&mut self, id: &str, resources: &str) -> &mut Harness {
        self.agent_with(id, resources, "")
    }

    fn agent_with(&mut self, id: &str, resources: &str, attributes: &str) -> &mut Harness {
        self.allocator
            .add_agent(
                id,
                AgentSpec {
                    hostname: format!("{id}.example"),
                    total: res(resources),
                    attributes: pando_resources::parse_attributes(attributes).unwrap(),
                },
            )
            .unwrap();
        self
    }

    fn framework(&mut self, id: &str, roles: &[&str]) -> &mut Harness {
        self.allocator
            .add_framework(
                id,
                FrameworkSpec {
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                    ..Default::default()
                },
            )
            .unwrap();
        self
    }

    fn advance(&mut self, seconds: u64) {
        self.now = Time(self.now.0 + seconds * SEC);
    }

    fn cycle(&mut self) -> Vec<Offer> {
        self.decisions()
            .into_iter()
            .filter_map(|d| match d {
                Decision::Offer(o) => Some(o),
                _ => None,
            })
            .collect()
    }

    fn decisions(&mut self) -> Vec<Decision> {
        self.allocator.allocate(self.now)
    }

    fn decline_all(&mut self, offers: &[Offer], refuse: Option<Duration>) {
        for o in offers {
            self.allocator.decline(o.id, refuse, self.now).unwrap();
        }
    }
}

/// (framework, agent, role, resources) of each offer, sorted.
fn summary(offers: &[Offer]) -> Vec<(String, String, String, String)> {
    let mut s: Vec<_> = offers
        .iter()
        .map(|o| {
            (
                o.framework.clone(),
                o.agent.clone(),
                o.role.clone(),
                o.resources.unallocate().to_string(),
            )
        })
        .collect();
    s.sort();
    s
}

fn row(fw: &str, agent: &str, role: &str, resources: &str) -> (String, String, String, String) {
    (fw.into(), agent.into(), role.into(), resources.into())
}

#[test]
fn offers_whole_agents_to_the_framework_with_the_lowest_share() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:4;mem:1024")
        .agent("a2", "cpus:4;mem:1024");
    h.framework("f1", &["web"]).framework("f2", &["batch"]);
    let offers = h.cycle();
    // Each role gets one agent: after the first offer the other role has
    // the lower share.
    assert_eq!(offers.len(), 2);
    let frameworks: BTreeSet<_> = offers.iter().map(|o| o.framework.as_str()).collect();
    assert_eq!(frameworks, BTreeSet::from(["f1", "f2"]));
    for o in &offers {
        assert_eq!(o.resources.unallocate(), res("cpus:4;mem:1024"));
        assert!(o
            .resources
            .iter()
            .all(|r| r.allocation_role.as_deref() == Some(o.role.as_str())));
    }
    // Nothing is left to offer.
    assert!(h.cycle().is_empty());
}

#[test]
fn weights_shift_allocation_on_the_next_cycle() {
    let mut h = Harness::new();
    for i in 0..6 {
        h.agent(&format!("a{i}"), "cpus:1;mem:100");
    }
    h.framework("light", &["light"])
        .framework("heavy", &["heavy"]);
    h.allocator.update_weight("heavy", 2.0).unwrap();
    let offers = h.cycle();
    let heavy = offers.iter().filter(|o| o.framework == "heavy").count();
    assert_eq!(
        (heavy, offers.len() - heavy),
        (4, 2),
        "weight 2 gets twice the agents"
    );

    // A weight change takes effect on the next cycle.
    h.decline_all(&offers, Some(Duration::ZERO));
    h.allocator.update_weight("light", 5.0).unwrap();
    let offers = h.cycle();
    // Shares now compare as light/5 against heavy/2: light 4, heavy 2.
    let light = offers.iter().filter(|o| o.framework == "light").count();
    assert_eq!(light, 4, "{:?}", summary(&offers));
}

#[test]
fn frameworks_within_a_role_share_by_drf() {
    let mut h = Harness::new();
    for i in 0..4 {
        h.agent(&format!("a{i}"), "cpus:1;mem:100");
    }
    h.framework("f1", &["eng"]).framework("f2", &["eng"]);
    let offers = h.cycle();
    let f1 = offers.iter().filter(|o| o.framework == "f1").count();
    assert_eq!(f1, 2);
}

#[test]
fn quota_limits_cap_a_role() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:8;mem:8192");
    h.framework("f1", &["capped"]);
    h.allocator
        .update_quota(
            "capped",
            Some(ResourceQuantities::from_pairs([(
                "cpus",
                Scalar::from_millis(3000),
            )])),
        )
        .unwrap();
    let offers = h.cycle();
    assert_eq!(
        summary(&offers),
        vec![row("f1", "a1", "capped", "cpus:3; mem:8192")]
    );
    // At the limit: no more cpus, and mem alone is still offerable.
    h.allocator
        .accept(
            offers[0].id,
            &res("cpus:3;mem:100"),
            Some(Duration::ZERO),
            h.now,
        )
        .unwrap();
    let offers = h.cycle();
    assert_eq!(
        summary(&offers),
        vec![row("f1", "a1", "capped", "mem:8092")]
    );
}

#[test]
fn quota_limit_of_a_parent_covers_its_children() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:8;mem:8192");
    h.framework("f1", &["eng/web"]);
    h.allocator
        .update_quota(
            "eng",
            Some(ResourceQuantities::from_pairs([(
                "cpus",
                Scalar::from_millis(2000),
            )])),
        )
        .unwrap();
    let offers = h.cycle();
    assert_eq!(offers[0].resources.cpus(), Scalar::from_millis(2000));
}

#[test]
fn reserved_resources_go_only_to_their_role_and_sub_roles() {
    let mut h = Harness::new();
    h.agent("a1", "cpus(eng):2;mem(eng):512");
    h.framework("ops", &["ops"]);
    assert!(h.cycle().is_empty(), "ops may not use eng's reservation");
    h.framework("web", &["eng/web"]);
    let offers = h.cycle();
    assert_eq!(
        summary(&offers),
        vec![row("web", "a1", "eng/web", "cpus(eng):2; mem(eng):512")]
    );
}

#[test]
fn quota_and_reservations_together() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:4;cpus(eng):2;mem:1024");
    h.framework("f1", &["eng"]);
    h.allocator
        .update_quota(
            "eng",
            Some(ResourceQuantities::from_pairs([(
                "cpus",
                Scalar::from_millis(3000),
            )])),
        )
        .unwrap();
    let offers = h.cycle();
    // The reservation is always offered; unreserved cpus only up to the limit.
    let o = &offers[0].resources.unallocate();
    assert_eq!(o.reserved(Some("eng")).cpus(), Scalar::from_millis(2000));
    assert_eq!(o.unreserved().cpus(), Scalar::from_millis(3000));
}

#[test]
fn refined_dynamic_reservations_follow_the_innermost_role() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:2;mem:256");
    let from = res("cpus:1;mem:128");
    let mut to = Resources::new();
    for mut r in from.clone() {
        r.push_reservation(Reservation::dynamic_for("eng", Some("ops")))
            .unwrap();
        r.push_reservation(Reservation::dynamic_for("eng/prod", Some("ops")))
            .unwrap();
        to.add(r);
    }
    h.allocator.convert_free("a1", &from, &to).unwrap();
    h.framework("eng", &["eng"]);
    let offers = h.cycle();
    assert_eq!(
        summary(&offers),
        vec![row("eng", "a1", "eng", "cpus:1; mem:128")]
    );
    h.framework("prod", &["eng/prod"]);
    let offers = h.cycle();
    assert_eq!(
        summary(&offers),
        vec![row(
            "prod",
            "a1",
            "eng/prod",
            "cpus(eng/prod):1; mem(eng/prod):128"
        )]
    );
    // Reserving what is not free is refused and changes nothing.
    assert!(h
        .allocator
        .convert_free("a1", &res("cpus:5"), &res("cpus(eng):5"))
        .is_err());
}

#[test]
fn multi_role_frameworks_get_offers_per_role() {
    let mut h = Harness::new();
    h.agent("a1", "cpus(a):1;mem(a):64")
        .agent("a2", "cpus(b):1;mem(b):64");
    h.framework("f", &["a", "b"]);
    let offers = h.cycle();
    assert_eq!(
        summary(&offers),
        vec![
            row("f", "a1", "a", "cpus(a):1; mem(a):64"),
            row("f", "a2", "b", "cpus(b):1; mem(b):64")
        ]
    );
}

#[test]
fn decline_filters_hold_until_they_expire() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:1;mem:64");
    h.framework("f1", &["r"]);
    let offers = h.cycle();
    h.decline_all(&offers, None); // default 5 s
    h.advance(4);
    assert!(h.cycle().is_empty());
    h.advance(1);
    assert_eq!(h.cycle().len(), 1, "filter expired after refuse_seconds");
}

#[test]
fn a_huge_refuse_seconds_filters_forever_until_revive() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:1;mem:64");
    h.framework("f1", &["r"]);
    let offers = h.cycle();
    h.decline_all(&offers, Some(Duration::from_secs(u32::MAX as u64)));
    h.advance(400 * 24 * 3600);
    assert!(h.cycle().is_empty());
    h.allocator.revive("f1", &[]).unwrap();
    assert_eq!(h.cycle().len(), 1);
}

#[test]
fn declining_and_reviving_in_a_loop_keeps_the_filter_bookkeeping_bounded() {
    // Marathon and Spark decline for 120 s and REVIVE when they want offers
    // again; every REVIVE drops the filters, but their expiry entries used
    // to stay queued until the 120 s were up.
    let mut h = Harness::new();
    for i in 0..20 {
        h.agent(&format!("a{i}"), "cpus:1;mem:64");
    }
    h.framework("f1", &["r"]);
    for round in 0..500 {
        let offers = h.cycle();
        assert_eq!(
            offers.len(),
            20,
            "round {round}: every agent is offered again"
        );
        h.decline_all(&offers, Some(Duration::from_secs(120)));
        assert!(h.cycle().is_empty(), "round {round}: the filters hold");
        h.allocator.revive("f1", &[]).unwrap();
    }
    assert!(
        h.allocator.filter_expiry.len() <= MIN_EXPIRY_COMPACTION,
        "{} expiry entries for 20 live filters at most",
        h.allocator.filter_expiry.len()
    );
    // Filters still expire on time after compactions.
    let offers = h.cycle();
    h.decline_all(&offers, Some(Duration::from_secs(120)));
    h.advance(119);
    assert!(h.cycle().is_empty());
    h.advance(1);
    assert_eq!(h.cycle().len(), 20);
}

#[test]
fn a_decliner_does_not_starve_others_in_its_role() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:1;mem:64");
    h.framework("decliner", &["r"]).framework("worker", &["r"]);
    let mut served = false;
    for _ in 0..5 {
        let offers = h.cycle();
        if offers.iter().any(|o| o.framework == "worker") {
            served = true;
            break;
        }
        h.decline_all(&offers, Some(FOREVER));
    }
    assert!(
        served,
        "the worker must get the agent once the decliner filters it"
    );
}

#[test]
fn suppress_then_revive() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:1;mem:64");
    h.framework("f1", &["r1", "r2"]);
    h.allocator.suppress("f1", &[]).unwrap();
    assert!(h.cycle().is_empty());
    h.allocator.revive("f1", &["r2".to_string()]).unwrap();
    let offers = h.cycle();
    assert_eq!(
        summary(&offers),
        vec![row("f1", "a1", "r2", "cpus:1; mem:64")]
    );
}

#[test]
fn offers_held_too_long_are_rescinded() {
    let mut h = Harness::with(Config {
        offer_timeout: Some(Duration::from_secs(10)),
        ..Config::default()
    });
    h.agent("a1", "cpus:1;mem:64");
    h.framework("f1", &["r"]);
    let offer = h.cycle().remove(0);
    h.advance(10);
    let decisions = h.decisions();
    assert!(decisions.contains(&Decision::Rescind {
        offer: offer.id,
        framework: "f1".into(),
        agent: "a1".into()
    }));
    // The rescinded resources are offered again in the same cycle.
    assert!(decisions
        .iter()
        .any(|d| matches!(d, Decision::Offer(o) if o.id != offer.id)));
    assert!(
        h.allocator.decline(offer.id, None, h.now).is_err(),
        "rescinded offer is gone"
    );
}

#[test]
fn removing_an_agent_rescinds_its_outstanding_offers() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:1;mem:64").agent("a2", "cpus:1;mem:64");
    h.framework("f1", &["r"]);
    let offers = h.cycle();
    let on_a1 = offers.iter().find(|o| o.agent == "a1").unwrap();
    let decisions = h.allocator.remove_agent("a1").unwrap();
    assert_eq!(
        decisions,
        vec![Decision::Rescind {
            offer: on_a1.id,
            framework: "f1".into(),
            agent: "a1".into()
        }]
    );
    assert!(h
        .allocator
        .accept(on_a1.id, &res("cpus:1"), None, h.now)
        .is_err());
    assert!(h.cycle().is_empty());
}

#[test]
fn resources_are_recovered_when_a_task_ends() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:2;mem:256");
    h.framework("f1", &["r"]);
    let offer = h.cycle().remove(0);
    let used = res("cpus:2;mem:256");
    h.allocator.accept(offer.id, &used, None, h.now).unwrap();
    assert!(h.cycle().is_empty(), "everything is in use");
    h.allocator.recover("f1", "a1", &used).unwrap();
    assert!(h.allocator.needs_allocation(), "recovery asks for a cycle");
    assert_eq!(
        summary(&h.cycle()),
        vec![row("f1", "a1", "r", "cpus:2; mem:256")]
    );
}

#[test]
fn accepting_resources_outside_the_offer_is_rejected() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:1;mem:64");
    h.framework("f1", &["r"]);
    let offer = h.cycle().remove(0);
    let error = h
        .allocator
        .accept(offer.id, &res("cpus:2"), None, h.now)
        .unwrap_err();
    assert!(matches!(error, AllocatorError::NotInOffer { .. }));
    // The offer is still outstanding and usable.
    h.allocator
        .accept(offer.id, &res("cpus:1"), None, h.now)
        .unwrap();
}

#[test]
fn constraints_select_agents_by_attribute() {
    let mut h = Harness::new();
    h.agent_with("a1", "cpus:1;mem:64", "rack:r1");
    h.agent_with("a2", "cpus:1;mem:64", "rack:r2;gpu:yes");
    let mut constraints = BTreeMap::new();
    constraints.insert(
        "r".to_string(),
        RoleConstraints {
            groups: vec![vec![Constraint {
                attribute: "gpu".into(),
                predicate: Predicate::Exists,
            }]],
        },
    );
    h.allocator
        .add_framework(
            "f1",
            FrameworkSpec {
                roles: BTreeSet::from(["r".to_string()]),
                constraints,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        summary(&h.cycle()),
        vec![row("f1", "a2", "r", "cpus:1; mem:64")]
    );
}

#[test]
fn maintenance_sends_inverse_offers_and_down_agents_offer_nothing() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:2;mem:64");
    h.framework("f1", &["r"]);
    let offer = h.cycle().remove(0);
    h.allocator
        .accept(offer.id, &res("cpus:1"), Some(Duration::ZERO), h.now)
        .unwrap();
    let window = Unavailability {
        start: Time(100 * SEC),
        duration: Some(Duration::from_secs(3600)),
    };
    h.allocator.set_unavailability("a1", Some(window)).unwrap();
    let decisions = h.decisions();
    assert!(decisions.contains(&Decision::InverseOffer {
        framework: "f1".into(),
        agent: "a1".into(),
        unavailability: window
    }));
    // Sent once, not every cycle.
    assert!(!h
        .decisions()
        .iter()
        .any(|d| matches!(d, Decision::InverseOffer { .. })));
    let outstanding: Vec<OfferId> = h
        .allocator
        .outstanding_offers()
        .map(|(id, _, _)| id)
        .collect();
    let rescinds = h.allocator.set_agent_down("a1", true).unwrap();
    assert_eq!(rescinds.len(), outstanding.len());
    assert!(h.cycle().is_empty(), "a DOWN agent is never offered");
    h.allocator.set_agent_down("a1", false).unwrap();
    assert_eq!(h.cycle().len(), 1);
}

#[test]
fn min_allocatable_resources_skip_crumbs() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:0.005;mem:16");
    h.framework("f1", &["r"]);
    assert!(h.cycle().is_empty(), "below both cpus:0.01 and mem:32");
    let mut h = Harness::with(Config {
        min_allocatable_resources: vec![ResourceQuantities::from_pairs([(
            "mem",
            Scalar::from_millis(8000),
        )])],
        ..Config::default()
    });
    h.agent("a1", "cpus:0.005;mem:16");
    h.framework("f1", &["r"]);
    assert_eq!(h.cycle().len(), 1);
}

#[test]
fn removing_a_framework_recovers_everything() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:1;mem:64");
    h.framework("f1", &["r"]).framework("f2", &["r"]);
    let offers = h.cycle();
    let holder = offers[0].framework.clone();
    let other = if holder == "f1" { "f2" } else { "f1" };
    h.allocator
        .accept(offers[0].id, &res("cpus:1;mem:64"), None, h.now)
        .unwrap();
    h.allocator.remove_framework(&holder).unwrap();
    let offers = h.cycle();
    assert_eq!(
        summary(&offers),
        vec![row(other, "a1", "r", "cpus:1; mem:64")]
    );
}

#[test]
fn impossible_inputs_are_typed_errors() {
    let mut h = Harness::new();
    h.agent("a1", "cpus:1;mem:64");
    assert!(matches!(
        h.allocator.add_agent("a1", AgentSpec::default()),
        Err(AllocatorError::DuplicateAgent(_))
    ));
    assert!(h.allocator.update_weight("r", f64::NAN).is_err());
    assert!(h.allocator.update_weight("r", -1.0).is_err());
    assert!(h.allocator.update_weight("/bad", 1.0).is_err());
    assert!(h.allocator.update_quota("*", None).is_err());
    assert!(h.allocator.update_quota("a//b", None).is_err());
    assert!(h.allocator.revive("nobody", &[]).is_err());
    assert!(h.allocator.decline(999, None, h.now).is_err());
    let bad = FrameworkSpec {
        roles: BTreeSet::from(["bad role".to_string()]),
        ..Default::default()
    };
    assert!(h.allocator.add_framework("f", bad).is_err());
}

proptest! {
    /// Whatever the cluster, no offer exceeds an agent's free resources, a
    /// role's quota, or a reservation's role.
    #[test]
    fn offers_respect_free_resources_quota_and_reservations(
        agents in prop::collection::vec((1u64..8, 1u64..4, prop::option::of(0usize..3)), 1..12),
        frameworks in prop::collection::vec(0usize..3, 1..6),
        limit in 1u64..10,
        rounds in 1usize..4,
    ) {
        let roles = ["eng", "ops", "eng/web"];
        let mut h = Harness::new();
        for (i, (cpus, mem_gb, reserved)) in agents.iter().enumerate() {
            let mut text = format!("cpus:{cpus};mem:{}", mem_gb * 1024);
            if let Some(r) = reserved {
                text.push_str(&format!(";cpus({}):1", roles[*r]));
            }
            h.agent(&format!("a{i}"), &text);
        }
        for (i, r) in frameworks.iter().enumerate() {
            h.framework(&format!("f{i}"), &[roles[*r]]);
        }
        h.allocator.update_quota("ops", Some(ResourceQuantities::from_pairs([("cpus", Scalar::from_millis(limit * 1000))]))).unwrap();
        let mut ops_cpus = Scalar::ZERO;
        for _ in 0..rounds {
            let free_before: BTreeMap<String, Resources> = (0..agents.len())
                .map(|i| { let id = format!("a{i}"); let free = h.allocator.free(&id).unwrap().clone(); (id, free) })
                .collect();
            let offers = h.cycle();
            let mut taken: BTreeMap<String, Resources> = BTreeMap::new();
            for o in &offers {
                let plain = o.resources.unallocate();
                *taken.entry(o.agent.clone()).or_default() += &plain;
                for r in &plain {
                    prop_assert!(r.is_allocatable_to(&o.role), "{} offered to {}", plain, o.role);
                }
                if o.role == "ops" {
                    ops_cpus += plain.unreserved().cpus();
                }
            }
            for (agent, t) in &taken {
                prop_assert!(free_before[agent].contains(t), "offered {} of {}", t, free_before[agent]);
            }
            prop_assert!(ops_cpus <= Scalar::from_millis(limit * 1000));
            // Accept half, decline the rest briefly.
            for (i, o) in offers.iter().enumerate() {
                if i % 2 == 0 {
                    h.allocator.accept(o.id, &o.resources, None, h.now).unwrap();
                } else {
                    if o.role == "ops" { ops_cpus = ops_cpus.saturating_sub(o.resources.unreserved().cpus()); }
                    h.allocator.decline(o.id, Some(Duration::from_secs(1)), h.now).unwrap();
                }
            }
            h.advance(2);
        }
    }
}
