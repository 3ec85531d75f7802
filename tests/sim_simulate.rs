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
