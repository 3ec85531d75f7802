//! The `pando agent` command line, with the flag names a Mesos agent uses.
//!
//! clap parses the flags into [`AgentFlags`]; [`AgentFlags::validate`] then
//! turns the free-form ones (`--resources`, `--attributes`, `--isolation`,
//! `--recover`, durations) into checked values, so a bad flag stops the
//! agent at start-up with a message that names the bad part.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use pando_proto::mesos::v1 as pb;
use pando_proto::stout::{parse_duration, StoutError};
use pando_resources::Resources;

/// Why the flags cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    /// `--resources` did not parse.
    #[error("invalid --resources '{given}': {reason}")]
    Resources {
        /// The flag's value.
        given: String,
        /// What the parser said.
        reason: String,
    },
    /// `--attributes` did not parse.
    #[error("invalid --attributes '{given}': {reason}")]
    Attributes {
        /// The flag's value.
        given: String,
        /// What the parser said.
        reason: String,
    },
    /// A flag has a value outside the ones it takes.
    #[error("invalid --{flag} '{given}': {reason}")]
    Value {
        /// The flag's name.
        flag: &'static str,
        /// The flag's value.
        given: String,
        /// What is wrong.
        reason: String,
    },
    /// A duration flag is not in Mesos's form (`5secs`, `15mins`).
    #[error("invalid --{flag} '{given}': {source}")]
    Duration {
        /// The flag's name.
        flag: &'static str,
        /// The flag's value.
        given: String,
        /// What is wrong with it.
        source: StoutError,
    },
    /// Detecting the machine's resources failed.
    #[error(transparent)]
    Detect(#[from] crate::detect::DetectError),
}

/// The flags of `pando agent`.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentFlags {
    /// The master to register with: `host:port`, or a comma-separated list
    /// of masters (each is tried until one accepts).
    #[arg(long, env = "MESOS_MASTER")]
    pub master: String,
    /// The IP address to listen on and to advertise.
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// The port of the agent's HTTP API and executor API (0 picks one).
    #[arg(long, default_value_t = 5051)]
    pub port: u16,
    /// The hostname the agent advertises (default: the machine's).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Where sandboxes and checkpoints live.
    #[arg(
        long = "work_dir",
        alias = "work-dir",
        default_value = "/var/lib/pando/agent"
    )]
    pub work_dir: PathBuf,
    /// The resources to offer, in Mesos text (`cpus:4;mem:8192`) or JSON
    /// form; missing standard resources are detected.
    #[arg(long)]
    pub resources: Option<String>,
    /// Attributes, `name:value;name:value`.
    #[arg(long)]
    pub attributes: Option<String>,
    /// Isolators: `cgroups/cpu,cgroups/mem,cgroups/pids`, or
    /// `posix/cpu,posix/mem` where cgroups are unavailable.
    #[arg(long, default_value = "cgroups/cpu,cgroups/mem,cgroups/pids")]
    pub isolation: String,
    /// The cgroup under which each container gets its own group.
    #[arg(long = "cgroups_root", alias = "cgroups-root", default_value = "pando")]
    pub cgroups_root: String,
    /// `reconnect` re-attaches to checkpointed executors after a restart;
    /// `cleanup` kills them and registers as a new agent.
    #[arg(long, default_value = "reconnect")]
    pub recover: String,
    /// How long an executor has to shut down before it is killed.
    #[arg(
        long = "executor_shutdown_grace_period",
        alias = "executor-shutdown-grace-period",
        default_value = "5secs"
    )]
    pub executor_shutdown_grace_period: String,
    /// How long a launched executor has to subscribe before it is killed.
    #[arg(
        long = "executor_registration_timeout",
        alias = "executor-registration-timeout",
        default_value = "1mins"
    )]
    pub executor_registration_timeout: String,
    /// How long re-attached executors have to subscribe again after an
    /// agent restart.
    #[arg(
        long = "executor_reregistration_timeout",
        alias = "executor-reregistration-timeout",
        default_value = "2secs"
    )]
    pub executor_reregistration_timeout: String,
    /// How long executors wait for a restarted agent (MESOS_RECOVERY_TIMEOUT).
    #[arg(
        long = "recovery_timeout",
        alias = "recovery-timeout",
        default_value = "15mins"
    )]
    pub recovery_timeout: String,
    /// The base of the randomised backoff between registration attempts.
    #[arg(
        long = "registration_backoff_factor",
        alias = "registration-backoff-factor",
        default_value = "1secs"
    )]
    pub registration_backoff_factor: String,
    /// Whether recovery errors (a corrupt checkpoint) stop the agent.
    /// Pando reports and skips the one bad executor either way, so the agent
    /// still starts; `--strict` only makes the report an error.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub strict: bool,
    /// Mesos's negated form of `--strict`.
    #[arg(long = "no-strict", hide = true, conflicts_with = "strict")]
    pub no_strict: bool,
    /// The directory holding the `pando` binary that runs the command and
    /// default executors (default: this binary's directory). The
    /// PANDO_EXECUTOR_BINARY environment variable names the binary itself.
    #[arg(long = "launcher_dir", alias = "launcher-dir")]
    pub launcher_dir: Option<PathBuf>,
    /// The IP address to advertise instead of `--ip` (behind NAT).
    #[arg(long = "advertise_ip", alias = "advertise-ip")]
    pub advertise_ip: Option<IpAddr>,
    /// The port to advertise instead of the bound one (behind NAT).
    #[arg(long = "advertise_port", alias = "advertise-port")]
    pub advertise_port: Option<u16>,
    /// A JSON object of variables executors start with instead of the
    /// agent's own environment, e.g. `{"PATH": "/bin:/usr/bin"}`.
    #[arg(
        long = "executor_environment_variables",
        alias = "executor-environment-variables"
    )]
    pub executor_environment_variables: Option<String>,
    /// How long a finished executor's sandbox is kept before it is removed.
    #[arg(long = "gc_delay", alias = "gc-delay", default_value = "1weeks")]
    pub gc_delay: String,
}

