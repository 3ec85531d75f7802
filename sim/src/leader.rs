//! Finding the leading master again after a session ends: the order in
//! which a simulated agent tries the masters, and when it pauses.
//!
//! With `--registry=replicated_log` only the leader takes agent sessions.
//! A standby refuses with UNAVAILABLE and, when it knows the leader, names
//! it in the `pando-leader` metadata. An agent whose session ended asks
//! [`LeaderSearch`] where to go next after every attempt:
//!
//! ```text
//!   session lost at M ──► next master after M, at once
//!   refused, hint H   ──► H at once, unless H was tried this round
//!   refused, no hint  ──► next master not tried this round, at once
//!   unreachable       ──┘
//!   every master tried this round ──► pause 100–300 ms, start a new round
//! ```
//!
//! A round is the set of masters tried since the last pause, so an agent
//! makes at most one attempt per master between pauses, however the
//! standbys' hints point. Right after a leader dies the standbys still name
//! it until Raft notices (an election timeout, 1–2 s by default); rounds
//! keep the agents from hammering the dead address meanwhile. The pause is
//! jittered so a thousand agents do not arrive in lockstep.
//!
//! The search is pure: it decides, the agent sleeps and dials.

use std::collections::BTreeSet;
use std::time::Duration;

/// The shortest pause between rounds.
pub const PAUSE_MIN: Duration = Duration::from_millis(100);
/// The longest pause between rounds.
pub const PAUSE_MAX: Duration = Duration::from_millis(300);

/// How an attempt to hold a session with a master ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The agent was registered and the session then ended (the master
    /// died, or lost its leadership and dropped its sessions).
    Lost,
    /// The master refused the session as a standby; `leader` is the
    /// `pando-leader` it named, if any.
    Refused {
        /// The leader's `host:port`, when the standby knows it.
        leader: Option<String>,
    },
    /// No session: the connection failed, or the master never answered.
    Unreachable,
}

/// Where to go next, and whether to pause first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Index into the masters list.
    pub master: usize,
    /// Pause (a jittered [`PAUSE_MIN`]..[`PAUSE_MAX`]) before dialling.
    pub pause: bool,
}

/// One agent's search for the leader among a fixed list of masters.
#[derive(Debug, Clone)]
pub struct LeaderSearch {
    /// The masters' `host:port`, as every master is given them.
    masters: Vec<String>,
    /// Masters tried since the last pause.
    tried: BTreeSet<usize>,
}

impl LeaderSearch {
    /// A search among `masters` (`host:port`, at least one).
    pub fn new(masters: Vec<String>) -> LeaderSearch {
        LeaderSearch {
            masters,
            tried: BTreeSet::new(),
        }
    }

    /// The masters searched.
    pub fn masters(&self) -> &[String] {
        &self.masters
    }

    /// Where to go after an attempt at master `current` ended in `outcome`.
    pub fn after(&mut self, current: usize, outcome: &Outcome) -> Step {
        let count = self.masters.len().max(1);
        match outcome {
            Outcome::Lost => {
                // A new round that has already ruled out the lost master.
                self.tried.clear();
                self.tried.insert(current);
            }
            Outcome::Refused { .. } | Outcome::Unreachable => {
                self.tried.insert(current);
            }
        }
        if let Outcome::Refused {
            leader: Some(leader),
        } = outcome
        {
            if let Some(hinted) = self.masters.iter().position(|m| m == leader) {
                if !self.tried.contains(&hinted) {
                    return Step {
                        master: hinted,
                        pause: false,
                    };
                }
            }
        }
        let next = (1..=count)
            .map(|step| (current + step) % count)
            .find(|m| !self.tried.contains(m));
        match next {
            Some(master) => Step {
                master,
                pause: false,
            },
            None => {
                // Every master said no this round: wait for the election.
                self.tried.clear();
                Step {
                    master: (current + 1) % count,
                    pause: true,
                }
            }
        }
    }

