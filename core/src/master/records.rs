//! Adapter records: a small replicated key-value store for the adapters
//! that live next to the master.
//!
//! The YARN face keeps its applications, attempts, id counter and token
//! master keys here; the libmesos bridge keeps `org.apache.mesos.state`
//! variables (fetch, store-if-current, expunge, names). A record is a value
//! under a key in a namespace (one namespace per adapter or framework),
//! with a version. Records live in the registry, so they are replicated by
//! Raft, survive a failover, and are in every snapshot and backup.
//!
//! ```text
//!  HTTP /registry/records (http/records.rs) ─┐
//!  in-process adapters (MasterHandle) ───────┼─► Master::put_record ... (this file)
//!                                            │        │ checks against Records (in memory)
//!                                            │        ▼
//!                                            │   registrar: PutRecord / DeleteRecord
//!                                            └── Pending::committed() waits for the barrier
//! ```
//!
//! Compare-and-swap is decided here, by the leading master, under its lock,
//! against [`Records`]: its in-memory copy, loaded from the registry when it
//! became leader and changed as it records each operation. Only the leader
//! writes, and it records in lock order, so what it checked is what the
//! registry will hold when the operation applies. The operations themselves
//! carry the outcome (the value and the version the leader chose), so
//! `pando_registry::model::apply` stays infallible.
//!
//! Versions: an absent key is at version 0. Every successful put gives the
//! record a version above every version handed out before, from one
//! counter kept in the registry (`Registry.record_version`). With one
//! writer on one key the versions go 1, 2, 3... The design first asked for
//! per-key versions that restart at 1; then a key deleted and written again
//! would reuse versions, and a client still holding the old version 2 could
//! overwrite the new version 2 (the ABA problem). A counter that never goes
//! back rules that out, as Mesos's UUID-versioned variables do.
//!
//! Bounds: a value may hold `--max_record_bytes` (1 MiB by default, at
//! most 4 MiB); a namespace's keys and values together
//! `--max_namespace_bytes` (64 MiB). A write past either is refused, naming
//! the limit and its flag, and changes nothing (a write that shrinks a
//! namespace already over a lowered quota is let through). The record limit
//! is low because every write must reach a follower's disk within one
//! `--raft_heartbeat_interval` (see `docs/operations.md`). Names: a
//! namespace is 1 to 128 bytes without `/` or control characters; a key is
//! 1 to 1024 bytes without control characters (`/` is allowed).
//!
//! Every call returns a [`Pending`]: its outcome and the registry barrier
//! behind it. Reads wait too, because the in-memory copy may be ahead of
//! the registry: a reader must not see a write that a failover could still
//! lose.

use std::collections::BTreeMap;

use bytes::Bytes;
use pando_registry::Registry;

use super::flags::MasterFlags;
use super::handle::MasterHandle;
use super::registrar::Barrier;
use super::state::{registry_op, Master, RegistryOp};

/// Longest namespace, in bytes.
pub const MAX_NAMESPACE_NAME: usize = 128;
/// Longest key, in bytes.
pub const MAX_KEY: usize = 1024;

/// Why a records call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// The namespace is empty, too long, or has `/` or a control character.
    #[error("invalid record namespace {namespace:?}: {reason}")]
    InvalidNamespace {
        /// The namespace as given.
        namespace: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key is empty, too long, or has a control character.
    #[error("invalid record key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The record is not at the version the caller expected; nothing
    /// changed.
    #[error("record {key:?} in namespace {namespace:?} is at version {current} (0: absent), but the write expected {expected}")]
    Conflict {
        /// Its namespace.
        namespace: String,
        /// Its key.
        key: String,
        /// What the caller expected.
        expected: Expect,
        /// Its version now; 0 when it does not exist.
        current: u64,
    },
    /// The value is larger than `--max_record_bytes`.
    #[error("record value of {size} bytes is over the limit of {limit} bytes per record (--max_record_bytes)")]
    TooLarge {
        /// The value's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The write would take the namespace past `--max_namespace_bytes`.
    #[error("namespace {namespace:?} would hold {size} bytes of keys and values, over its quota of {limit} bytes (--max_namespace_bytes)")]
    NamespaceFull {
        /// The namespace.
        namespace: String,
        /// Its size after the write.
        size: u64,
        /// The quota.
        limit: u64,
    },
    /// A delete named a record that does not exist.
    #[error("no record {key:?} in namespace {namespace:?}")]
    NotFound {
        /// Its namespace.
        namespace: String,
        /// Its key.
        key: String,
    },
    /// This master does not lead, or lost leadership before the registry
    /// held the call's change: retry with the leading master.
    #[error("not the leading master: {0}")]
    NotLeader(String),
    /// The master's state cannot be reached (its lock is poisoned).
    #[error("{0}")]
    Unavailable(String),
}

/// What a write expects of the record it changes: its compare-and-swap
/// condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there (an unconditional write).
    Any,
    /// That the record does not exist (create-only).
    Absent,
    /// That the record is at this version (0 means absent).
    Version(u64),
}