/// Which isolation the agent applies to containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationMode {
    /// Per-container cgroups: cpu shares and quota, memory limit, pids.
    Cgroups {
        /// Whether `cgroups/cpu` was asked for.
        cpu: bool,
        /// Whether `cgroups/mem` was asked for.
        mem: bool,
        /// Whether `cgroups/pids` was asked for.
        pids: bool,
    },
    /// Process groups only; usage is read from /proc.
    Posix,
}

/// What `--recover` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverMode {
    /// Re-attach to checkpointed executors.
    Reconnect,
    /// Kill checkpointed executors and start afresh.
    Cleanup,
}

/// The flags after validation, as the agent uses them.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The raw flags, for `/flags`.
    pub flags: AgentFlags,
    /// The masters to try, in order.
    pub masters: Vec<String>,
    /// The address to bind.
    pub bind_ip: IpAddr,
    /// The address executors and the master use to reach the agent.
    pub advertise_ip: IpAddr,
    /// The advertised hostname.
    pub hostname: String,
    /// The agent's total resources, detected where not given.
    pub resources: Resources,
    /// The agent's attributes.
    pub attributes: Vec<pb::Attribute>,
    /// The isolation mode.
    pub isolation: IsolationMode,
    /// The recovery mode.
    pub recover: RecoverMode,
    /// `--executor_shutdown_grace_period`.
    pub shutdown_grace: Duration,
    /// `--executor_registration_timeout`.
    pub registration_timeout: Duration,
    /// `--executor_reregistration_timeout`.
    pub reregistration_timeout: Duration,
    /// `--recovery_timeout`.
    pub recovery_timeout: Duration,
    /// `--registration_backoff_factor`.
    pub backoff_factor: Duration,
    /// The binary that runs the command and default executors.
    pub executor_binary: PathBuf,
    /// `--gc_delay`.
    pub gc_delay: Duration,
    /// `--executor_environment_variables`, parsed.
    pub executor_env: Option<Vec<(String, String)>>,
}

