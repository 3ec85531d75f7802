//! A small HTTP/1.1 client for the masters' and agents' APIs: the one
//! client of the workspace's tools (the CLI's operator commands, the
//! scheduler driver's HTTP transport).
//!
//! ```text
//!   Client (host:port, deadline, credentials)
//!     ├─ request / get_json / post ── one connection ── whole reply (Reply)
//!     └─ open_stream ──────────────── one connection ── head + RecordStream
//!   Client::leading(masters) ── GET /master/redirect on each ── the leader
//! ```
//!
//! By default every request opens its own connection (operator commands
//! need nothing more, and a restarted master is never reached through a
//! stale socket), driven inside the request's own future (and, for a
//! stream, inside [`RecordStream::next`]), so no task outlives a request.
//! A client made [`Client::with_keep_alive`] sends its whole-reply requests
//! over a pool of keep-alive connections instead (its clones share it),
//! for callers that make many calls, such as a framework's scheduler calls.
//! Either way each request has a deadline on connecting and on the
//! exchange, so an unreachable address fails fast, and every error names
//! the address it was talking to.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use pando_proto::codec::ContentType;
use pando_proto::recordio;
use tokio::net::TcpStream;

/// The master's path that redirects to the leading master.
pub const REDIRECT_PATH: &str = "/master/redirect";

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
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
    /// The answer was not the one expected.
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
    #[error("the event stream from {addr} broke: {reason}")]
    RecordIo {
        /// The address.
        addr: String,
        /// The decoder's complaint.
        reason: String,
    },
}

impl ClientError {
    /// Whether nothing answered at all (no connection, or no answer in
    /// time), as opposed to an answer the caller did not like.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. } | ClientError::Timeout { .. } | ClientError::Http { .. }
        )
    }
}

/// An HTTP answer, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The body as trimmed text, for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_string()
    }

    /// A header's value, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
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

/// Splits a list of masters (`host:port`, or several joined by commas) into
/// normalised addresses.
pub fn master_list(masters: &str) -> Result<Vec<String>, ClientError> {
    let list: Vec<String> = masters
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(normalize_address)
        .collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err(ClientError::Address(masters.to_string()));
    }
    Ok(list)
}

/// The address in a libprocess pid such as `slave(1)@127.0.0.1:5051`.
pub fn pid_address(pid: &str) -> Option<String> {
    pid.rsplit_once('@').map(|(_, addr)| addr.to_string())
}