impl Expect {
    fn holds(self, current: u64) -> bool {
        match self {
            Expect::Any => true,
            Expect::Absent => current == 0,
            Expect::Version(version) => current == version,
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Any => write!(f, "any version"),
            Expect::Absent => write!(f, "no record"),
            Expect::Version(version) => write!(f, "version {version}"),
        }
    }
}

/// A record's value and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    value: Bytes,
    version: u64,
}

impl Record {
    /// Its value.
    pub fn value(&self) -> &Bytes {
        &self.value
    }

    /// Its version (at least 1).
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// A key in a listing, with its record's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The key.
    pub key: String,
    /// Its record's version.
    pub version: u64,
}

/// What a successful put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The record's new version.
    pub version: u64,
    /// Whether the record did not exist before.
    pub created: bool,
}

/// The size limits, from `--max_record_bytes` and `--max_namespace_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest value.
    pub record_bytes: u64,
    /// Largest sum of keys and values in one namespace.
    pub namespace_bytes: u64,
}

impl Limits {
    /// The limits the flags set.
    pub fn from_flags(flags: &MasterFlags) -> Limits {
        Limits {
            record_bytes: flags.max_record_bytes,
            namespace_bytes: flags.max_namespace_bytes,
        }
    }
}

#[derive(Debug, Default)]
struct Namespace {
    /// Sum of its keys' and values' lengths.
    bytes: u64,
    records: BTreeMap<String, Record>,
}

/// The leading master's copy of the records, with the bookkeeping that
/// the checks need (namespace sizes, the version counter).
#[derive(Debug)]
pub struct Records {
    limits: Limits,
    namespaces: BTreeMap<String, Namespace>,
    /// The highest version handed out so far.
    last_version: u64,
}

