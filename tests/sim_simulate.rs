//! `pando simulate` against the real binary: a small cluster of simulated
//! agents and frameworks runs a whole workload on a master it starts
//! itself, and the report carries every figure.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn simulate_runs_a_small_workload_to_the_end_and_reports_it() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pando"))
        .args([
            "simulate",
            "--agents",
            "20",
            "--frameworks",
            "3",
            "--tasks",
            "200",
            "--task_duration",
            "100ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pando simulate");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for pando simulate") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pando simulate did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    assert!(status.success(), "exit {status}\n{out}\n{err}");
    assert!(out.contains("20 in "), "registration time:\n{out}");
    assert!(
        out.contains("200 of 200 tasks TASK_FINISHED"),
        "every task finished:\n{out}"
    );
    assert!(
        out.contains("200 tasks TASK_RUNNING in "),
        "placement time:\n{out}"
    );
    for figure in [
        "task launches/s",
        "offer-to-launch latency     p50 ",
        "allocation cycle            last ",
        "master CPU",
        "master RSS",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(figure))
            .unwrap_or_else(|| panic!("no '{figure}' line:\n{out}"));
        assert!(
            !line.contains(" - ")
                && !line.ends_with('-')
                && line.chars().any(|c| c.is_ascii_digit()),
            "'{figure}' has no figure: {line}"
        );
    }
    assert!(out.contains("0 failed calls"), "{out}");
}

/// `pando simulate --failover` at a small size: three masters, twenty
/// agents, the leader killed, and every agent back with its id and tasks.
/// The timing targets are for the benchmark's figures, not asserted here.
#[test]
fn simulate_failover_brings_every_agent_back_to_a_new_leader() {
    let out = Command::new(env!("CARGO_BIN_EXE_pando"))
        .args([
            "simulate",
            "--failover",
            "--runs=1",
            "--agents=20",
            "--frameworks=1",
            "--tasks=20",
            "--json",
        ])
        .output()
        .expect("run pando simulate --failover");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    let run = &report["runs"][0];
    assert_eq!(run["agents_back"], 20, "{report}");
    assert_eq!(run["kept_ids"], 20, "{report}");
    assert_eq!(run["tasks_running_after"], 20.0, "{report}");
    assert_ne!(run["old_leader"], run["new_leader"], "{report}");
}

/// Removes a cgroup root the `--real` test named, in every hierarchy, with
/// anything left in it, even when the test fails (simulate cleans up after
/// itself; this is for a simulate that was killed).
struct CgroupRootGuard(String);

impl CgroupRootGuard {
    fn dirs(&self) -> Vec<std::path::PathBuf> {
        let fs = std::path::Path::new("/sys/fs/cgroup");
        let mut dirs = vec![fs.join(&self.0)];
        if let Ok(entries) = std::fs::read_dir(fs) {
            dirs.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path().join(&self.0)),
            );
        }
        dirs.retain(|d| d.exists());
        dirs
    }
}

fn remove_tree(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    for _ in 0..100 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for CgroupRootGuard {
    fn drop(&mut self) {
        for dir in self.dirs() {
            remove_tree(&dir);
        }
    }
}

/// `pando simulate --real` at a tiny size: one real agent (cgroups as root,
/// else posix) runs 20 `true` tasks to TASK_FINISHED, and nothing of it is
/// left afterwards. No timing is asserted.
#[test]
fn simulate_real_runs_twenty_true_tasks_on_one_real_agent() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let guard = CgroupRootGuard(format!("pando-test-real-{}-{nanos}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_pando"))
        .args([
            "simulate",
            "--real",
            "--tasks=20",
            "--frameworks=1",
            "--profile=marathon",
            "--agent_resources=cpus:4;mem:4096",
            "--allocation_interval=100ms",
            "--duration=25secs",
            "--json",
        ])
        .arg(format!("--cgroups_root={}", guard.0))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pando simulate --real");
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for pando simulate") {
            break status;
        }
        if Instant::now() > deadline {
            // SIGKILL: its agent follows (PDEATHSIG), the guard removes
            // the cgroups and whatever runs in them.
            let _ = child.kill();
            let _ = child.wait();
            panic!("pando simulate --real did not end within 40 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    let _ = child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out);
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    assert!(status.success(), "exit {status}\n{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    assert_eq!(report["finished"], 20, "{report}");
    assert!(report["accept_to_finished_s"].is_f64(), "{report}");
    assert!(
        report["isolation"].as_str().is_some_and(|i| !i.is_empty()),
        "{report}"
    );
    assert!(
        guard.dirs().is_empty(),
        "cgroups left behind: {:?}",
        guard.dirs()
    );
}
