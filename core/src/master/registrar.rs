//! The registrar: how the master's decisions reach the registry.
//!
//! The registry (see the `pando-registry` crate) is the part of the
//! master's state that must outlive the master: admitted and gone agents,
//! frameworks, reservations, quota, weights, maintenance. The master keeps
//! its own in-memory state as the working copy and, whenever it changes one
//! of those things, records a registry [`Operation`] here, still under the
//! lock, so the operations keep the order of the decisions.
//!
//! Recording never blocks. What the caller answers to the outside world
//! waits for a [`Barrier`]: an HTTP handler or the agent link takes one
//! after its call, releases the lock, and awaits it before it replies. So a
//! reply that says "done" (200 to SET_QUOTA, AgentRegistered, SUBSCRIBED)
//! is only sent once the registry holds the change: no acknowledged write
//! is lost when the leader dies.
//!
//! With `--registry=in_memory` the registry is a value in this process and
//! each operation is applied as it is recorded, so every barrier is already
//! passed. With `--registry=replicated_log` operations queue for a writer
//! task that appends them to the Raft log in batches; the barrier passes
//! when the batch is committed, and fails if this master lost leadership
//! first (the caller answers 503 and the client retries with the leader).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pando_registry::model::{self, operation::Operation as Op, Operation, Operations, Registry};
use tokio::sync::{mpsc, watch};

/// How far the registry has caught up with what the master recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Operations durably in the registry, counted from this registrar's
    /// start.
    pub committed: u64,
    /// Set when writing stopped (leadership lost): why.
    pub failed: Option<String>,
}

/// Figures for `/metrics/snapshot` (`registrar/*`).
#[derive(Debug, Clone, Default)]
pub struct RegistrarMetrics {
    /// Operations recorded and not yet committed.
    pub queued_operations: u64,
    /// Size of the encoded registry when this master was elected.
    pub registry_size_bytes: u64,
    /// Milliseconds the last batch took to commit.
    pub state_store_ms: f64,
    /// Milliseconds the registry took to read at recovery.
    pub state_fetch_ms: f64,
    /// Write latencies of recent batches, in milliseconds (newest last).
    pub store_samples: std::collections::VecDeque<f64>,
}

/// The master's end of the registry.
#[derive(Debug)]
pub struct Registrar {
    recorded: u64,
    sink: Sink,
    progress: watch::Receiver<Progress>,
    /// `registrar/*` figures, shared with the writer.
    pub metrics: Arc<Mutex<RegistrarMetrics>>,
}

#[derive(Debug)]
enum Sink {
    /// Applied at once to a registry in this process.
    InMemory {
        registry: Arc<Mutex<Registry>>,
        /// Finds agents in `registry` across operations.
        index: model::AgentIndex,
        progress: watch::Sender<Progress>,
    },
    /// Queued for the writer task.
    Queue(mpsc::UnboundedSender<Operation>),
}

/// A point in the registrar's stream of operations that a reply waits for.
#[derive(Debug)]
pub struct Barrier {
    target: u64,
    progress: watch::Receiver<Progress>,
}

/// Why a barrier did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrarError {
    /// The registry write failed (this master lost leadership); nothing
    /// recorded since the last commit can be trusted to be in the registry.
    #[error("registry write failed: {0}")]
    Failed(String),
}

impl Barrier {
    /// Waits until every operation recorded before the barrier was taken
    /// is in the registry.
    pub async fn wait(mut self) -> Result<(), RegistrarError> {
        let target = self.target;
        let progress = self
            .progress
            .wait_for(|p| p.committed >= target || p.failed.is_some())
            .await
            .map_err(|_| RegistrarError::Failed("the registrar stopped".into()))?;
        if progress.committed >= target {
            return Ok(());
        }
        Err(RegistrarError::Failed(
            progress.failed.clone().unwrap_or_default(),
        ))
    }

    /// Whether it has passed already (no operation is pending).
    pub fn passed(&self) -> bool {
        self.progress.borrow().committed >= self.target
    }
}