fn footprint(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

impl Records {
    /// No records, under `limits`.
    pub fn new(limits: Limits) -> Records {
        Records {
            limits,
            namespaces: BTreeMap::new(),
            last_version: 0,
        }
    }

    /// The records `registry` holds, under `limits` (a namespace over a
    /// quota lowered since is kept whole; it only cannot grow).
    pub fn load(limits: Limits, registry: &Registry) -> Records {
        let mut records = Records::new(limits);
        records.last_version = registry.record_version();
        for r in &registry.records {
            let namespace = records.namespaces.entry(r.namespace.clone()).or_default();
            namespace.bytes += footprint(&r.key, &r.value);
            namespace.records.insert(
                r.key.clone(),
                Record {
                    value: r.value.clone(),
                    version: r.version,
                },
            );
            records.last_version = records.last_version.max(r.version);
        }
        records
    }

    /// The record under `key` in `namespace`, if there is one.
    pub fn get(&self, namespace: &str, key: &str) -> Option<&Record> {
        self.namespaces.get(namespace)?.records.get(key)
    }

    /// The keys in `namespace` that start with `prefix`, in order, with
    /// their versions.
    pub fn list(&self, namespace: &str, prefix: &str) -> Vec<Listed> {
        let Some(ns) = self.namespaces.get(namespace) else {
            return Vec::new();
        };
        ns.records
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, record)| Listed {
                key: key.clone(),
                version: record.version,
            })
            .collect()
    }

    /// How many records there are, in every namespace.
    pub fn count(&self) -> usize {
        self.namespaces.values().map(|ns| ns.records.len()).sum()
    }

    /// The sum of every record's key and value lengths.
    pub fn bytes(&self) -> u64 {
        self.namespaces.values().map(|ns| ns.bytes).sum()
    }

    /// The sum of the keys' and values' lengths in `namespace`.
    pub fn namespace_bytes(&self, namespace: &str) -> u64 {
        self.namespaces.get(namespace).map_or(0, |ns| ns.bytes)
    }

    fn version_of(&self, namespace: &str, key: &str) -> u64 {
        self.get(namespace, key).map_or(0, Record::version)
    }

    /// Writes `value` under `key` if `expect` holds and the limits allow
    /// it; returns what it did and the registry operation that says so.
    /// On an error nothing changed.
    pub fn put(
        &mut self,
        namespace: &str,
        key: &str,
        value: Bytes,
        expect: Expect,
    ) -> Result<(Written, registry_op::PutRecord), RecordsError> {
        validate(namespace, key)?;
        let size = value.len() as u64;
        if size > self.limits.record_bytes {
            return Err(RecordsError::TooLarge {
                size,
                limit: self.limits.record_bytes,
            });
        }
        let current = self.version_of(namespace, key);
        if !expect.holds(current) {
            return Err(conflict(namespace, key, expect, current));
        }
        let before = self.namespace_bytes(namespace);
        let old = self
            .get(namespace, key)
            .map_or(0, |r| footprint(key, &r.value));
        let after = before - old + footprint(key, &value);
        if after > self.limits.namespace_bytes && after > before {
            return Err(RecordsError::NamespaceFull {
                namespace: namespace.to_string(),
                size: after,
                limit: self.limits.namespace_bytes,
            });
        }
        self.last_version += 1;
        let version = self.last_version;
        let ns = self.namespaces.entry(namespace.to_string()).or_default();
        ns.bytes = after;
        ns.records.insert(
            key.to_string(),
            Record {
                value: value.clone(),
                version,
            },
        );
        let written = Written {
            version,
            created: current == 0,
        };
        let op = registry_op::PutRecord {
            namespace: namespace.to_string(),
            key: key.to_string(),
            value,
            version,
        };
        Ok((written, op))
    }

    /// Deletes the record under `key` if `expect` holds; returns the
    /// registry operation that says so. On an error nothing changed.
    pub fn delete(
        &mut self,
        namespace: &str,
        key: &str,
        expect: Expect,
    ) -> Result<registry_op::DeleteRecord, RecordsError> {
        validate(namespace, key)?;
        let current = self.version_of(namespace, key);
        if !expect.holds(current) {
            return Err(conflict(namespace, key, expect, current));
        }
        let not_found = || RecordsError::NotFound {
            namespace: namespace.to_string(),
            key: key.to_string(),
        };
        let ns = self.namespaces.get_mut(namespace).ok_or_else(not_found)?;
        let record = ns.records.remove(key).ok_or_else(not_found)?;
        ns.bytes -= footprint(key, &record.value);
        if ns.records.is_empty() {
            self.namespaces.remove(namespace);
        }
        Ok(registry_op::DeleteRecord {
            namespace: namespace.to_string(),
            key: key.to_string(),
        })
    }
}

fn conflict(namespace: &str, key: &str, expected: Expect, current: u64) -> RecordsError {
    RecordsError::Conflict {
        namespace: namespace.to_string(),
        key: key.to_string(),
        expected,
        current,
    }
}

/// Checks the namespace and key against the naming rule.
pub fn validate(namespace: &str, key: &str) -> Result<(), RecordsError> {
    validate_namespace(namespace)?;
    let bad = |reason| RecordsError::InvalidKey {
        key: key.to_string(),
        reason,
    };
    if key.is_empty() {
        return Err(bad("it is empty"));
    }
    if key.len() > MAX_KEY {
        return Err(bad("it is longer than 1024 bytes"));
    }
    if key.chars().any(char::is_control) {
        return Err(bad("it contains a control character"));
    }
    Ok(())
}

