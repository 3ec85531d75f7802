//! The tonic service `pando.raft.v1.Raft`: peers' RPCs into the local openraft.
//!
//! Each Raft method checks the request's cluster id against this master's
//! ([`ClusterIdentity::adopt`]: a master that has none yet takes the id of the
//! first request, a master that has one refuses any other with
//! `FAILED_PRECONDITION`), decodes openraft's JSON request, hands it to the
//! local [`Raft`](super::types::Raft) and returns its JSON-encoded
//! `Result`, errors included, for the peer's openraft to interpret.
//!
//! `Hello` answers who this master is: its `--masters`, its cluster id, the
//! voters it knows and the leader, so that a starting master can check it
//! belongs with us before it initializes or joins (see
//! [`ReplicatedRegistry::start`](crate::replicated::ReplicatedRegistry::start)).

use std::sync::Arc;

use crate::proto::raft::raft_server::{Raft as RaftRpc, RaftServer};
use crate::proto::raft::{HelloReply, HelloRequest, RaftReply, RaftRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

use super::cluster::{ClusterError, ClusterIdentity};
use super::network::MAX_MESSAGE;
use super::types::{MasterAddress, Raft};

/// Why a peer's request was refused (sent back as a tonic status).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request carries no cluster id.
    #[error("the request names no cluster")]
    NoCluster,
    /// The request's cluster is not ours.
    #[error("refused: {0}")]
    Cluster(#[from] ClusterError),
    /// The payload is not openraft's JSON.
    #[error("the payload does not decode: {0}")]
    Decode(serde_json::Error),
    /// openraft's reply did not encode.
    #[error("the reply does not encode: {0}")]
    Encode(serde_json::Error),
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Status {
        match &e {
            ServiceError::NoCluster | ServiceError::Cluster(ClusterError::OtherCluster { .. }) => {
                Status::failed_precondition(e.to_string())
            }
            ServiceError::Decode(_) => Status::invalid_argument(e.to_string()),
            ServiceError::Cluster(_) | ServiceError::Encode(_) => Status::internal(e.to_string()),
        }
    }
}

/// The service; cheap to clone.
#[derive(Clone)]
pub struct RaftService {
    raft: Raft,
    cluster: Arc<ClusterIdentity>,
    /// This master's `--masters`, as `Hello` reports them (sorted).
    masters: Vec<String>,
}

impl RaftService {
    /// A service answering for `raft`.
    pub fn new(
        raft: Raft,
        cluster: Arc<ClusterIdentity>,
        masters: &[MasterAddress],
    ) -> RaftService {
        RaftService {
            raft,
            cluster,
            masters: masters_on_the_wire(masters),
        }
    }

    /// Wrapped in tonic's server, with message limits fit for snapshots.
    pub fn into_server(self) -> RaftServer<RaftService> {
        RaftServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    fn admit<T: DeserializeOwned>(&self, request: &RaftRequest) -> Result<T, ServiceError> {
        if request.cluster.is_empty() {
            return Err(ServiceError::NoCluster);
        }
        if let Err(e) = self.cluster.adopt(&request.cluster) {
            tracing::warn!(error = %e, "refused a Raft request from another cluster");
            return Err(e.into());
        }
        serde_json::from_slice(&request.payload).map_err(ServiceError::Decode)
    }
}

/// A `--masters` list as `Hello` carries it: each master's display form, sorted.
pub fn masters_on_the_wire(masters: &[MasterAddress]) -> Vec<String> {
    let mut wire: Vec<String> = masters.iter().map(ToString::to_string).collect();
    wire.sort();
    wire.dedup();
    wire
}

fn reply<T: Serialize>(result: &T) -> Result<Response<RaftReply>, Status> {
    let payload = serde_json::to_vec(result).map_err(ServiceError::Encode)?;
    Ok(Response::new(RaftReply {
        payload: payload.into(),
    }))
}

#[tonic::async_trait]
impl RaftRpc for RaftService {
    async fn append_entries(
        &self,
        request: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let rpc = self.admit(request.get_ref())?;
        reply(&self.raft.append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let rpc = self.admit(request.get_ref())?;
        reply(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let rpc = self.admit(request.get_ref())?;
        reply(&self.raft.install_snapshot(rpc).await)
    }

    async fn hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        // The asking master decides whether it may join; what it will find
        // wrong is worth a line in this master's log too.
        let asked = request.get_ref();
        match self.cluster.id() {
            Some(ours) if !asked.cluster.is_empty() && asked.cluster != ours => {
                tracing::warn!(
                    ours,
                    theirs = asked.cluster,
                    "a master of another cluster said Hello; it will refuse to start"
                );
            }
            None if asked.cluster.is_empty() && asked.masters != self.masters => {
                tracing::warn!(
                    ours = self.masters.join(","),
                    theirs = asked.masters.join(","),
                    "a master with another --masters list said Hello; it will refuse to start"
                );
            }
            _ => {}
        }
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let mut voters: Vec<String> = membership
            .voter_ids()
            .filter_map(|id| membership.get_node(&id).map(ToString::to_string))
            .collect();
        voters.sort();
        let leader = metrics
            .current_leader
            .and_then(|id| membership.get_node(&id))
            .map(|node| node.http.clone())
            .unwrap_or_default();
        Ok(Response::new(HelloReply {
            masters: self.masters.clone(),
            cluster: self.cluster.id().unwrap_or_default(),
            voters,
            leader,
        }))
    }
}
