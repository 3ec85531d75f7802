//! Health checks for a task: COMMAND, HTTP and TCP, run by the executor.
//!
//! Two parts, as in Mesos's `src/checks/health_checker.cpp`:
//!
//! * [`HealthPolicy`] is pure: it turns each check result into an optional
//!   [`HealthReport`]. Failures inside the grace period are ignored until
//!   the first success; every other failure is reported as unhealthy, and
//!   the one that reaches `consecutive_failures` asks for the task to be
//!   killed. A success is reported on the first success and on the first
//!   success after failures.
//! * [`spawn_checker`] runs the checks on a tokio task: it waits
//!   `delay_seconds`, checks, waits `interval_seconds` after each result,
//!   and bounds every check by `timeout_seconds` (0 means no bound). It
//!   sends reports on a channel; aborting the task stops the checks.
//!
//! HTTP and TCP checks target `127.0.0.1:<port>`, the task's own network.
//! An HTTP check succeeds on a status in [200, 400).

use std::time::Duration;

use pando_proto::mesos::v1::{health_check, HealthCheck};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::probe::{self, Observation, Probe};

/// Why a health check cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    /// The check's type is unset or unknown.
    #[error("health check has no valid type (COMMAND, HTTP or TCP)")]
    NoType,
    /// The type's body is missing.
    #[error("{0} health check is missing its '{1}' field")]
    MissingBody(&'static str, &'static str),
    /// A duration field is negative or not finite.
    #[error("health check field '{0}' must be a non-negative number of seconds")]
    BadDuration(&'static str),
}

/// What the health checker tells its executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthReport {
    /// Whether the task is healthy now.
    pub healthy: bool,
    /// Failures in a row so far.
    pub consecutive_failures: u32,
    /// Whether the task must be killed (the failure limit was reached).
    pub kill_task: bool,
}

/// Turns check results into reports, following Mesos's rules.
#[derive(Debug, Clone)]
pub struct HealthPolicy {
    /// Failures are ignored this long after start, until a first success.
    grace_period: Duration,
    /// Failures in a row that kill the task.
    failure_limit: u32,
    /// Failures in a row so far.
    failures: u32,
    /// No success has been seen yet.
    initializing: bool,
    /// When checking started.
    started: Instant,
}

impl HealthPolicy {
    /// A policy for `check`, counting its grace period from `started`.
    pub fn new(check: &HealthCheck, started: Instant) -> Result<Self, HealthError> {
        Ok(HealthPolicy {
            grace_period: seconds(check.grace_period_seconds(), "grace_period_seconds")?,
            failure_limit: check.consecutive_failures(),
            failures: 0,
            initializing: true,
            started,
        })
    }

    /// Records one check result at `now`; returns a report to send, if any.
    pub fn record(&mut self, result: Result<(), String>, now: Instant) -> Option<HealthReport> {
        match result {
            Ok(()) => {
                let report = (self.initializing || self.failures > 0).then_some(HealthReport {
                    healthy: true,
                    consecutive_failures: 0,
                    kill_task: false,
                });
                self.initializing = false;
                self.failures = 0;
                report
            }
            Err(reason) => {
                if self.initializing
                    && !self.grace_period.is_zero()
                    && now.duration_since(self.started) <= self.grace_period
                {
                    tracing::info!(%reason, "health check failed inside its grace period; ignored");
                    return None;
                }
                self.failures += 1;
                tracing::warn!(%reason, failures = self.failures, "health check failed");
                Some(HealthReport {
                    healthy: false,
                    consecutive_failures: self.failures,
                    kill_task: self.failures >= self.failure_limit,
                })
            }
        }
    }
}

fn seconds(value: f64, field: &'static str) -> Result<Duration, HealthError> {
    Duration::try_from_secs_f64(value).map_err(|_| HealthError::BadDuration(field))
}

