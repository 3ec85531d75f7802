//! The master's flags, named as Mesos names them.
//!
//! `pando master --help` lists them. Durations take Mesos's forms (`15secs`,
//! `1mins`, `500ms`, `2hrs`, `1days`, `1weeks`; see [`pando_proto::stout`]);
//! weights take `role=weight,...`; `--min_allocatable_resources` takes
//! `cpus:0.01|mem:32`, alternatives separated by `|`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use pando_proto::stout::{format_duration, parse_duration};
use pando_resources::{role, ResourceQuantities};

/// Why a flag's value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagsError {
    /// `--weights` did not parse.
    #[error("invalid --weights entry '{entry}': {reason}")]
    Weights {
        /// The entry.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--roles` named an invalid role.
    #[error("invalid --roles entry '{entry}': {reason}")]
    Roles {
        /// The entry.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--min_allocatable_resources` did not parse.
    #[error("invalid --min_allocatable_resources '{0}': expected name:quantity pairs joined by ';', alternatives joined by '|'")]
    MinAllocatable(String),
    /// `--credentials` could not be read.
    #[error("cannot read --credentials '{path}': {reason}")]
    Credentials {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// Rewrites Mesos's negated booleans (`--no-authenticate_frameworks`) as
/// `--authenticate_frameworks=false`, the form clap reads.
pub fn rewrite_negations(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|a| match a.strip_prefix("--no-") {
            Some(name) if !name.contains('=') => format!("--{name}=false"),
            _ => a,
        })
        .collect()
}

/// Flags of `pando master`.
#[derive(Debug, Clone, clap::Args)]
#[command(rename_all = "snake_case")]
pub struct MasterFlags {
    /// IP address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: IpAddr,
    /// Port to listen on for HTTP (the Mesos APIs) and the agent link.
    #[arg(long, default_value_t = 5050)]
    pub port: u16,
    /// Hostname to advertise (defaults to the IP).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Where the master keeps its data.
    #[arg(long, default_value = "/var/lib/pando/master")]
    pub work_dir: PathBuf,
    /// Human-readable name of the cluster, shown in the state endpoints.
    #[arg(long)]
    pub cluster: Option<String>,
    /// How often the allocator runs a cycle (it also runs early on events).
    #[arg(long, default_value = "1secs", value_parser = parse_duration)]
    pub allocation_interval: Duration,
    /// Offers held longer than this are rescinded (none by default).
    #[arg(long, value_parser = parse_duration)]
    pub offer_timeout: Option<Duration>,
    /// An offer must hold at least one of these quantity sets.
    #[arg(long)]
    pub min_allocatable_resources: Option<String>,
    /// Accepted for compatibility: Mesos 1.x accepts any role; the list is
    /// only validated.
    #[arg(long)]
    pub roles: Option<String>,
    /// Role weights, `role=weight,...`.
    #[arg(long)]
    pub weights: Option<String>,
    /// How long the master waits for a pong before it counts a missed ping.
    #[arg(long, default_value = "15secs", value_parser = parse_duration)]
    pub agent_ping_timeout: Duration,
    /// Missed pings after which an agent is unreachable.
    #[arg(long, default_value_t = 5)]
    pub max_agent_ping_timeouts: u32,
    /// How long a new leader waits for agents to re-register.
    #[arg(long, default_value = "10mins", value_parser = parse_duration)]
    pub agent_reregister_timeout: Duration,
    /// How long the registry remembers an unreachable or gone agent.
    #[arg(long, default_value = "2weeks", value_parser = parse_duration)]
    pub registry_max_agent_age: Duration,
    /// How many unreachable and gone agents the registry remembers (the
    /// oldest are forgotten first).
    #[arg(long, default_value_t = 102_400)]
    pub registry_max_agent_count: usize,
    /// How often the registry is pruned of agents past those limits.
    #[arg(long, default_value = "15mins", value_parser = parse_duration)]
    pub registry_gc_interval: Duration,
    /// How many completed frameworks the state endpoints remember.
    #[arg(long, default_value_t = 50)]
    pub max_completed_frameworks: usize,
    /// How many completed tasks per framework the state endpoints remember.
    #[arg(long, default_value_t = 1000)]
    pub max_completed_tasks_per_framework: usize,
    /// Require HTTP Basic credentials on `/api/v1/scheduler`.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub authenticate_frameworks: bool,
    /// Require HTTP Basic credentials of HTTP frameworks (Mesos's flag for
    /// v1 frameworks; `--authenticate_frameworks` is honoured the same way).
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub authenticate_http_frameworks: bool,
    /// The authenticator for HTTP frameworks: only `basic`.
    #[arg(long, value_parser = ["basic"])]
    pub http_framework_authenticators: Option<String>,
    /// The authenticator for operator endpoints: only `basic`.
    #[arg(long, value_parser = ["basic"])]
    pub http_authenticators: Option<String>,
    /// Require credentials on read-only endpoints.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub authenticate_http_readonly: bool,
    /// Require credentials on read-write endpoints.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub authenticate_http_readwrite: bool,
    /// A JSON file of credentials: `{"credentials":[{"principal":..,"secret":..}]}`.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// The size of a quorum of masters: a majority of `--masters` (2 of 3,
    /// 3 of 5). Required with `--registry=replicated_log`.
    #[arg(long)]
    pub quorum: Option<u32>,
    /// The registry: `in_memory` for one master, `replicated_log` for a
    /// Raft-replicated registry on the `--masters`.
    #[arg(long, default_value = "in_memory")]
    pub registry: String,
    /// Every master of the cluster, `host:port,...` (HTTP addresses; each
    /// master finds itself by `--ip`/`--hostname` and `--port`). Every
    /// master is given the same list.
    #[arg(long)]
    pub masters: Option<String>,
    /// A separate port for Raft between masters (default: the master's
    /// port). All masters of a cluster use the same setting.
    #[arg(long)]
    pub raft_port: Option<u16>,
    /// Raft heartbeat interval between masters.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub raft_heartbeat_interval: Duration,
    /// Raft election timeout: a follower that hears no leader for a random
    /// time between this and 1.5 times this starts an election. (openraft
    /// also lets a leader's lease, the longest timeout, run out first, so a
    /// dead leader is replaced after about 2 to 2.5 times this.)
    #[arg(long, default_value = "750ms", value_parser = parse_duration)]
    pub raft_election_timeout: Duration,
    /// Largest request body accepted, in bytes (413 above it).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_request_body_bytes: usize,
    /// How long a client may take to send a request's headers (from the
    /// connection's start or its previous request); slower and idle
    /// connections are closed.
    #[arg(long, default_value = "30secs", value_parser = parse_duration)]
    pub http_header_read_timeout: Duration,
    /// Seconds between scheduler and operator stream heartbeats.
    #[arg(long, default_value = "15secs", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,
    /// Largest value of one adapter record (`/registry/records`), in bytes
    /// (at most 4 MiB: a record must reach the other masters within one
    /// `--raft_heartbeat_interval`).
    #[arg(long, default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=4 * 1024 * 1024))]
    pub max_record_bytes: u64,
    /// Largest sum of keys and values in one adapter record namespace, in
    /// bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub max_namespace_bytes: u64,
}

impl MasterFlags {
    /// Flags with every default, listening on `ip:port` with `work_dir`.
    pub fn with_defaults(ip: IpAddr, port: u16, work_dir: PathBuf) -> MasterFlags {
        MasterFlags {
            ip,
            port,
            hostname: None,
            work_dir,
            cluster: None,
            allocation_interval: Duration::from_secs(1),
            offer_timeout: None,
            min_allocatable_resources: None,
            roles: None,
            weights: None,
            agent_ping_timeout: Duration::from_secs(15),
            max_agent_ping_timeouts: 5,
            agent_reregister_timeout: Duration::from_secs(600),
            registry_max_agent_age: Duration::from_secs(14 * 24 * 3600),
            registry_max_agent_count: 102_400,
            registry_gc_interval: Duration::from_secs(15 * 60),
            max_completed_frameworks: 50,
            max_completed_tasks_per_framework: 1000,
            authenticate_frameworks: false,
            authenticate_http_frameworks: false,
            http_framework_authenticators: None,
            http_authenticators: None,
            authenticate_http_readonly: false,
            authenticate_http_readwrite: false,
            credentials: None,
            quorum: None,
            registry: "in_memory".into(),
            masters: None,
            raft_port: None,
            raft_heartbeat_interval: Duration::from_millis(250),
            raft_election_timeout: Duration::from_millis(750),
            max_request_body_bytes: 16 * 1024 * 1024,
            heartbeat_interval: Duration::from_secs(15),
            http_header_read_timeout: Duration::from_secs(30),
            max_record_bytes: 1024 * 1024,
            max_namespace_bytes: 64 * 1024 * 1024,
        }
    }

    /// `--weights` as (role, weight) pairs.
    pub fn parsed_weights(&self) -> Result<Vec<(String, f64)>, FlagsError> {
        let Some(text) = self.weights.as_deref() else {
            return Ok(Vec::new());
        };
        text.split(',')
            .filter(|e| !e.trim().is_empty())
            .map(|entry| {
                let bad = |reason: &str| FlagsError::Weights {
                    entry: entry.to_string(),
                    reason: reason.to_string(),
                };
                let (name, weight) = entry
                    .split_once('=')
                    .ok_or_else(|| bad("expected role=weight"))?;
                role::validate(name.trim()).map_err(|e| bad(&e.to_string()))?;
                let weight: f64 = weight
                    .trim()
                    .parse()
                    .map_err(|_| bad("the weight is not a number"))?;
                if !(weight.is_finite() && weight > 0.0) {
                    return Err(bad("weights must be positive"));
                }
                Ok((name.trim().to_string(), weight))
            })
            .collect()
    }

    /// `--roles`, validated.
    pub fn parsed_roles(&self) -> Result<Vec<String>, FlagsError> {
        let Some(text) = self.roles.as_deref() else {
            return Ok(Vec::new());
        };
        text.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| {
                role::validate(entry).map_err(|e| FlagsError::Roles {
                    entry: entry.to_string(),
                    reason: e.to_string(),
                })?;
                Ok(entry.to_string())
            })
            .collect()
    }

    /// `--min_allocatable_resources`, or `None` for the allocator's default.
    pub fn parsed_min_allocatable(&self) -> Result<Option<Vec<ResourceQuantities>>, FlagsError> {
        let Some(text) = self.min_allocatable_resources.as_deref() else {
            return Ok(None);
        };
        text.split('|')
            .map(|alternative| {
                ResourceQuantities::parse(alternative)
                    .map_err(|_| FlagsError::MinAllocatable(text.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Every flag as (name, value) strings, for GET_FLAGS and `/master/flags`.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        let duration = |d: Duration| format_duration(d);
        let mut pairs = vec![
            ("ip".to_string(), self.ip.to_string()),
            ("port".to_string(), self.port.to_string()),
            ("work_dir".to_string(), self.work_dir.display().to_string()),
            (
                "allocation_interval".to_string(),
                duration(self.allocation_interval),
            ),
            (
                "agent_ping_timeout".to_string(),
                duration(self.agent_ping_timeout),
            ),
            (
                "max_agent_ping_timeouts".to_string(),
                self.max_agent_ping_timeouts.to_string(),
            ),
            (
                "agent_reregister_timeout".to_string(),
                duration(self.agent_reregister_timeout),
            ),
            (
                "registry_max_agent_age".to_string(),
                duration(self.registry_max_agent_age),
            ),
            (
                "registry_max_agent_count".to_string(),
                self.registry_max_agent_count.to_string(),
            ),
            (
                "registry_gc_interval".to_string(),
                duration(self.registry_gc_interval),
            ),
            (
                "max_completed_frameworks".to_string(),
                self.max_completed_frameworks.to_string(),
            ),
            (
                "max_completed_tasks_per_framework".to_string(),
                self.max_completed_tasks_per_framework.to_string(),
            ),
            (
                "authenticate_frameworks".to_string(),
                self.authenticate_frameworks.to_string(),
            ),
            (
                "authenticate_http_frameworks".to_string(),
                self.authenticate_http_frameworks.to_string(),
            ),
            (
                "authenticate_http_readonly".to_string(),
                self.authenticate_http_readonly.to_string(),
            ),
            (
                "authenticate_http_readwrite".to_string(),
                self.authenticate_http_readwrite.to_string(),
            ),
            ("registry".to_string(), self.registry.clone()),
            (
                "max_record_bytes".to_string(),
                self.max_record_bytes.to_string(),
            ),
            (
                "max_namespace_bytes".to_string(),
                self.max_namespace_bytes.to_string(),
            ),
        ];
        let optional = [
            ("hostname", self.hostname.clone()),
            ("cluster", self.cluster.clone()),
            ("masters", self.masters.clone()),
            ("raft_port", self.raft_port.map(|p| p.to_string())),
            ("offer_timeout", self.offer_timeout.map(duration)),
            (
                "min_allocatable_resources",
                self.min_allocatable_resources.clone(),
            ),
            ("roles", self.roles.clone()),
            ("weights", self.weights.clone()),
            (
                "credentials",
                self.credentials.as_ref().map(|p| p.display().to_string()),
            ),
            ("quorum", self.quorum.map(|q| q.to_string())),
            (
                "http_framework_authenticators",
                self.http_framework_authenticators.clone(),
            ),
            ("http_authenticators", self.http_authenticators.clone()),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                pairs.push((name.to_string(), value));
            }
        }
        pairs.sort();
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pando master` as clap sees it, for the tests.
    #[derive(Debug, clap::Parser)]
    struct Master {
        #[command(flatten)]
        flags: MasterFlags,
    }

    #[test]
    fn durations_take_mesos_forms_and_print_as_mesos_does() {
        use clap::Parser;
        let master = Master::try_parse_from(["master", "--allocation_interval=1.5mins"])
            .expect("a Mesos duration parses");
        assert_eq!(master.flags.allocation_interval, Duration::from_secs(90));
        let pairs = master.flags.to_pairs();
        let flag = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(flag("allocation_interval").as_deref(), Some("90secs"));
        assert_eq!(flag("agent_reregister_timeout").as_deref(), Some("10mins"));

        let bare = Master::try_parse_from(["master", "--allocation_interval=5"])
            .expect_err("a duration needs a unit")
            .to_string();
        assert!(bare.contains("'5'"), "{bare}");
        assert!(bare.contains("missing a unit"), "{bare}");
    }

    #[test]
    fn weights_and_min_allocatable_parse_or_name_the_bad_part() {
        let mut flags = MasterFlags::with_defaults([127, 0, 0, 1].into(), 5050, "/tmp".into());
        flags.weights = Some("a=1,b=2.5".into());
        assert_eq!(
            flags.parsed_weights(),
            Ok(vec![("a".into(), 1.0), ("b".into(), 2.5)])
        );
        flags.weights = Some("a=0".into());
        assert!(matches!(
            flags.parsed_weights(),
            Err(FlagsError::Weights { .. })
        ));
        flags.min_allocatable_resources = Some("cpus:1;mem:32|disk:5".into());
        assert_eq!(
            flags.parsed_min_allocatable().map(|v| v.map(|a| a.len())),
            Ok(Some(2))
        );
        flags.min_allocatable_resources = Some("cpus".into());
        assert!(flags.parsed_min_allocatable().is_err());
    }
}
