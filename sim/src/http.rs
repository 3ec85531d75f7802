//! A small HTTP/1.1 client for the master's JSON endpoints: plain requests
//! (scheduler calls, `/health`, `/metrics/snapshot`) over a pool of
//! keep-alive connections, and the scheduler's SUBSCRIBE stream decoded
//! from RecordIO into JSON events.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pando_proto::recordio;
use serde_json::Value;

/// What went wrong with a request or a stream.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request could not be built (a bad address).
    #[error("bad request to {0}: {1}")]
    Build(String, String),
    /// Connecting, sending or reading failed.
    #[error("HTTP to {0} failed: {1}")]
    Transport(String, String),
    /// SUBSCRIBE was refused.
    #[error("SUBSCRIBE answered {0}: {1}")]
    Refused(u16, String),
    /// The event stream broke its framing.
    #[error("the event stream is not RecordIO: {0}")]
    Framing(String),
}

/// A pooled HTTP/1.1 client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    /// A client that keeps idle connections for 10 s (the master closes
    /// them after its 30 s header timeout).
    pub fn new() -> Http {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(1024)
            .build(connector);
        Http { client }
    }

    fn request(
        addr: &str,
        method: &str,
        path: &str,
        stream_id: Option<&str>,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, HttpError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .header("Accept", "application/json");
        if !body.is_empty() {
            builder = builder.header("Content-Type", "application/json");
        }
        if let Some(id) = stream_id {
            builder = builder.header("Mesos-Stream-Id", id);
        }
        builder
            .body(Full::new(body))
            .map_err(|e| HttpError::Build(addr.into(), e.to_string()))
    }

    async fn send(
        &self,
        addr: &str,
        request: Request<Full<Bytes>>,
    ) -> Result<(u16, Bytes), HttpError> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| HttpError::Transport(addr.into(), e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| HttpError::Transport(addr.into(), e.to_string()))?
            .to_bytes();
        Ok((status, body))
    }

    /// A GET; returns the status and the body.
    pub async fn get(&self, addr: &str, path: &str) -> Result<(u16, Bytes), HttpError> {
        let request = Self::request(addr, "GET", path, None, Bytes::new())?;
        self.send(addr, request).await
    }

    /// A JSON POST on a scheduler stream; retried once if the pooled
    /// connection turned out to be closed.
    pub async fn post(
        &self,
        addr: &str,
        path: &str,
        stream_id: Option<&str>,
        body: Bytes,
    ) -> Result<(u16, Bytes), HttpError> {
        let request = Self::request(addr, "POST", path, stream_id, body.clone())?;
        match self.send(addr, request).await {
            Ok(reply) => Ok(reply),
            Err(HttpError::Transport(..)) => {
                let request = Self::request(addr, "POST", path, stream_id, body)?;
                self.send(addr, request).await
            }
            Err(e) => Err(e),
        }
    }

    /// Sends SUBSCRIBE and returns the stream id and the open event stream.
    pub async fn subscribe(
        &self,
        addr: &str,
        body: Bytes,
    ) -> Result<(String, EventStream), HttpError> {
        let request = Self::request(addr, "POST", "/api/v1/scheduler", None, body)?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| HttpError::Transport(addr.into(), e.to_string()))?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            return Err(HttpError::Refused(status, body));
        }
        let stream_id = response
            .headers()
            .get("mesos-stream-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok((
            stream_id,
            EventStream {
                body: response.into_body(),
                decoder: recordio::Decoder::new(recordio::DEFAULT_MAX_RECORD_SIZE),
            },
        ))
    }
}

/// A scheduler event stream: RecordIO records of JSON events.
pub struct EventStream {
    body: Incoming,
    decoder: recordio::Decoder,
}

impl EventStream {
    /// The next event, or `None` when the master closed the stream.
    pub async fn next(&mut self) -> Result<Option<Value>, HttpError> {
        loop {
            match self.decoder.next_record() {
                Ok(Some(record)) => {
                    let event = serde_json::from_slice(&record)
                        .map_err(|e| HttpError::Framing(e.to_string()))?;
                    return Ok(Some(event));
                }
                Ok(None) => {}
                Err(e) => return Err(HttpError::Framing(e.to_string())),
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(HttpError::Transport("event stream".into(), e.to_string()))
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.decoder.push(&data);
                    }
                }
            }
        }
    }
}