    /// Forgets the round: the agent is registered again.
    pub fn registered(&mut self) {
        self.tried.clear();
    }
}

/// A pause between [`PAUSE_MIN`] and [`PAUSE_MAX`] for a `unit` in [0, 1).
pub fn pause(unit: f64) -> Duration {
    let unit = unit.clamp(0.0, 1.0);
    PAUSE_MIN + (PAUSE_MAX - PAUSE_MIN).mul_f64(unit)
}

/// A number in [0, 1) that differs between calls and processes, for
/// jitter; std's randomly keyed hasher is enough here.
pub fn jitter_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default(),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> LeaderSearch {
        LeaderSearch::new(vec![
            "127.0.0.1:1".into(),
            "127.0.0.1:2".into(),
            "127.0.0.1:3".into(),
        ])
    }

    fn refused(leader: Option<&str>) -> Outcome {
        Outcome::Refused {
            leader: leader.map(str::to_string),
        }
    }

    fn go(master: usize) -> Step {
        Step {
            master,
            pause: false,
        }
    }

    #[test]
    fn a_lost_session_moves_on_to_the_next_master_at_once() {
        let mut search = three();
        assert_eq!(search.after(0, &Outcome::Lost), go(1));
        let mut search = three();
        assert_eq!(search.after(2, &Outcome::Lost), go(0));
    }

    #[test]
    fn a_standby_that_names_the_leader_sends_the_agent_there() {
        let mut search = three();
        assert_eq!(search.after(0, &Outcome::Lost), go(1));
        assert_eq!(search.after(1, &refused(Some("127.0.0.1:3"))), go(2));
    }

    #[test]
    fn a_hint_at_the_dead_leader_is_not_followed_twice_in_a_round() {
        // Right after the kill the standbys still name the old leader, 0.
        let mut search = three();
        assert_eq!(search.after(0, &Outcome::Lost), go(1));
        assert_eq!(search.after(1, &refused(Some("127.0.0.1:1"))), go(2));
        assert_eq!(
            search.after(2, &refused(Some("127.0.0.1:1"))),
            Step {
                master: 0,
                pause: true
            }
        );
        // The next round may try the old address once more, then moves on.
        assert_eq!(search.after(0, &Outcome::Unreachable), go(1));
    }

    #[test]
    fn no_leader_anywhere_pauses_once_per_round() {
        let mut search = three();
        assert_eq!(search.after(0, &refused(None)), go(1));
        assert_eq!(search.after(1, &refused(None)), go(2));
        let step = search.after(2, &refused(None));
        assert!(step.pause);
        assert_eq!(step.master, 0);
        // A fresh round: no pause until every master has refused again.
        assert_eq!(search.after(0, &refused(None)), go(1));
    }

    #[test]
    fn a_hint_naming_an_unknown_master_is_ignored() {
        let mut search = three();
        assert_eq!(search.after(0, &refused(Some("10.0.0.9:5050"))), go(1));
    }

    #[test]
    fn registering_starts_a_fresh_round() {
        let mut search = three();
        assert_eq!(search.after(0, &refused(None)), go(1));
        search.registered();
        // Master 0 is no longer ruled out.
        assert_eq!(search.after(1, &Outcome::Unreachable), go(2));
        assert_eq!(search.after(2, &Outcome::Unreachable), go(0));
    }

    #[test]
    fn one_master_pauses_between_attempts() {
        let mut search = LeaderSearch::new(vec!["127.0.0.1:1".into()]);
        assert_eq!(
            search.after(0, &Outcome::Lost),
            Step {
                master: 0,
                pause: true
            }
        );
    }

    #[test]
    fn pauses_stay_within_bounds() {
        assert_eq!(pause(0.0), PAUSE_MIN);
        assert_eq!(pause(1.0), PAUSE_MAX);
        assert_eq!(pause(0.5), Duration::from_millis(200));
        for _ in 0..100 {
            let unit = jitter_unit();
            assert!((0.0..1.0).contains(&unit), "{unit}");
        }
    }
}
