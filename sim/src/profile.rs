//! Framework profiles, after Mesos's `hierarchical_allocator_benchmarks`:
//! how many tasks a framework launches on one offer.
//!
//! A simulated framework asks its [`Profile`] for a [`Plan`] on every offer
//! it receives; the plan is pure arithmetic on the offer's size, the task's
//! size and the tasks the framework still has to launch.

/// What is wrong with a profile name.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Not one of the known names.
    #[error("unknown profile '{0}': expected marathon, spark, jenkins or mixed")]
    Unknown(String),
}

/// How one simulated framework treats offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Marathon-like: up to 100 tasks per offer.
    Marathon,
    /// Spark-like: up to 5 tasks (executors) per offer.
    Spark,
    /// Jenkins-like: one task per offer.
    Jenkins,
    /// Declines every offer.
    Decliner,
}

/// The `--profile` flag: one profile for every launching framework, or
/// `mixed` to take Marathon, Spark and Jenkins in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileChoice {
    /// Every launching framework is Marathon-like.
    Marathon,
    /// Every launching framework is Spark-like.
    Spark,
    /// Every launching framework is Jenkins-like.
    Jenkins,
    /// Marathon, Spark and Jenkins in turn.
    Mixed,
}

impl ProfileChoice {
    /// Parses `marathon`, `spark`, `jenkins` or `mixed`.
    pub fn parse(text: &str) -> Result<ProfileChoice, String> {
        match text {
            "marathon" => Ok(ProfileChoice::Marathon),
            "spark" => Ok(ProfileChoice::Spark),
            "jenkins" => Ok(ProfileChoice::Jenkins),
            "mixed" => Ok(ProfileChoice::Mixed),
            other => Err(ProfileError::Unknown(other.into()).to_string()),
        }
    }

    /// The name, as the flag takes it.
    pub fn name(self) -> &'static str {
        match self {
            ProfileChoice::Marathon => "marathon",
            ProfileChoice::Spark => "spark",
            ProfileChoice::Jenkins => "jenkins",
            ProfileChoice::Mixed => "mixed",
        }
    }

    /// The profile of framework `index` of `frameworks`, the last
    /// `decliners` of which decline everything.
    pub fn for_framework(self, index: usize, frameworks: usize, decliners: usize) -> Profile {
        if index + decliners >= frameworks {
            return Profile::Decliner;
        }
        match self {
            ProfileChoice::Marathon => Profile::Marathon,
            ProfileChoice::Spark => Profile::Spark,
            ProfileChoice::Jenkins => Profile::Jenkins,
            ProfileChoice::Mixed => match index % 3 {
                0 => Profile::Marathon,
                1 => Profile::Spark,
                _ => Profile::Jenkins,
            },
        }
    }
}

/// A size in the two scalars the simulation uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    /// CPUs.
    pub cpus: f64,
    /// Memory in MB.
    pub mem: f64,
}

/// What a framework does with one offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// ACCEPT it with this many tasks (at least one).
    Launch(u64),
    /// DECLINE it.
    Decline,
}

impl Profile {
    /// The most tasks this profile launches on one offer.
    pub fn tasks_per_offer(self) -> u64 {
        match self {
            Profile::Marathon => 100,
            Profile::Spark => 5,
            Profile::Jenkins => 1,
            Profile::Decliner => 0,
        }
    }

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Marathon => "marathon",
            Profile::Spark => "spark",
            Profile::Jenkins => "jenkins",
            Profile::Decliner => "decliner",
        }
    }

    /// The plan for an offer of `offer` when each task needs `task` and
    /// `remaining` tasks are still to launch.
    pub fn plan(self, offer: Size, task: Size, remaining: u64) -> Plan {
        // A small epsilon keeps 8 / 0.01 from rounding down to 799.
        let fit = |have: f64, need: f64| ((have + 1e-9) / need).floor().max(0.0) as u64;
        let fits = fit(offer.cpus, task.cpus).min(fit(offer.mem, task.mem));
        let n = self.tasks_per_offer().min(fits).min(remaining);
        if n == 0 {
            Plan::Decline
        } else {
            Plan::Launch(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: Size = Size {
        cpus: 0.01,
        mem: 16.0,
    };
    const AGENT: Size = Size {
        cpus: 8.0,
        mem: 16384.0,
    };

    #[test]
    fn each_profile_caps_tasks_per_offer() {
        assert_eq!(Profile::Marathon.plan(AGENT, TASK, 1000), Plan::Launch(100));
        assert_eq!(Profile::Spark.plan(AGENT, TASK, 1000), Plan::Launch(5));
        assert_eq!(Profile::Jenkins.plan(AGENT, TASK, 1000), Plan::Launch(1));
        assert_eq!(Profile::Decliner.plan(AGENT, TASK, 1000), Plan::Decline);
    }

    #[test]
    fn plans_never_exceed_the_offer_or_the_work_left() {
        assert_eq!(Profile::Marathon.plan(AGENT, TASK, 7), Plan::Launch(7));
        assert_eq!(Profile::Marathon.plan(AGENT, TASK, 0), Plan::Decline);
        let small = Size {
            cpus: 0.05,
            mem: 16384.0,
        };
        assert_eq!(Profile::Marathon.plan(small, TASK, 1000), Plan::Launch(5));
        let little_mem = Size {
            cpus: 8.0,
            mem: 40.0,
        };
        assert_eq!(Profile::Spark.plan(little_mem, TASK, 1000), Plan::Launch(2));
        let empty = Size {
            cpus: 0.005,
            mem: 16384.0,
        };
        assert_eq!(Profile::Jenkins.plan(empty, TASK, 1000), Plan::Decline);
        // Exactly full: 8 cpus hold 800 tasks of 0.01 despite rounding.
        let exact = Size {
            cpus: 0.03,
            mem: 48.0,
        };
        assert_eq!(Profile::Marathon.plan(exact, TASK, 1000), Plan::Launch(3));
    }

    #[test]
    fn mixed_takes_turns_and_decliners_come_last() {
        let m = ProfileChoice::Mixed;
        assert_eq!(m.for_framework(0, 5, 2), Profile::Marathon);
        assert_eq!(m.for_framework(1, 5, 2), Profile::Spark);
        assert_eq!(m.for_framework(2, 5, 2), Profile::Jenkins);
        assert_eq!(m.for_framework(3, 5, 2), Profile::Decliner);
        assert_eq!(m.for_framework(4, 5, 2), Profile::Decliner);
        assert_eq!(ProfileChoice::Spark.for_framework(4, 5, 0), Profile::Spark);
        assert!(ProfileChoice::parse("yarn").is_err());
        assert_eq!(ProfileChoice::parse("jenkins"), Ok(ProfileChoice::Jenkins));
    }
}
