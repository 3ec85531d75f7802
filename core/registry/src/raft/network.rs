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

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use crate::proto::raft::raft_client::RaftClient;
use crate::proto::raft::RaftRequest;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use super::cluster::ClusterIdentity;
use super::types::{MasterAddress, NodeId, TypeConfig};

/// How long a connection attempt to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The largest message the Raft service and its clients exchange.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

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