fn probe_of(check: &HealthCheck) -> Result<Probe, HealthError> {
    let kind = check
        .r#type
        .and_then(|t| health_check::Type::try_from(t).ok())
        .ok_or(HealthError::NoType)?;
    match kind {
        health_check::Type::Command => check
            .command
            .clone()
            .map(Probe::Command)
            .ok_or(HealthError::MissingBody("COMMAND", "command")),
        health_check::Type::Http => {
            let http = check
                .http
                .as_ref()
                .ok_or(HealthError::MissingBody("HTTP", "http"))?;
            Ok(Probe::Http {
                scheme: http.scheme.clone().unwrap_or_else(|| "http".into()),
                port: http.port,
                path: probe::http_path(http.path.as_deref()),
            })
        }
        health_check::Type::Tcp => {
            let tcp = check
                .tcp
                .as_ref()
                .ok_or(HealthError::MissingBody("TCP", "tcp"))?;
            Ok(Probe::Tcp { port: tcp.port })
        }
        health_check::Type::Unknown => Err(HealthError::NoType),
    }
}

/// Whether an observation means healthy, in Mesos's words when not.
fn interpret(outcome: Result<Observation, probe::ProbeError>) -> Result<(), String> {
    match outcome.map_err(|e| e.to_string())? {
        Observation::ExitCode(0) => Ok(()),
        Observation::ExitCode(code) => Err(format!("Command exited with status {code}")),
        Observation::HttpStatus(code) if (200..400).contains(&code) => Ok(()),
        Observation::HttpStatus(code) => Err(format!("Unexpected HTTP response code: {code}")),
        Observation::TcpConnected(true) => Ok(()),
        Observation::TcpConnected(false) => Err("TCP connection failed".into()),
    }
}

/// Starts checking; each report is handed to `report`, which returns
/// `false` once nobody listens. Abort the handle to stop.
pub fn spawn_checker(
    check: &HealthCheck,
    mut report: impl FnMut(HealthReport) -> bool + Send + 'static,
) -> Result<JoinHandle<()>, HealthError> {
    let probe = probe_of(check)?;
    let delay = seconds(check.delay_seconds(), "delay_seconds")?;
    let interval = seconds(check.interval_seconds(), "interval_seconds")?;
    let timeout = seconds(check.timeout_seconds(), "timeout_seconds")?;
    let mut policy = HealthPolicy::new(check, Instant::now())?;
    Ok(tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        loop {
            let bound = (!timeout.is_zero()).then_some(timeout);
            let result = interpret(probe::run(&probe, bound).await);
            if let Some(outcome) = policy.record(result, Instant::now()) {
                if !report(outcome) {
                    return;
                }
            }
            tokio::time::sleep(interval).await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(grace: f64, failures: u32) -> HealthCheck {
        HealthCheck {
            grace_period_seconds: Some(grace),
            consecutive_failures: Some(failures),
            r#type: Some(health_check::Type::Tcp as i32),
            ..Default::default()
        }
    }

    #[test]
    fn reports_first_success_and_kills_after_consecutive_failures() {
        let start = Instant::now();
        let mut policy = HealthPolicy::new(&check(0.0, 2), start).unwrap();
        let healthy = policy.record(Ok(()), start).unwrap();
        assert!(healthy.healthy);
        assert_eq!(policy.record(Ok(()), start), None);
        let first = policy.record(Err("x".into()), start).unwrap();
        assert!(!first.healthy && !first.kill_task);
        let second = policy.record(Err("x".into()), start).unwrap();
        assert!(second.kill_task);
        assert_eq!(second.consecutive_failures, 2);
        assert!(policy.record(Ok(()), start).unwrap().healthy);
    }

    #[test]
    fn ignores_failures_in_the_grace_period_until_a_success() {
        let start = Instant::now();
        let mut policy = HealthPolicy::new(&check(10.0, 1), start).unwrap();
        assert_eq!(policy.record(Err("x".into()), start), None);
        assert!(policy.record(Ok(()), start).is_some());
        // After a success the grace period no longer shields failures.
        assert!(policy.record(Err("x".into()), start).unwrap().kill_task);
        let late = start + Duration::from_secs(11);
        let mut fresh = HealthPolicy::new(&check(10.0, 3), start).unwrap();
        assert!(fresh.record(Err("x".into()), late).is_some());
    }

    #[test]
    fn uses_mesos_defaults() {
        let check = HealthCheck::default();
        assert_eq!(check.consecutive_failures(), 3);
        assert_eq!(check.delay_seconds(), 15.0);
        assert_eq!(check.interval_seconds(), 10.0);
        assert_eq!(check.grace_period_seconds(), 10.0);
        assert_eq!(check.timeout_seconds(), 20.0);
        assert_eq!(probe_of(&check).unwrap_err(), HealthError::NoType);
    }
}
