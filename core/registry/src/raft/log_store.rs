//! The Raft log on disk, and the vote beside it.
//!
//! Files in the registry directory:
//!
//! - `log`: the entries, one [`record`](super::record) each, appended in
//!   index order. An append is flushed (`fdatasync`) before openraft is told
//!   it is durable.
//! - `vote`, `committed`, `purged`: JSON, each replaced atomically
//!   ([`disk::write_atomic`]).
//!
//! All entries that have not been purged are also held in memory, so reads
//! never touch the disk; the registry's log is small because the state
//! machine is snapshotted and the log purged behind the snapshot.
//!
//! Removing entries:
//!
//! - *truncate* (a new leader overwrote our uncommitted tail) cuts the file
//!   at the first removed record's offset;
//! - *purge* (entries covered by a snapshot) first records the purge point in
//!   `purged`, then rewrites `log` without the purged entries. A crash in
//!   between leaves purged entries in `log`, which [`LogStore::open`] skips.
//!
//! Opening reads every record back. A torn final record (the file ends inside
//! it) is cut off with a warning: its append never returned. A complete
//! record that fails its CRC or does not decode, or entries whose indexes do
//! not follow one another, are corruption: [`LogStoreError::Corrupt`], and
//! the master must not start on it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::disk::{self, DiskError};
use super::record::{self, Decoded};
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// Why the log cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    /// The file system refused ("read", "append to", ...): see [`DiskError::Io`].
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// A complete record that does not check out, or a hole in the log.
    #[error("{path} is corrupt at byte {offset}{}: {reason}", index_text(*.index))]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The log index expected there, when known.
        index: Option<u64>,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry could not be encoded (never expected).
    #[error("cannot encode log entry {index}: {source}")]
    Encode {
        /// The entry's index.
        index: u64,
        /// The cause.
        source: serde_json::Error,
    },
}

fn index_text(index: Option<u64>) -> String {
    index
        .map(|i| format!(" (log index {i})"))
        .unwrap_or_default()
}

/// The log, shared by openraft's log writer and its replication readers.
#[derive(Clone)]
pub struct LogStore {
    files: Arc<Mutex<LogFiles>>,
}

/// What the store holds; every change reaches the disk before it returns.
struct LogFiles {
    /// The registry directory.
    dir: PathBuf,
    /// `dir/log`, open for appending.
    log: File,
    /// The log file's length: where the next record goes.
    end: u64,
    /// The entries not yet purged, by index.
    entries: BTreeMap<u64, Entry>,
    /// Where each entry's record starts in the file, for truncation.
    offsets: BTreeMap<u64, u64>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    purged: Option<LogId>,
}

const LOG: &str = "log";
const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";

