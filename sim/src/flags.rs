//! The flags of `pando simulate`. Durations take Mesos's forms (`100ms`,
//! `1secs`, `2mins`; see [`pando_proto::stout`]).
//!
//! clap parses the command line into [`SimulateFlags`]; [`SimulateFlags::check`]
//! then rejects combinations that cannot run (more decliners than frameworks,
//! a task bigger than an agent) before anything starts.

use std::time::Duration;

use pando_proto::stout::parse_duration;

use crate::profile::ProfileChoice;

/// What is wrong with a flag.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    /// Flags that contradict each other.
    #[error("{0}")]
    Invalid(String),
}

/// Flags of `pando simulate`.
#[derive(Debug, Clone, clap::Args)]
#[command(rename_all = "snake_case")]
pub struct SimulateFlags {
    /// The master to load, `host:port`. Without it, `simulate` starts a
    /// master of its own on a free loopback port and measures its CPU and
    /// memory from /proc.
    #[arg(long)]
    pub master: Option<String>,
    /// How many simulated agents register.
    #[arg(long, default_value_t = 100)]
    pub agents: usize,
    /// How many simulated frameworks subscribe (decliners included).
    #[arg(long, default_value_t = 10)]
    pub frameworks: usize,
    /// How the frameworks that launch choose tasks per offer: `marathon`
    /// (up to 100), `spark` (5), `jenkins` (1), or `mixed` (the three in turn).
    #[arg(long, default_value = "mixed", value_parser = parse_profile)]
    pub profile: ProfileChoice,
    /// How many of the frameworks decline every offer.
    #[arg(long, default_value_t = 0)]
    pub decliners: usize,
    /// Tasks to run in all; the run ends when all of them have finished.
    #[arg(long, default_value_t = 1000)]
    pub tasks: u64,
    /// The most tasks one framework keeps launched and unfinished; it
    /// launches more as they finish. 0: no limit, every framework launches
    /// all its tasks as fast as offers allow (a launch storm).
    #[arg(long, default_value_t = 0)]
    pub max_active: u64,
    /// How long a simulated task runs before its agent reports TASK_FINISHED.
    #[arg(long, default_value = "1secs", value_parser = parse_duration)]
    pub task_duration: Duration,
    /// CPUs of one task.
    #[arg(long, default_value_t = 0.01)]
    pub task_cpus: f64,
    /// Memory of one task, in MB.
    #[arg(long, default_value_t = 16.0)]
    pub task_mem: f64,
    /// Resources of every simulated agent, in Mesos text form.
    #[arg(long, default_value = "cpus:8;mem:16384")]
    pub agent_resources: String,
    /// The longest the workload may run; the run stops there even if tasks
    /// are left (and `simulate` exits with status 1).
    #[arg(long, default_value = "60secs", value_parser = parse_duration)]
    pub duration: Duration,
    /// `--allocation_interval` of the master `simulate` starts.
    #[arg(long, default_value = "1secs", value_parser = parse_duration)]
    pub allocation_interval: Duration,
    /// How many agent sessions share one HTTP/2 connection to the master
    /// (the master allows 200 concurrent streams per connection).
    #[arg(long, default_value_t = 100)]
    pub agents_per_connection: usize,
    /// The refuse_seconds with which a launching framework declines offers
    /// it has no use for right now (at `--max_active`, or nothing left to
    /// launch); it REVIVEs when it wants offers again. 120 s is Marathon's
    /// and Spark's default. Decliners always refuse for 5 s.
    #[arg(long, default_value_t = 120.0)]
    pub refuse_unneeded_seconds: f64,
    /// How many scheduler calls one framework may have in flight.
    #[arg(long, default_value_t = 8)]
    pub calls_in_flight: usize,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Measure leader failover instead of a workload: start 3 masters with
    /// `--registry=replicated_log`, register `--agents` agents and run
    /// `--tasks` tasks, `kill -9` the leader, and time how long until a new
    /// leader accepts SUBSCRIBE and until every agent has re-registered.
    #[arg(long)]
    pub failover: bool,
    /// With `--failover`: how many times to kill a leader (each run on a
    /// fresh cluster); the report gives min, median and max.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Run real tasks instead of simulated agents: start ONE real `pando
    /// agent` process (`--agents` is not used), and let the frameworks
    /// launch `--tasks` command tasks running `true` on it. The report
    /// times first ACCEPT → last TASK_FINISHED and gives the agent's cost
    /// per task.
    #[arg(long)]
    pub real: bool,
    /// With `--real`: the agent's isolation, `cgroups` or `posix`. Without
    /// it, cgroups when they are usable (root, and a test group can be
    /// made), else posix, and the report says why.
    #[arg(long)]
    pub isolation: Option<String>,
    /// With `--real`: the agent's `--cgroups_root` (default
    /// `pando-sim-<pid>`); it is removed, with anything left in it, when
    /// the run ends.
    #[arg(long)]
    pub cgroups_root: Option<String>,
    /// With `--real`: the agent's RUST_LOG (its log is kept only when the
    /// agent fails).
    #[arg(long, default_value = "warn")]
    pub agent_log: String,
    /// With `--real`: write the agent's log to this file and keep it
    /// (default: a temporary file, removed at the end).
    #[arg(long)]
    pub agent_log_file: Option<std::path::PathBuf>,
}

