//! The summary object Mesos's JSON endpoints write for a bag of resources.
//!
//! `/master/state`, `/master/frameworks`, `/master/slaves`, the agent's
//! `/state` and their kin show resources not as a list but as one object
//! keyed by name: `{"disk": 0.0, "mem": 128.0, "gpus": 0.0, "cpus": 1.5,
//! "ports": "[31000-32000]"}`. `disk`, `mem`, `gpus` and `cpus` are always
//! there (zero when absent); every other name follows in the order its
//! first resource appears. Scalars are summed over reservations and
//! allocations in fixed point and written as the double Mesos prints
//! (see [`Scalar::as_f64`](crate::Scalar::as_f64)); ranges and sets are merged over all resources
//! of the name and written in their text form (`[1-2, 5-9]`, `{a, b}`).
//!
//! The master and the agent both write it through [`Resources::summary_json`].

use serde_json::{Map, Value as Json};

use crate::{Resources, Set, Value};

/// The names every summary holds, in the order they are written.
const ALWAYS: [&str; 4] = ["disk", "mem", "gpus", "cpus"];

impl Resources {
    /// The summary object of these resources, as Mesos's JSON endpoints
    /// write it (see the module docs).
    pub fn summary_json(&self) -> Json {
        let mut map = Map::new();
        for name in ALWAYS {
            map.insert(name.to_string(), Json::from(self.scalar(name).as_f64()));
        }
        for resource in self {
            let name = &resource.name;
            if map.contains_key(name) {
                continue;
            }
            let value = match &resource.value {
                Value::Scalar(_) => Json::from(self.scalar(name).as_f64()),
                Value::Ranges(_) => Json::from(self.ranges(name).to_string()),
                Value::Set(_) => Json::from(self.set(name).to_string()),
            };
            map.insert(name.clone(), value);
        }
        Json::Object(map)
    }

    /// All items of the set resources named `name`, over all reservations
    /// and allocations.
    pub fn set(&self, name: &str) -> Set {
        self.iter()
            .filter(|r| r.name == name)
            .filter_map(|r| r.value.as_set())
            .fold(Set::new(), |all, set| all.union(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(text: &str) -> String {
        Resources::parse(text)
            .expect("test resources parse")
            .summary_json()
            .to_string()
    }

    #[test]
    fn summaries_hold_the_four_scalars_first_then_the_rest_in_order() {
        let cases = [
            ("", r#"{"disk":0.0,"mem":0.0,"gpus":0.0,"cpus":0.0}"#),
            (
                "cpus:1.5;mem:128",
                r#"{"disk":0.0,"mem":128.0,"gpus":0.0,"cpus":1.5}"#,
            ),
            (
                "ports:[31000-32000];cpus:2;disks:{a,b}",
                r#"{"disk":0.0,"mem":0.0,"gpus":0.0,"cpus":2.0,"ports":"[31000-32000]","disks":"{a, b}"}"#,
            ),
        ];
        for (text, json) in cases {
            assert_eq!(summary(text), json, "{text:?}");
        }
    }

    #[test]
    fn summaries_add_in_fixed_point_and_merge_ranges_and_sets_across_roles() {
        // 0.1 + 0.2 in f64 is 0.30000000000000004; in fixed point it is 0.3.
        let text = "cpus:0.1;cpus(eng):0.2;ports:[1-2];ports(eng):[3-5,9-9];\
                    zones:{a};zones(eng):{b};bandwidth:100;bandwidth(eng):0.5";
        assert_eq!(
            summary(text),
            r#"{"disk":0.0,"mem":0.0,"gpus":0.0,"cpus":0.3,"ports":"[1-5, 9-9]","zones":"{a, b}","bandwidth":100.5}"#
        );
    }
}
