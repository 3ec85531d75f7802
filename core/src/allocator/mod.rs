//! The allocator: who is offered which agent's resources, and when.
//!
//! This module is pure and deterministic, in the manner of Nomad's
//! scheduler: no tokio, no I/O, no clock. The master feeds it events (an
//! agent registered, a framework subscribed, an offer was declined, a task
//! ended) and the current [`Time`], and calls [`Allocator::allocate`] on its
//! `--allocation_interval` or when [`Allocator::needs_allocation`] says a
//! burst of events is waiting. Each call runs one cycle and returns
//! [`Decision`]s: offers to make, offers to rescind, inverse offers to send.
//!
//! One cycle, for each agent that is up and has free resources (in a
//! rotating, seeded order, as Mesos shuffles):
//!
//! 1. take the subscribed (framework, role) pairs in weighted-DRF order:
//!    roles by the dominant share of their subtree, level by level, then the
//!    role's frameworks by their own dominant share;
//! 2. skip pairs that are suppressed, whose offer constraints reject the
//!    agent, or whose decline filter covers what is left on it;
//! 3. offer the first remaining pair everything on the agent it may use
//!    (unreserved resources plus those reserved for the role or an
//!    ancestor), capped by the role's quota limits, if that is at least one
//!    of the `--min_allocatable_resources` alternatives;
//! 4. update the shares and repeat while the agent has resources left.
//!
//! Agents where every eligible pair is filtered are recognised in constant
//! time from a per-agent cache, so frameworks that decline everything cost
//! nothing per cycle. Quota here is a limit only (Mesos 1.11 `UPDATE_QUOTA`
//! limits); guarantees are not enforced, and that is documented in
//! `docs/allocator.md`.

pub mod constraints;
pub mod drf;

#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::time::Duration;

use pando_proto::mesos::v1 as pb;
use pando_resources::{
    role, Resource, ResourceConversion, ResourceQuantities, Resources, Scalar, Value,
};

pub use constraints::{Constraint, Predicate, RoleConstraints};
use drf::{dominant_share, RoleKey, Share};

/// A point in time, in nanoseconds on the master's clock. The allocator
/// never reads a clock; time is an input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub u64);

impl Time {
    /// This time plus a duration, saturating.
    pub fn after(self, duration: Duration) -> Time {
        Time(
            self.0
                .saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

/// An offer's identity, unique for the allocator's lifetime.
pub type OfferId = u64;

/// `filter_expiry` is never compacted below this many entries.
const MIN_EXPIRY_COMPACTION: usize = 1024;

/// Decline filters longer than this are kept forever, as Mesos treats a
/// huge `refuse_seconds`.
pub const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// The default `refuse_seconds` of a decline, from Mesos's `Filters`.
pub const DEFAULT_REFUSE: Duration = Duration::from_secs(5);

/// Why the allocator rejected an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocatorError {
    /// No framework with this id was added.
    #[error("unknown framework '{0}'")]
    UnknownFramework(String),
    /// The framework was added already.
    #[error("framework '{0}' is already known")]
    DuplicateFramework(String),
    /// No agent with this id was added.
    #[error("unknown agent '{0}'")]
    UnknownAgent(String),
    /// The agent was added already.
    #[error("agent '{0}' is already known")]
    DuplicateAgent(String),
    /// No outstanding offer has this id (used, declined, rescinded, or never made).
    #[error("unknown or already used offer {0}")]
    UnknownOffer(OfferId),
    /// Offers accepted together are of different agents or frameworks.
    #[error("offer {0} is not of the same agent and framework as the others")]
    MixedOffers(OfferId),
    /// A role name is invalid.
    #[error(transparent)]
    InvalidRole(#[from] pando_resources::ResourcesError),
    /// A weight is zero, negative or not a number.
    #[error("invalid weight {weight} for role '{role}': weights must be positive")]
    InvalidWeight {
        /// The role.
        role: String,
        /// The weight given.
        weight: String,
    },
    /// Resources used from an offer are not all in the offer.
    #[error("resources {used} are not contained in offer {offer}")]
    NotInOffer {
        /// The offer.
        offer: OfferId,
        /// What was asked for.
        used: String,
    },
    /// A reservation change asked for resources the agent does not have free.
    #[error("agent '{agent}' does not have {resources} free")]
    NotFree {
        /// The agent.
        agent: String,
        /// The resources asked for.
        resources: String,
    },
    /// A reservation change would reserve for a role the resources cannot have.
    #[error("cannot reserve: {0}")]
    InvalidReservation(String),
}

/// Allocator settings, from the master's flags.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--min_allocatable_resources`: an offer must hold at least one of
    /// these quantities. Empty means any non-empty offer.
    pub min_allocatable_resources: Vec<ResourceQuantities>,
    /// `--offer_timeout`: offers held longer are rescinded.
    pub offer_timeout: Option<Duration>,
    /// `--fair_sharing_excluded_resource_names`: ignored by DRF.
    pub fair_sharing_excluded_resource_names: Vec<String>,
    /// Seed of the agent order, for reproducible cycles.
    pub seed: u64,
}

impl Default for Config {
    /// Mesos's defaults: offers need `cpus:0.01` or `mem:32`.
    fn default() -> Config {
        Config {
            min_allocatable_resources: vec![
                ResourceQuantities::from_pairs([("cpus", Scalar::from_millis(10))]),
                ResourceQuantities::from_pairs([("mem", Scalar::from_millis(32_000))]),
            ],
            offer_timeout: None,
            fair_sharing_excluded_resource_names: Vec::new(),
            seed: 0x5eed,
        }
    }
}

/// A maintenance window on an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailability {
    /// When the agent goes down.
    pub start: Time,
    /// For how long, if known.
    pub duration: Option<Duration>,
}

/// What the allocator needs to know of a framework.
#[derive(Debug, Clone, Default)]
pub struct FrameworkSpec {
    /// The roles it subscribed to (`FrameworkInfo.roles`, or `role`).
    pub roles: BTreeSet<String>,
    /// Roles it subscribed with as suppressed.
    pub suppressed_roles: BTreeSet<String>,
    /// Offer constraints by role.
    pub constraints: BTreeMap<String, RoleConstraints>,
}

/// What the allocator needs to know of an agent.
#[derive(Debug, Clone, Default)]
pub struct AgentSpec {
    /// Its hostname.
    pub hostname: String,
    /// Everything it has, including static and dynamic reservations.
    pub total: Resources,
    /// Its attributes, for offer constraints.
    pub attributes: Vec<pb::Attribute>,
}

/// An offer the allocator decided to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// The offer's id.
    pub id: OfferId,
    /// Who receives it.
    pub framework: String,
    /// Whose resources.
    pub agent: String,
    /// The role it is allocated to (`allocation_info.role`).
    pub role: String,
    /// What is offered, marked with the allocation role.
    pub resources: Resources,
}

