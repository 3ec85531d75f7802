//! The state machine: the registry as of the last applied log entry, and its
//! snapshots.
//!
//! Applying an entry runs [`model::apply_all`] on its `Operations` batch
//! (membership entries are only remembered, blank entries change nothing).
//! The applied state lives in memory; what survives a restart is the latest
//! snapshot, in `dir/snapshot`, plus the log after it: on start openraft
//! replays the committed entries after the snapshot's last applied id.
//!
//! A snapshot's data, as sent to a lagging follower, is the protobuf
//! encoding of the [`Registry`]; openraft carries its metadata (last applied
//! id, membership) alongside. On disk the snapshot file is one
//! [`record`](super::record) whose payload is the JSON of [`SnapshotFile`],
//! written atomically.
//!
//! An entry whose batch does not decode is a corrupt log entry: applying
//! fails with a storage error, which stops Raft (see
//! [`ReplicatedRegistry::fatal`](crate::replicated::ReplicatedRegistry::fatal)).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, Snapshot, StorageIOError};
use prost::Message;
use serde::{Deserialize, Serialize};

use super::disk::{self, DiskError};
use super::record::{self, Decoded};
use super::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::model::{self, Registry};

/// Why the snapshot cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateMachineError {
    /// The snapshot file cannot be read or written, or does not check out.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// A snapshot's registry does not decode.
    #[error("the snapshot's registry does not decode: {0}")]
    Registry(#[from] prost::DecodeError),
}

/// The snapshot file's payload.
#[derive(Serialize, Deserialize)]
pub struct SnapshotFile {
    /// openraft's metadata: last applied id, membership, snapshot id.
    pub meta: SnapshotMeta,
    /// The encoded registry, base64.
    pub registry: String,
}

/// The applied state, readable by the master while Raft writes it.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    /// The last entry applied.
    pub last_applied: Option<LogId>,
    /// The last membership applied.
    pub membership: StoredMembership,
    /// The registry after it.
    pub registry: Registry,
}

/// The current snapshot: its metadata and data.
#[derive(Clone)]
struct CurrentSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The state machine handed to openraft; clones share the state.
#[derive(Clone)]
pub struct StateMachine {
    shared: Arc<Shared>,
}

struct Shared {
    /// `dir/snapshot`.
    path: PathBuf,
    applied: RwLock<Applied>,
    /// Finds agents in `applied.registry`; only `apply` uses it.
    index: Mutex<model::AgentIndex>,
    snapshot: Mutex<Option<CurrentSnapshot>>,
}

const SNAPSHOT: &str = "snapshot";

impl StateMachine {
    /// Opens the state machine in `dir`: the latest snapshot, or empty.
    pub fn open(dir: &Path) -> Result<StateMachine, StateMachineError> {
        let path = dir.join(SNAPSHOT);
        let (applied, snapshot) = match read_snapshot(&path)? {
            Some((meta, data)) => {
                let registry = Registry::decode(data.as_slice()).map_err(|e| {
                    DiskError::corrupt(&path, format!("its registry does not decode: {e}"))
                })?;
                let applied = Applied {
                    last_applied: meta.last_log_id,
                    membership: meta.last_membership.clone(),
                    registry,
                };
                (applied, Some(CurrentSnapshot { meta, data }))
            }
            None => (Applied::default(), None),
        };
        Ok(StateMachine {
            shared: Arc::new(Shared {
                path,
                applied: RwLock::new(applied),
                index: Mutex::default(),
                snapshot: Mutex::new(snapshot),
            }),
        })
    }