/// Checks a namespace against the naming rule.
pub fn validate_namespace(namespace: &str) -> Result<(), RecordsError> {
    let bad = |reason| RecordsError::InvalidNamespace {
        namespace: namespace.to_string(),
        reason,
    };
    if namespace.is_empty() {
        return Err(bad("it is empty"));
    }
    if namespace.len() > MAX_NAMESPACE_NAME {
        return Err(bad("it is longer than 128 bytes"));
    }
    if namespace.contains('/') {
        return Err(bad("it contains '/'"));
    }
    if namespace.chars().any(char::is_control) {
        return Err(bad("it contains a control character"));
    }
    Ok(())
}

/// A records call's outcome, and the registry barrier it waits behind.
#[derive(Debug)]
#[must_use = "the outcome counts only once the registry holds it: await `committed`"]
pub struct Pending<T> {
    outcome: Result<T, RecordsError>,
    barrier: Barrier,
}

impl<T> Pending<T> {
    /// Waits until the registry holds everything recorded up to the call,
    /// then gives its outcome; [`RecordsError::NotLeader`] when this master
    /// lost leadership first (the outcome may or may not have committed).
    pub async fn committed(self) -> Result<T, RecordsError> {
        if !self.barrier.passed() {
            self.barrier
                .wait()
                .await
                .map_err(|e| RecordsError::NotLeader(e.to_string()))?;
        }
        self.outcome
    }
}

impl Master {
    fn records_outcome<T>(&self, outcome: Result<T, RecordsError>) -> Pending<T> {
        Pending {
            outcome,
            barrier: self.registrar.barrier(),
        }
    }

    fn leading(&self) -> Result<(), RecordsError> {
        if self.elected {
            Ok(())
        } else {
            Err(RecordsError::NotLeader(
                "this master is a standby; records are served by the leader".into(),
            ))
        }
    }

    /// Writes a record if `expect` holds (see [`Records::put`]).
    pub fn put_record(
        &mut self,
        namespace: &str,
        key: &str,
        value: Bytes,
        expect: Expect,
    ) -> Pending<Written> {
        let outcome = self
            .leading()
            .and_then(|()| self.records.put(namespace, key, value, expect))
            .map(|(written, op)| {
                self.registrar.record(RegistryOp::PutRecord(op));
                written
            });
        self.records_outcome(outcome)
    }

    /// Deletes a record if `expect` holds (see [`Records::delete`]).
    pub fn delete_record(&mut self, namespace: &str, key: &str, expect: Expect) -> Pending<()> {
        let outcome = self
            .leading()
            .and_then(|()| self.records.delete(namespace, key, expect))
            .map(|op| self.registrar.record(RegistryOp::DeleteRecord(op)));
        self.records_outcome(outcome)
    }

    /// The record under `key` in `namespace`, if any.
    pub fn get_record(&self, namespace: &str, key: &str) -> Pending<Option<Record>> {
        let outcome = self
            .leading()
            .and_then(|()| validate(namespace, key))
            .map(|()| self.records.get(namespace, key).cloned());
        self.records_outcome(outcome)
    }

    /// The keys in `namespace` starting with `prefix`, with their versions.
    pub fn list_records(&self, namespace: &str, prefix: &str) -> Pending<Vec<Listed>> {
        let outcome = self
            .leading()
            .and_then(|()| validate_namespace(namespace))
            .map(|()| self.records.list(namespace, prefix));
        self.records_outcome(outcome)
    }
}