/// One outcome of the allocator.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Send this offer.
    Offer(Offer),
    /// Take back an outstanding offer (its resources are already recovered).
    Rescind {
        /// The offer.
        offer: OfferId,
        /// Who held it.
        framework: String,
        /// Whose resources.
        agent: String,
    },
    /// Ask a framework to give an agent back for maintenance.
    InverseOffer {
        /// Who is asked.
        framework: String,
        /// The agent going down.
        agent: String,
        /// The window.
        unavailability: Unavailability,
    },
}

#[derive(Debug, Clone)]
struct Filter {
    /// When it stops applying; `None` is forever.
    expires: Option<Time>,
    /// Offers whose quantities fit inside these are refused.
    quantities: ResourceQuantities,
}

#[derive(Debug, Clone)]
struct AgentState {
    hostname: String,
    total: Resources,
    free: Resources,
    attributes: Vec<pb::Attribute>,
    /// Allocated (offered or in use) resources, by framework.
    allocated: BTreeMap<String, Resources>,
    unavailability: Option<Unavailability>,
    /// In maintenance: no offers at all.
    down: bool,
    /// Deactivated by the operator (DEACTIVATE_AGENT / DRAIN_AGENT).
    active: bool,
    /// Decline filters by framework, then role (nested so that lookups on
    /// the hot path borrow `&str` instead of building a key).
    filters: HashMap<String, HashMap<String, Filter>>,
    inverse_offered: BTreeSet<String>,
    /// Bumped whenever free resources or filters change.
    version: u64,
    /// (agent version, eligibility epoch) at which every eligible pair was
    /// found filtered; lets a cycle skip the agent in constant time.
    fully_filtered_at: Option<(u64, u64)>,
}

#[derive(Debug, Clone)]
struct FrameworkState {
    roles: BTreeSet<String>,
    suppressed: BTreeSet<String>,
    constraints: BTreeMap<String, RoleConstraints>,
    active: bool,
    /// Allocated quantities by role.
    allocated: BTreeMap<String, ResourceQuantities>,
}

#[derive(Debug, Clone)]
struct OutstandingOffer {
    framework: String,
    agent: String,
    role: String,
    /// What was offered, without the allocation mark.
    resources: Resources,
    created: Time,
}

/// The pure allocator. See the module docs for the algorithm.
#[derive(Debug)]
pub struct Allocator {
    config: Config,
    agents: BTreeMap<String, AgentState>,
    frameworks: BTreeMap<String, FrameworkState>,
    weights: BTreeMap<String, f64>,
    quota_limits: BTreeMap<String, ResourceQuantities>,
    /// Allocated quantities by role (own allocations, not the subtree).
    role_allocated: BTreeMap<String, ResourceQuantities>,
    /// Scalar totals of all agents.
    total: ResourceQuantities,
    offers: BTreeMap<OfferId, OutstandingOffer>,
    next_offer: OfferId,
    filter_expiry: BinaryHeap<Reverse<(Time, String, String, String)>>,
    /// `filter_expiry` is compacted when it grows past this; see
    /// [`Allocator::compact_filter_expiry`].
    compact_expiry_at: usize,
    /// The agents on which each framework may have decline filters, so
    /// that a REVIVE visits those instead of every agent. It may name an
    /// agent whose filters are gone (expired, or the agent removed).
    filtered_agents: HashMap<String, BTreeSet<String>>,
    /// Bumped when the set of eligible (framework, role) pairs changes.
    eligibility_epoch: u64,
    /// Set by events; cleared by a cycle.
    dirty: bool,
    cycles: u64,
}

impl Allocator {
    /// An allocator with no agents or frameworks.
    pub fn new(config: Config) -> Allocator {
        Allocator {
            config,
            agents: BTreeMap::new(),
            frameworks: BTreeMap::new(),
            weights: BTreeMap::new(),
            quota_limits: BTreeMap::new(),
            role_allocated: BTreeMap::new(),
            total: ResourceQuantities::default(),
            offers: BTreeMap::new(),
            next_offer: 1,
            filter_expiry: BinaryHeap::new(),
            compact_expiry_at: MIN_EXPIRY_COMPACTION,
            filtered_agents: HashMap::new(),
            eligibility_epoch: 0,
            dirty: false,
            cycles: 0,
        }
    }

    /// Whether events arrived since the last cycle: the master runs a cycle
    /// early when this is set, so a burst of events costs one cycle.
    pub fn needs_allocation(&self) -> bool {
        self.dirty
    }

    /// How many cycles have run (`allocator/mesos/allocation_runs`).
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    // ---- frameworks -------------------------------------------------------