impl Registrar {
    /// A registrar over a registry held in this process.
    pub fn in_memory(registry: Arc<Mutex<Registry>>) -> Registrar {
        let (progress, receiver) = watch::channel(Progress::default());
        Registrar {
            recorded: 0,
            sink: Sink::InMemory {
                registry,
                index: model::AgentIndex::default(),
                progress,
            },
            progress: receiver,
            metrics: Arc::default(),
        }
    }

    /// A registrar whose operations a writer drains; see [`Writer`].
    pub fn queued() -> (Registrar, Writer) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (progress, progress_rx) = watch::channel(Progress::default());
        let metrics: Arc<Mutex<RegistrarMetrics>> = Arc::default();
        (
            Registrar {
                recorded: 0,
                sink: Sink::Queue(sender),
                progress: progress_rx,
                metrics: metrics.clone(),
            },
            Writer {
                operations: receiver,
                progress,
                metrics,
            },
        )
    }

    /// Records one change; it reaches the registry in recording order.
    pub fn record(&mut self, op: Op) {
        self.recorded += 1;
        let operation = model::operation(op);
        match &mut self.sink {
            Sink::InMemory {
                registry,
                index,
                progress,
            } => {
                if let Ok(mut r) = registry.lock() {
                    model::apply_indexed(&mut r, index, &operation);
                }
                let committed = self.recorded;
                progress.send_modify(|p| p.committed = committed);
            }
            Sink::Queue(queue) => {
                if let Ok(mut m) = self.metrics.lock() {
                    m.queued_operations += 1;
                }
                // The writer is gone only once leadership is lost; the
                // barrier then fails, which is what the caller must learn.
                let _ = queue.send(operation);
            }
        }
    }

    /// A barrier for everything recorded so far.
    pub fn barrier(&self) -> Barrier {
        Barrier {
            target: self.recorded,
            progress: self.progress.clone(),
        }
    }
}

/// Something that can append a batch of operations durably.
pub trait RegistryLog: Send + Sync + 'static {
    /// Appends `batch`; [`RegistrarError::Failed`] with a reason when it
    /// could not (the writer stops at the first failure).
    fn append(
        &self,
        batch: Operations,
    ) -> impl std::future::Future<Output = Result<(), RegistrarError>> + Send;
}

/// Drains a queued registrar into a [`RegistryLog`], in batches.
#[derive(Debug)]
pub struct Writer {
    operations: mpsc::UnboundedReceiver<Operation>,
    progress: watch::Sender<Progress>,
    metrics: Arc<Mutex<RegistrarMetrics>>,
}

/// Batches stay below this many operations, so one entry stays small.
const MAX_BATCH: usize = 1024;

/// Nor do they grow past this many encoded bytes by taking more operations
/// (one operation larger than this goes alone). An entry must reach a
/// follower, and be on its disk, within one `--raft_heartbeat_interval`
/// (openraft's AppendEntries timeout), or the leader loses its lease;
/// adapter records make operations large enough for that to matter.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

impl Writer {
    /// Writes until the registrar is dropped or a write fails.
    pub async fn run(mut self, log: impl RegistryLog) {
        let mut committed = 0u64;
        // An operation that did not fit in the last batch opens the next.
        let mut carried: Option<Operation> = None;
        loop {
            let first = match carried.take() {
                Some(op) => op,
                None => match self.operations.recv().await {
                    Some(op) => op,
                    None => return,
                },
            };
            let mut bytes = prost::Message::encoded_len(&first);
            let mut batch = Operations {
                operations: vec![first],
            };
            while batch.operations.len() < MAX_BATCH {
                let Ok(op) = self.operations.try_recv() else {
                    break;
                };
                let size = prost::Message::encoded_len(&op);
                if bytes + size > MAX_BATCH_BYTES {
                    carried = Some(op);
                    break;
                }
                bytes += size;
                batch.operations.push(op);
            }
            let count = batch.operations.len() as u64;
            let started = Instant::now();
            match log.append(batch).await {
                Ok(()) => {
                    committed += count;
                    self.progress.send_modify(|p| p.committed = committed);
                    let ms = duration_ms(started.elapsed());
                    if let Ok(mut m) = self.metrics.lock() {
                        m.queued_operations = m.queued_operations.saturating_sub(count);
                        m.state_store_ms = ms;
                        m.store_samples.push_back(ms);
                        while m.store_samples.len() > 1000 {
                            m.store_samples.pop_front();
                        }
                    }
                }
                Err(RegistrarError::Failed(reason)) => {
                    tracing::warn!("registry write failed: {reason}");
                    self.progress
                        .send_modify(|p| p.failed = Some(reason.clone()));
                    return;
                }
            }
        }
    }
}

