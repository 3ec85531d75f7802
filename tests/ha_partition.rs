//! A network partition between masters, with real network namespaces.
//!
//! Each master runs in a network namespace of its own (Raft on its own
//! `--raft_port`), joined to a bridge
//! in the test's namespace by a veth pair (10.213.N.1-3, the bridge .254).
//! Cutting the leader's veth isolates it from the other masters (and from
//! the test, which then asks it from inside its namespace). The minority
//! leader must step down, the majority must elect a new leader and take a
//! write, and after healing there is one leader and one history.
//!
//! Needs root (namespaces, veth, a bridge, one iptables rule so the host's
//! FORWARD policy does not drop bridged traffic); everything is removed on
//! drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a network command");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sh_quiet(args: &[&str]) {
    let _ = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Three namespaces on a bridge, and a master in each.
struct Net {
    tag: String,
    subnet: u8,
    masters: Vec<Option<Child>>,
    dir: tempfile::TempDir,
}

impl Net {
    fn ns(&self, i: usize) -> String {
        format!("{}n{i}", self.tag)
    }
    fn host_veth(&self, i: usize) -> String {
        format!("{}h{i}", self.tag)
    }
    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }
    fn ip(&self, i: usize) -> String {
        format!("10.213.{}.{}", self.subnet, i + 1)
    }

    fn new() -> Net {
        let pid = std::process::id();
        let tag = format!("pp{}", pid % 100_000);
        let subnet = (pid % 200) as u8 + 20;
        let net = Net {
            tag,
            subnet,
            masters: Vec::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let br = net.bridge();
        sh(&["ip", "link", "add", &br, "type", "bridge"]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("10.213.{}.254/24", net.subnet),
            "dev",
            &br,
        ]);
        sh(&["ip", "link", "set", &br, "up"]);
        sh(&[
            "iptables", "-I", "FORWARD", "-i", &br, "-o", &br, "-j", "ACCEPT",
        ]);
        for i in 0..3 {
            let ns = net.ns(i);
            let host = net.host_veth(i);
            let inner = format!("{}i{i}", net.tag);
            sh(&["ip", "netns", "add", &ns]);
            sh(&[
                "ip", "link", "add", &host, "type", "veth", "peer", "name", &inner,
            ]);
            sh(&["ip", "link", "set", &inner, "netns", &ns]);
            sh(&["ip", "link", "set", &host, "master", &br]);
            sh(&["ip", "link", "set", &host, "up"]);
            sh(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "ip",
                "addr",
                "add",
                &format!("{}/24", net.ip(i)),
                "dev",
                &inner,
            ]);
            sh(&[
                "ip", "netns", "exec", &ns, "ip", "link", "set", &inner, "up",
            ]);
            sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        }
        net
    }

    fn masters_flag(&self) -> String {
        (0..3)
            .map(|i| format!("{}:5050", self.ip(i)))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn start_master(&mut self, i: usize) {
        let work_dir = self.dir.path().join(format!("master{i}"));
        std::fs::create_dir_all(&work_dir).expect("work dir");
        let log = std::fs::File::create(self.dir.path().join(format!("master{i}.log")))
            .expect("log file");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(i),
                env!("CARGO_BIN_EXE_pando"),
                "master",
            ])
            .arg(format!("--ip={}", self.ip(i)))
            .arg("--port=5050")
            .arg(format!("--work_dir={}", work_dir.display()))
            .arg("--registry=replicated_log")
            .arg("--quorum=2")
            // Raft on a port of its own, as on real hosts.
            .arg("--raft_port=5060")
            .arg(format!("--masters={}", self.masters_flag()))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn master in its namespace");
        if self.masters.len() <= i {
            self.masters.resize_with(i + 1, || None);
        }
        self.masters[i] = Some(child);
    }

    fn logs(&self) -> String {
        (0..3)
            .map(|i| {
                let text = std::fs::read_to_string(self.dir.path().join(format!("master{i}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(25).collect();
                format!(
                    "--- master{i} ---\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `GET path` on master `i`, from the test's namespace.
    fn get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(
            &format!("{}:5050", self.ip(i)).parse().ok()?,
            Duration::from_millis(500),
        )
        .ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {}:5050\r\n\r\n",
            self.ip(i)
        )
        .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        Some((status, body))
    }

    /// `master/elected` of master `i`, asked from inside its own namespace
    /// (so it answers even while cut off).
    fn elected_inside(&self, i: usize) -> Option<bool> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(i),
                "curl",
                "-s",
                "--max-time",
                "2",
            ])
            .arg(format!("http://{}:5050/metrics/snapshot", self.ip(i)))
            .output()
            .ok()?;
        let metrics: Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(metrics["master/elected"].as_f64()? == 1.0)
    }

    fn leaders(&self, among: &[usize]) -> Vec<usize> {
        among
            .iter()
            .copied()
            .filter(|&i| self.elected_inside(i) == Some(true))
            .collect()
    }

    fn wait_single_leader(&self, among: &[usize]) -> usize {
        let start = Instant::now();
        loop {
            let leaders = self.leaders(among);
            if leaders.len() == 1 {
                return leaders[0];
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no single leader among {among:?}: {leaders:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for child in self.masters.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for i in 0..3 {
            sh_quiet(&["ip", "netns", "pids", &self.ns(i)]);
            sh_quiet(&["ip", "netns", "del", &self.ns(i)]);
            sh_quiet(&["ip", "link", "del", &self.host_veth(i)]);
        }
        let br = self.bridge();
        sh_quiet(&[
            "iptables", "-D", "FORWARD", "-i", &br, "-o", &br, "-j", "ACCEPT",
        ]);
        sh_quiet(&["ip", "link", "del", &br]);
    }
}

#[test]
fn a_partitioned_leader_steps_down_and_the_majority_carries_on() {
    let mut net = Net::new();
    for i in 0..3 {
        net.start_master(i);
    }
    let leader = net.wait_single_leader(&[0, 1, 2]);
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();

    // Cut the leader off.
    sh(&["ip", "link", "set", &net.host_veth(leader), "down"]);
    let cut = Instant::now();

    // The majority elects a new leader...
    let new_leader = net.wait_single_leader(&others);
    // ...and the old one stops serving.
    loop {
        if net.elected_inside(leader) == Some(false) {
            break;
        }
        assert!(
            cut.elapsed() < DEADLINE,
            "the cut-off leader still serves\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        net.leaders(&[0, 1, 2]),
        vec![new_leader],
        "one leader at a time"
    );

    // The majority takes a write while the old leader is away.
    let call = r#"{"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[{"role":"during-partition","weight":3.0}]}}"#;
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(["-H", "Content-Type: application/json", "-d", call])
        .arg(format!("http://{}:5050/api/v1", net.ip(new_leader)))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "{}",
        net.logs()
    );

    // Heal: one leader, the old one a standby that names it.
    sh(&["ip", "link", "set", &net.host_veth(leader), "up"]);
    let start = Instant::now();
    loop {
        let leaders = net.leaders(&[0, 1, 2]);
        let names_new = net
            .get(leader, "/master/state")
            .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
            .is_some_and(|s| s["leader_info"]["port"] == 5050 && s.get("elected_time").is_none());
        if leaders.len() == 1 && names_new {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "after healing: leaders {leaders:?}\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // One history: the write made during the partition reached the old
    // leader's registry too.
    let start = Instant::now();
    loop {
        let registry = net
            .get(leader, "/registrar(1)/registry")
            .map(|(_, body)| body)
            .unwrap_or_default();
        if registry.contains("during-partition") {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the old leader's registry lacks the write: {registry}\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