impl LogStore {
    /// Opens (creating if absent) the log in `dir`, checking every record.
    pub fn open(dir: &Path) -> Result<LogStore, LogStoreError> {
        let vote: Option<Vote> = read_json(&dir.join(VOTE))?;
        let committed: Option<LogId> = read_json(&dir.join(COMMITTED))?;
        let purged: Option<LogId> = read_json(&dir.join(PURGED))?;

        let path = dir.join(LOG);
        let bytes = disk::read_optional(&path)
            .map_err(|source| io_error("read", &path, source))?
            .unwrap_or_default();
        let mut entries = BTreeMap::new();
        let mut offsets = BTreeMap::new();
        let mut pos = 0usize;
        let mut torn = false;
        loop {
            let expected = entries
                .last_key_value()
                .map(|(i, _)| i + 1)
                .or(purged.map(|p| p.index + 1));
            let corrupt = |reason: String| LogStoreError::Corrupt {
                path: path.clone(),
                index: expected,
                offset: pos as u64,
                reason,
            };
            let rest = bytes.get(pos..).unwrap_or_default();
            match record::decode(rest).map_err(|e| corrupt(e.to_string()))? {
                Decoded::End => break,
                Decoded::Torn => {
                    torn = true;
                    break;
                }
                Decoded::Record { payload, size } => {
                    let entry: Entry = serde_json::from_slice(payload)
                        .map_err(|e| corrupt(format!("the entry does not decode: {e}")))?;
                    let index = entry.log_id.index;
                    let already_purged = purged.is_some_and(|p| index <= p.index);
                    if !already_purged {
                        if let Some(expected) = expected.filter(|e| *e != index) {
                            return Err(corrupt(format!(
                                "entry {index} where entry {expected} should follow"
                            )));
                        }
                        offsets.insert(index, pos as u64);
                        entries.insert(index, entry);
                    }
                    pos += size;
                }
            }
        }

        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| io_error("open", &path, source))?;
        // A log file created just now must itself survive a crash, not only
        // the records later appended to it.
        disk::sync_dir(&path)
            .map_err(|source| io_error("flush the directory of", &path, source))?;
        if torn {
            tracing::warn!(
                path = %path.display(),
                offset = pos,
                dropped_bytes = bytes.len() - pos,
                "the log ends inside a record (a write cut short by a crash); truncating it"
            );
            log.set_len(pos as u64)
                .and_then(|()| log.sync_all())
                .map_err(|source| io_error("truncate", &path, source))?;
        }
        Ok(LogStore {
            files: Arc::new(Mutex::new(LogFiles {
                dir: dir.to_path_buf(),
                log,
                end: pos as u64,
                entries,
                offsets,
                vote,
                committed,
                purged,
            })),
        })
    }

    // openraft's StorageError is large, and this is the type its traits use.
    #[allow(clippy::result_large_err)]
    fn files(&self) -> Result<MutexGuard<'_, LogFiles>, StorageError> {
        self.files.lock().map_err(|_| {
            StorageIOError::read_logs(openraft::AnyError::error(
                "the log store's lock was poisoned by a panic",
            ))
            .into()
        })
    }
}

impl LogFiles {
    fn append(&mut self, new: Vec<Entry>) -> Result<(), LogStoreError> {
        let mut buf = Vec::new();
        let mut starts = Vec::with_capacity(new.len());
        for entry in &new {
            starts.push(self.end + buf.len() as u64);
            let json = serde_json::to_vec(entry).map_err(|source| LogStoreError::Encode {
                index: entry.log_id.index,
                source,
            })?;
            record::encode(&json, &mut buf);
        }
        let path = self.dir.join(LOG);
        self.log
            .write_all(&buf)
            .and_then(|()| self.log.sync_data())
            .map_err(|source| io_error("append to", &path, source))?;
        self.end += buf.len() as u64;
        for (entry, start) in new.into_iter().zip(starts) {
            self.offsets.insert(entry.log_id.index, start);
            self.entries.insert(entry.log_id.index, entry);
        }
        Ok(())
    }

    fn truncate(&mut self, since: u64) -> Result<(), LogStoreError> {
        let Some(&offset) = self.offsets.range(since..).next().map(|(_, o)| o) else {
            return Ok(());
        };
        let path = self.dir.join(LOG);
        self.log
            .set_len(offset)
            .and_then(|()| self.log.sync_data())
            .map_err(|source| io_error("truncate", &path, source))?;
        self.end = offset;
        self.entries.split_off(&since);
        self.offsets.split_off(&since);
        Ok(())
    }

