//! The flags of `pando simulate`, and the Mesos duration syntax they use.
//!
//! clap parses the command line into [`SimulateFlags`]; [`SimulateFlags::check`]
//! then rejects combinations that cannot run (more decliners than frameworks,
//! a task bigger than an agent) before anything starts.

use std::time::Duration;

use crate::profile::ProfileChoice;

/// What is wrong with a flag.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    /// A duration that is not `<number><unit>`.
    #[error("invalid duration '{0}': expected e.g. 100ms, 1secs, 2mins")]
    Duration(String),
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

/// Parses a Mesos duration such as `100ms`, `1secs`, `2mins` or `1.5hrs`.
pub fn parse_duration(text: &str) -> Result<Duration, FlagsError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| FlagsError::Duration(text.into()))?;
    let seconds = match unit.trim() {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "" | "s" | "sec" | "secs" => 1.0,
        "min" | "mins" => 60.0,
        "hr" | "hrs" => 3600.0,
        "day" | "days" => 86_400.0,
        "week" | "weeks" => 604_800.0,
        _ => return Err(FlagsError::Duration(text.into())),
    };
    Duration::try_from_secs_f64(value * seconds).map_err(|_| FlagsError::Duration(text.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_mesos_units() {
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1secs").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("2mins").unwrap(), Duration::from_secs(120));
        assert_eq!(
            parse_duration("1.5secs").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("1parsec").is_err());
    }
}