    /// A framework subscribed.
    pub fn add_framework(&mut self, id: &str, spec: FrameworkSpec) -> Result<(), AllocatorError> {
        if self.frameworks.contains_key(id) {
            return Err(AllocatorError::DuplicateFramework(id.to_string()));
        }
        for r in &spec.roles {
            role::validate(r)?;
        }
        self.frameworks.insert(
            id.to_string(),
            FrameworkState {
                roles: spec.roles,
                suppressed: spec.suppressed_roles,
                constraints: spec.constraints,
                active: true,
                allocated: BTreeMap::new(),
            },
        );
        self.touch_eligibility();
        Ok(())
    }

    /// A framework changed its roles, suppressed roles or constraints
    /// (UPDATE_FRAMEWORK or a re-subscription).
    pub fn update_framework(
        &mut self,
        id: &str,
        spec: FrameworkSpec,
    ) -> Result<(), AllocatorError> {
        for r in &spec.roles {
            role::validate(r)?;
        }
        let fw = self.framework_mut(id)?;
        fw.roles = spec.roles;
        fw.suppressed = spec.suppressed_roles;
        fw.constraints = spec.constraints;
        self.touch_eligibility();
        Ok(())
    }

    /// A framework disconnected: no offers until it is activated again.
    /// Its outstanding offers are rescinded.
    pub fn deactivate_framework(&mut self, id: &str) -> Result<Vec<Decision>, AllocatorError> {
        self.framework_mut(id)?.active = false;
        self.touch_eligibility();
        Ok(self.rescind_where(|o| o.framework == id))
    }

    /// A framework (re)connected.
    pub fn activate_framework(&mut self, id: &str) -> Result<(), AllocatorError> {
        self.framework_mut(id)?.active = true;
        self.touch_eligibility();
        Ok(())
    }

