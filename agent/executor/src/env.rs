//! The Mesos executor environment: everything an executor learns about
//! itself before it talks to its agent.
//!
//! The agent starts an executor with `MESOS_*` variables (see Mesos's
//! `docs/executor-http-api.md`). [`ExecutorEnv::from_env`] reads them once at
//! start-up into a typed value; nothing else in this crate reads the process
//! environment for configuration. Durations use Mesos's textual form
//! (`5secs`, `15mins`, `100ms`), parsed by [`pando_proto::stout`].

use std::time::Duration;

use pando_proto::mesos::v1::{ExecutorId, FrameworkId};
use pando_proto::stout::{parse_duration, StoutError};

/// The shutdown grace period Mesos agents use when none is given.
pub const DEFAULT_SHUTDOWN_GRACE_PERIOD: Duration = Duration::from_secs(5);
/// The agent's default `--recovery_timeout`.
pub const DEFAULT_RECOVERY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The agent's default upper bound on the subscription backoff.
pub const DEFAULT_SUBSCRIPTION_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Why the executor environment is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// A variable the agent must set is absent.
    #[error("the agent did not set {0}; executors must be started by a Mesos or Pando agent")]
    Missing(&'static str),
    /// A duration variable is not in Mesos's form (`5secs`, `15mins`).
    #[error("{name}='{value}' is invalid: {source}")]
    Duration {
        /// The variable.
        name: &'static str,
        /// What it held.
        value: String,
        /// What is wrong with it.
        source: StoutError,
    },
    /// A variable holds a value that cannot be used.
    #[error("{name}='{value}' is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What it held.
        value: String,
        /// Why that is wrong.
        reason: String,
    },
}

/// The executor's identity and the agent's connection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorEnv {
    /// `MESOS_FRAMEWORK_ID`: sent in every call.
    pub framework_id: FrameworkId,
    /// `MESOS_EXECUTOR_ID`: sent in every call.
    pub executor_id: ExecutorId,
    /// `MESOS_AGENT_ENDPOINT`: `ip:port` of the agent's HTTP server.
    pub agent_endpoint: String,
    /// `MESOS_SANDBOX` (or `MESOS_DIRECTORY`): the sandbox, as the executor
    /// sees it.
    pub sandbox: Option<String>,
    /// `MESOS_CHECKPOINT=1`: the framework checkpoints, so the executor
    /// survives an agent restart by re-subscribing.
    pub checkpoint: bool,
    /// `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`: how long after SHUTDOWN the
    /// agent waits before destroying the container.
    pub shutdown_grace_period: Duration,
    /// `MESOS_RECOVERY_TIMEOUT`: how long to keep trying to re-subscribe
    /// after the agent went away (checkpointing frameworks only).
    pub recovery_timeout: Duration,
    /// `MESOS_SUBSCRIPTION_BACKOFF_MAX`: upper bound of the random delay
    /// between subscription attempts.
    pub subscription_backoff_max: Duration,
    /// `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`: sent as `Authorization:
    /// Bearer <token>` when the agent authenticates executors.
    pub authentication_token: Option<Token>,
}

/// The name of the variable holding the executor's authentication token;
/// it is removed from the environment once read, as Mesos does, so tasks
/// never see it.
pub const AUTHENTICATION_TOKEN_VAR: &str = "MESOS_EXECUTOR_AUTHENTICATION_TOKEN";

/// A secret that never shows up in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl ExecutorEnv {
    /// Reads the environment of this process.
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the environment through `lookup`, so tests need not touch the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|v| !v.is_empty())
                .ok_or(EnvError::Missing(name))
        };
        let duration = |name: &'static str, default: Duration| match lookup(name) {
            None => Ok(default),
            Some(value) => parse_duration(&value).map_err(|source| EnvError::Duration {
                name,
                value,
                source,
            }),
        };
        let agent_endpoint = required("MESOS_AGENT_ENDPOINT")?;
        if !agent_endpoint.contains(':') {
            return Err(EnvError::Invalid {
                name: "MESOS_AGENT_ENDPOINT",
                value: agent_endpoint,
                reason: "expected ip:port".into(),
            });
        }
        Ok(ExecutorEnv {
            framework_id: FrameworkId {
                value: required("MESOS_FRAMEWORK_ID")?,
            },
            executor_id: ExecutorId {
                value: required("MESOS_EXECUTOR_ID")?,
            },
            agent_endpoint,
            sandbox: lookup("MESOS_SANDBOX").or_else(|| lookup("MESOS_DIRECTORY")),
            checkpoint: lookup("MESOS_CHECKPOINT").as_deref() == Some("1"),
            shutdown_grace_period: duration(
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                DEFAULT_SHUTDOWN_GRACE_PERIOD,
            )?,
            recovery_timeout: duration("MESOS_RECOVERY_TIMEOUT", DEFAULT_RECOVERY_TIMEOUT)?,
            subscription_backoff_max: duration(
                "MESOS_SUBSCRIPTION_BACKOFF_MAX",
                DEFAULT_SUBSCRIPTION_BACKOFF_MAX,
            )?,
            authentication_token: lookup(AUTHENTICATION_TOKEN_VAR)
                .filter(|t| !t.is_empty())
                .map(Token),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reads_the_executor_environment() {
        let vars: HashMap<&str, &str> = [
            ("MESOS_FRAMEWORK_ID", "fw"),
            ("MESOS_EXECUTOR_ID", "ex"),
            ("MESOS_AGENT_ENDPOINT", "127.0.0.1:5051"),
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_RECOVERY_TIMEOUT", "1mins"),
        ]
        .into_iter()
        .collect();
        let env = ExecutorEnv::from_lookup(|k| vars.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(env.framework_id.value, "fw");
        assert!(env.checkpoint);
        assert_eq!(env.recovery_timeout, Duration::from_secs(60));
        assert_eq!(env.shutdown_grace_period, DEFAULT_SHUTDOWN_GRACE_PERIOD);
        let missing = ExecutorEnv::from_lookup(|_| None).unwrap_err();
        assert_eq!(missing, EnvError::Missing("MESOS_AGENT_ENDPOINT"));
    }

    #[test]
    fn a_duration_without_a_unit_is_refused_with_the_reason() {
        let vars: HashMap<&str, &str> = [
            ("MESOS_FRAMEWORK_ID", "fw"),
            ("MESOS_EXECUTOR_ID", "ex"),
            ("MESOS_AGENT_ENDPOINT", "127.0.0.1:5051"),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5"),
        ]
        .into_iter()
        .collect();
        let err = ExecutorEnv::from_lookup(|k| vars.get(k).map(|v| v.to_string())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD='5' is invalid: missing a unit: a duration \
             is a number followed by ns, us, ms, secs, mins, hrs, days or weeks, e.g. 5secs"
        );
    }
}
