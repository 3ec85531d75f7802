//! Small files replaced atomically: the vote, the committed index, the
//! purge point, the cluster identity and the snapshot.
//!
//! [`write_atomic`] writes the new contents to `<name>.tmp`, flushes it to
//! disk, renames it over the old file and flushes the directory, so after a
//! crash the file holds either the old contents or the new, never a mix.
//! [`read_optional`] treats a missing file as "never written".
//!
//! [`DiskError`] is what goes wrong with one of the registry's files: the
//! file system refused, or the file is not what Pando wrote. The modules
//! that own a file (the cluster identity, the snapshot, the log's small
//! files) wrap it as one variant of their own error, and the registry turns
//! it into [`RegistryError::Io`](crate::RegistryError::Io) or
//! [`RegistryError::Corrupt`](crate::RegistryError::Corrupt) in one place.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why one of the registry's files cannot be read, written or trusted.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The file system refused.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "encode", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file is not what Pando writes.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl DiskError {
    /// `action` on the file at `path` failed with `source`.
    pub fn io(action: &'static str, path: &Path, source: io::Error) -> DiskError {
        DiskError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Contents for the file at `path` could not be encoded (never expected).
    pub fn encode(path: &Path, cause: serde_json::Error) -> DiskError {
        DiskError::io("encode", path, io::Error::other(cause))
    }

    /// The file at `path` is damaged, as `reason` says.
    pub fn corrupt(path: &Path, reason: impl Into<String>) -> DiskError {
        DiskError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// Replaces the file at `path` with `contents`, durably and atomically.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    {
        let mut file = File::create(tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(tmp, path)?;
    sync_dir(path)
}

/// Flushes the directory holding `path`, so a rename or a new file in it
/// survives a crash.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

/// The file's contents, or `None` when it does not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_replaced_file_holds_the_new_contents_and_no_temporary_remains() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vote");
        assert_eq!(read_optional(&path).unwrap(), None);
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(read_optional(&path).unwrap().as_deref(), Some(&b"two"[..]));
        assert!(!dir.path().join("vote.tmp").exists());
    }

    #[test]
    fn errors_name_the_file_and_what_went_wrong() {
        let path = Path::new("/r/cluster");
        let refused = io::Error::new(io::ErrorKind::PermissionDenied, "denied");
        assert_eq!(
            DiskError::io("read", path, refused).to_string(),
            "cannot read /r/cluster: denied"
        );
        assert_eq!(
            DiskError::corrupt(path, "it does not decode").to_string(),
            "/r/cluster is corrupt: it does not decode"
        );
    }
}