impl SimulateFlags {
    /// Rejects flags that cannot make a run.
    pub fn check(&self) -> Result<(), FlagsError> {
        if self.agents == 0 {
            return Err(FlagsError::Invalid("--agents must be at least 1".into()));
        }
        if self.frameworks == 0 {
            return Err(FlagsError::Invalid(
                "--frameworks must be at least 1".into(),
            ));
        }
        if self.decliners >= self.frameworks && self.tasks > 0 {
            return Err(FlagsError::Invalid(format!(
                "--decliners ({}) leaves no framework of --frameworks ({}) to launch tasks",
                self.decliners, self.frameworks
            )));
        }
        if self.task_cpus <= 0.0 || self.task_mem <= 0.0 {
            return Err(FlagsError::Invalid(
                "--task_cpus and --task_mem must be positive".into(),
            ));
        }
        if self.agents_per_connection == 0 || self.agents_per_connection > 200 {
            return Err(FlagsError::Invalid(
                "--agents_per_connection must be 1 to 200 (the master's stream limit)".into(),
            ));
        }
        if self.failover && self.master.is_some() {
            return Err(FlagsError::Invalid(
                "--failover starts its own 3 masters; drop --master".into(),
            ));
        }
        if self.failover && self.runs == 0 {
            return Err(FlagsError::Invalid("--runs must be at least 1".into()));
        }
        if self.real && (self.failover || self.master.is_some()) {
            return Err(FlagsError::Invalid(
                "--real starts its own master and agent; drop --failover and --master".into(),
            ));
        }
        if let Some(i) = self.isolation.as_deref() {
            if !self.real || !matches!(i, "cgroups" | "posix") {
                return Err(FlagsError::Invalid(format!(
                    "--isolation must be 'cgroups' or 'posix', and needs --real (got '{i}')"
                )));
            }
        }
        if self.calls_in_flight == 0 {
            return Err(FlagsError::Invalid(
                "--calls_in_flight must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

fn parse_profile(text: &str) -> Result<ProfileChoice, String> {
    ProfileChoice::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pando simulate` as clap sees it, for the tests.
    #[derive(Debug, clap::Parser)]
    struct Simulate {
        #[command(flatten)]
        flags: SimulateFlags,
    }

    #[test]
    fn durations_take_mesos_forms_only() {
        use clap::Parser;
        let sim = Simulate::try_parse_from(["simulate", "--task_duration=1.5secs"])
            .expect("a Mesos duration parses");
        assert_eq!(sim.flags.task_duration, Duration::from_millis(1500));
        assert_eq!(sim.flags.duration, Duration::from_secs(60));
        let bare = Simulate::try_parse_from(["simulate", "--duration=3"])
            .expect_err("a duration needs a unit")
            .to_string();
        assert!(bare.contains("missing a unit"), "{bare}");
    }
}
