//! The agent's cgroup isolation on a pure cgroup v2 hierarchy, proven in a
//! virtual machine. The host's hierarchy may be v1 or hybrid, so the test
//! boots a stock Debian kernel under QEMU with `cgroup_no_v1=all` and runs
//! the real `pando` binary inside it: a master, an agent with
//! `--isolation=cgroups/cpu,cgroups/mem,cgroups/pids`, and tasks launched
//! with `pando execute`.
//!
//! ```text
//!   tests/vm/run.sh ─┬─► kernel.sh          apt-get download linux-image-*,
//!                    │                      cached in <target>/vm
//!                    ├─► build-initramfs.sh busybox, pando, its libraries,
//!                    │                      init, checks.sh
//!                    └─► qemu (KVM, else TCG) ─► /init ─► checks.sh
//!                                                           │
//!   this test ◄── console.log: PANDO-VM-RESULT <check> PASS|FAIL <detail>
//! ```
//!
//! What each check proves is listed at the top of `tests/vm/checks.sh`. A
//! missing QEMU, busybox or kernel fails the test rather than skipping it:
//! `.ci/run` installs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The checks `tests/vm/checks.sh` reports; each must PASS.
const CHECKS: &[&str] = &[
    "unified",
    "agent",
    "limits",
    "removed",
    "oom",
    "cpu-quota",
    "cpu-large",
    "cleanup",
];

/// How long the whole run may take: run.sh stops QEMU after 240 s with KVM
/// and 1500 s under emulation, and the kernel download comes on top.
const DEADLINE: Duration = Duration::from_secs(1800);

/// The line of `console` that reports `check`, if any.
fn result_of<'a>(console: &'a str, check: &str) -> Option<&'a str> {
    let prefix = format!("PANDO-VM-RESULT {check} ");
    console
        .lines()
        .find_map(|line| line.find(&prefix).map(|at| &line[at..]))
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn cgroup_v2_isolation_holds_in_a_vm() {
    let pando = PathBuf::from(env!("CARGO_BIN_EXE_pando"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/run.sh");
    // <target>/debug/pando ─► <target>/vm keeps the kernel between runs.
    let cache = pando
        .parent()
        .and_then(Path::parent)
        .expect("the pando binary sits in <target>/<profile>")
        .join("vm");
    let work = tempfile::tempdir().expect("a temporary directory");
    let log = std::fs::File::create(work.path().join("run.log")).expect("run.log");

    let started = Instant::now();
    let mut run = Command::new("bash")
        .arg(&script)
        .arg(&pando)
        .arg(work.path())
        .env("PANDO_VM_CACHE", &cache)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("run.log"))
        .stderr(log)
        .spawn()
        .expect("start tests/vm/run.sh");
    let status = loop {
        if let Some(status) = run.try_wait().expect("wait for run.sh") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = run.kill();
            break run.wait().expect("run.sh was killed");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let elapsed = started.elapsed();

    let run_log = std::fs::read_to_string(work.path().join("run.log")).unwrap_or_default();
    let console = std::fs::read(work.path().join("console.log"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let context = || {
        format!(
            "run.sh ({status}, {:.0}s):\n{}\n--- console (tail):\n{}",
            elapsed.as_secs_f64(),
            tail(&run_log, 20),
            tail(&console, 80)
        )
    };

    let mut failures = Vec::new();
    for check in CHECKS {
        match result_of(&console, check) {
            Some(line) if line.starts_with(&format!("PANDO-VM-RESULT {check} PASS")) => {
                println!("{line}");
            }
            Some(line) => failures.push(line.to_string()),
            None => failures.push(format!("{check}: no result")),
        }
    }
    assert!(
        failures.is_empty(),
        "cgroup v2 checks failed in the VM:\n{}\n\n{}",
        failures.join("\n"),
        context()
    );
    assert!(
        console.contains("PANDO-VM-DONE"),
        "the VM did not finish its checks\n{}",
        context()
    );
    println!("VM run took {:.0}s", elapsed.as_secs_f64());
}