    /// A framework was torn down: its offers are rescinded and everything it
    /// held is recovered.
    pub fn remove_framework(&mut self, id: &str) -> Result<Vec<Decision>, AllocatorError> {
        if !self.frameworks.contains_key(id) {
            return Err(AllocatorError::UnknownFramework(id.to_string()));
        }
        let decisions = self.rescind_where(|o| o.framework == id);
        let agent_ids: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, a)| a.allocated.contains_key(id))
            .map(|(k, _)| k.clone())
            .collect();
        for agent_id in agent_ids {
            if let Some(held) = self
                .agents
                .get(&agent_id)
                .and_then(|a| a.allocated.get(id))
                .cloned()
            {
                self.release(id, &agent_id, &held);
            }
        }
        for agent in self.agents.values_mut() {
            agent.filters.remove(id);
            agent.inverse_offered.remove(id);
            agent.version += 1;
        }
        self.filtered_agents.remove(id);
        self.frameworks.remove(id);
        self.touch_eligibility();
        Ok(decisions)
    }

    /// SUPPRESS: stop offers for these roles (all roles when empty).
    pub fn suppress(&mut self, id: &str, roles: &[String]) -> Result<(), AllocatorError> {
        let fw = self.framework_mut(id)?;
        let roles: Vec<String> = if roles.is_empty() {
            fw.roles.iter().cloned().collect()
        } else {
            roles.to_vec()
        };
        fw.suppressed.extend(roles);
        self.touch_eligibility();
        Ok(())
    }

    /// REVIVE: resume offers for these roles (all when empty) and drop the
    /// framework's decline filters for them.
    pub fn revive(&mut self, id: &str, roles: &[String]) -> Result<(), AllocatorError> {
        let fw = self.framework_mut(id)?;
        let roles: BTreeSet<String> = if roles.is_empty() {
            fw.roles.clone()
        } else {
            roles.iter().cloned().collect()
        };
        fw.suppressed.retain(|r| !roles.contains(r));
        let filtered = self.filtered_agents.remove(id).unwrap_or_default();
        let mut still_filtered = BTreeSet::new();
        for agent_id in filtered {
            let Some(agent) = self.agents.get_mut(&agent_id) else {
                continue;
            };
            let Some(by_role) = agent.filters.get_mut(id) else {
                continue;
            };
            let before = by_role.len();
            by_role.retain(|r, _| !roles.contains(r));
            if by_role.len() != before {
                agent.version += 1;
            }
            if by_role.is_empty() {
                agent.filters.remove(id);
            } else {
                still_filtered.insert(agent_id);
            }
        }
        if !still_filtered.is_empty() {
            self.filtered_agents.insert(id.to_string(), still_filtered);
        }
        self.touch_eligibility();
        Ok(())
    }

    // ---- agents -----------------------------------------------------------

    /// An agent registered.
    pub fn add_agent(&mut self, id: &str, spec: AgentSpec) -> Result<(), AllocatorError> {
        if self.agents.contains_key(id) {
            return Err(AllocatorError::DuplicateAgent(id.to_string()));
        }
        for r in &spec.total {
            r.validate()?;
        }
        self.total.add_all(&spec.total.scalar_quantities());
        self.agents.insert(
            id.to_string(),
            AgentState {
                hostname: spec.hostname,
                free: spec.total.unallocate(),
                total: spec.total.unallocate(),
                attributes: spec.attributes,
                allocated: BTreeMap::new(),
                unavailability: None,
                down: false,
                active: true,
                filters: HashMap::new(),
                inverse_offered: BTreeSet::new(),
                version: 0,
                fully_filtered_at: None,
            },
        );
        self.dirty = true;
        Ok(())
    }

    /// An agent re-registered with resources already in use by frameworks
    /// (after a master failover): those stay allocated.
    pub fn add_used(
        &mut self,
        agent: &str,
        framework: &str,
        role: &str,
        used: &Resources,
    ) -> Result<(), AllocatorError> {
        let a = self.agent_mut(agent)?;
        let plain = used.unallocate();
        if !a.free.contains(&plain) {
            return Err(AllocatorError::NotFree {
                agent: agent.to_string(),
                resources: plain.to_string(),
            });
        }
        self.take(framework, agent, role, &plain);
        Ok(())
    }

    /// An agent is gone: offers on it are rescinded and its resources leave
    /// the cluster.
    pub fn remove_agent(&mut self, id: &str) -> Result<Vec<Decision>, AllocatorError> {
        if !self.agents.contains_key(id) {
            return Err(AllocatorError::UnknownAgent(id.to_string()));
        }
        let decisions = self.rescind_where(|o| o.agent == id);
        if let Some(agent) = self.agents.remove(id) {
            for (fw, held) in &agent.allocated {
                self.forget_allocation(fw, held);
            }
            self.total.subtract_all(&agent.total.scalar_quantities());
        }
        self.dirty = true;
        Ok(decisions)
    }

    /// DEACTIVATE_AGENT / REACTIVATE_AGENT: an inactive agent gets no offers.
    pub fn set_agent_active(
        &mut self,
        id: &str,
        active: bool,
    ) -> Result<Vec<Decision>, AllocatorError> {
        self.agent_mut(id)?.active = active;
        self.dirty = true;
        Ok(if active {
            Vec::new()
        } else {
            self.rescind_where(|o| o.agent == id)
        })
    }

    /// A maintenance window was scheduled (or cleared with `None`): the
    /// frameworks using the agent get inverse offers.
    pub fn set_unavailability(
        &mut self,
        id: &str,
        window: Option<Unavailability>,
    ) -> Result<(), AllocatorError> {
        let agent = self.agent_mut(id)?;
        agent.unavailability = window;
        agent.inverse_offered.clear();
        self.dirty = true;
        Ok(())
    }

    /// START_MAINTENANCE (`down = true`) or STOP_MAINTENANCE: a DOWN agent
    /// gets no offers, and its outstanding offers are rescinded.
    pub fn set_agent_down(
        &mut self,
        id: &str,
        down: bool,
    ) -> Result<Vec<Decision>, AllocatorError> {
        let agent = self.agent_mut(id)?;
        agent.down = down;
        if !down {
            agent.unavailability = None;
            agent.inverse_offered.clear();
        }
        self.dirty = true;
        Ok(if down {
            self.rescind_where(|o| o.agent == id)
        } else {
            Vec::new()
        })
    }

    /// A dynamic reservation change on free resources (operator
    /// RESERVE/UNRESERVE, CREATE/DESTROY of volumes): `from` becomes `to`.
    pub fn convert_free(
        &mut self,
        id: &str,
        from: &Resources,
        to: &Resources,
    ) -> Result<(), AllocatorError> {
        for r in to {
            r.validate()?;
        }
        if from.scalar_quantities() != to.scalar_quantities() {
            return Err(AllocatorError::InvalidReservation(format!(
                "{from} and {to} are not the same quantities"
            )));
        }
        let agent = self.agent_mut(id)?;
        if !agent.free.contains(from) {
            return Err(AllocatorError::NotFree {
                agent: id.to_string(),
                resources: from.to_string(),
            });
        }
        agent.free -= from;
        agent.free += to;
        agent.total -= from;
        agent.total += to;
        agent.version += 1;
        self.dirty = true;
        Ok(())
    }

    // ---- roles --------------------------------------------------------------

    /// UPDATE_WEIGHTS / `--weights`: takes effect on the next cycle.
    pub fn update_weight(&mut self, role_name: &str, weight: f64) -> Result<(), AllocatorError> {
        role::validate(role_name)?;
        if !(weight.is_finite() && weight > 0.0) {
            return Err(AllocatorError::InvalidWeight {
                role: role_name.to_string(),
                weight: weight.to_string(),
            });
        }
        self.weights.insert(role_name.to_string(), weight);
        self.dirty = true;
        Ok(())
    }

    /// UPDATE_QUOTA: the role (with its sub-roles) is never allocated more
    /// than `limits`; `None` removes the limit.
    pub fn update_quota(
        &mut self,
        role_name: &str,
        limits: Option<ResourceQuantities>,
    ) -> Result<(), AllocatorError> {
        role::validate(role_name)?;
        if role_name == role::UNRESERVED {
            return Err(AllocatorError::InvalidRole(
                pando_resources::ResourcesError::InvalidRole {
                    role: role_name.to_string(),
                    reason: "quota cannot be set on the '*' role".into(),
                },
            ));
        }
        match limits {
            Some(l) => self.quota_limits.insert(role_name.to_string(), l),
            None => self.quota_limits.remove(role_name),
        };
        self.dirty = true;
        Ok(())
    }

    // ---- offers -------------------------------------------------------------

    /// DECLINE: the offer's resources go back, and the framework is not
    /// offered them (or a subset) on that agent for `refuse` (default 5 s).
    pub fn decline(
        &mut self,
        offer: OfferId,
        refuse: Option<Duration>,
        now: Time,
    ) -> Result<(), AllocatorError> {
        let o = self
            .offers
            .remove(&offer)
            .ok_or(AllocatorError::UnknownOffer(offer))?;
        self.release(&o.framework, &o.agent, &o.resources);
        self.add_filter(&o, &o.resources, refuse.unwrap_or(DEFAULT_REFUSE), now);
        Ok(())
    }

    /// ACCEPT of one offer: `used` stays allocated to the framework until
    /// recovered with [`Allocator::recover`]; the rest goes back, filtered
    /// for `refuse`.
    pub fn accept(
        &mut self,
        offer: OfferId,
        used: &Resources,
        refuse: Option<Duration>,
        now: Time,
    ) -> Result<(), AllocatorError> {
        self.accept_offers(&[offer], &[], used, refuse, now)
    }

    /// ACCEPT of one or more offers of one framework on one agent. The
    /// offered resources first change form by `conversions` (RESERVE,
    /// UNRESERVE, CREATE, DESTROY, in the order the framework gave them),
    /// which changes the agent's total as well; then `used` stays allocated
    /// to the framework and the rest goes back, filtered for `refuse`.
    /// Nothing changes unless every step fits.
    pub fn accept_offers(
        &mut self,
        offers: &[OfferId],
        conversions: &[ResourceConversion],
        used: &Resources,
        refuse: Option<Duration>,
        now: Time,
    ) -> Result<(), AllocatorError> {
        let mut offered = Resources::new();
        let mut first: Option<&OutstandingOffer> = None;
        for id in offers {
            let o = self
                .offers
                .get(id)
                .ok_or(AllocatorError::UnknownOffer(*id))?;
            if let Some(f) = first {
                if f.agent != o.agent || f.framework != o.framework {
                    return Err(AllocatorError::MixedOffers(*id));
                }
            }
            first = Some(o);
            offered += &o.resources;
        }
        let Some(record) = first.cloned() else {
            return Ok(());
        };
        // Offers are kept without their allocation mark; so are conversions.
        let conversions: Vec<ResourceConversion> = conversions
            .iter()
            .map(|c| ResourceConversion {
                consumed: c.consumed.unallocate(),
                converted: c.converted.unallocate(),
            })
            .collect();
        let mut converted = offered.clone();
        for conversion in &conversions {
            converted = converted
                .apply(conversion)
                .map_err(|_| AllocatorError::NotInOffer {
                    offer: offers[0],
                    used: conversion.consumed.to_string(),
                })?;
        }
        let used = used.unallocate();
        if !converted.contains(&used) {
            return Err(AllocatorError::NotInOffer {
                offer: offers[0],
                used: used.to_string(),
            });
        }
        for id in offers {
            self.offers.remove(id);
        }
        if !conversions.is_empty() {
            let agent = self.agent_mut(&record.agent)?;
            for conversion in &conversions {
                if let Some(held) = agent.allocated.get_mut(&record.framework) {
                    if let Ok(after) = held.apply(conversion) {
                        *held = after;
                    }
                }
                if let Ok(after) = agent.total.apply(conversion) {
                    agent.total = after;
                }
            }
            agent.version += 1;
        }
        let unused = converted - &used;
        if !unused.is_empty() {
            self.release(&record.framework, &record.agent, &unused);
            self.add_filter(&record, &unused, refuse.unwrap_or(DEFAULT_REFUSE), now);
        }
        Ok(())
    }

    /// A task or executor ended: its resources return to the agent.
    pub fn recover(
        &mut self,
        framework: &str,
        agent: &str,
        resources: &Resources,
    ) -> Result<(), AllocatorError> {
        if !self.agents.contains_key(agent) {
            return Err(AllocatorError::UnknownAgent(agent.to_string()));
        }
        self.release(framework, agent, &resources.unallocate());
        Ok(())
    }

    /// Outstanding offers, for state endpoints.
    pub fn outstanding_offers(&self) -> impl Iterator<Item = (OfferId, &str, &str)> {
        self.offers
            .iter()
            .map(|(id, o)| (*id, o.framework.as_str(), o.agent.as_str()))
    }

    /// Free resources of an agent.
    pub fn free(&self, agent: &str) -> Option<&Resources> {
        self.agents.get(agent).map(|a| &a.free)
    }

    /// The weighted dominant share of a role's subtree.
    pub fn role_share(&self, role_name: &str) -> f64 {
        let subtree = self.subtree_allocations();
        let empty = ResourceQuantities::default();
        dominant_share(
            subtree.get(role_name).unwrap_or(&empty),
            &self.total,
            self.weight(role_name),
            &self.config.fair_sharing_excluded_resource_names,
        )
        .0
    }

    // ---- the cycle ------------------------------------------------------------

    /// Runs one allocation cycle at `now`.
    pub fn allocate(&mut self, now: Time) -> Vec<Decision> {
        self.dirty = false;
        self.cycles += 1;
        let mut decisions = self.expire(now);

        let pairs = self.eligible_pairs();
        if !pairs.is_empty() {
            let agent_ids = self.agent_order();
            let mut order = self.initial_order(&pairs);
            for agent_id in agent_ids {
                self.allocate_agent(&agent_id, &mut order, now, &mut decisions);
            }
        }
        decisions.extend(self.inverse_offers());
        decisions
    }

    /// Drops expired filters and rescinds timed-out offers.
    fn expire(&mut self, now: Time) -> Vec<Decision> {
        while let Some(Reverse((when, _, _, _))) = self.filter_expiry.peek() {
            if *when > now {
                break;
            }
            let Some(Reverse((when, agent, fw, role_name))) = self.filter_expiry.pop() else {
                break;
            };
            if let Some(a) = self.agents.get_mut(&agent) {
                if let Some(by_role) = a.filters.get_mut(&fw) {
                    if by_role
                        .get(&role_name)
                        .is_some_and(|f| f.expires == Some(when))
                    {
                        by_role.remove(&role_name);
                        if by_role.is_empty() {
                            a.filters.remove(&fw);
                            if let Some(agents) = self.filtered_agents.get_mut(&fw) {
                                agents.remove(&agent);
                                if agents.is_empty() {
                                    self.filtered_agents.remove(&fw);
                                }
                            }
                        }
                        a.version += 1;
                    }
                }
            }
        }
        match self.config.offer_timeout {
            Some(timeout) => self.rescind_where(|o| o.created.after(timeout) <= now),
            None => Vec::new(),
        }
    }

    /// Active frameworks' unsuppressed roles.
    fn eligible_pairs(&self) -> Vec<(String, String)> {
        self.frameworks
            .iter()
            .filter(|(_, f)| f.active)
            .flat_map(|(id, f)| {
                f.roles
                    .iter()
                    .filter(|r| !f.suppressed.contains(*r))
                    .map(move |r| (id.clone(), r.clone()))
            })
            .collect()
    }

    /// Agents in this cycle's order: a seeded rotation, so that no agent is
    /// always first (Mesos shuffles for the same reason).
    fn agent_order(&self) -> Vec<String> {
        let ids: Vec<&String> = self.agents.keys().collect();
        if ids.is_empty() {
            return Vec::new();
        }
        let mut x = self.config.seed ^ self.cycles.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        let start = (x % ids.len() as u64) as usize;
        ids[start..]
            .iter()
            .chain(ids[..start].iter())
            .map(|s| (*s).clone())
            .collect()
    }

    fn weight(&self, role_name: &str) -> f64 {
        self.weights.get(role_name).copied().unwrap_or(1.0)
    }

    /// Allocations of every role including its descendants.
    fn subtree_allocations(&self) -> BTreeMap<String, ResourceQuantities> {
        let mut subtree: BTreeMap<String, ResourceQuantities> = BTreeMap::new();
        for (r, q) in &self.role_allocated {
            subtree.entry(r.clone()).or_default().add_all(q);
            for ancestor in role::ancestors(r) {
                subtree.entry(ancestor.to_string()).or_default().add_all(q);
            }
        }
        subtree
    }

    fn role_key(&self, role_name: &str, subtree: &BTreeMap<String, ResourceQuantities>) -> RoleKey {
        let empty = ResourceQuantities::default();
        let mut path: Vec<&str> = role::ancestors(role_name).collect();
        path.reverse();
        path.push(role_name);
        RoleKey {
            path_shares: path
                .into_iter()
                .map(|r| {
                    let share = dominant_share(
                        subtree.get(r).unwrap_or(&empty),
                        &self.total,
                        self.weight(r),
                        &self.config.fair_sharing_excluded_resource_names,
                    );
                    (share, r.to_string())
                })
                .collect(),
        }
    }

    fn framework_share(&self, fw: &str, role_name: &str) -> Share {
        let empty = ResourceQuantities::default();
        let allocated = self
            .frameworks
            .get(fw)
            .and_then(|f| f.allocated.get(role_name))
            .unwrap_or(&empty);
        dominant_share(
            allocated,
            &self.total,
            1.0,
            &self.config.fair_sharing_excluded_resource_names,
        )
    }

    /// The DRF order of eligible pairs at the start of a cycle.
    fn initial_order(&self, pairs: &[(String, String)]) -> CycleOrder {
        let subtree = self.subtree_allocations();
        let mut order = CycleOrder::default();
        let mut roles = BTreeSet::new();
        for (fw, r) in pairs {
            roles.insert(r.clone());
            order
                .frameworks
                .entry(r.clone())
                .or_default()
                .insert((self.framework_share(fw, r), fw.clone()));
        }
        for r in roles {
            let key = self.role_key(&r, &subtree);
            order.sorted_roles.insert((key.clone(), r.clone()));
            order.roles.insert(r, key);
        }
        order.subtree = subtree;
        order
    }

    fn allocate_agent(
        &mut self,
        agent_id: &str,
        order: &mut CycleOrder,
        now: Time,
        decisions: &mut Vec<Decision>,
    ) {
        let epoch = self.eligibility_epoch;
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        if agent.down || !agent.active || agent.free.is_empty() {
            return;
        }
        if agent.fully_filtered_at == Some((agent.version, epoch)) {
            return;
        }
        // Whether some pair was passed over for a reason other than a decline
        // filter; only an agent blocked purely by filters may be cached as such.
        let mut anyone_unfiltered = false;
        let mut blocked_otherwise = false;
        loop {
            let Some(agent) = self.agents.get(agent_id) else {
                return;
            };
            let free_quantities = agent.free.scalar_quantities();
            if !self.is_allocatable(&free_quantities, &agent.free) {
                blocked_otherwise = true;
                break;
            }
            let mut chosen: Option<(String, String, Resources, ResourceQuantities)> = None;
            'search: for (_, role_name) in &order.sorted_roles {
                let Some(frameworks) = order.frameworks.get(role_name) else {
                    continue;
                };
                // What the role could get is part of the free resources, so a
                // filter covering all free resources covers it too: skip the
                // role without building its candidate when all are filtered.
                let all_filtered = frameworks.iter().all(|(_, fw)| {
                    agent
                        .filters
                        .get(fw.as_str())
                        .and_then(|by_role| by_role.get(role_name.as_str()))
                        .is_some_and(|f| f.quantities.contains(&free_quantities))
                });
                if all_filtered {
                    continue;
                }
                let candidate = self.capped_by_quota(
                    role_name,
                    agent.free.allocatable_to(role_name),
                    &order.subtree,
                );
                let quantities = candidate.scalar_quantities();
                if !self.is_allocatable(&quantities, &candidate) {
                    blocked_otherwise = true;
                    continue;
                }
                for (_, fw) in frameworks {
                    let filtered = agent
                        .filters
                        .get(fw.as_str())
                        .and_then(|by_role| by_role.get(role_name.as_str()))
                        .is_some_and(|f| {
                            f.quantities.contains(&quantities) && !quantities.is_empty()
                        });
                    if filtered {
                        continue;
                    }
                    anyone_unfiltered = true;
                    let admitted = self
                        .frameworks
                        .get(fw)
                        .and_then(|f| f.constraints.get(role_name))
                        .is_none_or(|c| c.admits(&agent.attributes));
                    if !admitted {
                        blocked_otherwise = true;
                        continue;
                    }
                    chosen = Some((fw.clone(), role_name.clone(), candidate, quantities));
                    break 'search;
                }
            }
            let Some((fw, role_name, resources, quantities)) = chosen else {
                break;
            };
            let old_share = self.framework_share(&fw, &role_name);
            self.take_quantities(&fw, agent_id, &role_name, &resources, &quantities);
            let id = self.next_offer;
            self.next_offer += 1;
            let offered = resources.allocate(&role_name);
            self.offers.insert(
                id,
                OutstandingOffer {
                    framework: fw.clone(),
                    agent: agent_id.to_string(),
                    role: role_name.clone(),
                    resources,
                    created: now,
                },
            );
            decisions.push(Decision::Offer(Offer {
                id,
                framework: fw.clone(),
                agent: agent_id.to_string(),
                role: role_name.clone(),
                resources: offered,
            }));
            self.reorder(order, &fw, &role_name, &quantities, old_share);
        }
        if !anyone_unfiltered && !blocked_otherwise {
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent.fully_filtered_at = Some((agent.version, epoch));
            }
        }
    }

    /// Updates the cycle's order after `resources` went to (fw, role).
    fn reorder(
        &self,
        order: &mut CycleOrder,
        fw: &str,
        role_name: &str,
        q: &ResourceQuantities,
        old_share: Share,
    ) {
        order
            .subtree
            .entry(role_name.to_string())
            .or_default()
            .add_all(q);
        for ancestor in role::ancestors(role_name) {
            order
                .subtree
                .entry(ancestor.to_string())
                .or_default()
                .add_all(q);
        }
        if let Some(frameworks) = order.frameworks.get_mut(role_name) {
            frameworks.remove(&(old_share, fw.to_string()));
            frameworks.insert((self.framework_share(fw, role_name), fw.to_string()));
        }
        // Every role under the same top-level ancestor may change place.
        let top = role::ancestors(role_name)
            .last()
            .unwrap_or(role_name)
            .to_string();
        let affected: Vec<String> = order
            .roles
            .keys()
            .filter(|r| **r == top || role::is_strict_subrole_of(r, &top))
            .cloned()
            .collect();
        for r in affected {
            if let Some(old) = order.roles.get(&r).cloned() {
                order.sorted_roles.remove(&(old, r.clone()));
            }
            let key = self.role_key(&r, &order.subtree);
            order.sorted_roles.insert((key.clone(), r.clone()));
            order.roles.insert(r, key);
        }
    }

    /// Whether an offer of these resources is worth making.
    fn is_allocatable(&self, quantities: &ResourceQuantities, resources: &Resources) -> bool {
        if resources.is_empty() {
            return false;
        }
        self.config.min_allocatable_resources.is_empty()
            || self
                .config
                .min_allocatable_resources
                .iter()
                .any(|min| quantities.contains(min))
    }

    /// Trims unreserved scalars so that the role and its ancestors stay
    /// within their quota limits.
    fn capped_by_quota(
        &self,
        role_name: &str,
        candidate: Resources,
        subtree: &BTreeMap<String, ResourceQuantities>,
    ) -> Resources {
        let limited: Vec<(&ResourceQuantities, ResourceQuantities)> = std::iter::once(role_name)
            .chain(role::ancestors(role_name))
            .filter_map(|r| {
                self.quota_limits
                    .get(r)
                    .map(|l| (l, subtree.get(r).cloned().unwrap_or_default()))
            })
            .collect();
        if limited.is_empty() {
            return candidate;
        }
        let mut headroom: BTreeMap<String, Scalar> = BTreeMap::new();
        for (limit, consumed) in &limited {
            for (name, amount) in limit.iter() {
                let left = amount.saturating_sub(consumed.get(name));
                headroom
                    .entry(name.to_string())
                    .and_modify(|h| *h = (*h).min(left))
                    .or_insert(left);
            }
        }
        let mut result = Resources::new();
        for r in &candidate {
            match (&r.value, headroom.get_mut(&r.name)) {
                (Value::Scalar(amount), Some(room)) if r.is_unreserved() => {
                    let granted = (*amount).min(*room);
                    *room = room.saturating_sub(granted);
                    if !granted.is_zero() {
                        let mut trimmed: Resource = r.clone();
                        trimmed.value = Value::Scalar(granted);
                        result.add(trimmed);
                    }
                }
                _ => result.add(r.clone()),
            }
        }
        result
    }

    fn inverse_offers(&mut self) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for (agent_id, agent) in self.agents.iter_mut() {
            let Some(window) = agent.unavailability else {
                continue;
            };
            for fw in agent.allocated.keys() {
                if agent.inverse_offered.insert(fw.clone()) {
                    decisions.push(Decision::InverseOffer {
                        framework: fw.clone(),
                        agent: agent_id.clone(),
                        unavailability: window,
                    });
                }
            }
        }
        decisions
    }

    // ---- bookkeeping ------------------------------------------------------------

    fn take(&mut self, fw: &str, agent_id: &str, role_name: &str, resources: &Resources) {
        let q = resources.scalar_quantities();
        self.take_quantities(fw, agent_id, role_name, resources, &q);
    }

    /// Moves `resources` (whose scalar quantities are `q`) from the agent's
    /// free pool to (fw, role).
    fn take_quantities(
        &mut self,
        fw: &str,
        agent_id: &str,
        role_name: &str,
        resources: &Resources,
        q: &ResourceQuantities,
    ) {
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.free -= resources;
            *agent.allocated.entry(fw.to_string()).or_default() += resources;
            agent.version += 1;
        }
        if let Some(f) = self.frameworks.get_mut(fw) {
            f.allocated
                .entry(role_name.to_string())
                .or_default()
                .add_all(q);
        }
        self.role_allocated
            .entry(role_name.to_string())
            .or_default()
            .add_all(q);
    }

    /// Returns resources of `fw` on `agent_id` to the free pool, taking them
    /// from the roles they were allocated to.
    fn release(&mut self, fw: &str, agent_id: &str, resources: &Resources) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        let Some(held) = agent.allocated.get_mut(fw) else {
            return;
        };
        let returned = if held.contains(resources) {
            resources.clone()
        } else {
            resources.filter(|r| held.contains_resource(r))
        };
        *held -= &returned;
        if held.is_empty() {
            agent.allocated.remove(fw);
            agent.inverse_offered.remove(fw);
        }
        agent.free += &returned;
        agent.version += 1;
        self.forget_allocation(fw, &returned);
        self.dirty = true;
    }

    /// Takes `resources` out of the role accounting of `fw`, role by role
    /// in name order (a framework's roles rarely share an agent's resource).
    fn forget_allocation(&mut self, fw: &str, resources: &Resources) {
        let Some(f) = self.frameworks.get_mut(fw) else {
            return;
        };
        let mut left = resources.scalar_quantities();
        for (role_name, allocated) in f.allocated.iter_mut() {
            let mut taken = ResourceQuantities::default();
            for (name, amount) in left.iter() {
                let t = amount.min(allocated.get(name));
                taken.add(name, t);
            }
            allocated.subtract_all(&taken);
            if let Some(r) = self.role_allocated.get_mut(role_name) {
                r.subtract_all(&taken);
            }
            left.subtract_all(&taken);
        }
        f.allocated.retain(|_, q| !q.is_empty());
        self.role_allocated.retain(|_, q| !q.is_empty());
    }

    fn add_filter(
        &mut self,
        offer: &OutstandingOffer,
        refused: &Resources,
        refuse: Duration,
        now: Time,
    ) {
        if refuse.is_zero() {
            return;
        }
        let expires = (refuse < FOREVER).then(|| now.after(refuse));
        if let Some(agent) = self.agents.get_mut(&offer.agent) {
            agent
                .filters
                .entry(offer.framework.clone())
                .or_default()
                .insert(
                    offer.role.clone(),
                    Filter {
                        expires,
                        quantities: refused.scalar_quantities(),
                    },
                );
            agent.version += 1;
            self.filtered_agents
                .entry(offer.framework.clone())
                .or_default()
                .insert(offer.agent.clone());
        }
        if let Some(when) = expires {
            self.filter_expiry.push(Reverse((
                when,
                offer.agent.clone(),
                offer.framework.clone(),
                offer.role.clone(),
            )));
            if self.filter_expiry.len() > self.compact_expiry_at {
                self.compact_filter_expiry();
            }
        }
    }

    /// Drops the expiry entries of filters that are gone already.
    ///
    /// A REVIVE, a replaced filter or a removed agent or framework leaves
    /// its entry in `filter_expiry` until the time it names. A framework
    /// that declines for 120 s and REVIVEs every few seconds (Marathon,
    /// Spark) would pile up one entry per decline for two minutes:
    /// hundreds of thousands at 10,000 agents. Compacting whenever the heap
    /// doubles keeps it within twice the live filters, at an amortized
    /// constant cost per decline.
    /// Entries that are alike (a filter declined again at the same
    /// instant) are kept once.
    fn compact_filter_expiry(&mut self) {
        let agents = &self.agents;
        let mut entries = std::mem::take(&mut self.filter_expiry).into_vec();
        entries.retain(|Reverse((when, agent, fw, role))| {
            agents
                .get(agent)
                .and_then(|a| a.filters.get(fw))
                .and_then(|by_role| by_role.get(role))
                .is_some_and(|f| f.expires == Some(*when))
        });
        entries.sort_unstable();
        entries.dedup();
        self.filter_expiry = BinaryHeap::from(entries);
        self.compact_expiry_at = (2 * self.filter_expiry.len()).max(MIN_EXPIRY_COMPACTION);
    }

    fn rescind_where(&mut self, matches: impl Fn(&OutstandingOffer) -> bool) -> Vec<Decision> {
        let ids: Vec<OfferId> = self
            .offers
            .iter()
            .filter(|(_, o)| matches(o))
            .map(|(id, _)| *id)
            .collect();
        let mut decisions = Vec::new();
        for id in ids {
            if let Some(o) = self.offers.remove(&id) {
                self.release(&o.framework, &o.agent, &o.resources);
                decisions.push(Decision::Rescind {
                    offer: id,
                    framework: o.framework,
                    agent: o.agent,
                });
            }
        }
        decisions
    }

    fn touch_eligibility(&mut self) {
        self.eligibility_epoch += 1;
        self.dirty = true;
    }

    fn framework_mut(&mut self, id: &str) -> Result<&mut FrameworkState, AllocatorError> {
        self.frameworks
            .get_mut(id)
            .ok_or_else(|| AllocatorError::UnknownFramework(id.to_string()))
    }

    fn agent_mut(&mut self, id: &str) -> Result<&mut AgentState, AllocatorError> {
        self.agents
            .get_mut(id)
            .ok_or_else(|| AllocatorError::UnknownAgent(id.to_string()))
    }

    /// The hostname an agent registered with.
    pub fn hostname(&self, agent: &str) -> Option<&str> {
        self.agents.get(agent).map(|a| a.hostname.as_str())
    }
}

/// The DRF order during one cycle, updated incrementally after each offer.
#[derive(Debug, Default)]
struct CycleOrder {
    roles: BTreeMap<String, RoleKey>,
    sorted_roles: BTreeSet<(RoleKey, String)>,
    frameworks: BTreeMap<String, BTreeSet<(Share, String)>>,
    subtree: BTreeMap<String, ResourceQuantities>,
}
