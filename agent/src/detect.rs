//! Resource detection: what this machine can offer when `--resources` is not
//! given, with the same defaults as a Mesos agent.
//!
//! | resource | detected as |
//! |---|---|
//! | `cpus` | the number of online CPUs |
//! | `mem` | total memory minus 1 GiB, or half of it below 2 GiB (in MB) |
//! | `disk` | the work dir's file system size minus 5 GiB, or half of it below 10 GiB (in MB) |
//! | `ports` | `[31000-32000]` |
//!
//! Anything given explicitly in `--resources` wins over detection; detection
//! only fills in the standard resources that are missing.

use std::path::Path;

use pando_resources::{Resources, Scalar};

/// Why detection failed.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// `/proc/meminfo` could not be read or parsed.
    #[error("cannot read total memory from /proc/meminfo: {0}")]
    Memory(String),
    /// The work dir's file system could not be measured.
    #[error("cannot measure the file system of '{path}': {reason}")]
    Disk {
        /// The directory measured.
        path: String,
        /// What failed.
        reason: String,
    },
    /// A detected value could not become a resource.
    #[error("detected resource is invalid: {0}")]
    Resource(String),
}

const MB: u64 = 1024 * 1024;
const GB: u64 = 1024 * MB;

/// The default port range a Mesos agent offers.
pub const DEFAULT_PORTS: &str = "[31000-32000]";

/// What this machine has, in bytes and counts, before policy is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineTotals {
    /// Online CPUs.
    pub cpus: u64,
    /// Physical memory in bytes.
    pub memory_bytes: u64,
    /// Size of the work dir's file system in bytes.
    pub disk_bytes: u64,
}

impl MachineTotals {
    /// Measures the machine, with `work_dir` naming the file system for disk.
    pub fn measure(work_dir: &Path) -> Result<MachineTotals, DetectError> {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        let meminfo = std::fs::read_to_string("/proc/meminfo")
            .map_err(|e| DetectError::Memory(e.to_string()))?;
        let memory_bytes = parse_meminfo_total(&meminfo)?;
        let disk_bytes = filesystem_size(work_dir)?;
        Ok(MachineTotals {
            cpus,
            memory_bytes,
            disk_bytes,
        })
    }

    /// The memory to offer, in MB: all but 1 GiB, or half below 2 GiB.
    pub fn offered_mem_mb(&self) -> u64 {
        let bytes = if self.memory_bytes >= 2 * GB {
            self.memory_bytes - GB
        } else {
            self.memory_bytes / 2
        };
        bytes / MB
    }

    /// The disk to offer, in MB: all but 5 GiB, or half below 10 GiB.
    pub fn offered_disk_mb(&self) -> u64 {
        let bytes = if self.disk_bytes >= 10 * GB {
            self.disk_bytes - 5 * GB
        } else {
            self.disk_bytes / 2
        };
        bytes / MB
    }
}

/// Parses the `MemTotal:` line of `/proc/meminfo` into bytes.
pub fn parse_meminfo_total(meminfo: &str) -> Result<u64, DetectError> {
    let line = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .ok_or_else(|| DetectError::Memory("no MemTotal line".into()))?;
    let kib: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|e| DetectError::Memory(format!("bad MemTotal line '{line}': {e}")))?;
    Ok(kib * 1024)
}

fn filesystem_size(path: &Path) -> Result<u64, DetectError> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    let disk_error = |reason: String| DetectError::Disk {
        path: path.display().to_string(),
        reason,
    };
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| disk_error("path contains a NUL byte".into()))?;
    // SAFETY: `statvfs` is plain old data, so all-zero bytes are a valid
    // value; the kernel overwrites it on success.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the
    // call, and `stat` is a valid, writable `statvfs`.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(disk_error(std::io::Error::last_os_error().to_string()));
    }
    Ok(stat.f_blocks as u64 * stat.f_frsize as u64)
}

/// Fills in `cpus`, `mem`, `disk` and `ports` that `given` lacks, from the
/// machine totals. Resources named in `given` are kept as they are, whatever
/// their reservation.
pub fn with_detected(given: &Resources, totals: &MachineTotals) -> Result<Resources, DetectError> {
    let mut result = given.clone();
    let has = |name: &str| given.iter().any(|r| r.name == name);
    let scalar = |name: &str, value: u64| -> Result<Resources, DetectError> {
        let value =
            Scalar::from_f64(value as f64).map_err(|e| DetectError::Resource(e.to_string()))?;
        Resources::parse(&format!("{name}:{}", value))
            .map_err(|e| DetectError::Resource(e.to_string()))
    };
    if !has("cpus") {
        result += scalar("cpus", totals.cpus)?;
    }
    if !has("mem") {
        result += scalar("mem", totals.offered_mem_mb())?;
    }
    if !has("disk") {
        result += scalar("disk", totals.offered_disk_mb())?;
    }
    if !has("ports") {
        result += Resources::parse(&format!("ports:{DEFAULT_PORTS}"))
            .map_err(|e| DetectError::Resource(e.to_string()))?;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total_is_read_in_bytes() {
        let text = "MemTotal:       24576000 kB\nMemFree:        1000 kB\n";
        assert_eq!(parse_meminfo_total(text).unwrap(), 24_576_000 * 1024);
        assert!(parse_meminfo_total("MemFree: 1 kB").is_err());
    }

    #[test]
    fn offered_amounts_follow_mesos_defaults() {
        let big = MachineTotals {
            cpus: 8,
            memory_bytes: 16 * GB,
            disk_bytes: 100 * GB,
        };
        assert_eq!(big.offered_mem_mb(), 15 * 1024);
        assert_eq!(big.offered_disk_mb(), 95 * 1024);
        let small = MachineTotals {
            cpus: 1,
            memory_bytes: GB,
            disk_bytes: 4 * GB,
        };
        assert_eq!(small.offered_mem_mb(), 512);
        assert_eq!(small.offered_disk_mb(), 2 * 1024);
    }

    #[test]
    fn explicit_resources_win_over_detection() {
        let totals = MachineTotals {
            cpus: 2,
            memory_bytes: 4 * GB,
            disk_bytes: 20 * GB,
        };
        let given = Resources::parse("cpus:1.5;mem(eng):100").unwrap();
        let all = with_detected(&given, &totals).unwrap();
        assert_eq!(all.scalar("cpus"), Scalar::from_f64(1.5).unwrap());
        assert_eq!(all.scalar("mem"), Scalar::from_f64(100.0).unwrap());
        assert_eq!(all.scalar("disk"), Scalar::from_f64(15.0 * 1024.0).unwrap());
        assert!(all.iter().any(|r| r.name == "ports"));
    }

    #[test]
    fn measures_this_machine() {
        let dir = tempfile::tempdir().unwrap();
        let totals = MachineTotals::measure(dir.path()).unwrap();
        assert!(totals.cpus >= 1);
        assert!(totals.memory_bytes > 0);
        assert!(totals.disk_bytes > 0);
    }
}
