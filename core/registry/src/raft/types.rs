//! The types openraft is instantiated with, and how a master is named.
//!
//! openraft is generic over a *type config*: what a log entry carries (`D`),
//! what applying one returns (`R`), how nodes are identified (`NodeId`) and
//! what a node's address looks like (`Node`). For Pando:
//!
//! - `D` is [`Request`]: one `Operations` batch from `registry.proto`, kept
//!   as its protobuf encoding so the log holds the same bytes the master
//!   proposed. openraft serializes entries with serde; the bytes go in as
//!   base64 so the JSON stays compact and readable.
//! - `R` is `()`: the writer learns the entry's log index from openraft.
//! - `NodeId` is a `u64` derived from the master's Raft address by
//!   [`node_id`], so adding or removing masters never renumbers the others.
//! - `Node` is [`MasterAddress`], so every membership entry in the log says
//!   where each voter can be reached.

use std::fmt;
use std::io::Cursor;

use bytes::Bytes;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::model::Operations;

/// One master's addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MasterAddress {
    /// Where the master serves HTTP (schedulers, agents, operators): "ip:port".
    pub http: String,
    /// Where it answers Raft: "ip:port"; equal to `http` when Raft shares the
    /// master's port.
    pub raft: String,
}

impl MasterAddress {
    /// A master whose Raft service shares its HTTP port.
    pub fn shared(address: impl Into<String>) -> MasterAddress {
        let address = address.into();
        MasterAddress {
            http: address.clone(),
            raft: address,
        }
    }

    /// This master's Raft node id (see [`node_id`]).
    pub fn node_id(&self) -> NodeId {
        node_id(&self.raft)
    }
}

impl fmt::Display for MasterAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.http == self.raft {
            write!(f, "{}", self.http)
        } else {
            write!(f, "{} (raft {})", self.http, self.raft)
        }
    }
}

/// A master's Raft node id.
pub type NodeId = u64;

/// The node id of the master whose Raft service listens on `raft_address`:
/// the 64-bit FNV-1a hash of the "ip:port" text.
///
/// A hash rather than a position in `--masters`, so that adding or removing a
/// master leaves every other master's id as it was.
pub fn node_id(raft_address: &str) -> NodeId {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    raft_address.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// What one log entry carries: an `Operations` batch, protobuf-encoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The encoded `pando.registry.v1.Operations`.
    #[serde(with = "base64_bytes")]
    pub operations: Bytes,
}

impl Request {
    /// Wraps a batch for the log.
    pub fn new(operations: &Operations) -> Request {
        Request {
            operations: Bytes::from(operations.encode_to_vec()),
        }
    }

    /// The batch this entry carries; an error means the entry is corrupt.
    pub fn operations(&self) -> Result<Operations, prost::DecodeError> {
        Operations::decode(self.operations.clone())
    }
}

openraft::declare_raft_types!(
    /// openraft's type configuration for the registry.
    pub TypeConfig:
        D = Request,
        R = (),
        NodeId = NodeId,
        Node = MasterAddress,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The Raft instance of one master.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id (term, leader and index).
pub type LogId = openraft::LogId<NodeId>;
/// A vote (term, candidate, committed).
pub type Vote = openraft::Vote<NodeId>;
/// The membership config as stored with its log id.
pub type StoredMembership = openraft::StoredMembership<NodeId, MasterAddress>;
/// A snapshot's metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, MasterAddress>;
/// The storage error openraft expects from the log and state machine.
pub type StorageError = openraft::StorageError<NodeId>;

/// Serde for `Bytes` as a base64 string.
mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn node_ids_are_stable_and_distinct() {
        // FNV-1a of the empty string is its offset basis.
        assert_eq!(node_id(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(node_id("10.0.0.1:5050"), node_id("10.0.0.1:5050"));
        assert_ne!(node_id("10.0.0.1:5050"), node_id("10.0.0.2:5050"));
    }

    #[test]
    fn a_request_round_trips_through_json() {
        let ops = Operations {
            operations: vec![crate::model::operation(
                crate::model::operation::Operation::RemoveAgent(
                    crate::model::operation::RemoveAgent {
                        id: pando_proto::mesos::v1::AgentId { value: "a1".into() },
                    },
                ),
            )],
        };
        let request = Request::new(&ops);
        let json = serde_json::to_string(&request).unwrap();
        let back: Request = serde_json::from_str(&json).unwrap();
        assert_eq!(back.operations().unwrap(), ops);
    }
}
