//! Which cluster a work_dir belongs to, and which master it was for.
//!
//! The `cluster` file in the registry directory holds the cluster id (a
//! UUID the initializing master chose) and this master's Raft address. It
//! is written once, atomically:
//!
//! - by the initializing master, just before it creates the first log entry;
//! - by every other master when it first learns the id, from a peer's
//!   `Hello` reply or from the first `RaftRequest` it accepts (every request
//!   carries the id).
//!
//! Afterwards the id guards the log: a request or a peer naming another
//! cluster is refused, so a work_dir copied from another cluster (or a
//! master pointed at the wrong hosts) can never mix two histories. The
//! address guards the node id, which is derived from it: a work_dir moved to
//! another address would vote under a new id with the old one's log.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::disk::{self, DiskError};

/// Why the cluster identity cannot be read, written or accepted.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The `cluster` file cannot be read or written, or is damaged.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// The work_dir was written by a master at another Raft address.
    #[error("{path} belongs to the master at {recorded}, but this master's Raft address is {me}")]
    OtherAddress {
        /// The file.
        path: PathBuf,
        /// The address it records.
        recorded: String,
        /// Ours.
        me: String,
    },
    /// Someone names a different cluster than the one recorded.
    #[error("{path} belongs to cluster {ours}, not {theirs}")]
    OtherCluster {
        /// The file.
        path: PathBuf,
        /// The id recorded here.
        ours: String,
        /// The id offered.
        theirs: String,
    },
}

/// The `cluster` file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ClusterFile {
    cluster: String,
    raft: String,
}

/// This master's cluster identity: shared by the network, the service and
/// the joining logic.
#[derive(Debug)]
pub struct ClusterIdentity {
    path: PathBuf,
    me: String,
    id: Mutex<Option<String>>,
}

const CLUSTER: &str = "cluster";

impl ClusterIdentity {
    /// Reads `dir/cluster`, if any, for the master whose Raft address is `me`.
    pub fn open(dir: &Path, me: &str) -> Result<ClusterIdentity, ClusterError> {
        let path = dir.join(CLUSTER);
        let bytes =
            disk::read_optional(&path).map_err(|source| DiskError::io("read", &path, source))?;
        let id = match bytes {
            None => None,
            Some(bytes) => {
                let file: ClusterFile = serde_json::from_slice(&bytes)
                    .map_err(|e| DiskError::corrupt(&path, e.to_string()))?;
                if file.raft != me {
                    return Err(ClusterError::OtherAddress {
                        path,
                        recorded: file.raft,
                        me: me.to_string(),
                    });
                }
                Some(file.cluster)
            }
        };
        Ok(ClusterIdentity {
            path,
            me: me.to_string(),
            id: Mutex::new(id),
        })
    }

    /// The cluster id, once known.
    pub fn id(&self) -> Option<String> {
        self.lock().clone()
    }

    /// The `cluster` file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `id` as this master's cluster if it has none yet; succeeds
    /// if it is already the one recorded, fails if another is.
    pub fn adopt(&self, id: &str) -> Result<(), ClusterError> {
        let mut current = self.lock();
        match current.as_deref() {
            Some(ours) if ours == id => Ok(()),
            Some(ours) => Err(ClusterError::OtherCluster {
                path: self.path.clone(),
                ours: ours.to_string(),
                theirs: id.to_string(),
            }),
            None => {
                let file = ClusterFile {
                    cluster: id.to_string(),
                    raft: self.me.clone(),
                };
                let bytes =
                    serde_json::to_vec(&file).map_err(|e| DiskError::encode(&self.path, e))?;
                disk::write_atomic(&self.path, &bytes)
                    .map_err(|source| DiskError::io("write", &self.path, source))?;
                tracing::info!(cluster = id, path = %self.path.display(), "joined the registry's cluster");
                *current = Some(id.to_string());
                Ok(())
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        match self.id.lock() {
            Ok(guard) => guard,
            // Only `adopt` writes, and it sets the value last.
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_adopted_id_is_kept_and_guards_against_others() {
        let dir = tempfile::tempdir().unwrap();
        let identity = ClusterIdentity::open(dir.path(), "127.0.0.1:1").unwrap();
        assert_eq!(identity.id(), None);
        identity.adopt("a").unwrap();
        identity.adopt("a").unwrap();
        assert!(matches!(
            identity.adopt("b"),
            Err(ClusterError::OtherCluster { .. })
        ));

        let reopened = ClusterIdentity::open(dir.path(), "127.0.0.1:1").unwrap();
        assert_eq!(reopened.id().as_deref(), Some("a"));
        assert!(matches!(
            ClusterIdentity::open(dir.path(), "127.0.0.1:2"),
            Err(ClusterError::OtherAddress { .. })
        ));
    }
}
