//! `/registry/records`: adapter records over HTTP, for adapters that run
//! outside the master's process (the libmesos JNI library).
//!
//! ```text
//!  GET    /registry/records/{namespace}?prefix=p   200 [{"key": .., "version": ..}, ...]
//!  GET    /registry/records/{namespace}/{key}      200 raw value, ETag: "<version>"; 404
//!  PUT    /registry/records/{namespace}/{key}      201 created / 200 replaced, ETag; body = raw value
//!  DELETE /registry/records/{namespace}/{key}      204
//! ```
//!
//! A write's precondition comes from the standard headers: `If-Match:
//! "<version>"` for compare-and-swap, `If-None-Match: *` for create-only,
//! neither for an unconditional write. A stale precondition answers 412
//! with the record's current version in `ETag` (none when it is absent); a
//! value over `--max_record_bytes` or a namespace over
//! `--max_namespace_bytes` answers 413 with the reason; a bad name 400.
//! Keys may contain `/` (the rest of the path is the key; percent-encoding
//! is decoded).
//!
//! Reads are in the read-only realm (credentials needed with
//! `--authenticate_http_readonly`), writes in the read-write realm
//! (`--authenticate_http_readwrite`). Only the leader serves these paths; a
//! standby answers 307 or 503. Each handler decodes the request, makes one
//! call on [`Master`](crate::master::Master) (see `master/records.rs`),
//! waits for the registry, and encodes the answer.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::auth::Realm;
use super::{text, AppState};
use crate::master::records::{Expect, RecordsError, Written};

/// The records routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/registry/records/{namespace}", get(list))
        .route(
            "/registry/records/{namespace}/{*key}",
            get(fetch).put(store).delete(expunge),
        )
}

/// Checks credentials for `realm`, as the flags of the master ask.
fn authenticate(app: &AppState, headers: &HeaderMap, realm: Realm) -> Result<(), Response> {
    let required = {
        let master = app.lock()?;
        match realm {
            Realm::ReadOnly => master.flags.authenticate_http_readonly,
            _ => master.flags.authenticate_http_readwrite,
        }
    };
    app.credentials
        .authenticate(headers, required, realm)
        .map(|_| ())
}

async fn list(
    State(app): State<AppState>,
    Path(namespace): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&app, &headers, Realm::ReadOnly) {
        return r;
    }
    let prefix = query.get("prefix").map_or("", String::as_str);
    match app.handle.list_records(&namespace, prefix).await {
        Ok(listed) => {
            let body: Vec<_> = listed
                .iter()
                .map(|l| json!({"key": l.key, "version": l.version}))
                .collect();
            json_body(StatusCode::OK, serde_json::Value::Array(body))
        }
        Err(e) => error_response(&e),
    }
}

async fn fetch(
    State(app): State<AppState>,
    Path((namespace, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&app, &headers, Realm::ReadOnly) {
        return r;
    }
    match app.handle.get_record(&namespace, &key).await {
        Ok(Some(record)) => {
            let mut response = (StatusCode::OK, record.value().clone()).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(header::ETAG, etag(record.version()));
            response
        }
        Ok(None) => error_response(&RecordsError::NotFound { namespace, key }),
        Err(e) => error_response(&e),
    }
}

async fn store(
    State(app): State<AppState>,
    Path((namespace, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authenticate(&app, &headers, Realm::ReadWrite) {
        return r;
    }
    let expect = match precondition(&headers) {
        Ok(expect) => expect,
        Err(r) => return r,
    };
    match app.handle.put_record(&namespace, &key, body, expect).await {
        Ok(Written { version, created }) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut response = json_body(status, json!({ "version": version }));
            response.headers_mut().insert(header::ETAG, etag(version));
            response
        }
        Err(e) => error_response(&e),
    }
}

async fn expunge(
    State(app): State<AppState>,
    Path((namespace, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&app, &headers, Realm::ReadWrite) {
        return r;
    }
    let expect = match precondition(&headers) {
        Ok(expect) => expect,
        Err(r) => return r,
    };
    match app.handle.delete_record(&namespace, &key, expect).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&e),
    }
}

/// The write's precondition from `If-Match` / `If-None-Match`.
fn precondition(headers: &HeaderMap) -> Result<Expect, Response> {
    let value = |name| {
        headers
            .get(name)
            .map(|v| v.to_str().map(str::trim).unwrap_or(""))
    };
    let bad = |message: &str| text(StatusCode::BAD_REQUEST, message);
    match (value(header::IF_MATCH), value(header::IF_NONE_MATCH)) {
        (None, None) => Ok(Expect::Any),
        (Some(_), Some(_)) => Err(bad(
            "Give either 'If-Match: \"<version>\"' or 'If-None-Match: *', not both",
        )),
        (None, Some("*")) => Ok(Expect::Absent),
        (None, Some(_)) => Err(bad(
            "Only 'If-None-Match: *' (create only) is supported on records",
        )),
        (Some(tag), None) => tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .and_then(|v| v.parse::<u64>().ok())
            .map(Expect::Version)
            .ok_or_else(|| {
                bad("Expecting 'If-Match' to be one record version in quotes, e.g. \"3\"")
            }),
    }
}

/// A version as a strong entity tag.
fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits in quotes are a valid header")
}

fn json_body(status: StatusCode, value: serde_json::Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The status for each refusal, with the reason as text; a conflict
/// carries the current version in `ETag` when the record exists.
fn error_response(error: &RecordsError) -> Response {
    let status = match error {
        RecordsError::InvalidNamespace { .. } | RecordsError::InvalidKey { .. } => {
            StatusCode::BAD_REQUEST
        }
        RecordsError::Conflict { .. } => StatusCode::PRECONDITION_FAILED,
        RecordsError::TooLarge { .. } | RecordsError::NamespaceFull { .. } => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        RecordsError::NotFound { .. } => StatusCode::NOT_FOUND,
        RecordsError::NotLeader(_) | RecordsError::Unavailable(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    let mut response = text(status, error.to_string());
    if let RecordsError::Conflict { current, .. } = error {
        if *current > 0 {
            response.headers_mut().insert(header::ETAG, etag(*current));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                name.clone(),
                HeaderValue::from_str(value).expect("test header"),
            );
        }
        map
    }

    #[test]
    fn preconditions_come_from_if_match_and_if_none_match() {
        let expect = |pairs: &[(header::HeaderName, &str)]| precondition(&headers(pairs)).ok();
        assert_eq!(expect(&[]), Some(Expect::Any));
        assert_eq!(
            expect(&[(header::IF_MATCH, "\"7\"")]),
            Some(Expect::Version(7))
        );
        assert_eq!(
            expect(&[(header::IF_NONE_MATCH, "*")]),
            Some(Expect::Absent)
        );
        for refused in [
            vec![(header::IF_MATCH, "7")],
            vec![(header::IF_MATCH, "*")],
            vec![(header::IF_MATCH, "W/\"7\"")],
            vec![(header::IF_NONE_MATCH, "\"7\"")],
            vec![(header::IF_MATCH, "\"1\""), (header::IF_NONE_MATCH, "*")],
        ] {
            let response = precondition(&headers(&refused)).expect_err("refused");
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{refused:?}");
        }
    }
}
