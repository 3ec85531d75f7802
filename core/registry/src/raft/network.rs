//! openraft's RPCs to one peer, over tonic.
//!
//! openraft asks a [`RaftNetworkFactory`] for a client per peer and calls
//! `append_entries`, `vote` and `install_snapshot` on it. Each call here
//!
//! 1. JSON-encodes openraft's request into `RaftRequest.payload`, with this
//!    master's cluster id beside it;
//! 2. sends it on a lazily connected tonic `Channel` (connect timeout 1 s),
//!    bounded by the timeout openraft passes in its [`RPCOption`];
//! 3. decodes the reply's payload, openraft's `Result<response, RaftError>`.
//!
//! A peer that cannot be reached (refused, reset, or refusing our cluster id)
//! is reported as [`Unreachable`], which makes openraft back off before
//! trying it again; a call that runs out of time is a [`NetworkError`],
//! retried at once. Snapshots go through openraft's default chunked sender,
//! which calls `install_snapshot` per chunk.
//!
//! Entries can be large (an entry holding adapter records carries their
//! values), so an AppendEntries whose entries would pass
//! [`APPEND_ENTRIES_BUDGET`] is not sent: openraft is told to send fewer
//! ([`PayloadTooLarge`]) and retries at once with that many. A single entry
//! always goes; the registrar keeps each entry's batch small enough.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use crate::proto::raft::raft_client::RaftClient;
use crate::proto::raft::RaftRequest;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::EntryPayload;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use super::cluster::ClusterIdentity;
use super::types::{Entry, MasterAddress, NodeId, TypeConfig};

/// How long a connection attempt to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The largest message the Raft service and its clients exchange.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// How many bytes of entries (as estimated by [`entries_that_fit`]) one
/// AppendEntries may carry. Far below [`MAX_MESSAGE`]: openraft gives an
/// AppendEntries one heartbeat interval to be sent, decoded and written
/// on the follower, and a leader whose appends time out loses its lease.
pub const APPEND_ENTRIES_BUDGET: usize = 1024 * 1024;

/// How many of `entries`, from the first, fit in one AppendEntries, or
/// `None` when they all do. At least one always fits.
fn entries_that_fit(entries: &[Entry]) -> Option<u64> {
    let mut total = 0usize;
    for (i, entry) in entries.iter().enumerate() {
        // The batch goes as base64 (4 bytes per 3), plus the log id and
        // field names around it.
        total += match &entry.payload {
            EntryPayload::Normal(request) => request.operations.len().div_ceil(3) * 4 + 256,
            EntryPayload::Blank | EntryPayload::Membership(_) => 1024,
        };
        if total > APPEND_ENTRIES_BUDGET {
            return Some(i.max(1) as u64);
        }
    }
    None
}

/// Why one RPC failed before openraft's own errors come into it.
#[derive(Debug, thiserror::Error)]
pub enum NetworkFailure {
    /// The peer's address is not a valid endpoint.
    #[error("invalid Raft address {address}: {reason}")]
    Address {
        /// The address.
        address: String,
        /// Why tonic refused it.
        reason: String,
    },
    /// This master has no cluster id yet, so it cannot speak for one.
    #[error("this master does not know its cluster id yet")]
    NoCluster,
    /// The peer refused the call or could not be reached.
    #[error("{peer}: {status}")]
    Transport {
        /// The peer.
        peer: String,
        /// tonic's status.
        status: tonic::Status,
    },
    /// No answer within the time openraft allowed.
    #[error("{peer} did not answer within {timeout:?}")]
    Timeout {
        /// The peer.
        peer: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// A request or reply did not (de)serialize.
    #[error("{peer}: cannot {action} the payload: {source}")]
    Codec {
        /// The peer.
        peer: String,
        /// "encode" or "decode".
        action: &'static str,
        /// The cause.
        source: serde_json::Error,
    },
}

/// Makes a [`Peer`] for each node openraft replicates to or asks for votes.
#[derive(Clone)]
pub struct Network {
    cluster: Arc<ClusterIdentity>,
}

impl Network {
    /// A network speaking for the cluster in `cluster`.
    pub fn new(cluster: Arc<ClusterIdentity>) -> Network {
        Network { cluster }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &MasterAddress) -> Peer {
        Peer::new(target, node.clone(), self.cluster.clone())
    }
}

/// A tonic client to one peer's Raft service.
pub struct Peer {
    target: NodeId,
    node: MasterAddress,
    cluster: Arc<ClusterIdentity>,
    /// `Err` when the address cannot be an endpoint; every call then fails.
    client: Result<RaftClient<Channel>, String>,
}

/// Which of the service's three Raft methods to call.
#[derive(Clone, Copy)]
enum Method {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

impl Peer {
    /// A client for `node`; it connects on first use.
    pub fn new(target: NodeId, node: MasterAddress, cluster: Arc<ClusterIdentity>) -> Peer {
        let client = connect_lazy(&node.raft);
        Peer {
            target,
            node,
            cluster,
            client,
        }
    }

