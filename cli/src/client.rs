//! A small HTTP/1.1 client for the master's and agents' APIs.
//!
//! Every request opens its own connection (the Mesos APIs need nothing
//! more), with a deadline on connecting and on the whole exchange, so an
//! unreachable address fails fast and names itself. Streams (the scheduler
//! API's SUBSCRIBE) hand back the unread body, which [`RecordStream`] cuts
//! into RecordIO records.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use pando_proto::recordio;
use tokio::net::TcpStream;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is not `host:port`.
    #[error("'{0}' is not an address: expected host:port, e.g. 127.0.0.1:5050")]
    Address(String),
    /// Nothing answered at the address.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address tried.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The exchange took too long.
    #[error("{addr} did not answer within {secs:.1}s")]
    Timeout {
        /// The address tried.
        addr: String,
        /// The deadline, in seconds.
        secs: f64,
    },
    /// The HTTP exchange failed.
    #[error("HTTP request to {addr}{path} failed: {reason}")]
    Http {
        /// The address.
        addr: String,
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The answer was not the JSON expected.
    #[error("{addr}{path} answered {status}: {body}")]
    Status {
        /// The address.
        addr: String,
        /// The path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The body, as text.
        body: String,
    },
    /// The body was not JSON.
    #[error("{addr}{path} did not answer JSON: {reason}")]
    Json {
        /// The address.
        addr: String,
        /// The path.
        path: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A stream's RecordIO framing was broken.
    #[error("the event stream broke: {0}")]
    RecordIo(recordio::RecordIoError),
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// Normalises a `--master` value: drops `http://` and a trailing `/`.
pub fn normalize_address(text: &str) -> Result<String, ClientError> {
    let addr = text
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(addr),
        _ => Err(ClientError::Address(text.to_string())),
    }
}

/// The address in a libprocess pid such as `slave(1)@127.0.0.1:5051`.
pub fn pid_address(pid: &str) -> Option<String> {
    pid.rsplit_once('@').map(|(_, addr)| addr.to_string())
}

/// An HTTP client bound to one address, with one deadline per request.
#[derive(Debug, Clone)]
pub struct Client {
    /// `host:port`.
    pub addr: String,
    /// How long connecting and each whole request may take.
    pub timeout: Duration,
}

impl Client {
    /// A client for `addr` (`host:port`, `http://` allowed).
    pub fn new(addr: &str, timeout: Duration) -> Result<Client, ClientError> {
        Ok(Client {
            addr: normalize_address(addr)?,
            timeout,
        })
    }

    /// A client for the leading master among `masters` (one `host:port`,
    /// or several joined by commas): each is asked `/master/redirect` in
    /// turn, and the first answer names the leader.
    pub async fn leading(masters: &str, timeout: Duration) -> Result<Client, ClientError> {
        let list: Vec<&str> = masters
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect();
        if list.len() <= 1 {
            return Client::new(masters, timeout);
        }
        let mut last = ClientError::Address(masters.to_string());
        for master in list {
            let client = Client::new(master, timeout)?;
            match client
                .request("GET", "/master/redirect", &[], Bytes::new())
                .await
            {
                Ok(reply) if reply.status == 307 => {
                    let leader = reply
                        .headers
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .and_then(crate::execute::leader_address);
                    if let Some(leader) = leader {
                        return Client::new(&leader, timeout);
                    }
                }
                Ok(reply) => {
                    last = ClientError::Status {
                        addr: client.addr.clone(),
                        path: "/master/redirect".into(),
                        status: reply.status,
                        body: String::from_utf8_lossy(&reply.body).trim().to_string(),
                    }
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn timed_out(&self) -> ClientError {
        ClientError::Timeout {
            addr: self.addr.clone(),
            secs: self.timeout.as_secs_f64(),
        }
    }

    async fn connect(
        &self,
    ) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, ClientError> {
        let connect = async {
            let stream =
                TcpStream::connect(&self.addr)
                    .await
                    .map_err(|e| ClientError::Connect {
                        addr: self.addr.clone(),
                        reason: e.to_string(),
                    })?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| ClientError::Connect {
                    addr: self.addr.clone(),
                    reason: e.to_string(),
                })?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(sender)
        };
        tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| self.timed_out())?
    }

    fn build(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("Host", self.addr.as_str());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(Full::new(body)).map_err(|e| ClientError::Http {
            addr: self.addr.clone(),
            path: path.to_string(),
            reason: e.to_string(),
        })
    }

    fn http_error(&self, path: &str, e: impl std::fmt::Display) -> ClientError {
        ClientError::Http {
            addr: self.addr.clone(),
            path: path.to_string(),
            reason: e.to_string(),
        }
    }

    /// One request, its answer read whole.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Reply, ClientError> {
        let exchange = async {
            let mut sender = self.connect().await?;
            let response = sender
                .send_request(self.build(method, path, headers, body)?)
                .await
                .map_err(|e| self.http_error(path, e))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| self.http_error(path, e))?
                .to_bytes();
            Ok(Reply {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| self.timed_out())?
    }

    /// A GET whose 200 answer is JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let reply = self.request("GET", path, &[], Bytes::new()).await?;
        if reply.status != 200 {
            return Err(ClientError::Status {
                addr: self.addr.clone(),
                path: path.to_string(),
                status: reply.status,
                body: String::from_utf8_lossy(&reply.body).trim().to_string(),
            });
        }
        serde_json::from_slice(&reply.body).map_err(|e| ClientError::Json {
            addr: self.addr.clone(),
            path: path.to_string(),
            reason: e.to_string(),
        })
    }

    /// A JSON POST; any status is returned.
    pub async fn post_json(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Result<Reply, ClientError> {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.request("POST", path, &all, Bytes::from(body)).await
    }

    /// Opens a streaming POST: the status and headers within the deadline,
    /// the body left unread.
    pub async fn open_stream(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Result<(u16, hyper::HeaderMap, Incoming), ClientError> {
        let open = async {
            let mut sender = self.connect().await?;
            let mut all = vec![
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
            ];
            all.extend_from_slice(headers);
            let response = sender
                .send_request(self.build("POST", path, &all, Bytes::from(body))?)
                .await
                .map_err(|e| self.http_error(path, e))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            Ok((status, headers, response.into_body()))
        };
        tokio::time::timeout(self.timeout, open)
            .await
            .map_err(|_| self.timed_out())?
    }
}

/// Reads RecordIO records off a streaming body.
#[derive(Debug)]
pub struct RecordStream {
    body: Incoming,
    decoder: recordio::Decoder,
}

impl RecordStream {
    /// Wraps a body opened by [`Client::open_stream`].
    pub fn new(body: Incoming) -> RecordStream {
        RecordStream {
            body,
            decoder: recordio::Decoder::new(recordio::DEFAULT_MAX_RECORD_SIZE),
        }
    }

    /// The next record, or `None` once the stream has ended.
    pub async fn next(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            if let Some(record) = self.decoder.next_record().map_err(ClientError::RecordIo)? {
                return Ok(Some(record));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(_)) => return Ok(None),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.decoder.push(&data);
                    }
                }
            }
        }
    }
}

/// Percent-encodes a query parameter value.
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_or_named() {
        assert_eq!(
            normalize_address("http://127.0.0.1:5050/").unwrap(),
            "127.0.0.1:5050"
        );
        let err = normalize_address("localhost").unwrap_err();
        assert!(err.to_string().contains("'localhost'"), "{err}");
        assert_eq!(
            pid_address("slave(1)@127.0.0.1:5051").as_deref(),
            Some("127.0.0.1:5051")
        );
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query("/a b/c&d"), "/a%20b/c%26d");
    }

    #[tokio::test]
    async fn a_silent_master_times_out_naming_itself() {
        // Accepted by the kernel's backlog, never answered.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let client = Client::new(&addr, Duration::from_millis(200)).unwrap();
        let start = std::time::Instant::now();
        let err = client.get_json("/master/state").await.unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(
            err.to_string().contains(&format!("{addr} did not answer")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_address_is_named() {
        // A port nothing listens on: bind, note it, drop.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new(&format!("127.0.0.1:{port}"), Duration::from_secs(2)).unwrap();
        let err = client.get_json("/master/state").await.unwrap_err();
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }
}
