//! Masters replicating the registry, each with a real tonic server on
//! 127.0.0.1, all in one process.
//!
//! A [`Master`] is a `ReplicatedRegistry` plus the server that carries its
//! Raft service; stopping one stops both, as a crash would, and its work_dir
//! stays so it can be reopened. Timings are short (heartbeat 50 ms, election
//! 300-600 ms) and every wait polls with a deadline.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use pando_registry::model::{self, operation, registry, Operations};
use pando_registry::proto::raft::raft_client::RaftClient;
use pando_registry::proto::raft::RaftRequest;
use pando_registry::{
    Config, MasterAddress, MemberRole, RegistryError, ReplicatedRegistry, WriteError,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

/// One master: its registry, its server, and where its files are.
struct Master {
    address: MasterAddress,
    work_dir: PathBuf,
    registry: ReplicatedRegistry,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Master {
    /// Opens the registry in `work_dir` and serves it on `listener`.
    async fn open(
        listener: TcpListener,
        work_dir: &Path,
        masters: &[MasterAddress],
    ) -> Result<Master, RegistryError> {
        let address = MasterAddress::shared(listener.local_addr().unwrap().to_string());
        let registry = ReplicatedRegistry::open(config(work_dir, &address, masters)).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let service = registry.service();
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Ok(Master {
            address,
            work_dir: work_dir.to_path_buf(),
            registry,
            server: Some((stop, server)),
        })
    }

    /// Stops Raft and the server; the work_dir stays.
    async fn stop(&mut self) {
        self.registry.shutdown().await;
        if let Some((stop, server)) = self.server.take() {
            let _ = stop.send(());
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Reopens a stopped master on its old address.
    async fn reopen(&self, masters: &[MasterAddress]) -> Master {
        let listener = TcpListener::bind(&self.address.raft).await.unwrap();
        Master::open(listener, &self.work_dir, masters)
            .await
            .unwrap()
    }
}

fn config(work_dir: &Path, me: &MasterAddress, masters: &[MasterAddress]) -> Config {
    let mut config = Config::new(work_dir, me.clone(), masters.to_vec());
    config.heartbeat_interval = Duration::from_millis(100);
    config.election_timeout = (Duration::from_millis(600), Duration::from_millis(1200));
    config
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

async fn listeners(n: usize) -> (Vec<TcpListener>, Vec<MasterAddress>) {
    let mut listeners = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..n {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addresses.push(MasterAddress::shared(
            listener.local_addr().unwrap().to_string(),
        ));
        listeners.push(listener);
    }
    (listeners, addresses)
}

/// `n` masters, opened, serving and started.
async fn cluster(root: &Path, n: usize) -> Vec<Master> {
    let (listeners, addresses) = listeners(n).await;
    let mut masters = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let dir = root.join(format!("m{i}"));
        masters.push(Master::open(listener, &dir, &addresses).await.unwrap());
    }
    start_all(&masters).await;
    masters
}

async fn start_all(masters: &[Master]) {
    let mut starts = tokio::task::JoinSet::new();
    for master in masters {
        let registry = master.registry.clone();
        starts.spawn(async move { registry.start().await });
    }
    while let Some(started) = starts.join_next().await {
        started.unwrap().unwrap();
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or fails after `within`.
/// The tests run one at a time: each starts several masters whose Raft
/// timers, on a loaded two-core machine, must not starve each other into
/// spurious elections.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The index of the master all running `masters` agree leads.
async fn leader_of(masters: &[&Master]) -> usize {
    eventually(Duration::from_secs(5), "a leader", || async {
        let views: Vec<_> = masters
            .iter()
            .map(|m| m.registry.leadership().borrow().clone())
            .collect();
        let leader = views.iter().position(|l| l.is_me)?;
        let address = &masters[leader].address;
        views
            .iter()
            .all(|l| l.leader.as_ref() == Some(address))
            .then_some(leader)
    })
    .await
}

/// Writes through whichever of `masters` leads, asking again if the lead
/// moves between finding the leader and the write (the write is
/// idempotent).
async fn write_via_leader(masters: &[&Master], ops: Operations) {
    eventually(
        Duration::from_secs(10),
        "a write through the leader",
        || {
            let ops = ops.clone();
            async move {
                let leader = leader_of(masters).await;
                masters[leader].registry.write(ops).await.ok()
            }
        },
    )
    .await;
}

fn weight(role: &str, weight: f64) -> Operations {
    Operations {
        operations: vec![model::operation(operation::Operation::UpdateWeights(
            operation::UpdateWeights {
                weights: vec![registry::Weight {
                    role: role.into(),
                    weight,
                }],
            },
        ))],
    }
}

async fn roles(master: &Master) -> Vec<String> {
    let mut roles: Vec<String> = master
        .registry
        .read()
        .await
        .weights
        .iter()
        .map(|w| w.role.clone())
        .collect();
    roles.sort();
    roles
}

async fn wait_for_roles(master: &Master, expected: &[&str]) {
    let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    eventually(
        Duration::from_secs(5),
        &format!("{} to hold roles {expected:?}", master.address),
        || async { (roles(master).await == expected).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_masters_elect_replicate_fail_over_and_rejoin() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let mut masters = cluster(root.path(), 3).await;
    let addresses: Vec<MasterAddress> = masters.iter().map(|m| m.address.clone()).collect();

    let leader = leader_of(&masters.iter().collect::<Vec<_>>()).await;
    masters[leader].registry.barrier().await.unwrap();
    let index = masters[leader]
        .registry
        .write(weight("a", 1.0))
        .await
        .unwrap();
    assert!(index > 0);
    assert_eq!(roles(&masters[leader]).await, vec!["a"]);
    for master in &masters {
        wait_for_roles(master, &["a"]).await;
    }

    let follower = (leader + 1) % 3;
    match masters[follower].registry.write(weight("b", 1.0)).await {
        Err(WriteError::NotLeader {
            leader: Some(named),
        }) => {
            assert_eq!(named, masters[leader].address)
        }
        other => panic!("a follower's write should say who leads, got {other:?}"),
    }
    assert!(matches!(
        masters[follower].registry.barrier().await,
        Err(WriteError::NotLeader { .. })
    ));

    // The leader stops: the other two elect one of themselves.
    masters[leader].stop().await;
    let survivors: Vec<&Master> = masters
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, m)| m)
        .collect();
    let new_leader = survivors[leader_of(&survivors).await];
    assert_ne!(new_leader.address, masters[leader].address);
    new_leader.registry.barrier().await.unwrap();
    assert_eq!(roles(new_leader).await, vec!["a"]);
    write_via_leader(&survivors, weight("c", 2.0)).await;
    for master in &survivors {
        wait_for_roles(master, &["a", "c"]).await;
    }

    // The stopped master comes back from its work_dir and catches up.
    let reopened = masters[leader].reopen(&addresses).await;
    assert_eq!(
        roles(&reopened).await,
        vec!["a"],
        "a reopened master replays its own committed log"
    );
    reopened.registry.start().await.unwrap();
    masters[leader] = reopened;
    wait_for_roles(&masters[leader], &["a", "c"]).await;
    let all: Vec<&Master> = masters.iter().collect();
    leader_of(&all).await;

    for master in &mut masters {
        master.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_is_removed_and_a_fresh_one_added_from_a_snapshot() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let mut masters = cluster(root.path(), 3).await;
    let leader = leader_of(&masters.iter().collect::<Vec<_>>()).await;
    let follower = (leader + 1) % 3;
    let leader_registry = masters[leader].registry.clone();
    leader_registry.barrier().await.unwrap();
    leader_registry.write(weight("a", 1.0)).await.unwrap();

    // Remove a follower: two voters remain, and they still commit.
    let removed = masters[follower].address.clone();
    leader_registry
        .remove_master(removed.clone())
        .await
        .unwrap();
    let members = leader_registry.members();
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(members
        .iter()
        .all(|(m, role)| *m != removed && *role == MemberRole::Voter));
    masters[follower].stop().await;
    leader_registry.write(weight("b", 1.0)).await.unwrap();

    // Compact the leader's log so that a new master needs the snapshot.
    leader_registry.compact().await.unwrap();

    // A fresh master joins: it learns the cluster from Hello, then the
    // leader adds it as a learner, catches it up and makes it a voter.
    let remaining: Vec<MasterAddress> = masters
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != follower)
        .map(|(_, m)| m.address.clone())
        .collect();
    let (mut listener, mut address) = listeners(1).await;
    let mut masters_list = remaining.clone();
    masters_list.push(address.remove(0));
    let fresh = Master::open(
        listener.remove(0),
        &root.path().join("fresh"),
        &masters_list,
    )
    .await
    .unwrap();
    fresh.registry.start().await.unwrap();
    leader_registry
        .add_master(fresh.address.clone())
        .await
        .unwrap();
    let members = leader_registry.members();
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(members
        .iter()
        .any(|(m, role)| *m == fresh.address && *role == MemberRole::Voter));
    wait_for_roles(&fresh, &["a", "b"]).await;

    leader_registry.write(weight("c", 1.0)).await.unwrap();
    wait_for_roles(&fresh, &["a", "b", "c"]).await;

    let mut fresh = fresh;
    fresh.stop().await;
    for master in &mut masters {
        master.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_dir_of_another_cluster_is_refused() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let mut pair = cluster(&root.path().join("pair"), 2).await;

    // A one-master cluster of its own, then stopped.
    let mut lone = cluster(&root.path().join("lone"), 1).await.remove(0);
    leader_of(&[&lone]).await;
    lone.registry.write(weight("x", 1.0)).await.unwrap();
    lone.stop().await;

    // Its work_dir, started as a third master of the pair, is refused.
    let mut masters: Vec<MasterAddress> = pair.iter().map(|m| m.address.clone()).collect();
    masters.push(lone.address.clone());
    let intruder = lone.reopen(&masters).await;
    let error = intruder.registry.start().await.unwrap_err();
    assert!(
        matches!(error, RegistryError::OtherCluster { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&lone.work_dir.display().to_string()),
        "{message}"
    );

    // A Raft request naming another cluster is refused and not applied.
    let mut client = RaftClient::connect(format!("http://{}", pair[0].address.raft))
        .await
        .unwrap();
    let status = client
        .append_entries(RaftRequest {
            cluster: "some-other-cluster".into(),
            payload: b"{}".to_vec().into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");

    let mut intruder = intruder;
    intruder.stop().await;
    for master in &mut pair {
        master.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_masters_with_different_masters_lists_refuse_to_start() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let (mut listeners, addresses) = listeners(3).await;
    let third = listeners.pop().unwrap();
    let b = listeners.pop().unwrap();
    let a = listeners.pop().unwrap();
    let pair = &addresses[..2];
    let mut master_a = Master::open(a, &root.path().join("a"), pair).await.unwrap();
    let mut master_b = Master::open(b, &root.path().join("b"), &addresses)
        .await
        .unwrap();
    drop(third);

    let error = master_a.registry.start().await.unwrap_err();
    match &error {
        RegistryError::MastersMismatch { peer, .. } => assert_eq!(*peer, addresses[1].to_string()),
        other => panic!("expected MastersMismatch, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("--masters="), "{message}");

    master_a.stop().await;
    master_b.stop().await;
}

#[tokio::test]
async fn configurations_that_contradict_themselves_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let a = MasterAddress::shared("127.0.0.1:5050");
    let b = MasterAddress::shared("127.0.0.1:5051");
    let c = MasterAddress::shared("127.0.0.1:5052");

    let not_listed = config(root.path(), &c, &[a.clone(), b.clone()]);
    let error = ReplicatedRegistry::open(not_listed).await.err().unwrap();
    assert!(
        matches!(&error, RegistryError::Config(m) if m.contains("not in --masters")),
        "{error}"
    );

    let mut wrong_quorum = config(root.path(), &a, &[a.clone(), b.clone(), c.clone()]);
    wrong_quorum.quorum = Some(3);
    let error = ReplicatedRegistry::open(wrong_quorum).await.err().unwrap();
    assert!(
        matches!(&error, RegistryError::Config(m) if m.contains("--quorum=2")),
        "{error}"
    );
}

/// A one-master registry with three entries written, then stopped.
async fn lone_master_with_writes(root: &Path) -> Master {
    let mut lone = cluster(root, 1).await.remove(0);
    leader_of(&[&lone]).await;
    for role in ["a", "b", "c"] {
        lone.registry.write(weight(role, 1.0)).await.unwrap();
    }
    lone.stop().await;
    lone
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_log_record_stops_the_master_from_opening() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let lone = lone_master_with_writes(root.path()).await;
    let log = lone.work_dir.join("registry").join("log");
    let mut bytes = std::fs::read(&log).unwrap();
    // Flip a byte in the middle of the second record's payload.
    let first = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let second = 8 + first;
    let second_len = u32::from_le_bytes(bytes[second..second + 4].try_into().unwrap()) as usize;
    bytes[second + 8 + second_len / 2] ^= 0x20;
    std::fs::write(&log, &bytes).unwrap();

    let masters = vec![lone.address.clone()];
    let listener = TcpListener::bind(&lone.address.raft).await.unwrap();
    match Master::open(listener, &lone.work_dir, &masters).await {
        Err(RegistryError::Corrupt {
            path,
            index,
            offset,
            ..
        }) => {
            assert_eq!(path, log);
            assert_eq!(index, Some(1));
            assert_eq!(offset, second as u64);
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("a corrupt log must not open"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_final_record_is_truncated_and_the_registry_recovers() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let lone = lone_master_with_writes(root.path()).await;
    let log = lone.work_dir.join("registry").join("log");
    let intact = std::fs::read(&log).unwrap();
    // A crash during an append: half of a record reached the disk.
    let mut torn = intact.clone();
    torn.extend_from_slice(&intact[..intact.len().min(40) / 2]);
    std::fs::write(&log, &torn).unwrap();

    let mut reopened = lone.reopen(std::slice::from_ref(&lone.address)).await;
    assert_eq!(
        std::fs::read(&log).unwrap(),
        intact,
        "the torn tail is cut off"
    );
    assert_eq!(roles(&reopened).await, vec!["a", "b", "c"]);
    reopened.registry.start().await.unwrap();
    leader_of(&[&reopened]).await;
    reopened.registry.write(weight("d", 1.0)).await.unwrap();
    assert_eq!(roles(&reopened).await, vec!["a", "b", "c", "d"]);
    reopened.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_failure_stops_raft_and_fatal_says_why() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let mut lone = cluster(root.path(), 1).await.remove(0);
    leader_of(&[&lone]).await;
    lone.registry.write(weight("a", 1.0)).await.unwrap();

    // The registry directory disappears under the running master: the next
    // commit cannot record itself.
    std::fs::remove_dir_all(lone.work_dir.join("registry")).unwrap();
    let written = lone.registry.write(weight("b", 1.0)).await;
    assert!(matches!(written, Err(WriteError::Fatal(_))), "{written:?}");
    let message = tokio::time::timeout(Duration::from_secs(5), lone.registry.fatal())
        .await
        .expect("fatal() completes once Raft has stopped on a storage error");
    assert!(message.contains("cannot write"), "{message}");
    lone.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_master_restores_its_snapshot_and_replays_the_log_after_it() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let mut lone = cluster(root.path(), 1).await.remove(0);
    leader_of(&[&lone]).await;
    lone.registry.write(weight("a", 1.0)).await.unwrap();
    lone.registry.write(weight("b", 1.0)).await.unwrap();
    lone.registry.compact().await.unwrap();
    lone.registry.write(weight("c", 1.0)).await.unwrap();
    lone.stop().await;
    // a and b are now only in the snapshot; c only in the log.
    assert!(lone.work_dir.join("registry").join("snapshot").exists());
    assert!(lone.work_dir.join("registry").join("purged").exists());

    let mut reopened = lone.reopen(std::slice::from_ref(&lone.address)).await;
    assert_eq!(roles(&reopened).await, vec!["a", "b", "c"]);
    reopened.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_removes_itself_steps_down_and_the_others_carry_on() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let mut masters = cluster(root.path(), 3).await;
    let leader = leader_of(&masters.iter().collect::<Vec<_>>()).await;
    let registry = masters[leader].registry.clone();
    registry.barrier().await.unwrap();
    registry.write(weight("a", 1.0)).await.unwrap();
    registry
        .remove_master(masters[leader].address.clone())
        .await
        .unwrap();

    let others: Vec<&Master> = masters
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, m)| m)
        .collect();
    write_via_leader(&others, weight("b", 1.0)).await;
    for master in &others {
        wait_for_roles(master, &["a", "b"]).await;
        assert_eq!(master.registry.members().len(), 2);
    }
    assert!(!masters[leader].registry.leadership().borrow().is_me);

    for master in &mut masters {
        master.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_a_quorum_stops_calling_itself_leader() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let mut masters = cluster(root.path(), 3).await;
    let leader = leader_of(&masters.iter().collect::<Vec<_>>()).await;
    for (i, master) in masters.iter_mut().enumerate() {
        if i != leader {
            master.stop().await;
        }
    }
    let leadership = masters[leader].registry.leadership();
    eventually(
        Duration::from_secs(3),
        "the lone leader to abdicate",
        || async {
            let now = leadership.borrow().clone();
            (!now.is_me && now.leader.is_none()).then_some(())
        },
    )
    .await;
    masters[leader].stop().await;
}
