//! A minimal HTTP/1.1 client for talking to the agent.
//!
//! Every request opens its own TCP connection with hyper's connection API:
//! the executor sends few requests, and a fresh connection per request means
//! a restarted agent is never reached through a stale pooled socket. The
//! caller gets the response head plus either the whole body
//! ([`AgentClient::post`]) or the body as a stream of chunks
//! ([`AgentClient::open`]) for the long-lived SUBSCRIBE and
//! WAIT_NESTED_CONTAINER responses.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::time::Duration;

use tokio::net::TcpStream;

/// The media type of the operator API bodies Pando's executors send and
/// accept.
pub const JSON: &str = "application/json";
/// The media type of executor API calls and events: protobuf, as Mesos's
/// own executors use, so an executor never builds the JSON codec's
/// reflection tables (a few milliseconds of CPU at every start).
pub const PROTOBUF: &str = "application/x-protobuf";
/// How long a TCP connection to the agent may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request to the agent did not produce a response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The TCP connection could not be made.
    #[error("cannot connect to the agent at {endpoint}: {source}")]
    Connect {
        /// The agent's `ip:port`.
        endpoint: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP request to the agent failed: {0}")]
    Protocol(#[from] hyper::Error),
    /// The request could not be built (a bad endpoint).
    #[error("invalid request to the agent: {0}")]
    Request(#[from] hyper::http::Error),
}

/// A response whose body has been read in full.
#[derive(Debug, Clone)]
pub struct FullResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body bytes.
    pub body: Bytes,
}

/// Sends calls to one agent endpoint.
#[derive(Debug, Clone)]
pub struct AgentClient {
    /// `ip:port` of the agent.
    endpoint: String,
    /// `Bearer <token>`, when the agent authenticates executors.
    authorization: Option<String>,
}

impl AgentClient {
    /// A client for the agent at `endpoint` (`ip:port`).
    pub fn new(endpoint: impl Into<String>) -> Self {
        AgentClient {
            endpoint: endpoint.into(),
            authorization: None,
        }
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_bearer(mut self, token: Option<&str>) -> Self {
        self.authorization = token.map(|t| format!("Bearer {t}"));
        self
    }

    /// POSTs a JSON body to `path` and returns the response with its body
    /// still streaming.
    pub async fn open(
        &self,
        path: &str,
        body: String,
    ) -> Result<hyper::Response<Incoming>, HttpError> {
        self.open_as(path, JSON, Bytes::from(body)).await
    }

    /// POSTs a body of media type `media` (sent as `Content-Type` and
    /// `Accept`) to `path` and returns the response with its body still
    /// streaming.
    pub async fn open_as(
        &self,
        path: &str,
        media: &str,
        body: Bytes,
    ) -> Result<hyper::Response<Incoming>, HttpError> {
        let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.endpoint));
        let stream = connect
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
            .map_err(|source| HttpError::Connect {
                endpoint: self.endpoint.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "agent connection closed");
            }
        });
        let mut request = Request::post(path)
            .header(hyper::header::HOST, &self.endpoint)
            .header(hyper::header::CONTENT_TYPE, media)
            .header(hyper::header::ACCEPT, media);
        if let Some(authorization) = &self.authorization {
            request = request.header(hyper::header::AUTHORIZATION, authorization);
        }
        let request = request.body(Full::new(body))?;
        Ok(sender.send_request(request).await?)
    }

    /// POSTs a JSON body to `path` and reads the whole response.
    pub async fn post(&self, path: &str, body: String) -> Result<FullResponse, HttpError> {
        self.post_as(path, JSON, Bytes::from(body)).await
    }

    /// POSTs a body of media type `media` to `path` and reads the whole
    /// response.
    pub async fn post_as(
        &self,
        path: &str,
        media: &str,
        body: Bytes,
    ) -> Result<FullResponse, HttpError> {
        let response = self.open_as(path, media, body).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(FullResponse { status, body })
    }
}
