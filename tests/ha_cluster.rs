//! High availability with real processes: three `pando master`s sharing a
//! Raft-replicated registry, real `pando agent`s that know all three, and a
//! framework running long tasks.
//!
//! Each test kills masters with SIGKILL (no goodbye, as a crashed machine)
//! and checks what an operator and a framework would see: a new leader,
//! redirects from the others, agents and tasks that survive, and registry
//! writes that were acknowledged and are still there.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use support::{free_port, request, subscribe_at, MasterProcess, Reply, Subscriber};

/// How long a failover may take before a test gives up (the target, 3 s, is
/// measured by the failover benchmark, not here).
const FAILOVER_DEADLINE: Duration = Duration::from_secs(30);

/// One cluster at a time: three masters and two agents per test are
/// already a load for a two-core machine, and Raft's timers must not be
/// starved into spurious elections by the neighbouring tests.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Three masters on loopback, each with its own work_dir under one root.
struct Cluster {
    root: tempfile::TempDir,
    ports: Vec<u16>,
    masters: Vec<Option<MasterProcess>>,
    agents: Vec<Child>,
}

impl Cluster {
    fn new(count: usize) -> Cluster {
        let root = tempfile::tempdir().expect("temp dir");
        let ports: Vec<u16> = (0..count).map(|_| free_port()).collect();
        let mut cluster = Cluster {
            root,
            ports,
            masters: Vec::new(),
            agents: Vec::new(),
        };
        for i in 0..count {
            let master = cluster.spawn(i);
            cluster.masters.push(Some(master));
        }
        cluster
    }

    fn masters_flag(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.root
            .path()
            .join(format!("master-{}.log", self.ports[i]))
    }

    fn spawn(&self, i: usize) -> MasterProcess {
        let work_dir = self.root.path().join(format!("master-{}", self.ports[i]));
        std::fs::create_dir_all(&work_dir).expect("work dir");
        let extra = vec![
            "--registry=replicated_log".to_string(),
            format!("--quorum={}", self.ports.len() / 2 + 1),
            format!("--masters={}", self.masters_flag()),
            "--agent_ping_timeout=1secs".to_string(),
            "--agent_reregister_timeout=20secs".to_string(),
        ];
        MasterProcess::spawn(self.ports[i], &work_dir, &self.log_path(i), &extra)
    }