impl AgentFlags {
    /// Checks every flag and detects missing resources.
    pub fn validate(&self) -> Result<AgentConfig, FlagsError> {
        let masters: Vec<String> = self
            .master
            .split(',')
            .map(|m| m.trim().trim_start_matches("http://").to_string())
            .filter(|m| !m.is_empty())
            .collect();
        if masters.is_empty() {
            return Err(FlagsError::Value {
                flag: "master",
                given: self.master.clone(),
                reason: "expected host:port or a comma-separated list of them".into(),
            });
        }
        let given = match &self.resources {
            None => Resources::default(),
            Some(text) => {
                let trimmed = text.trim();
                let parsed = if trimmed.starts_with('[') {
                    Resources::parse_json(trimmed)
                } else {
                    Resources::parse(trimmed)
                };
                parsed.map_err(|e| FlagsError::Resources {
                    given: text.clone(),
                    reason: e.to_string(),
                })?
            }
        };
        let totals = crate::detect::MachineTotals::measure(&existing_ancestor(&self.work_dir))?;
        let resources = crate::detect::with_detected(&given, &totals)?;
        let attributes = match &self.attributes {
            None => Vec::new(),
            Some(text) => {
                pando_resources::parse_attributes(text).map_err(|e| FlagsError::Attributes {
                    given: text.clone(),
                    reason: e.to_string(),
                })?
            }
        };
        let isolation = parse_isolation(&self.isolation)?;
        let recover = match self.recover.as_str() {
            "reconnect" => RecoverMode::Reconnect,
            "cleanup" => RecoverMode::Cleanup,
            other => {
                return Err(FlagsError::Value {
                    flag: "recover",
                    given: other.into(),
                    reason: "expected 'reconnect' or 'cleanup'".into(),
                })
            }
        };
        let duration = |flag: &'static str, text: &str| {
            parse_duration(text).map_err(|source| FlagsError::Duration {
                flag,
                given: text.into(),
                source,
            })
        };
        let bind_ip = self.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let hostname = self.hostname.clone().unwrap_or_else(machine_hostname);
        // Without --ip the agent listens everywhere and advertises the
        // address its hostname resolves to, as a Mesos agent does.
        let advertise_ip = if let Some(ip) = self.advertise_ip {
            ip
        } else if bind_ip.is_unspecified() {
            resolve_ipv4(&hostname).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            bind_ip
        };
        Ok(AgentConfig {
            masters,
            bind_ip,
            advertise_ip,
            hostname,
            resources,
            attributes,
            isolation,
            recover,
            shutdown_grace: duration(
                "executor_shutdown_grace_period",
                &self.executor_shutdown_grace_period,
            )?,
            registration_timeout: duration(
                "executor_registration_timeout",
                &self.executor_registration_timeout,
            )?,
            reregistration_timeout: duration(
                "executor_reregistration_timeout",
                &self.executor_reregistration_timeout,
            )?,
            recovery_timeout: duration("recovery_timeout", &self.recovery_timeout)?,
            backoff_factor: duration(
                "registration_backoff_factor",
                &self.registration_backoff_factor,
            )?,
            executor_binary: executor_binary(self.launcher_dir.as_deref()),
            gc_delay: duration("gc_delay", &self.gc_delay)?,
            executor_env: self
                .executor_environment_variables
                .as_deref()
                .map(parse_environment)
                .transpose()?,
            flags: self.clone(),
        })
    }

    /// The flags as name/value pairs, as `/flags` lists them.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut pairs = vec![
            ("master", self.master.clone()),
            ("port", self.port.to_string()),
            ("work_dir", self.work_dir.display().to_string()),
            ("isolation", self.isolation.clone()),
            ("cgroups_root", self.cgroups_root.clone()),
            ("recover", self.recover.clone()),
            (
                "executor_shutdown_grace_period",
                self.executor_shutdown_grace_period.clone(),
            ),
            (
                "executor_registration_timeout",
                self.executor_registration_timeout.clone(),
            ),
            (
                "executor_reregistration_timeout",
                self.executor_reregistration_timeout.clone(),
            ),
            ("recovery_timeout", self.recovery_timeout.clone()),
            (
                "registration_backoff_factor",
                self.registration_backoff_factor.clone(),
            ),
            ("strict", (self.strict && !self.no_strict).to_string()),
        ];
        if let Some(ip) = self.ip {
            pairs.push(("ip", ip.to_string()));
        }
        if self.hostname.is_some() {
            pairs.push(("hostname", opt(&self.hostname)));
        }
        if self.resources.is_some() {
            pairs.push(("resources", opt(&self.resources)));
        }
        if self.attributes.is_some() {
            pairs.push(("attributes", opt(&self.attributes)));
        }
        if let Some(dir) = &self.launcher_dir {
            pairs.push(("launcher_dir", dir.display().to_string()));
        }
        if let Some(ip) = self.advertise_ip {
            pairs.push(("advertise_ip", ip.to_string()));
        }
        if let Some(port) = self.advertise_port {
            pairs.push(("advertise_port", port.to_string()));
        }
        pairs.push(("gc_delay", self.gc_delay.clone()));
        if let Some(env) = &self.executor_environment_variables {
            pairs.push(("executor_environment_variables", env.clone()));
        }
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        pairs
    }
}

/// The work dir may not exist yet; measure the nearest directory that does.
fn existing_ancestor(path: &std::path::Path) -> PathBuf {
    let mut current = path.to_path_buf();
    while !current.exists() {
        match current.parent() {
            Some(parent) => current = parent.to_path_buf(),
            None => return PathBuf::from("/"),
        }
    }
    current
}

/// Reads `--executor_environment_variables`: a JSON object of strings.
pub fn parse_environment(text: &str) -> Result<Vec<(String, String)>, FlagsError> {
    let bad = |reason: String| FlagsError::Value {
        flag: "executor_environment_variables",
        given: text.into(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| bad("expected a JSON object".into()))?;
    object
        .iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_string())),
            None => Err(bad(format!("the value of '{k}' is not a string"))),
        })
        .collect()
}