/// The `host:port` in a redirect's `Location`: `//host:port/path` as Mesos
/// writes it, `http://host:port/path`, or a bare `host:port` (the example
/// in Mesos's scheduler API documentation).
pub fn leader_address(location: &str) -> Option<String> {
    let rest = location
        .trim()
        .trim_start_matches("http:")
        .trim_start_matches("https:")
        .trim_start_matches("//");
    let addr = rest.split('/').next()?;
    normalize_address(addr).ok()
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

/// The HTTP/1.1 connection of one request, driven by whoever awaits it.
type Connection = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An HTTP client bound to one address, with one deadline per request.
#[derive(Debug, Clone)]
pub struct Client {
    /// `host:port`.
    addr: String,
    /// How long connecting and each whole request (a stream: its head) may
    /// take.
    timeout: Duration,
    /// `Basic <base64>`, when the master authenticates HTTP clients.
    authorization: Option<String>,
    /// Keep-alive connections for whole-reply requests, shared by clones;
    /// `None`: a connection per request.
    pool: Option<Pool>,
}

/// hyper's pooled client, as [`Client::with_keep_alive`] uses it.
type Pool = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

/// How long an idle keep-alive connection is kept (the master closes idle
/// connections after 30 s).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    /// A client for `addr` (`host:port`, `http://` allowed).
    pub fn new(addr: &str, timeout: Duration) -> Result<Client, ClientError> {
        Ok(Client {
            addr: normalize_address(addr)?,
            timeout,
            authorization: None,
            pool: None,
        })
    }

    /// Sends whole-reply requests over keep-alive connections, pooled per
    /// address and shared by this client's clones. A request that never
    /// left is sent again on a fresh connection; one that did is not.
    pub fn with_keep_alive(mut self) -> Client {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(self.timeout));
        let pool =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .build(connector);
        self.pool = Some(pool);
        self
    }

    /// Sends HTTP Basic credentials with every request.
    pub fn with_basic_auth(mut self, principal: &str, secret: &str) -> Client {
        self.authorization = Some(basic_authorization(principal, secret));
        self
    }

    /// Sets how long connecting and each request may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The same client pointed at another address.
    pub fn at(&self, addr: &str) -> Result<Client, ClientError> {
        Ok(Client {
            addr: normalize_address(addr)?,
            ..self.clone()
        })
    }

    /// The `host:port` this client talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The deadline of each request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A client for the leading master among `masters` (one `host:port`,
    /// or several joined by commas): each is asked `/master/redirect` in
    /// turn, and the first answer that names the leader wins. A single
    /// master is taken as it is.
    pub async fn leading(masters: &str, timeout: Duration) -> Result<Client, ClientError> {
        let list = master_list(masters)?;
        if list.len() == 1 {
            return Client::new(&list[0], timeout);
        }
        let mut last = ClientError::Address(masters.to_string());
        for master in &list {
            let client = Client::new(master, timeout)?;
            match client.find_leader().await {
                Ok(leader) => return Ok(leader),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Asks this master which master leads; a client for that one.
    pub async fn find_leader(&self) -> Result<Client, ClientError> {
        let reply = self
            .request("GET", REDIRECT_PATH, &[], Bytes::new())
            .await?;
        if reply.status == 307 {
            if let Some(leader) = reply.header("location").and_then(leader_address) {
                return self.at(&leader);
            }
        }
        Err(self.status_error(REDIRECT_PATH, &reply))
    }

    /// The error for an unexpected answer to `path`.
    pub fn status_error(&self, path: &str, reply: &Reply) -> ClientError {
        ClientError::Status {
            addr: self.addr.clone(),
            path: path.to_string(),
            status: reply.status,
            body: reply.text(),
        }
    }

    fn timed_out(&self) -> ClientError {
        ClientError::Timeout {
            addr: self.addr.clone(),
            secs: self.timeout.as_secs_f64(),
        }
    }

    fn http_error(&self, path: &str, e: impl std::fmt::Display) -> ClientError {
        ClientError::Http {
            addr: self.addr.clone(),
            path: path.to_string(),
            reason: e.to_string(),
        }
    }

    /// Connects and hands back the request sender and the connection,
    /// which the caller must poll while it waits for the answer.
    async fn connect(
        &self,
    ) -> Result<
        (
            hyper::client::conn::http1::SendRequest<Full<Bytes>>,
            Connection,
        ),
        ClientError,
    > {
        let connect_error = |e: &dyn std::fmt::Display| ClientError::Connect {
            addr: self.addr.clone(),
            reason: e.to_string(),
        };
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| connect_error(&e))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| connect_error(&e))?;
        let connection: Connection = Box::pin(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection closed");
            }
        });
        Ok((sender, connection))
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
        if let Some(authorization) = &self.authorization {
            req = req.header("Authorization", authorization.as_str());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(Full::new(body))
            .map_err(|e| self.http_error(path, e))
    }

    /// One request, its answer read whole.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Reply, ClientError> {
        if let Some(pool) = &self.pool {
            return self.pooled_request(pool, method, path, headers, body).await;
        }
        let request = self.build(method, path, headers, body)?;
        let exchange = async {
            let (mut sender, connection) = self.connect().await?;
            let answer = async move {
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| self.http_error(path, e))?;
                let reply = self.read_reply(path, response).await;
                // Dropping `sender` lets the connection end.
                drop(sender);
                reply
            };
            let (reply, ()) = tokio::join!(answer, connection);
            reply
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| self.timed_out())?
    }

    /// An answer's status, headers and whole body.
    async fn read_reply(
        &self,
        path: &str,
        response: hyper::Response<hyper::body::Incoming>,
    ) -> Result<Reply, ClientError> {
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
    }

    /// One request over the keep-alive pool, its answer read whole.
    async fn pooled_request(
        &self,
        pool: &Pool,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Reply, ClientError> {
        let mut request = self.build(method, path, headers, body)?;
        *request.uri_mut() = format!("http://{}{path}", self.addr)
            .parse()
            .map_err(|e| self.http_error(path, e))?;
        let exchange = async {
            let response = pool.request(request).await.map_err(|e| {
                if e.is_connect() {
                    ClientError::Connect {
                        addr: self.addr.clone(),
                        reason: std::error::Error::source(&e)
                            .map_or_else(|| e.to_string(), ToString::to_string),
                    }
                } else {
                    self.http_error(path, e)
                }
            })?;
            self.read_reply(path, response).await
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| self.timed_out())?
    }

    /// A GET whose 200 answer is JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let reply = self.request("GET", path, &[], Bytes::new()).await?;
        if reply.status != 200 {
            return Err(self.status_error(path, &reply));
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
        self.post(path, ContentType::Json, headers, Bytes::from(body))
            .await
    }

    /// A POST of a body in `content_type` (also asked for in `Accept`);
    /// any status is returned.
    pub async fn post(
        &self,
        path: &str,
        content_type: ContentType,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Reply, ClientError> {
        let mut all = vec![
            ("Content-Type", content_type.mime()),
            ("Accept", content_type.mime()),
        ];
        all.extend_from_slice(headers);
        self.request("POST", path, &all, body).await
    }

    /// Opens a streaming POST of a body in `content_type`: the status and
    /// headers within the deadline, the body left to read as RecordIO.
    pub async fn open_stream(
        &self,
        path: &str,
        content_type: ContentType,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(Reply, RecordStream), ClientError> {
        let mut all = vec![
            ("Content-Type", content_type.mime()),
            ("Accept", content_type.mime()),
        ];
        all.extend_from_slice(headers);
        let request = self.build("POST", path, &all, body)?;
        let open = async {
            let (mut sender, mut connection) = self.connect().await?;
            let send = sender.send_request(request);
            tokio::pin!(send);
            // A peer that answers and closes (HTTP/1.0 style) ends the
            // connection as the answer arrives: the answer still counts.
            let mut open = true;
            let response = tokio::select! {
                biased;
                response = &mut send => response,
                () = &mut connection => {
                    open = false;
                    send.await
                }
            }
            .map_err(|e| self.http_error(path, e))?;
            let reply = Reply {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                body: Bytes::new(),
            };
            let stream = RecordStream {
                addr: self.addr.clone(),
                body: response.into_body(),
                connection: open.then_some(connection),
                decoder: recordio::Decoder::new(recordio::DEFAULT_MAX_RECORD_SIZE),
            };
            Ok((reply, stream))
        };
        tokio::time::timeout(self.timeout, open)
            .await
            .map_err(|_| self.timed_out())?
    }
}

/// The `Authorization` value of HTTP Basic credentials.
fn basic_authorization(principal: &str, secret: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"));
    format!("Basic {token}")
}

/// Reads RecordIO records off a streaming body, driving its connection.
pub struct RecordStream {
    /// The address, for errors.
    addr: String,
    body: Incoming,
    /// The connection under `body`; `None` once it has closed.
    connection: Option<Connection>,
    decoder: recordio::Decoder,
}

impl std::fmt::Debug for RecordStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RecordStream {
    /// The address the stream comes from.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Reads what is left of the body as text: the explanation of an
    /// answer that did not open a stream. Empty if it does not come within
    /// `within`.
    pub async fn into_text(self, within: Duration) -> String {
        let RecordStream {
            body, connection, ..
        } = self;
        let read = async move {
            body.collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
                .unwrap_or_default()
        };
        let whole = async move {
            match connection {
                Some(connection) => tokio::join!(read, connection).0,
                None => read.await,
            }
        };
        tokio::time::timeout(within, whole)
            .await
            .unwrap_or_default()
    }

    /// The next record, or `None` once the stream has ended.
    pub async fn next(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            match self.decoder.next_record() {
                Ok(Some(record)) => return Ok(Some(record)),
                Ok(None) => {}
                Err(e) => {
                    return Err(ClientError::RecordIo {
                        addr: self.addr.clone(),
                        reason: e.to_string(),
                    })
                }
            }
            let frame = match &mut self.connection {
                Some(connection) => tokio::select! {
                    frame = self.body.frame() => frame,
                    () = connection => {
                        self.connection = None;
                        continue;
                    }
                },
                None => self.body.frame().await,
            };
            match frame {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(ClientError::Http {
                        addr: self.addr.clone(),
                        path: String::new(),
                        reason: format!("the stream broke: {e}"),
                    })
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
        assert_eq!(
            master_list("m1:5050, http://m2:5050/").unwrap(),
            vec!["m1:5050".to_string(), "m2:5050".to_string()]
        );
        assert!(master_list(" , ").is_err());
    }

    #[test]
    fn redirects_name_the_leader() {
        assert_eq!(
            leader_address("//127.0.0.1:5051/api/v1/scheduler").as_deref(),
            Some("127.0.0.1:5051")
        );
        assert_eq!(
            leader_address("http://m2:5050/api/v1/scheduler").as_deref(),
            Some("m2:5050")
        );
        assert_eq!(
            leader_address("masterhost2:5050").as_deref(),
            Some("masterhost2:5050")
        );
        assert_eq!(leader_address("/api/v1/scheduler"), None);
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query("/a b/c&d"), "/a%20b/c%26d");
    }

    #[test]
    fn basic_credentials_are_base64() {
        // RFC 7617's example.
        assert_eq!(
            basic_authorization("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[tokio::test]
    async fn a_silent_master_times_out_naming_itself() {
        // Accepted by the kernel's backlog, never answered.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let client = Client::new(&addr, Duration::from_millis(200)).unwrap();
        let err = client.get_json("/master/state").await.unwrap_err();
        assert_eq!(
            err,
            ClientError::Timeout {
                addr: addr.clone(),
                secs: 0.2
            }
        );
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
        assert!(err.is_unreachable(), "{err}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_answer_from_a_peer_that_closes_at_once_still_counts() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let peer = tokio::spawn(async move {
            for _ in 0..20 {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = vec![0; 4096];
                let _ = socket.read(&mut request).await.unwrap();
                socket
                    .write_all(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 17\r\n\r\nNo leader elected")
                    .await
                    .unwrap();
                // Dropping the socket closes the connection right away.
            }
        });
        let client = Client::new(&addr, Duration::from_secs(5)).unwrap();
        for _ in 0..20 {
            let (reply, stream) = client
                .open_stream(
                    "/api/v1/scheduler",
                    ContentType::Json,
                    &[],
                    Bytes::from("{}"),
                )
                .await
                .unwrap();
            assert_eq!(reply.status, 503);
            assert_eq!(
                stream.into_text(Duration::from_secs(5)).await,
                "No leader elected"
            );
        }
        peer.await.unwrap();
    }
}