fn duration_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pando_proto::mesos::v1 as pb;
    use pando_registry::model::operation;

    fn weights(role: &str) -> Op {
        Op::UpdateWeights(operation::UpdateWeights {
            weights: vec![pando_registry::model::registry::Weight {
                role: role.into(),
                weight: 2.0,
            }],
        })
    }

    struct Log(Arc<Mutex<Vec<Operations>>>, bool);
    impl RegistryLog for Log {
        async fn append(&self, batch: Operations) -> Result<(), RegistrarError> {
            if self.1 {
                return Err(RegistrarError::Failed("not the leader".into()));
            }
            self.0.lock().unwrap().push(batch);
            Ok(())
        }
    }

    #[tokio::test]
    async fn in_memory_operations_are_applied_as_they_are_recorded() {
        let registry = Arc::new(Mutex::new(Registry::default()));
        let mut registrar = Registrar::in_memory(registry.clone());
        registrar.record(weights("dev"));
        assert!(registrar.barrier().passed());
        registrar.barrier().wait().await.unwrap();
        assert_eq!(registry.lock().unwrap().weights.len(), 1);
    }

    #[tokio::test]
    async fn a_barrier_passes_only_once_the_log_holds_its_operations() {
        let (mut registrar, writer) = Registrar::queued();
        registrar.record(weights("a"));
        registrar.record(weights("b"));
        let barrier = registrar.barrier();
        assert!(!barrier.passed());
        let written = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(writer.run(Log(written.clone(), false)));
        barrier.wait().await.unwrap();
        let total: usize = written
            .lock()
            .unwrap()
            .iter()
            .map(|b| b.operations.len())
            .sum();
        assert_eq!(total, 2);
        let _ = pb::AgentId::default();
    }

    #[tokio::test]
    async fn large_records_are_written_in_batches_of_bounded_size() {
        let (mut registrar, writer) = Registrar::queued();
        let record = |key: &str| {
            Op::PutRecord(operation::PutRecord {
                namespace: "yarn".into(),
                key: key.into(),
                value: vec![0u8; 512 * 1024].into(),
                version: 1,
            })
        };
        registrar.record(weights("a"));
        registrar.record(record("one"));
        registrar.record(weights("b"));
        registrar.record(record("two"));
        registrar.record(weights("c"));
        let barrier = registrar.barrier();
        let written = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(writer.run(Log(written.clone(), false)));
        barrier.wait().await.unwrap();
        let sizes: Vec<usize> = written
            .lock()
            .unwrap()
            .iter()
            .map(|b| b.operations.len())
            .collect();
        // Small operations ride along; two 512 KiB records never share a batch.
        assert_eq!(sizes, vec![3, 2]);
    }

    #[tokio::test]
    async fn a_failed_write_fails_every_waiting_barrier() {
        let (mut registrar, writer) = Registrar::queued();
        registrar.record(weights("a"));
        let barrier = registrar.barrier();
        tokio::spawn(writer.run(Log(Arc::default(), true)));
        assert_eq!(
            barrier.wait().await,
            Err(RegistrarError::Failed("not the leader".into()))
        );
        // An empty barrier (nothing recorded since) is still passed.
        let (registrar, _writer) = Registrar::queued();
        registrar.barrier().wait().await.unwrap();
    }
}
