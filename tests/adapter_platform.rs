//! The master as a platform for adapters, proven the way an adapter uses
//! it: a framework in this test's process runs on `pando-scheduler`'s
//! driver against `pando local --ha`, launches tasks, keeps its state in
//! the replicated adapter records, and lives through two leader kills.
//!
//! What it must see after each `kill -9` of the leading master: the driver
//! re-subscribes with the same framework id, every task is still running
//! (asked through reconciliation, as a framework would), and every record
//! reads back with the bytes and version it was written with.

mod support;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pando_proto::codec::ContentType;
use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::scheduler::call;
use pando_scheduler::client::Client;
use pando_scheduler::{Config, Driver, HttpTransport, Incoming};
use tokio::sync::mpsc;

/// A failover, a master restart and the agents' re-registration may each
/// take a few seconds on a loaded two-core machine.
const DEADLINE: Duration = Duration::from_secs(90);
const NAMESPACE: &str = "platform-proof";
const TASKS: [&str; 2] = ["long-1", "long-2"];

/// `pando local --ha` with two agents, stopped (tasks included) on drop.
struct Local {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Local {
    fn start() -> Local {
        let dir = tempfile::tempdir().expect("temp dir");
        // Three consecutive free ports for the masters.
        let port = loop {
            let port = TcpListener::bind(("127.0.0.1", 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port");
            if port < 65000 && (1..3).all(|i| TcpListener::bind(("127.0.0.1", port + i)).is_ok()) {
                break port;
            }
        };
        let child = Command::new(env!("CARGO_BIN_EXE_pando"))
            .args(["local", "--ha", "--agents=2", "--agent_port=0"])
            .arg(format!("--port={port}"))
            .arg(format!("--work_dir={}", dir.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pando local --ha");
        Local {
            child,
            port,
            _dir: dir,
        }
    }

    fn masters(&self) -> String {
        (0..3)
            .map(|i| format!("127.0.0.1:{}", self.port + i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The leading master's client, once one leads.
    async fn leader(&self) -> Client {
        let started = Instant::now();
        loop {
            if let Ok(client) = Client::leading(&self.masters(), Duration::from_secs(5)).await {
                if client
                    .get_json("/master/state")
                    .await
                    .is_ok_and(|s| s["elected_time"].is_number())
                {
                    return client;
                }
            }
            assert!(started.elapsed() < DEADLINE, "no master leads");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the leading master with SIGKILL; returns its port.
    async fn kill_leader(&self) -> u16 {
        let leader = self.leader().await;
        let port: u16 = leader
            .addr()
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("the leader's port");
        let pid = support::master_pid(self.child.id(), port).expect("the leader's process");
        let killed = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(killed.success(), "kill -9 {pid}");
        port
    }

    /// Waits until `pando local` restarted the master on `port` and it
    /// answers again (as a standby or the leader).
    async fn restarted(&self, port: u16) {
        let started = Instant::now();
        let client =
            Client::new(&format!("127.0.0.1:{port}"), Duration::from_secs(2)).expect("an address");
        while client.get_json("/master/state").await.is_err() {
            assert!(
                started.elapsed() < DEADLINE,
                "pando local did not restart the master on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // SIGTERM lets pando local kill the tasks and remove its cgroups.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The next item the driver hands over that `wanted` picks.
async fn next<T>(
    incoming: &mut mpsc::UnboundedReceiver<Incoming>,
    what: &str,
    wanted: impl Fn(Incoming) -> Option<T>,
) -> T {
    support::next_incoming(incoming, DEADLINE, what, wanted).await
}

fn sleeper(task_id: &str, agent_id: &pb::AgentId) -> pb::TaskInfo {
    let scalar = |name: &str, value: f64| pb::Resource {
        name: name.into(),
        r#type: pb::value::Type::Scalar as i32,
        scalar: Some(pb::value::Scalar { value }),
        ..Default::default()
    };
    pb::TaskInfo {
        name: task_id.into(),
        task_id: pb::TaskId {
            value: task_id.into(),
        },
        agent_id: agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        command: Some(pb::CommandInfo {
            value: Some("sleep 600".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Writes a record on the leader; returns the version it got.
async fn put_record(local: &Local, key: &str, value: &[u8]) -> String {
    let leader = local.leader().await;
    let reply = leader
        .request(
            "PUT",
            &format!("/registry/records/{NAMESPACE}/{key}"),
            &[("If-None-Match", "*")],
            Bytes::copy_from_slice(value),
        )
        .await
        .expect("the leader answers");
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.header("ETag").expect("a version").to_string()
}

/// Reads a record from the leader: its bytes and version.
async fn get_record(local: &Local, key: &str) -> (Vec<u8>, String) {
    let started = Instant::now();
    loop {
        let leader = local.leader().await;
        let path = format!("/registry/records/{NAMESPACE}/{key}");
        if let Ok(reply) = leader.request("GET", &path, &[], Bytes::new()).await {
            if reply.status == 200 {
                let version = reply.header("ETag").unwrap_or_default().to_string();
                return (reply.body.to_vec(), version);
            }
            // 503 while a new leader catches up is fine; 404 is not.
            assert_ne!(reply.status, 404, "record {key} is gone: {}", reply.text());
        }
        assert!(started.elapsed() < DEADLINE, "record {key} cannot be read");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks for the state of every task until each is reported RUNNING.
async fn all_running(driver: &Driver, incoming: &mut mpsc::UnboundedReceiver<Incoming>) {
    let started = Instant::now();
    let mut states: BTreeMap<String, i32> = BTreeMap::new();
    while !TASKS
        .iter()
        .all(|t| states.get(*t) == Some(&(pb::TaskState::TaskRunning as i32)))
    {
        assert!(
            started.elapsed() < DEADLINE,
            "not every task is reported running: {states:?}"
        );
        // A new leader answers for tasks once their agents re-registered;
        // ask again until it does.
        let tasks = TASKS
            .iter()
            .map(|t| call::reconcile::Task {
                task_id: pb::TaskId {
                    value: (*t).to_string(),
                },
                agent_id: None,
            })
            .collect();
        let _ = driver.reconcile(tasks).await;
        let wait = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                item = incoming.recv() => match item {
                    Some(Incoming::Update(status)) => {
                        states.insert(status.task_id.value.clone(), status.state);
                    }
                    Some(_) => {}
                    None => panic!("the driver stopped"),
                },
            }
        }
    }
    for (task, state) in &states {
        assert_eq!(
            *state,
            pb::TaskState::TaskRunning as i32,
            "task {task} is not running"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framework_its_tasks_and_its_records_survive_two_leader_kills() {
    let local = Local::start();
    let transport =
        HttpTransport::new(&local.masters(), ContentType::Protobuf).expect("a master list");
    let framework = pb::FrameworkInfo {
        user: "root".into(),
        name: "adapter-platform".into(),
        failover_timeout: Some(3600.0),
        ..Default::default()
    };
    let (driver, mut incoming) = Driver::start(Config::new(framework), transport);
    let framework_id = next(&mut incoming, "SUBSCRIBED", |item| match item {
        Incoming::Subscribed { framework_id, .. } => Some(framework_id),
        _ => None,
    })
    .await;

    // One long task per offer until both run.
    let mut launched = 0;
    while launched < TASKS.len() {
        let offers = next(&mut incoming, "offers", |item| match item {
            Incoming::Offers(offers) => Some(offers),
            _ => None,
        })
        .await;
        for offer in offers {
            if launched < TASKS.len() {
                let task = sleeper(TASKS[launched], &offer.agent_id);
                driver
                    .launch(offer.id.clone(), vec![task], None)
                    .await
                    .expect("the launch is taken");
                launched += 1;
            } else {
                let _ = driver.decline(vec![offer.id.clone()], None).await;
            }
        }
    }
    all_running(&driver, &mut incoming).await;

    // The adapter's state, in the replicated records.
    let mut written = BTreeMap::new();
    for (key, value) in [
        ("applications/1", b"first application".to_vec()),
        ("attempts/1/1", vec![0u8, 1, 2, 255]),
        ("counter", b"42".to_vec()),
    ] {
        let version = put_record(&local, key, &value).await;
        written.insert(key, (value, version));
    }

    for round in 1..=2 {
        let killed = local.kill_leader().await;
        let again = next(&mut incoming, "a re-subscription", |item| match item {
            Incoming::Subscribed {
                framework_id,
                reregistered,
                ..
            } => Some((framework_id, reregistered)),
            _ => None,
        })
        .await;
        assert_eq!(
            again,
            (framework_id.clone(), true),
            "round {round}: the same framework"
        );
        all_running(&driver, &mut incoming).await;
        for (key, (value, version)) in &written {
            assert_eq!(
                &get_record(&local, key).await,
                &(value.clone(), version.clone()),
                "round {round}: record {key} is intact"
            );
        }
        // The killed master comes back, so the next kill leaves a quorum.
        local.restarted(killed).await;
    }

    let state = local
        .leader()
        .await
        .get_json("/master/state")
        .await
        .expect("state");
    let frameworks = state["frameworks"].as_array().expect("frameworks");
    assert_eq!(frameworks.len(), 1, "one framework, never a second one");
    assert_eq!(frameworks[0]["id"], framework_id.value.as_str());
    driver.teardown().await.expect("TEARDOWN is taken");
}
