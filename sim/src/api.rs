//! The simulator's calls to the master's v1 scheduler API, sent with
//! `pando_scheduler`'s HTTP client: JSON bodies built and read as
//! `serde_json` values, as a hand-written framework would.
//!
//! ```text
//!  pooled(addr) ── Client (keep-alive pool, shared by its clones)
//!    ├─ subscribe ── SUBSCRIBE ── own connection ── stream id + EventStream
//!    │                                                  └─ next(): RecordIO record ─► JSON event
//!    └─ call ─────── ACCEPT, DECLINE, ACKNOWLEDGE, ... ── pooled connection ── status + body
//! ```
//!
//! The frameworks send many calls at once (`--calls_in_flight`), each from
//! its own task over the shared pool; nothing here orders or retries them.

use std::time::Duration;

use bytes::Bytes;
use pando_proto::codec::ContentType;
use pando_scheduler::client::{Client, ClientError, RecordStream, Reply};
use serde_json::Value;

/// The path of the v1 scheduler API.
pub const SCHEDULER_PATH: &str = "/api/v1/scheduler";

/// How long connecting and each request may take (a SUBSCRIBE: until its
/// answer's head). Far above any call's round trip, which reaches seconds
/// only in a launch storm at 10,000 agents (docs/benchmarks.md); it is
/// there so that a hung master ends a run instead of freezing it.
pub const DEADLINE: Duration = Duration::from_secs(300);

/// What went wrong with SUBSCRIBE or its event stream.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request failed, or the stream broke.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// SUBSCRIBE was refused.
    #[error("SUBSCRIBE answered {0}: {1}")]
    Refused(u16, String),
    /// An event is not JSON.
    #[error("an event is not JSON: {0}")]
    Event(String),
}

/// A client for `addr` (`host:port`) that sends its requests over
/// keep-alive connections, shared by its clones.
pub fn pooled(addr: &str) -> Result<Client, ClientError> {
    Ok(Client::new(addr, DEADLINE)?.with_keep_alive())
}

/// Sends a SUBSCRIBE call; the stream id and the open event stream.
pub async fn subscribe(client: &Client, call: Bytes) -> Result<(String, EventStream), ApiError> {
    let (reply, records) = client
        .open_stream(SCHEDULER_PATH, ContentType::Json, &[], call)
        .await?;
    if reply.status != 200 {
        return Err(ApiError::Refused(
            reply.status,
            records.into_text(DEADLINE).await,
        ));
    }
    let stream_id = reply.header("mesos-stream-id").unwrap_or_default();
    Ok((stream_id.to_string(), EventStream { records }))
}

/// Sends a call on the stream `stream_id`; any status is returned.
pub async fn call(client: &Client, stream_id: &str, call: Bytes) -> Result<Reply, ClientError> {
    client
        .post(
            SCHEDULER_PATH,
            ContentType::Json,
            &[("Mesos-Stream-Id", stream_id)],
            call,
        )
        .await
}

/// A scheduler event stream: RecordIO records of JSON events.
#[derive(Debug)]
pub struct EventStream {
    records: RecordStream,
}

impl EventStream {
    /// The next event, or `None` when the master closed the stream.
    pub async fn next(&mut self) -> Result<Option<Value>, ApiError> {
        let Some(record) = self.records.next().await? else {
            return Ok(None);
        };
        let event = serde_json::from_slice(&record).map_err(|e| ApiError::Event(e.to_string()))?;
        Ok(Some(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};

    /// Reads one request (head and `Content-Length` body); its head.
    async fn read_request(socket: &mut TcpStream) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed mid-request");
            seen.extend_from_slice(&buf[..n]);
            let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&seen[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if seen.len() >= end + 4 + length {
                return head;
            }
        }
    }

    /// A fake master on a free port for `connections` connections: it
    /// answers each one's first request with `answer`, then closes it.
    /// Hands back the heads of the requests.
    async fn fake_master(
        answer: &'static [u8],
        connections: usize,
    ) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let heads = tokio::spawn(async move {
            let mut heads = Vec::new();
            for _ in 0..connections {
                let (mut socket, _) = listener.accept().await.unwrap();
                heads.push(read_request(&mut socket).await);
                socket.write_all(answer).await.unwrap();
            }
            heads
        });
        (addr, heads)
    }

    #[tokio::test]
    async fn subscribe_gives_the_stream_id_and_json_events() {
        let (addr, heads) = fake_master(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMesos-Stream-Id: s-1\r\n\
              Content-Length: 44\r\n\r\n\
              37\n{\"type\":\"SUBSCRIBED\",\"subscribed\":{}}2\n{}",
            1,
        )
        .await;
        let client = pooled(&addr).unwrap();
        let (stream_id, mut events) = subscribe(&client, Bytes::from(r#"{"type":"SUBSCRIBE"}"#))
            .await
            .unwrap();
        assert_eq!(stream_id, "s-1");
        let first = events.next().await.unwrap().unwrap();
        assert_eq!(first["type"], "SUBSCRIBED");
        assert_eq!(events.next().await.unwrap(), Some(serde_json::json!({})));
        assert_eq!(events.next().await.unwrap(), None);
        let heads = heads.await.unwrap();
        assert!(heads[0].starts_with("post /api/v1/scheduler "), "{heads:?}");
        assert!(
            heads[0].contains("content-type: application/json"),
            "{heads:?}"
        );
        assert!(heads[0].contains("accept: application/json"), "{heads:?}");
    }

    #[tokio::test]
    async fn a_refused_subscribe_says_why() {
        let (addr, _heads) = fake_master(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 17\r\n\r\nNo leader elected",
            1,
        )
        .await;
        let client = pooled(&addr).unwrap();
        let err = subscribe(&client, Bytes::from("{}")).await.unwrap_err();
        assert!(
            matches!(&err, ApiError::Refused(503, why) if why == "No leader elected"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_event_that_is_not_json_is_named() {
        let (addr, _heads) =
            fake_master(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n4\nnope", 1).await;
        let client = pooled(&addr).unwrap();
        let (_, mut events) = subscribe(&client, Bytes::from("{}")).await.unwrap();
        let err = events.next().await.unwrap_err();
        assert!(matches!(err, ApiError::Event(_)), "{err}");
    }

    #[tokio::test]
    async fn calls_carry_the_stream_id_and_go_out_once_past_closed_connections() {
        // Each connection answers one call and closes (saying so, as a
        // server that closes does): every next call must go out, once, on
        // a new connection. (A close the server does not announce races
        // the pool's reuse, in the old client as in this one; the old one
        // sent such a call twice, this one reports it failed.)
        const CALLS: usize = 200;
        let (addr, heads) = fake_master(
            b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            CALLS,
        )
        .await;
        let client = pooled(&addr).unwrap();
        for _ in 0..CALLS {
            let reply = call(&client, "s-1", Bytes::from(r#"{"type":"DECLINE"}"#))
                .await
                .unwrap();
            assert_eq!(reply.status, 202);
        }
        let heads = heads.await.unwrap();
        assert_eq!(heads.len(), CALLS);
        assert!(heads[0].contains("mesos-stream-id: s-1"), "{heads:?}");
    }
}