/// Reads `--isolation`.
pub fn parse_isolation(text: &str) -> Result<IsolationMode, FlagsError> {
    let bad = |reason: String| FlagsError::Value {
        flag: "isolation",
        given: text.into(),
        reason,
    };
    let (mut cpu, mut mem, mut pids, mut posix) = (false, false, false, false);
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "cgroups/cpu" => cpu = true,
            "cgroups/mem" => mem = true,
            "cgroups/pids" => pids = true,
            "posix/cpu" | "posix/mem" | "posix/disk" | "filesystem/posix" => posix = true,
            other => {
                return Err(bad(format!(
                    "unknown isolator '{other}' (known: cgroups/cpu, cgroups/mem, \
                     cgroups/pids, posix/cpu, posix/mem)"
                )))
            }
        }
    }
    if posix && (cpu || mem || pids) {
        return Err(bad("mix of posix and cgroups isolators".into()));
    }
    if cpu || mem || pids {
        Ok(IsolationMode::Cgroups { cpu, mem, pids })
    } else {
        Ok(IsolationMode::Posix)
    }
}

/// The first IPv4 address `host` resolves to.
fn resolve_ipv4(host: &str) -> Option<IpAddr> {
    use std::net::ToSocketAddrs;
    (host, 0)
        .to_socket_addrs()
        .ok()?
        .map(|a| a.ip())
        .find(IpAddr::is_ipv4)
}

/// The machine's hostname, from uname.
pub fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Where the binary that runs `executor command` and `executor default`
/// lives: `$PANDO_EXECUTOR_BINARY`, else `<launcher_dir>/pando`, else the
/// running binary.
pub fn executor_binary(launcher_dir: Option<&std::path::Path>) -> PathBuf {
    if let Some(path) = std::env::var_os("PANDO_EXECUTOR_BINARY") {
        return PathBuf::from(path);
    }
    if let Some(dir) = launcher_dir {
        return dir.join("pando");
    }
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("pando"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> AgentFlags {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            flags: AgentFlags,
        }
        let mut argv = vec!["pando-agent", "--master=127.0.0.1:5050", "--work_dir=/tmp"];
        argv.extend_from_slice(args);
        <Cli as clap::Parser>::try_parse_from(argv).unwrap().flags
    }

    #[test]
    fn mesos_flag_names_parse() {
        let flags = parse(&[
            "--executor_registration_timeout=3mins",
            "--cgroups_root=mesos",
            "--no-strict",
            "--recover=cleanup",
        ]);
        assert!(flags.to_pairs().contains(&("strict", "false".to_string())));
        let config = flags.validate().unwrap();
        assert_eq!(config.registration_timeout, Duration::from_secs(180));
        assert_eq!(config.recover, RecoverMode::Cleanup);
        assert_eq!(flags.cgroups_root, "mesos");
    }

    #[test]
    fn bad_resources_and_attributes_name_the_bad_part() {
        let err = parse(&["--resources=cpus:4;mem:lots"])
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("mem:lots"), "{err}");
        let err = parse(&["--attributes=rack"]).validate().unwrap_err();
        assert!(err.to_string().contains("--attributes 'rack'"), "{err}");
        let err = parse(&["--recover=maybe"]).validate().unwrap_err();
        assert!(err.to_string().contains("reconnect"), "{err}");
        let err = parse(&["--gc_delay=1week"]).validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --gc_delay '1week': unknown duration unit 'week': \
             use ns, us, ms, secs, mins, hrs, days or weeks"
        );
    }

    #[test]
    fn executor_environment_is_a_json_object_of_strings() {
        let config = parse(&[r#"--executor_environment_variables={"PATH":"/bin"}"#])
            .validate()
            .unwrap();
        assert_eq!(
            config.executor_env,
            Some(vec![("PATH".to_string(), "/bin".to_string())])
        );
        let err = parse(&[r#"--executor_environment_variables={"N":1}"#])
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("'N' is not a string"), "{err}");
    }

    #[test]
    fn missing_resources_are_detected() {
        let config = parse(&["--resources=cpus:3"]).validate().unwrap();
        assert_eq!(
            config.resources.cpus(),
            pando_resources::Scalar::from_units(3)
        );
        assert!(config.resources.mem() > pando_resources::Scalar::from_units(0));
        assert!(!config.resources.ports().is_empty());
    }

    #[test]
    fn isolation_names_the_unknown_isolator() {
        assert_eq!(
            parse_isolation("posix/cpu,posix/mem").unwrap(),
            IsolationMode::Posix
        );
        let err = parse_isolation("cgroups/cpu,cgroups/gpu").unwrap_err();
        assert!(err.to_string().contains("cgroups/gpu"), "{err}");
    }
}