    fn restart(&mut self, i: usize) {
        let master = self.spawn(i);
        self.masters[i] = Some(master);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut m) = self.masters[i].take() {
            m.kill();
        }
    }

    /// Every master's log, for a failure message.
    fn logs(&self) -> String {
        (0..self.ports.len())
            .map(|i| {
                let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
                // Pando's own lines: openraft's retry warnings would bury them.
                let tail: Vec<&str> = text
                    .lines()
                    .rev()
                    .filter(|l| !l.contains("openraft::"))
                    .take(40)
                    .collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- master{i} ---\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `master/elected` of master `i`, if it answers.
    async fn elected(&self, i: usize) -> Option<bool> {
        self.masters[i].as_ref()?;
        let reply = request(self.ports[i], "GET", "/metrics/snapshot", &[], Bytes::new())
            .await
            .ok()?;
        let metrics: Value = serde_json::from_slice(&reply.body).ok()?;
        Some(metrics["master/elected"].as_f64()? == 1.0)
    }

    /// Waits until exactly one running master leads, and returns it.
    async fn wait_leader(&self) -> usize {
        let start = Instant::now();
        loop {
            let mut leaders = Vec::new();
            for i in 0..self.ports.len() {
                if self.elected(i).await == Some(true) {
                    leaders.push(i);
                }
            }
            if leaders.len() == 1 {
                return leaders[0];
            }
            assert!(
                start.elapsed() < FAILOVER_DEADLINE,
                "no single leader (leaders: {leaders:?})\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts a `pando agent` that knows every master.
    /// Starts an agent and returns its HTTP port.
    fn start_agent(&mut self, name: &str) -> u16 {
        let work_dir = self.root.path().join(name);
        std::fs::create_dir_all(&work_dir).expect("agent work dir");
        let log =
            std::fs::File::create(self.root.path().join(format!("{name}.log"))).expect("agent log");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_pando"))
            .arg("agent")
            .arg(format!("--master={}", self.masters_flag()))
            .arg("--ip=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--work_dir={}", work_dir.display()))
            .arg("--resources=cpus:2;mem:512")
            .arg("--registration_backoff_factor=100ms")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn pando agent");
        self.agents.push(child);
        port
    }

    /// A GET on master `i`.
    async fn get(&self, i: usize, path: &str) -> Reply {
        request(self.ports[i], "GET", path, &[], Bytes::new())
            .await
            .expect("a GET to a master")
    }

    /// `/master/state` of master `i`.
    async fn state(&self, i: usize) -> Value {
        let reply = request(self.ports[i], "GET", "/master/state", &[], Bytes::new())
            .await
            .expect("state");
        serde_json::from_slice(&reply.body).expect("state is JSON")
    }

    /// Waits until the leader `i` has `count` agents re-registered.
    async fn wait_agents(&self, i: usize, count: usize) {
        let start = Instant::now();
        loop {
            let state = self.state(i).await;
            let agents = state["slaves"].as_array().map_or(0, Vec::len);
            if agents == count {
                return;
            }
            assert!(
                start.elapsed() < FAILOVER_DEADLINE,
                "leader has {agents} agents, expected {count}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// UPDATE_WEIGHTS on master `i` for one role; the reply's status.
    async fn set_weight(&self, i: usize, role: &str, weight: f64) -> u16 {
        let call = json!({
            "type": "UPDATE_WEIGHTS",
            "update_weights": {"weight_infos": [{"role": role, "weight": weight}]}
        });
        self.post_json(i, "/api/v1", &call).await.status
    }

    async fn post_json(&self, i: usize, path: &str, body: &Value) -> Reply {
        request(
            self.ports[i],
            "POST",
            path,
            &[("Content-Type", "application/json")],
            Bytes::from(body.to_string()),
        )
        .await
        .expect("request")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // PANDO_KEEP_FAILED=dir keeps a failed test's logs for a look.
        if std::thread::panicking() {
            if let Some(keep) = std::env::var_os("PANDO_KEEP_FAILED") {
                let to = PathBuf::from(keep).join(format!("ha-{}", std::process::id()));
                let _ = std::fs::create_dir_all(&to);
                if let Ok(entries) = std::fs::read_dir(self.root.path()) {
                    for entry in entries.flatten() {
                        if entry.path().extension().is_some_and(|e| e == "log") {
                            let _ = std::fs::copy(entry.path(), to.join(entry.file_name()));
                        }
                    }
                }
            }
        }
        for agent in &mut self.agents {
            let _ = agent.kill();
            let _ = agent.wait();
        }
        // Command executors run in sessions of their own.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self.root.path().display().to_string())
            .status();
    }
}

fn framework_info(id: Option<&str>) -> Value {
    let mut info = json!({
        "user": "root",
        "name": "ha-test",
        "failover_timeout": 300.0,
        "capabilities": [{"type": "PARTITION_AWARE"}],
    });
    if let Some(id) = id {
        info["id"] = json!({ "value": id });
    }
    info
}

fn subscribe_call(id: Option<&str>) -> Value {
    let mut call =
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info(id)}});
    if let Some(id) = id {
        call["framework_id"] = json!({ "value": id });
    }
    call
}

/// Launches one `sleep` task on each offer until `count` run.
async fn launch_sleepers(
    cluster: &Cluster,
    leader: usize,
    fw: &mut Subscriber,
    count: usize,
) -> Vec<String> {
    let mut launched = Vec::new();
    let start = Instant::now();
    while launched.len() < count {
        assert!(start.elapsed() < FAILOVER_DEADLINE, "not enough offers");
        let event = fw.next_of("OFFERS").await;
        for offer in support::offers(&event) {
            if launched.len() == count {
                break;
            }
            let task_id = format!("sleeper-{}", launched.len());
            let mut call = support::launch_call(
                &fw.framework_id,
                &offer,
                &task_id,
                support::scalars(0.5, 64.0),
            );
            call["accept"]["operations"][0]["launch"]["task_infos"][0]["command"] =
                json!({"shell": true, "value": "sleep 600"});
            let reply = scheduler_call(cluster.ports[leader], fw, &call)
                .await
                .expect("accept");
            assert_eq!(reply.status, 202, "ACCEPT: {}", reply.text());
            launched.push(task_id);
        }
    }
    // Every task reports RUNNING (acknowledged, so the agent moves on).
    let mut running = std::collections::BTreeSet::new();
    while running.len() < count {
        let update = fw.next_of("UPDATE").await;
        let status = &update["update"]["status"];
        if status["state"] == "TASK_RUNNING" {
            running.insert(
                status["task_id"]["value"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
        }
        acknowledge(cluster, leader, fw, status).await;
    }
    launched
}

/// Reconciles every task of `fw` with master `i` and asserts each of
/// `tasks` is TASK_RUNNING.
async fn assert_all_running(cluster: &Cluster, i: usize, fw: &mut Subscriber, tasks: &[String]) {
    let call = json!({
        "type": "RECONCILE",
        "framework_id": {"value": fw.framework_id},
        "reconcile": {"tasks": []}
    });
    let reply = scheduler_call(cluster.ports[i], fw, &call)
        .await
        .expect("reconcile");
    assert_eq!(reply.status, 202);
    let mut seen = std::collections::BTreeMap::new();
    let start = Instant::now();
    while seen.len() < tasks.len() {
        assert!(start.elapsed() < FAILOVER_DEADLINE, "reconciled {seen:?}");
        let update = fw.next_of("UPDATE").await;
        let status = &update["update"]["status"];
        seen.insert(
            status["task_id"]["value"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            status["state"].as_str().unwrap_or("").to_string(),
        );
    }
    for task in tasks {
        assert_eq!(
            seen.get(task).map(String::as_str),
            Some("TASK_RUNNING"),
            "{seen:?}"
        );
    }
}

/// A scheduler call on `fw`'s stream to the master on `port`.
async fn scheduler_call(port: u16, fw: &Subscriber, call: &Value) -> Result<Reply, String> {
    request(
        port,
        "POST",
        "/api/v1/scheduler",
        &[
            ("Content-Type", "application/json"),
            ("Mesos-Stream-Id", fw.stream_id.as_str()),
        ],
        Bytes::from(call.to_string()),
    )
    .await
}

async fn acknowledge(cluster: &Cluster, leader: usize, fw: &Subscriber, status: &Value) {
    let Some(uuid) = status["uuid"].as_str() else {
        return;
    };
    let call = json!({
        "type": "ACKNOWLEDGE",
        "framework_id": {"value": fw.framework_id},
        "acknowledge": {
            "agent_id": status["agent_id"],
            "task_id": status["task_id"],
            "uuid": uuid,
        }
    });
    let _ = scheduler_call(cluster.ports[leader], fw, &call).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_tasks_survive_and_reconcile() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new(3);
    let leader = cluster.wait_leader().await;
    cluster.start_agent("agent0");
    cluster.start_agent("agent1");
    cluster.wait_agents(leader, 2).await;

    let mut fw = subscribe_at(cluster.ports[leader], subscribe_call(None)).await;
    let framework_id = fw.framework_id.clone();
    assert!(!framework_id.is_empty(), "SUBSCRIBED");
    let tasks = launch_sleepers(&cluster, leader, &mut fw, 4).await;

    // SIGKILL the leader.
    cluster.kill(leader);
    let killed_at = Instant::now();
    assert!(
        fw.closed_within(Duration::from_secs(10)).await,
        "the stream ends with the leader"
    );
    let new_leader = cluster.wait_leader().await;
    assert_ne!(new_leader, leader);
    eprintln!("new leader after {:?}", killed_at.elapsed());

    // A standby sends the framework to the new leader.
    let standby = (0..3)
        .find(|&i| i != leader && i != new_leader)
        .unwrap_or(0);
    let redirect = cluster
        .post_json(
            standby,
            "/api/v1/scheduler",
            &subscribe_call(Some(&framework_id)),
        )
        .await;
    assert_eq!(redirect.status, 307, "standby answers {}", redirect.text());
    assert_eq!(
        redirect.header("location").unwrap_or_default(),
        format!("//127.0.0.1:{}/api/v1/scheduler", cluster.ports[new_leader])
    );

    // Agents re-register with the new leader with their tasks.
    cluster.wait_agents(new_leader, 2).await;
    let mut fw = subscribe_at(
        cluster.ports[new_leader],
        subscribe_call(Some(&framework_id)),
    )
    .await;
    assert_eq!(
        fw.framework_id, framework_id,
        "re-subscribed with the same id"
    );

    // Every task is RUNNING and reconciles as RUNNING.
    assert_all_running(&cluster, new_leader, &mut fw, &tasks).await;

    // The killed master comes back as a follower that names the leader.
    cluster.restart(leader);
    let start = Instant::now();
    loop {
        if cluster.elected(leader).await == Some(false) {
            let state = cluster.state(leader).await;
            let expected = format!("master@127.0.0.1:{}", cluster.ports[new_leader]);
            if state["leader"] == json!(expected) {
                break;
            }
        }
        assert!(
            start.elapsed() < FAILOVER_DEADLINE,
            "restarted master did not rejoin\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cluster.wait_leader().await, new_leader);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_registry_writes_survive_a_follower_kill_and_a_failover() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new(3);
    let leader = cluster.wait_leader().await;
    let follower = (leader + 1) % 3;

    // Weights written one after another; a follower dies half-way.
    let mut acknowledged = Vec::new();
    for n in 0..40 {
        if n == 20 {
            cluster.kill(follower);
        }
        let role = format!("role{n}");
        if cluster.set_weight(leader, &role, 1.0 + n as f64).await == 200 {
            acknowledged.push(role);
        }
    }
    assert_eq!(acknowledged.len(), 40, "2 of 3 masters still form a quorum");

    // The follower comes back and catches up; then the leader dies, and the
    // two left must hold every acknowledged write.
    cluster.restart(follower);
    let start = Instant::now();
    while cluster.elected(follower).await != Some(false) {
        assert!(
            start.elapsed() < FAILOVER_DEADLINE,
            "follower did not come back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It catches up: its own registry replica holds the last write.
    let start = Instant::now();
    loop {
        let registry = cluster.get(follower, "/registrar(1)/registry").await.text();
        if registry.contains("\"role39\"") {
            break;
        }
        assert!(
            start.elapsed() < FAILOVER_DEADLINE,
            "follower did not catch up: {registry}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.kill(leader);
    let new_leader = cluster.wait_leader().await;
    let reply = cluster.get(new_leader, "/master/weights").await;
    let weights: Value = serde_json::from_slice(&reply.body).expect("weights JSON");
    let roles: Vec<String> = weights
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w["role"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for role in &acknowledged {
        assert!(
            roles.contains(role),
            "{role} lost; new leader has {roles:?}\n{}",
            cluster.logs()
        );
    }
}

/// A call on `/registry/records` of the master on `port`.
async fn records_call(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    request(
        port,
        method,
        &format!("/registry/records{path}"),
        headers,
        Bytes::from(body.to_string()),
    )
    .await
    .expect("a records call")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapter_records_survive_a_leader_kill_intact() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new(3);
    let leader = cluster.wait_leader().await;
    let at = cluster.ports[leader];

    // What the YARN face would keep: applications, one updated by
    // compare-and-swap, one removed.
    for n in 0..10 {
        let path = format!("/yarn/apps/application_{n}");
        let reply = records_call(
            at,
            "PUT",
            &path,
            &[("If-None-Match", "*")],
            &format!("app {n}"),
        )
        .await;
        assert_eq!(reply.status, 201, "{}\n{}", reply.text(), cluster.logs());
    }
    let swapped = records_call(
        at,
        "PUT",
        "/yarn/apps/application_0",
        &[("If-Match", "\"1\"")],
        "app 0 running",
    )
    .await;
    assert_eq!(swapped.status, 200, "{}", swapped.text());
    assert_eq!(swapped.header("etag").as_deref(), Some("\"11\""));
    let deleted = records_call(
        at,
        "DELETE",
        "/yarn/apps/application_9",
        &[("If-Match", "\"10\"")],
        "",
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());

    // A standby sends a records client to the leader, query and all.
    let standby = (leader + 1) % 3;
    let start = Instant::now();
    let redirected = loop {
        let reply =
            records_call(cluster.ports[standby], "GET", "/yarn?prefix=apps/", &[], "").await;
        if reply.status != 503 || start.elapsed() > FAILOVER_DEADLINE {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(redirected.status, 307, "{}", redirected.text());
    assert_eq!(
        redirected.header("location").unwrap_or_default(),
        format!("//127.0.0.1:{at}/registry/records/yarn?prefix=apps/")
    );

    cluster.kill(leader);
    let new_leader = cluster.wait_leader().await;
    let at = cluster.ports[new_leader];
    let listed = records_call(at, "GET", "/yarn?prefix=apps/", &[], "").await;
    assert_eq!(listed.status, 200, "{}\n{}", listed.text(), cluster.logs());
    let mut expected = vec![json!({"key": "apps/application_0", "version": 11})];
    expected
        .extend((1..9).map(|n| json!({"key": format!("apps/application_{n}"), "version": n + 1})));
    assert_eq!(listed.json(), Value::Array(expected));
    for n in 0..9 {
        let fetched =
            records_call(at, "GET", &format!("/yarn/apps/application_{n}"), &[], "").await;
        let value = if n == 0 {
            "app 0 running".to_string()
        } else {
            format!("app {n}")
        };
        assert_eq!(fetched.text(), value);
    }
    // The version counter carries on past every version handed out, the
    // deleted record's included.
    let recreated = records_call(
        at,
        "PUT",
        "/yarn/apps/application_9",
        &[("If-None-Match", "*")],
        "app 9 again",
    )
    .await;
    assert_eq!(recreated.status, 201, "{}", recreated.text());
    assert_eq!(recreated.header("etag").as_deref(), Some("\"12\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standbys_redirect_or_refuse_and_serve_their_own_state() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::new(3);
    let leader = cluster.wait_leader().await;
    let standby = (leader + 1) % 3;
    let leader_at = format!("//127.0.0.1:{}", cluster.ports[leader]);

    // A standby learns the leader from its first heartbeat; until then it
    // answers 503 ("No leader elected").
    let start = Instant::now();
    let reply = loop {
        let reply = cluster.get(standby, "/master/redirect").await;
        if reply.status != 503 || start.elapsed() > FAILOVER_DEADLINE {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(reply.status, 307, "{}", reply.text());
    assert_eq!(reply.header("location").unwrap_or_default(), leader_at);

    let reply = cluster
        .post_json(standby, "/api/v1", &json!({"type": "GET_AGENTS"}))
        .await;
    assert_eq!(reply.status, 307);
    assert_eq!(
        reply.header("location").unwrap_or_default(),
        format!("{leader_at}/api/v1")
    );

    let state = cluster.state(standby).await;
    assert_eq!(
        state["leader"],
        json!(format!("master@127.0.0.1:{}", cluster.ports[leader]))
    );
    assert!(
        state.get("elected_time").is_none(),
        "a standby was not elected"
    );
    assert_eq!(state["leader_info"]["port"], json!(cluster.ports[leader]));

    let reply = cluster.get(leader, "/master/redirect").await;
    assert_eq!(reply.status, 307);
    assert_eq!(reply.header("location").unwrap_or_default(), leader_at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_refuses_to_start_with_bad_membership() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let run = |extra: &[String]| {
        Command::new(env!("CARGO_BIN_EXE_pando"))
            .arg("master")
            .arg("--ip=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--work_dir={}", dir.path().display()))
            .args(extra)
            .output()
            .expect("run pando master")
    };
    let out = run(&[
        "--registry=replicated_log".into(),
        "--quorum=2".into(),
        "--masters=127.0.0.1:1,127.0.0.1:2,127.0.0.1:3".into(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not in --masters"), "{stderr}");

    let out = run(&[
        "--registry=replicated_log".into(),
        "--quorum=1".into(),
        format!("--masters=127.0.0.1:{port},127.0.0.1:2,127.0.0.1:3"),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--quorum=1"), "{stderr}");

    let out = run(&["--registry=zookeeper".into()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown --registry=zookeeper"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_master_is_replaced_by_a_new_one_without_downtime() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new(3);
    let leader = cluster.wait_leader().await;
    assert_eq!(
        cluster.set_weight(leader, "before-replacement", 2.0).await,
        200
    );

    // A follower's machine dies; the operator removes it...
    let failed = (leader + 1) % 3;
    let failed_address = format!("127.0.0.1:{}", cluster.ports[failed]);
    cluster.kill(failed);
    for (attempt, expected) in [("remove", 200), ("remove again", 404)] {
        let reply = cluster
            .post_json(
                leader,
                "/master/masters/remove",
                &json!({"address": failed_address}),
            )
            .await;
        assert_eq!(reply.status, expected, "{attempt}: {}", reply.text());
    }

    // ...starts a new master elsewhere with the new list, and adds it.
    cluster.ports[failed] = free_port();
    let new_address = format!("127.0.0.1:{}", cluster.ports[failed]);
    cluster.restart(failed);
    let reply = cluster
        .post_json(
            leader,
            "/master/masters/add",
            &json!({"address": new_address}),
        )
        .await;
    assert_eq!(
        reply.status,
        200,
        "add: {}\n{}",
        reply.text(),
        cluster.logs()
    );
    let masters: Value = cluster.get(leader, "/master/masters").await.json();
    let voters: Vec<&str> = masters["masters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "voter")
        .filter_map(|m| m["address"].as_str())
        .collect();
    assert_eq!(voters.len(), 3, "{masters}");
    assert!(voters.contains(&new_address.as_str()), "{masters}");
    assert!(!voters.contains(&failed_address.as_str()), "{masters}");

    // Bad input is refused with a reason.
    let reply = cluster
        .post_json(
            leader,
            "/master/masters/add",
            &json!({"address": "nowhere"}),
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());

    // The new master is a full voter: with the old leader gone, it and the
    // remaining one elect a leader that has every earlier write.
    cluster.kill(leader);
    let new_leader = cluster.wait_leader().await;
    let reply = cluster.get(new_leader, "/master/weights").await;
    assert!(
        reply.text().contains("before-replacement"),
        "{}\n{}",
        reply.text(),
        cluster.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_with_a_corrupt_log_entry_refuses_to_start() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new(3);
    let leader = cluster.wait_leader().await;
    assert_eq!(cluster.set_weight(leader, "some-role", 2.0).await, 200);
    let victim = (leader + 1) % 3;
    cluster.kill(victim);

    // Flip a byte inside the first record's payload (after its 8-byte
    // length and checksum header): a complete record that fails its CRC.
    let log = cluster
        .root
        .path()
        .join(format!("master-{}", cluster.ports[victim]))
        .join("registry")
        .join("log");
    let mut bytes = std::fs::read(&log).expect("the follower's log");
    assert!(bytes.len() > 12, "log too short: {}", bytes.len());
    bytes[10] ^= 0xff;
    std::fs::write(&log, &bytes).expect("write the damaged log");

    let work_dir = log.parent().and_then(|p| p.parent()).expect("work dir");
    let out = Command::new(env!("CARGO_BIN_EXE_pando"))
        .arg("master")
        .arg("--ip=127.0.0.1")
        .arg(format!("--port={}", cluster.ports[victim]))
        .arg(format!("--work_dir={}", work_dir.display()))
        .arg("--registry=replicated_log")
        .arg("--quorum=2")
        .arg(format!("--masters={}", cluster.masters_flag()))
        .output()
        .expect("run the master");
    assert!(!out.status.success(), "a corrupt log must stop the master");
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(stderr.contains("corrupt"), "{stderr}");
    assert!(
        stderr.contains(&log.display().to_string().to_lowercase()),
        "{stderr}"
    );
    // The others carry on.
    assert_eq!(cluster.wait_leader().await, leader);
}

/// Task states the agent on `port` reports, by task id.
async fn agent_tasks(port: u16) -> std::collections::BTreeMap<String, String> {
    let reply = request(port, "GET", "/state", &[], Bytes::new())
        .await
        .expect("agent state");
    let state: Value = serde_json::from_slice(&reply.body).expect("agent state JSON");
    let mut tasks = std::collections::BTreeMap::new();
    for fw in state["frameworks"].as_array().into_iter().flatten() {
        for executor in fw["executors"].as_array().into_iter().flatten() {
            for task in executor["tasks"].as_array().into_iter().flatten() {
                tasks.insert(
                    task["id"].as_str().unwrap_or("").to_string(),
                    task["state"].as_str().unwrap_or("").to_string(),
                );
            }
        }
    }
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_on_with_no_master_and_the_cluster_restarts_from_its_registry() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new(3);
    let leader = cluster.wait_leader().await;
    let agent_port = cluster.start_agent("agent0");
    cluster.wait_agents(leader, 1).await;
    let mut fw = subscribe_at(cluster.ports[leader], subscribe_call(None)).await;
    let framework_id = fw.framework_id.clone();
    let tasks = launch_sleepers(&cluster, leader, &mut fw, 2).await;

    // Every master dies: the agent keeps running the tasks.
    for i in 0..3 {
        cluster.kill(i);
    }
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(3) {
        let running = agent_tasks(agent_port).await;
        for task in &tasks {
            assert_eq!(
                running.get(task).map(String::as_str),
                Some("TASK_RUNNING"),
                "with no master: {running:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The masters come back from their work dirs: the registry still knows
    // the agent and the framework, which both come back with the tasks.
    for i in 0..3 {
        cluster.restart(i);
    }
    let leader = cluster.wait_leader().await;
    cluster.wait_agents(leader, 1).await;
    let mut fw = subscribe_at(cluster.ports[leader], subscribe_call(Some(&framework_id))).await;
    assert_eq!(fw.framework_id, framework_id);
    assert_all_running(&cluster, leader, &mut fw, &tasks).await;
}