    /// The applied state (a copy).
    pub fn applied(&self) -> Applied {
        match self.shared.applied.read() {
            Ok(applied) => applied.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn write_applied(&self) -> std::sync::RwLockWriteGuard<'_, Applied> {
        // A panic while applying cannot leave a half-applied batch visible
        // to Raft (it stops), so a poisoned lock still holds a usable value.
        match self.shared.applied.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn current(&self) -> MutexGuard<'_, Option<CurrentSnapshot>> {
        match self.shared.snapshot.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Saves a snapshot to disk and makes it the current one.
    fn save(&self, meta: SnapshotMeta, data: Vec<u8>) -> Result<(), StateMachineError> {
        write_snapshot(&self.shared.path, &meta, &data)?;
        *self.current() = Some(CurrentSnapshot { meta, data });
        Ok(())
    }
}

fn read_snapshot(path: &Path) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StateMachineError> {
    use base64::Engine;
    let corrupt = |reason: String| DiskError::corrupt(path, reason);
    let Some(bytes) =
        disk::read_optional(path).map_err(|source| DiskError::io("read", path, source))?
    else {
        return Ok(None);
    };
    // Written atomically, so anything short of one whole record is damage.
    let payload = match record::decode(&bytes).map_err(|e| corrupt(e.to_string()))? {
        Decoded::Record { payload, size } if size == bytes.len() => payload,
        Decoded::Record { .. } => {
            return Err(corrupt("bytes after the snapshot record".into()).into())
        }
        Decoded::End | Decoded::Torn => {
            return Err(corrupt("the record is incomplete".into()).into())
        }
    };
    let file: SnapshotFile =
        serde_json::from_slice(payload).map_err(|e| corrupt(format!("it does not decode: {e}")))?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(file.registry.as_bytes())
        .map_err(|e| corrupt(format!("its registry is not base64: {e}")))?;
    Ok(Some((file.meta, data)))
}

fn write_snapshot(path: &Path, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StateMachineError> {
    use base64::Engine;
    let file = SnapshotFile {
        meta: meta.clone(),
        registry: base64::engine::general_purpose::STANDARD.encode(data),
    };
    let json = serde_json::to_vec(&file).map_err(|e| DiskError::encode(path, e))?;
    let mut buf = Vec::with_capacity(json.len() + record::HEADER_LEN);
    record::encode(&json, &mut buf);
    disk::write_atomic(path, &buf).map_err(|source| DiskError::io("write", path, source).into())
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let applied = self.applied();
        let data = applied.registry.encode_to_vec();
        let snapshot_id = match applied.last_applied {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership,
            snapshot_id,
        };
        self.save(meta.clone(), data.clone())
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self.applied();
        Ok((applied.last_applied, applied.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut applied = self.write_applied();
        let mut responses = Vec::new();
        for entry in entries {
            match &entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(request) => {
                    let operations = request
                        .operations()
                        .map_err(|e| StorageIOError::apply(entry.log_id, &e))?;
                    let mut index = match self.shared.index.lock() {
                        Ok(index) => index,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    model::apply_all(&mut applied.registry, &mut index, &operations);
                }
                EntryPayload::Membership(membership) => {
                    applied.membership =
                        StoredMembership::new(Some(entry.log_id), membership.clone());
                }
            }
            applied.last_applied = Some(entry.log_id);
            responses.push(());
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let registry = Registry::decode(data.as_slice()).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), &StateMachineError::from(e))
        })?;
        self.save(meta.clone(), data)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        *self.write_applied() = Applied {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            registry,
        };
        if let Ok(mut index) = self.shared.index.lock() {
            *index = model::AgentIndex::default();
        }
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.current().clone().map(|current| Snapshot {
            meta: current.meta,
            snapshot: Box::new(Cursor::new(current.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bytes::Bytes;
    use openraft::testing::log_id;

    use super::*;
    use crate::raft::types::Request;

    fn normal(index: u64, request: Request) -> Entry {
        Entry {
            log_id: log_id(1, 1, index),
            payload: EntryPayload::Normal(request),
        }
    }

    fn weights(role: &str) -> Request {
        Request::new(&crate::model::Operations {
            operations: vec![model::operation(
                model::operation::Operation::UpdateWeights(model::operation::UpdateWeights {
                    weights: vec![model::registry::Weight {
                        role: role.into(),
                        weight: 1.0,
                    }],
                }),
            )],
        })
    }

    #[tokio::test]
    async fn an_entry_whose_batch_does_not_decode_fails_to_apply_after_the_good_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachine::open(dir.path()).unwrap();
        let garbage = Request {
            operations: Bytes::from_static(&[0xff, 0xff, 0xff]),
        };
        let result = sm
            .apply(vec![
                normal(1, weights("a")),
                normal(2, garbage),
                normal(3, weights("b")),
            ])
            .await;
        assert!(result.is_err());
        let applied = sm.applied();
        assert_eq!(applied.last_applied, Some(log_id(1, 1, 1)));
        assert_eq!(applied.registry.weights.len(), 1);
    }

    #[tokio::test]
    async fn a_built_snapshot_is_what_a_reopened_state_machine_starts_from() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachine::open(dir.path()).unwrap();
        sm.apply(vec![normal(1, weights("a"))]).await.unwrap();
        let snapshot = sm.build_snapshot().await.unwrap();
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 1, 1)));

        let reopened = StateMachine::open(dir.path()).unwrap().applied();
        assert_eq!(reopened.last_applied, Some(log_id(1, 1, 1)));
        assert_eq!(reopened.registry, sm.applied().registry);
    }

    #[test]
    fn a_damaged_snapshot_file_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SNAPSHOT);
        let mut buf = Vec::new();
        record::encode(b"{\"meta\":1}", &mut buf);
        std::fs::write(&path, &buf).unwrap();
        assert!(matches!(
            StateMachine::open(dir.path()),
            Err(StateMachineError::Disk(DiskError::Corrupt { .. }))
        ));
        std::fs::write(&path, &buf[..buf.len() - 1]).unwrap();
        assert!(matches!(
            StateMachine::open(dir.path()),
            Err(StateMachineError::Disk(DiskError::Corrupt { .. }))
        ));
    }
}
