//! General checks (`TaskInfo.check`): probes whose results are reported to
//! the scheduler as they change, without judging health.
//!
//! As in Mesos's `src/checks/checker.cpp`, the checker starts from the
//! empty `CheckStatusInfo` of the check's type, probes after
//! `delay_seconds` and then every `interval_seconds`, and reports a new
//! [`CheckStatusInfo`] only when it differs from the last one: a COMMAND
//! check reports its `exit_code`, an HTTP check its `status_code`, a TCP
//! check whether it `succeeded`. A probe that observes nothing (a timeout,
//! a command killed by a signal) resets the result to the empty status.

use std::time::Duration;

use pando_proto::mesos::v1::{check_info, check_status_info, CheckInfo, CheckStatusInfo};
use tokio::task::JoinHandle;

use crate::probe::{self, Observation, Probe};
use crate::status;

/// Why a check cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The check's type is unset or unknown.
    #[error("check has no valid type (COMMAND, HTTP or TCP)")]
    NoType,
    /// The type's body is missing.
    #[error("{0} check is missing its '{1}' field")]
    MissingBody(&'static str, &'static str),
    /// A duration field is negative or not finite.
    #[error("check field '{0}' must be a non-negative number of seconds")]
    BadDuration(&'static str),
}

fn seconds(value: f64, field: &'static str) -> Result<Duration, CheckError> {
    Duration::try_from_secs_f64(value).map_err(|_| CheckError::BadDuration(field))
}

fn probe_of(check: &CheckInfo) -> Result<Probe, CheckError> {
    let kind = check
        .r#type
        .and_then(|t| check_info::Type::try_from(t).ok())
        .ok_or(CheckError::NoType)?;
    match kind {
        check_info::Type::Command => check
            .command
            .as_ref()
            .map(|c| Probe::Command(c.command.clone()))
            .ok_or(CheckError::MissingBody("COMMAND", "command")),
        check_info::Type::Http => {
            let http = check
                .http
                .as_ref()
                .ok_or(CheckError::MissingBody("HTTP", "http"))?;
            Ok(Probe::Http {
                scheme: "http".into(),
                port: http.port,
                path: probe::http_path(http.path.as_deref()),
            })
        }
        check_info::Type::Tcp => {
            let tcp = check
                .tcp
                .as_ref()
                .ok_or(CheckError::MissingBody("TCP", "tcp"))?;
            Ok(Probe::Tcp { port: tcp.port })
        }
        check_info::Type::Unknown => Err(CheckError::NoType),
    }
}

/// The `CheckStatusInfo` for one probe result.
pub fn status_of(
    check: &CheckInfo,
    outcome: Result<Observation, probe::ProbeError>,
) -> CheckStatusInfo {
    let mut result = status::empty_check_status(check);
    match outcome {
        Ok(Observation::ExitCode(code)) => {
            result.command = Some(check_status_info::Command {
                exit_code: Some(code),
            });
        }
        Ok(Observation::HttpStatus(code)) => {
            result.http = Some(check_status_info::Http {
                status_code: Some(u32::from(code)),
            });
        }
        Ok(Observation::TcpConnected(succeeded)) => {
            result.tcp = Some(check_status_info::Tcp {
                succeeded: Some(succeeded),
            });
        }
        Err(error) => tracing::warn!(%error, "check failed"),
    }
    result
}

/// Starts checking; each changed result is handed to `report`, which
/// returns `false` once nobody listens. Abort the handle to stop.
pub fn spawn_checker(
    check: &CheckInfo,
    mut report: impl FnMut(CheckStatusInfo) -> bool + Send + 'static,
) -> Result<JoinHandle<()>, CheckError> {
    let probe = probe_of(check)?;
    let delay = seconds(check.delay_seconds(), "delay_seconds")?;
    let interval = seconds(check.interval_seconds(), "interval_seconds")?;
    let timeout = seconds(check.timeout_seconds(), "timeout_seconds")?;
    let check = check.clone();
    Ok(tokio::spawn(async move {
        let mut previous = status::empty_check_status(&check);
        tokio::time::sleep(delay).await;
        loop {
            let bound = (!timeout.is_zero()).then_some(timeout);
            let current = status_of(&check, probe::run(&probe, bound).await);
            if current != previous {
                if !report(current) {
                    return;
                }
                previous = current;
            }
            tokio::time::sleep(interval).await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_fill_the_check_type_body() {
        let check = CheckInfo {
            r#type: Some(check_info::Type::Tcp as i32),
            tcp: Some(check_info::Tcp { port: 1 }),
            ..Default::default()
        };
        let ok = status_of(&check, Ok(Observation::TcpConnected(true)));
        assert_eq!(ok.tcp.unwrap().succeeded, Some(true));
        let nothing = status_of(&check, Err(probe::ProbeError::Failed("x".into())));
        assert_eq!(nothing, status::empty_check_status(&check));
        assert_eq!(check.delay_seconds(), 15.0);
        assert_eq!(probe_of(&CheckInfo::default()), Err(CheckError::NoType));
    }
}
