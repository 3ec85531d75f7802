//! Small files replaced atomically: the vote, the committed index, the
//! purge point, the cluster identity and the snapshot.
//!
//! [`write_atomic`] writes the new contents to `<name>.tmp`, flushes it to
//! disk, renames it over the old file and flushes the directory, so after a
//! crash the file holds either the old contents or the new, never a mix.
//! [`read_optional`] treats a missing file as "never written".

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

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
}
