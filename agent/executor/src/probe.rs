//! One probe of a task: run a command, GET a URL, or open a TCP
//! connection, bounded by a timeout. Health checks ([`crate::health`]) and
//! general checks ([`crate::check`]) both use it, as Mesos's checker
//! process serves both.
//!
//! HTTP and TCP probes target `127.0.0.1:<port>`: the executor shares the
//! task's network. A probe answers with what it observed ([`Observation`]),
//! or an error when it could not observe anything (a timeout, a command
//! that could not run, an HTTP connection that failed); the caller decides
//! what that means for health.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::TokioIo;
use pando_proto::mesos::v1::CommandInfo;
use tokio::net::TcpStream;

use crate::{process, status};

/// The address HTTP and TCP probes connect to.
pub const PROBE_HOST: &str = "127.0.0.1";

/// Why a probe observed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The probe did not finish in time.
    #[error("{what} timed out after {limit:?}")]
    Timeout {
        /// Which probe.
        what: &'static str,
        /// Its bound.
        limit: Duration,
    },
    /// The probe failed before producing a result.
    #[error("{0}")]
    Failed(String),
}

/// What to probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// Run a command; its exit code is the result.
    Command(CommandInfo),
    /// GET `path` on the port; the status code is the result.
    Http {
        /// `http`, or `https` (probed with `curl -k`, as Mesos does).
        scheme: String,
        /// The task's port.
        port: u32,
        /// The request path, starting with `/`.
        path: String,
    },
    /// Connect to the port; success is the result.
    Tcp {
        /// The task's port.
        port: u32,
    },
}

/// What a probe observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The command exited with this code.
    ExitCode(i32),
    /// The server answered with this status.
    HttpStatus(u16),
    /// Whether the connection was accepted.
    TcpConnected(bool),
}

/// Normalizes an HTTP path as Mesos builds the URL: always from `/`.
pub fn http_path(path: Option<&str>) -> String {
    match path {
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) => format!("/{p}"),
        None => "/".to_string(),
    }
}

/// Runs `probe`, bounded by `timeout` (`None`: unbounded).
pub async fn run(probe: &Probe, timeout: Option<Duration>) -> Result<Observation, ProbeError> {
    match probe {
        Probe::Command(command) => command_probe(command, timeout).await,
        Probe::Http { scheme, port, path } if scheme == "https" => {
            bounded(timeout, "HTTP check", curl_probe(scheme, *port, path)).await
        }
        Probe::Http { port, path, .. } => {
            bounded(timeout, "HTTP check", http_probe(*port, path)).await
        }
        Probe::Tcp { port } => bounded(timeout, "TCP check", tcp_probe(*port)).await,
    }
}

async fn bounded(
    timeout: Option<Duration>,
    what: &'static str,
    probe: impl std::future::Future<Output = Result<Observation, ProbeError>>,
) -> Result<Observation, ProbeError> {
    match timeout {
        None => probe.await,
        Some(limit) => tokio::time::timeout(limit, probe)
            .await
            .unwrap_or(Err(ProbeError::Timeout { what, limit })),
    }
}

async fn command_probe(
    command: &CommandInfo,
    timeout: Option<Duration>,
) -> Result<Observation, ProbeError> {
    let mut child = process::spawn(command, &[]).map_err(|e| ProbeError::Failed(e.to_string()))?;
    let pgid = child.id();
    let waited = match timeout {
        None => child.wait().await,
        Some(limit) => match tokio::time::timeout(limit, child.wait()).await {
            Ok(waited) => waited,
            Err(_) => {
                if let Some(pgid) = pgid {
                    let _ = process::signal_group(pgid, libc::SIGKILL);
                }
                let _ = child.wait().await;
                return Err(ProbeError::Timeout {
                    what: "Command",
                    limit,
                });
            }
        },
    };
    let exit = waited.map_err(|e| ProbeError::Failed(e.to_string()))?;
    match exit.code() {
        Some(code) => Ok(Observation::ExitCode(code)),
        None => Err(ProbeError::Failed(format!(
            "Command {}",
            status::describe_exit(exit)
        ))),
    }
}

async fn tcp_probe(port: u32) -> Result<Observation, ProbeError> {
    let connected = TcpStream::connect(format!("{PROBE_HOST}:{port}"))
        .await
        .is_ok();
    Ok(Observation::TcpConnected(connected))
}

/// An HTTPS probe through `curl`, with Mesos's flags: silent but showing
/// errors, following redirects, not verifying certificates, printing only
/// the status code.
async fn curl_probe(scheme: &str, port: u32, path: &str) -> Result<Observation, ProbeError> {
    let url = format!("{scheme}://{PROBE_HOST}:{port}{path}");
    let output = tokio::process::Command::new("curl")
        .args([
            "-s",
            "-S",
            "-L",
            "-k",
            "-w",
            "%{http_code}",
            "-o",
            "/dev/null",
            "-g",
        ])
        .arg(&url)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| ProbeError::Failed(format!("cannot run curl: {e}")))?;
    if !output.status.success() {
        return Err(ProbeError::Failed(format!(
            "curl {url} {}: {}",
            status::describe_exit(output.status),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map(Observation::HttpStatus)
        .map_err(|_| ProbeError::Failed(format!("curl printed no status code for {url}")))
}

async fn http_probe(port: u32, path: &str) -> Result<Observation, ProbeError> {
    let authority = format!("{PROBE_HOST}:{port}");
    let failed = |e: &dyn std::fmt::Display| ProbeError::Failed(format!("HTTP check failed: {e}"));
    let stream = TcpStream::connect(&authority)
        .await
        .map_err(|e| failed(&e))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed(&e))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::get(path)
        .header(hyper::header::HOST, &authority)
        .body(Empty::<Bytes>::new())
        .map_err(|e| failed(&e))?;
    let response = sender.send_request(request).await.map_err(|e| failed(&e))?;
    Ok(Observation::HttpStatus(response.status().as_u16()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probes_commands_and_ports() {
        let exit = Probe::Command(CommandInfo {
            value: Some("exit 2".into()),
            ..Default::default()
        });
        assert_eq!(run(&exit, None).await, Ok(Observation::ExitCode(2)));
        let slow = Probe::Command(CommandInfo {
            value: Some("sleep 5".into()),
            ..Default::default()
        });
        assert!(matches!(
            run(&slow, Some(Duration::from_millis(50))).await,
            Err(ProbeError::Timeout { .. })
        ));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = u32::from(listener.local_addr().unwrap().port());
        assert_eq!(
            run(&Probe::Tcp { port }, None).await,
            Ok(Observation::TcpConnected(true))
        );
        drop(listener);
        assert_eq!(
            run(&Probe::Tcp { port }, None).await,
            Ok(Observation::TcpConnected(false))
        );
        assert_eq!(http_path(Some("health")), "/health");
        assert_eq!(http_path(None), "/");
    }
}