/// The records calls for adapters in the master's process: each locks the
/// master of this process (whichever object leads now), makes the call,
/// and waits for the registry. On a standby they fail with
/// [`RecordsError::NotLeader`]; an adapter waits for
/// [`MasterHandle::leading`] and tries again.
impl MasterHandle {
    fn master(&self) -> Result<std::sync::MutexGuard<'_, Master>, RecordsError> {
        self.lock()
            .map_err(|e| RecordsError::Unavailable(e.to_string()))
    }

    /// Writes a record if `expect` holds; see [`Master::put_record`].
    pub async fn put_record(
        &self,
        namespace: &str,
        key: &str,
        value: Bytes,
        expect: Expect,
    ) -> Result<Written, RecordsError> {
        let pending = self.master()?.put_record(namespace, key, value, expect);
        pending.committed().await
    }

    /// Deletes a record if `expect` holds; see [`Master::delete_record`].
    pub async fn delete_record(
        &self,
        namespace: &str,
        key: &str,
        expect: Expect,
    ) -> Result<(), RecordsError> {
        let pending = self.master()?.delete_record(namespace, key, expect);
        pending.committed().await
    }

    /// The record under `key` in `namespace`, if any.
    pub async fn get_record(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<Record>, RecordsError> {
        let pending = self.master()?.get_record(namespace, key);
        pending.committed().await
    }

    /// The keys in `namespace` starting with `prefix`, with their versions.
    pub async fn list_records(
        &self,
        namespace: &str,
        prefix: &str,
    ) -> Result<Vec<Listed>, RecordsError> {
        let pending = self.master()?.list_records(namespace, prefix);
        pending.committed().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const LIMITS: Limits = Limits {
        record_bytes: 16,
        namespace_bytes: 40,
    };

    fn value(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn records_with(entries: &[(&str, &str)]) -> Records {
        records_within(LIMITS, entries)
    }

    fn records_within(limits: Limits, entries: &[(&str, &str)]) -> Records {
        let mut records = Records::new(limits);
        for (key, v) in entries {
            records.put("yarn", key, value(v), Expect::Any).unwrap();
        }
        records
    }

    #[test]
    fn versions_start_at_one_and_grow_by_one_per_put() {
        let mut records = Records::new(LIMITS);
        let versions: Vec<u64> = (0..3)
            .map(|n| {
                let (written, _) = records
                    .put("yarn", "counter", value(&n.to_string()), Expect::Any)
                    .unwrap();
                written.version
            })
            .collect();
        assert_eq!(versions, vec![1, 2, 3]);
        assert_eq!(records.get("yarn", "counter").unwrap().value(), "2");
    }

    #[test]
    fn a_compare_and_swap_on_the_current_version_succeeds() {
        let mut records = records_with(&[("app-1", "submitted")]);
        let (written, op) = records
            .put("yarn", "app-1", value("running"), Expect::Version(1))
            .unwrap();
        assert_eq!(
            written,
            Written {
                version: 2,
                created: false
            }
        );
        assert_eq!((op.version, op.value), (2, value("running")));
    }

    #[test]
    fn a_stale_compare_and_swap_fails_with_a_conflict_and_changes_nothing() {
        let mut records = records_with(&[("app-1", "submitted"), ("app-1", "running")]);
        let error = records
            .put("yarn", "app-1", value("killed"), Expect::Version(1))
            .unwrap_err();
        assert_eq!(
            error,
            RecordsError::Conflict {
                namespace: "yarn".into(),
                key: "app-1".into(),
                expected: Expect::Version(1),
                current: 2,
            }
        );
        let record = records.get("yarn", "app-1").unwrap();
        assert_eq!((record.value(), record.version()), (&value("running"), 2));
        // The refused write did not use up a version either.
        let (written, _) = records
            .put("yarn", "app-2", value("new"), Expect::Any)
            .unwrap();
        assert_eq!(written.version, 3);
    }

    #[test]
    fn create_only_on_an_existing_key_conflicts() {
        let mut records = records_with(&[("app-1", "submitted")]);
        for expect in [Expect::Absent, Expect::Version(0)] {
            assert!(matches!(
                records.put("yarn", "app-1", value("again"), expect),
                Err(RecordsError::Conflict { current: 1, .. })
            ));
        }
        let (written, _) = records
            .put("yarn", "app-2", value("fresh"), Expect::Absent)
            .unwrap();
        assert!(written.created);
    }

    #[test]
    fn a_key_deleted_and_written_again_never_reuses_a_version() {
        let mut records = records_with(&[("app-1", "a"), ("app-1", "b")]);
        records.delete("yarn", "app-1", Expect::Version(2)).unwrap();
        assert_eq!(records.get("yarn", "app-1"), None);
        records
            .put("yarn", "app-1", value("c"), Expect::Absent)
            .unwrap();
        records
            .put("yarn", "app-1", value("d"), Expect::Any)
            .unwrap();
        // A client still holding version 2 from before the delete loses.
        assert!(matches!(
            records.put("yarn", "app-1", value("stale"), Expect::Version(2)),
            Err(RecordsError::Conflict { current: 4, .. })
        ));
    }

    #[test]
    fn a_stale_delete_conflicts_and_a_missing_one_is_not_found() {
        let mut records = records_with(&[("app-1", "a"), ("app-1", "b")]);
        assert!(matches!(
            records.delete("yarn", "app-1", Expect::Version(1)),
            Err(RecordsError::Conflict { current: 2, .. })
        ));
        assert!(records.get("yarn", "app-1").is_some());
        assert_eq!(
            records.delete("yarn", "app-9", Expect::Any),
            Err(RecordsError::NotFound {
                namespace: "yarn".into(),
                key: "app-9".into()
            })
        );
    }

    #[test]
    fn an_oversized_value_is_refused_naming_the_flag() {
        let mut records = Records::new(LIMITS);
        let error = records
            .put("yarn", "big", value(&"x".repeat(17)), Expect::Any)
            .unwrap_err();
        assert_eq!(
            error,
            RecordsError::TooLarge {
                size: 17,
                limit: 16
            }
        );
        assert!(error.to_string().contains("--max_record_bytes"), "{error}");
        assert_eq!(records.get("yarn", "big"), None);
    }

    #[test]
    fn a_namespace_over_its_quota_is_refused_and_keeps_what_it_had() {
        // Two records of 4 + 16 bytes fill the 40-byte quota exactly.
        let mut records =
            records_with(&[("key1", "0123456789abcdef"), ("key2", "0123456789abcdef")]);
        let error = records
            .put("yarn", "key3", value("x"), Expect::Any)
            .unwrap_err();
        assert_eq!(
            error,
            RecordsError::NamespaceFull {
                namespace: "yarn".into(),
                size: 45,
                limit: 40
            }
        );
        assert!(
            error.to_string().contains("--max_namespace_bytes"),
            "{error}"
        );
        assert_eq!(records.namespace_bytes("yarn"), 40);
        assert_eq!(records.get("yarn", "key3"), None);
        // Another namespace has a quota of its own.
        records
            .put("mesos", "key3", value("x"), Expect::Any)
            .unwrap();
        // Shrinking a record, or deleting one, makes room again.
        records
            .put("yarn", "key1", value("small"), Expect::Any)
            .unwrap();
        records
            .put("yarn", "key3", value("x"), Expect::Any)
            .unwrap();
        assert_eq!(records.namespace_bytes("yarn"), 4 + 5 + 20 + 5);
        assert_eq!((records.count(), records.bytes()), (4, 34 + 5));
    }

    #[test]
    fn listing_by_prefix_gives_matching_keys_in_order_with_their_versions() {
        let roomy = Limits {
            namespace_bytes: 1000,
            ..LIMITS
        };
        let records = records_within(
            roomy,
            &[
                ("app/2/attempt/1", "a"),
                ("app/1", "b"),
                ("app/10", "c"),
                ("counter", "d"),
                ("app/2", "e"),
            ],
        );
        let keys = |prefix| -> Vec<(String, u64)> {
            records
                .list("yarn", prefix)
                .into_iter()
                .map(|l| (l.key, l.version))
                .collect()
        };
        assert_eq!(
            keys("app/"),
            vec![
                ("app/1".to_string(), 2),
                ("app/10".to_string(), 3),
                ("app/2".to_string(), 5),
                ("app/2/attempt/1".to_string(), 1),
            ]
        );
        assert_eq!(keys("app/2/"), vec![("app/2/attempt/1".to_string(), 1)]);
        assert_eq!(keys("").len(), 5);
        assert!(keys("zzz").is_empty());
        assert!(records.list("unknown", "").is_empty());
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        let mut records = Records::new(LIMITS);
        let refused = |records: &mut Records, namespace: &str, key: &str| {
            records
                .put(namespace, key, value("v"), Expect::Any)
                .unwrap_err()
                .to_string()
        };
        assert!(refused(&mut records, "", "k").contains("empty"));
        assert!(refused(&mut records, "a/b", "k").contains("'/'"));
        assert!(refused(&mut records, "ns", "").contains("empty"));
        assert!(refused(&mut records, "ns", "line\nbreak").contains("control"));
        assert!(refused(&mut records, &"n".repeat(129), "k").contains("128"));
        assert!(refused(&mut records, "ns", &"k".repeat(1025)).contains("1024"));
        // Keys may have slashes.
        records.put("ns", "a/b/c", value("v"), Expect::Any).unwrap();
    }

    fn flags() -> MasterFlags {
        MasterFlags::with_defaults([127, 0, 0, 1].into(), 5050, "/tmp".into())
    }

    #[tokio::test]
    async fn a_put_reaches_the_registry_and_a_new_leader_reads_it_back() {
        let mut master = Master::new(flags()).unwrap();
        let written = master
            .put_record("mesos", "variable", value("v1"), Expect::Absent)
            .committed()
            .await
            .unwrap();
        assert_eq!(written.version, 1);
        master
            .put_record("mesos", "gone", value("x"), Expect::Any)
            .committed()
            .await
            .unwrap();
        master
            .delete_record("mesos", "gone", Expect::Version(2))
            .committed()
            .await
            .unwrap();
        let registry = master
            .local_registry
            .as_ref()
            .unwrap()
            .lock()
            .unwrap()
            .clone();
        assert_eq!(registry.records.len(), 1);
        assert_eq!(registry.record_version(), 2);

        let scratch = super::super::registrar::Registrar::in_memory(Default::default());
        let mut recovered = Master::recover(flags(), &registry, scratch).unwrap();
        let record = recovered
            .get_record("mesos", "variable")
            .committed()
            .await
            .unwrap()
            .unwrap();
        assert_eq!((record.value(), record.version()), (&value("v1"), 1));
        let written = recovered
            .put_record("mesos", "variable", value("v2"), Expect::Version(1))
            .committed()
            .await
            .unwrap();
        assert_eq!(written.version, 3, "the counter goes on from the registry");
    }

    #[tokio::test]
    async fn an_adapter_in_the_process_uses_records_through_the_handle() {
        let master = Master::new(flags()).unwrap();
        let (disconnects, _closed) = tokio::sync::mpsc::unbounded_channel();
        let (handle, _announcer) = MasterHandle::new(
            std::sync::Arc::new(std::sync::Mutex::new(master)),
            disconnects,
            true,
        );
        // The YARN face's id counter, advanced by compare-and-swap (from a
        // task of its own: the calls' futures are Send).
        let spawned = handle.clone();
        let first = tokio::spawn(async move {
            spawned
                .put_record("yarn", "next-application-id", value("1"), Expect::Absent)
                .await
        })
        .await
        .unwrap()
        .unwrap();
        let record = handle
            .get_record("yarn", "next-application-id")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.version(), first.version);
        handle
            .put_record(
                "yarn",
                "next-application-id",
                value("2"),
                Expect::Version(record.version()),
            )
            .await
            .unwrap();
        let stale = handle
            .put_record(
                "yarn",
                "next-application-id",
                value("2"),
                Expect::Version(record.version()),
            )
            .await;
        assert!(matches!(stale, Err(RecordsError::Conflict { .. })));
        let listed = handle.list_records("yarn", "next-").await.unwrap();
        assert_eq!(listed.len(), 1);
        handle
            .delete_record("yarn", "next-application-id", Expect::Any)
            .await
            .unwrap();
        assert_eq!(
            handle.get_record("yarn", "next-application-id").await,
            Ok(None)
        );
    }

    #[tokio::test]
    async fn a_standby_refuses_records_calls() {
        let mut standby = Master::standby(flags(), None).unwrap();
        let error = standby
            .put_record("mesos", "variable", value("v"), Expect::Any)
            .committed()
            .await
            .unwrap_err();
        assert!(matches!(error, RecordsError::NotLeader(_)), "{error}");
    }
}