    async fn call<Req, Resp, E>(
        &mut self,
        method: Method,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, MasterAddress, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let peer = self.node.raft.clone();
        let unreachable = |e: NetworkFailure| RPCError::Unreachable(Unreachable::new(&e));
        let client = match &self.client {
            Ok(client) => client.clone(),
            Err(reason) => {
                return Err(unreachable(NetworkFailure::Address {
                    address: peer,
                    reason: reason.clone(),
                }))
            }
        };
        let cluster = self
            .cluster
            .id()
            .ok_or_else(|| unreachable(NetworkFailure::NoCluster))?;
        let payload = serde_json::to_vec(request).map_err(|source| {
            RPCError::Network(NetworkError::new(&NetworkFailure::Codec {
                peer: peer.clone(),
                action: "encode",
                source,
            }))
        })?;
        let timeout = option.hard_ttl();
        let mut message = tonic::Request::new(RaftRequest {
            cluster,
            payload: payload.into(),
        });
        message.set_timeout(timeout);
        let mut client = client;
        let sent = async {
            match method {
                Method::AppendEntries => client.append_entries(message).await,
                Method::Vote => client.vote(message).await,
                Method::InstallSnapshot => client.install_snapshot(message).await,
            }
        };
        let reply = match tokio::time::timeout(timeout, sent).await {
            Err(_elapsed) => {
                return Err(RPCError::Network(NetworkError::new(
                    &NetworkFailure::Timeout { peer, timeout },
                )))
            }
            Ok(Err(status)) if status.code() == tonic::Code::DeadlineExceeded => {
                return Err(RPCError::Network(NetworkError::new(
                    &NetworkFailure::Timeout { peer, timeout },
                )))
            }
            Ok(Err(status)) => return Err(unreachable(NetworkFailure::Transport { peer, status })),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        let result: Result<Resp, RaftError<NodeId, E>> = serde_json::from_slice(&reply.payload)
            .map_err(|source| {
                RPCError::Network(NetworkError::new(&NetworkFailure::Codec {
                    peer,
                    action: "decode",
                    source,
                }))
            })?;
        result.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }
}

/// A client for the Raft service at `address` ("ip:port"), connecting lazily.
pub fn connect_lazy(address: &str) -> Result<RaftClient<Channel>, String> {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(CONNECT_TIMEOUT);
    Ok(RaftClient::new(endpoint.connect_lazy())
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, MasterAddress, RaftError<NodeId>>>
    {
        if rpc.entries.len() > 1 {
            if let Some(fit) = entries_that_fit(&rpc.entries) {
                return Err(PayloadTooLarge::new_entries_hint(fit).into());
            }
        }
        self.call(Method::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, MasterAddress, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(Method::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, MasterAddress, RaftError<NodeId>>> {
        self.call(Method::Vote, &rpc, &option).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::Request;
    use bytes::Bytes;

    fn entry(index: u64, bytes: usize) -> Entry {
        Entry {
            log_id: openraft::testing::log_id(1, 1, index),
            payload: EntryPayload::Normal(Request {
                operations: Bytes::from(vec![0u8; bytes]),
            }),
        }
    }

    #[test]
    fn large_entries_are_sent_a_few_at_a_time_and_a_single_one_always_goes() {
        let small: Vec<Entry> = (1..=300).map(|i| entry(i, 1000)).collect();
        assert_eq!(entries_that_fit(&small), None);
        // 300 kB entries: base64 makes each 400 kB, two fit in 1 MiB.
        let large: Vec<Entry> = (1..=5).map(|i| entry(i, 300_000)).collect();
        assert_eq!(entries_that_fit(&large), Some(2));
        let huge: Vec<Entry> = (1..=2).map(|i| entry(i, 2_000_000)).collect();
        assert_eq!(entries_that_fit(&huge), Some(1));
    }
}