    fn purge(&mut self, upto: LogId) -> Result<(), LogStoreError> {
        write_json(&self.dir.join(PURGED), &upto)?;
        self.purged = Some(upto);
        self.entries = self.entries.split_off(&(upto.index + 1));

        // Rewrite the log without the purged entries.
        let path = self.dir.join(LOG);
        let mut buf = Vec::new();
        let mut offsets = BTreeMap::new();
        for (index, entry) in &self.entries {
            offsets.insert(*index, buf.len() as u64);
            let json = serde_json::to_vec(entry).map_err(|source| LogStoreError::Encode {
                index: *index,
                source,
            })?;
            record::encode(&json, &mut buf);
        }
        disk::write_atomic(&path, &buf).map_err(|source| io_error("rewrite", &path, source))?;
        self.log = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|source| io_error("open", &path, source))?;
        self.end = buf.len() as u64;
        self.offsets = offsets;
        Ok(())
    }
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> LogStoreError {
    DiskError::io(action, path, source).into()
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, LogStoreError> {
    let Some(bytes) = disk::read_optional(path).map_err(|source| io_error("read", path, source))?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| LogStoreError::Corrupt {
            path: path.to_path_buf(),
            index: None,
            offset: 0,
            reason: format!("it does not decode: {e}"),
        })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), LogStoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| DiskError::encode(path, e))?;
    disk::write_atomic(path, &bytes).map_err(|source| io_error("write", path, source))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let files = self.files()?;
        Ok(files.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let files = self.files()?;
        let last = files.entries.last_key_value().map(|(_, e)| e.log_id);
        Ok(LogState {
            last_purged_log_id: files.purged,
            last_log_id: last.or(files.purged),
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut files = self.files()?;
        let path = files.dir.join(VOTE);
        write_json(&path, vote).map_err(|e| StorageIOError::write_vote(&e))?;
        files.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.files()?.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut files = self.files()?;
        if files.committed == committed {
            return Ok(());
        }
        let path = files.dir.join(COMMITTED);
        write_json(&path, &committed).map_err(|e| StorageIOError::write(&e))?;
        files.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.files()?.committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let result = self.files()?.append(entries.into_iter().collect());
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.files()?
            .truncate(log_id.index)
            .map_err(|e| StorageIOError::write_log_entry(log_id, &e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.files()?
            .purge(log_id)
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use openraft::testing::{blank_ent, log_id};

    use super::*;

    fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
        range.map(|i| blank_ent::<TypeConfig>(1, 1, i)).collect()
    }

    fn indexes(store: &LogStore) -> Vec<u64> {
        store.files().unwrap().entries.keys().copied().collect()
    }

    #[test]
    fn appended_entries_truncation_and_purge_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(dir.path()).unwrap();
            let mut files = store.files().unwrap();
            files.append(entries(0..=9)).unwrap();
            files.truncate(8).unwrap();
            files.purge(log_id(1, 1, 3)).unwrap();
            files.append(entries(8..=8)).unwrap();
        }
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&store), (4..=8).collect::<Vec<_>>());
        assert_eq!(store.files().unwrap().purged, Some(log_id(1, 1, 3)));
    }

    /// A log in `dir` holding entries 0 to 2, closed again; its path.
    fn log_of_three_entries(dir: &Path) -> PathBuf {
        LogStore::open(dir)
            .unwrap()
            .files()
            .unwrap()
            .append(entries(0..=2))
            .unwrap();
        dir.join(LOG)
    }

    #[test]
    fn a_torn_final_record_is_cut_off_and_the_log_stays_appendable() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_of_three_entries(dir.path());
        let len = std::fs::metadata(&path).unwrap().len();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 3).unwrap();

        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&store), vec![0, 1]);
        store.files().unwrap().append(entries(2..=3)).unwrap();
        drop(store);
        assert_eq!(
            indexes(&LogStore::open(dir.path()).unwrap()),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn a_flipped_byte_in_a_complete_record_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_of_three_entries(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let first = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        // Inside the second record's payload.
        bytes[record::HEADER_LEN * 2 + first + 5] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        match LogStore::open(dir.path()) {
            Err(LogStoreError::Corrupt { index, offset, .. }) => {
                assert_eq!(index, Some(1));
                assert_eq!(offset, (record::HEADER_LEN + first) as u64);
            }
            other => panic!("expected Corrupt, got {:?}", other.err()),
        }
    }

    #[test]
    fn a_hole_in_the_log_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        store.files().unwrap().append(entries(0..=1)).unwrap();
        store.files().unwrap().append(entries(3..=3)).unwrap();
        drop(store);
        assert!(matches!(
            LogStore::open(dir.path()),
            Err(LogStoreError::Corrupt { index: Some(2), .. })
        ));
    }
}
