//! HTTP Basic authentication against a Mesos credentials file.
//!
//! `--credentials` names a JSON file in Mesos's format:
//! `{"credentials": [{"principal": "alice", "secret": "s3cr3t"}]}`. When
//! `--authenticate_frameworks` is set the scheduler endpoint needs valid
//! credentials; `--authenticate_http_readwrite` guards the endpoints that
//! change state and `--authenticate_http_readonly` the ones that read it.
//! A request that needs credentials and lacks them, or has wrong ones, gets
//! 401 with `WWW-Authenticate: Basic realm="mesos"`.

use std::collections::BTreeMap;
use std::path::Path;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;

use super::text;
use crate::master::flags::FlagsError;

/// Principals and their secrets.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    secrets: BTreeMap<String, String>,
}

impl Credentials {
    /// Reads a Mesos credentials file.
    pub fn load(path: &Path) -> Result<Credentials, FlagsError> {
        let bad = |reason: String| FlagsError::Credentials {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let list = value
            .get("credentials")
            .and_then(|c| c.as_array())
            .ok_or_else(|| bad("expected an object with a 'credentials' array".into()))?;
        let mut secrets = BTreeMap::new();
        for entry in list {
            let principal = entry
                .get("principal")
                .and_then(|p| p.as_str())
                .ok_or_else(|| bad("a credential lacks 'principal'".into()))?;
            let secret = entry.get("secret").and_then(|s| s.as_str()).unwrap_or("");
            secrets.insert(principal.to_string(), secret.to_string());
        }
        Ok(Credentials { secrets })
    }

    /// Checks the request's Basic credentials. `Ok(None)` when none were
    /// required and none given; `Ok(Some(principal))` when valid ones were
    /// given; the 401 response otherwise.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        required: bool,
        realm: Realm,
    ) -> Result<Option<String>, Response> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|raw| String::from_utf8(raw).ok());
        match given {
            None if !required => Ok(None),
            None => Err(unauthorized("Missing credentials", realm)),
            Some(pair) => {
                let (principal, secret) = pair.split_once(':').unwrap_or((pair.as_str(), ""));
                if self.secrets.get(principal).is_some_and(|s| s == secret) {
                    Ok(Some(principal.to_string()))
                } else if required {
                    Err(unauthorized("Invalid credentials", realm))
                } else {
                    Ok(None)
                }
            }
        }
    }
}

/// The authentication realms of a Mesos master, one per kind of endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    /// `/api/v1/scheduler`.
    Scheduler,
    /// Endpoints that only read.
    ReadOnly,
    /// Endpoints that change state.
    ReadWrite,
}

impl Realm {
    fn challenge(self) -> &'static str {
        match self {
            Realm::Scheduler => "Basic realm=\"mesos-master-scheduler\"",
            Realm::ReadOnly => "Basic realm=\"mesos-master-readonly\"",
            Realm::ReadWrite => "Basic realm=\"mesos-master-readwrite\"",
        }
    }
}

fn unauthorized(reason: &str, realm: Realm) -> Response {
    let mut response = text(StatusCode::UNAUTHORIZED, reason);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(realm.challenge()),
    );
    response
}
