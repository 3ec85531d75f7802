//! Leader-only services across leader changes, with three real masters
//! replicating their registry through Raft in this process.
//!
//! Each master runs a toy service that counts its own starts and stops. The
//! test stops leaders one after another (restarting the first so that a
//! quorum remains) and checks what an operator relies on: the service runs
//! on exactly one master at a time, the new leader starts it once, and a
//! master that stops leading stops it.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pando_core::master::leader::{LeaderService, LeaderTerm, Leading};
use pando_core::master::{BoundMaster, MasterFlags, MasterHandle};
use tokio::sync::oneshot;

const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Counter {
    starts: AtomicU64,
    stops: AtomicU64,
}

impl Counter {
    fn running(&self) -> u64 {
        self.starts.load(Ordering::SeqCst) - self.stops.load(Ordering::SeqCst)
    }
    fn counts(&self) -> (u64, u64) {
        (
            self.starts.load(Ordering::SeqCst),
            self.stops.load(Ordering::SeqCst),
        )
    }
}

impl LeaderService for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn lead(self: Arc<Self>, mut term: LeaderTerm) -> Leading {
        Box::pin(async move {
            self.starts.fetch_add(1, Ordering::SeqCst);
            term.stepped_down().await;
            self.stops.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

/// One master of the three, while it runs.
struct Running {
    handle: MasterHandle,
    counter: Arc<Counter>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start(port: u16, ports: &[u16], work_dir: &Path) -> Running {
    let mut flags = MasterFlags::with_defaults(
        Ipv4Addr::LOCALHOST.into(),
        port,
        work_dir.join(port.to_string()),
    );
    flags.registry = "replicated_log".into();
    flags.quorum = Some(2);
    flags.masters = Some(
        ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    let mut bound = BoundMaster::bind(flags).await.expect("master binds");
    let counter = Arc::new(Counter::default());
    bound.add_leader_service(counter.clone());
    let handle = bound.handle();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let _ = bound
            .run(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Running {
        handle,
        counter,
        stop,
        task,
    }
}

impl Running {
    async fn stop(self) -> Arc<Counter> {
        let _ = self.stop.send(());
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the master stops in time")
            .expect("the master's task ends cleanly");
        self.counter
    }
}

/// Waits until exactly one of `masters` leads and has its service running
/// while no other has; returns its index.
async fn one_leader_running(masters: &[&Running]) -> usize {
    let started = Instant::now();
    loop {
        let leaders: Vec<usize> = (0..masters.len())
            .filter(|&i| masters[i].handle.leader().is_ok())
            .collect();
        let running: Vec<usize> = (0..masters.len())
            .filter(|&i| masters[i].counter.running() > 0)
            .collect();
        if leaders.len() == 1 && running == leaders {
            return leaders[0];
        }
        assert!(
            started.elapsed() < DEADLINE,
            "no single leader running its service: leaders {leaders:?}, running {running:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_follows_the_leader_across_two_leader_changes() {
    let work_dir = tempfile::tempdir().expect("temp dir");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut masters: Vec<Option<Running>> = Vec::new();
    for &port in &ports {
        masters.push(Some(start(port, &ports, work_dir.path()).await));
    }

    let live = |masters: &Vec<Option<Running>>| -> Vec<usize> {
        (0..masters.len())
            .filter(|&i| masters[i].is_some())
            .collect()
    };
    let first = {
        let refs: Vec<&Running> = masters.iter().flatten().collect();
        live(&masters)[one_leader_running(&refs).await]
    };
    let counter = masters[first].as_ref().expect("leader").counter.clone();
    assert_eq!(counter.counts(), (1, 0), "the first leader started it once");

    // The leader stops: its service stops, another master's starts.
    let old = masters[first].take().expect("leader").stop().await;
    assert_eq!(old.counts(), (1, 1), "the old leader stopped its service");
    let second = {
        let refs: Vec<&Running> = masters.iter().flatten().collect();
        live(&masters)[one_leader_running(&refs).await]
    };
    assert_ne!(second, first);
    let counter = masters[second].as_ref().expect("leader").counter.clone();
    assert_eq!(counter.counts(), (1, 0), "the new leader started it once");

    // The first master comes back as a standby, then the second leader
    // stops too.
    masters[first] = Some(start(ports[first], &ports, work_dir.path()).await);
    let old = masters[second].take().expect("leader").stop().await;
    assert_eq!(old.counts(), (1, 1));
    let third = {
        let refs: Vec<&Running> = masters.iter().flatten().collect();
        live(&masters)[one_leader_running(&refs).await]
    };
    assert_ne!(third, second);
    let counter = masters[third].as_ref().expect("leader").counter.clone();
    assert_eq!(counter.counts(), (1, 0), "the third leader started it once");
    for i in live(&masters) {
        if i != third {
            let standby = masters[i].as_ref().expect("standby");
            assert_eq!(standby.counter.running(), 0, "a standby runs no service");
        }
    }

    for m in masters.into_iter().flatten() {
        let counter = m.stop().await;
        assert_eq!(counter.running(), 0, "shutdown stops every service");
    }
}
