//! Offer constraints: which agents a framework wants to be offered, per role.
//!
//! A framework may subscribe with `offer_constraints` (Mesos 1.10+): for each
//! role, a list of *groups*; an agent is acceptable if it satisfies every
//! constraint of at least one group. A constraint selects an agent attribute
//! by name and tests it: it exists, it does not exist, its text equals or
//! differs from a value. Roles without constraints accept every agent.

use pando_proto::mesos::v1 as pb;

/// A test on one agent attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// The attribute is present.
    Exists,
    /// The attribute is absent.
    NotExists,
    /// The attribute is TEXT and equals the value (absent fails).
    TextEquals(String),
    /// The attribute is absent, or not TEXT, or differs from the value.
    TextNotEquals(String),
}

/// One constraint: an attribute name and a predicate on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// The attribute name.
    pub attribute: String,
    /// The test.
    pub predicate: Predicate,
}

/// A role's constraints: the agent must satisfy all constraints of at least
/// one group. No groups means no restriction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleConstraints {
    /// The alternative groups.
    pub groups: Vec<Vec<Constraint>>,
}

impl RoleConstraints {
    /// Whether an agent with these attributes may be offered to the role.
    pub fn admits(&self, attributes: &[pb::Attribute]) -> bool {
        self.groups.is_empty()
            || self
                .groups
                .iter()
                .any(|group| group.iter().all(|c| c.holds(attributes)))
    }
}

impl Constraint {
    /// Whether the constraint holds for these attributes.
    pub fn holds(&self, attributes: &[pb::Attribute]) -> bool {
        let found = attributes.iter().find(|a| a.name == self.attribute);
        let text = found
            .and_then(|a| a.text.as_ref())
            .map(|t| t.value.as_str());
        match &self.predicate {
            Predicate::Exists => found.is_some(),
            Predicate::NotExists => found.is_none(),
            Predicate::TextEquals(value) => text == Some(value.as_str()),
            Predicate::TextNotEquals(value) => text != Some(value.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> Vec<pb::Attribute> {
        pando_resources::parse_attributes("rack:r1;zone:a;level:3").unwrap()
    }

    fn c(attribute: &str, predicate: Predicate) -> Constraint {
        Constraint {
            attribute: attribute.into(),
            predicate,
        }
    }

    #[test]
    fn groups_are_or_of_and() {
        let none = RoleConstraints::default();
        assert!(none.admits(&attrs()));
        let rack_r2_or_zone_a = RoleConstraints {
            groups: vec![
                vec![c("rack", Predicate::TextEquals("r2".into()))],
                vec![
                    c("zone", Predicate::TextEquals("a".into())),
                    c("gpu", Predicate::NotExists),
                ],
            ],
        };
        assert!(rack_r2_or_zone_a.admits(&attrs()));
        let needs_gpu = RoleConstraints {
            groups: vec![vec![c("gpu", Predicate::Exists)]],
        };
        assert!(!needs_gpu.admits(&attrs()));
        let not_r1 = RoleConstraints {
            groups: vec![vec![c("rack", Predicate::TextNotEquals("r1".into()))]],
        };
        assert!(!not_r1.admits(&attrs()));
        // A non-TEXT attribute never equals a text value.
        assert!(!c("level", Predicate::TextEquals("3".into())).holds(&attrs()));
    }
}
