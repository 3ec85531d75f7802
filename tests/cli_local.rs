//! The `pando` CLI end to end: `pando local` brings a real cluster up,
//! `pando execute` runs tasks on it through the scheduler API, the
//! operator commands read it back, and SIGTERM leaves nothing behind.
//!
//! Every wait polls with a deadline; nothing sleeps to let something happen.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(20);

fn pando() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pando"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn run(args: &[&str]) -> Output {
    pando().args(args).output().expect("run pando")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Polls `pando <args> --json` until `check` accepts its output.
fn poll_json(args: &[&str], check: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let out = run(args);
        if out.status.success() {
            if let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) {
                if check(&v) {
                    return v;
                }
            }
        }
        assert!(
            start.elapsed() < DEADLINE,
            "pando {args:?} never satisfied the check; last: {} {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The live processes descending from `root`.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") {
            continue;
        }
        if let Some(ppid) = fields.get(1).and_then(|p| p.parse::<u32>().ok()) {
            parents.push((pid, ppid));
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, ppid) in &parents {
            if *ppid == parent && !found.contains(pid) {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found
}

/// Whether `pid` is still a running (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

fn cgroup_dirs(name: &str) -> Vec<String> {
    let mut dirs = vec![format!("/sys/fs/cgroup/{name}")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            dirs.push(format!("{}/{name}", e.path().display()));
        }
    }
    dirs.retain(|d| Path::new(d).exists());
    dirs
}

/// A `pando local` process, SIGKILLed on drop if the test did not stop it.
struct Local {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Local {
    fn start(agents: usize) -> Local {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = pando()
            .args(["local", "--agent_port=0"])
            .arg(format!("--port={port}"))
            .arg(format!("--agents={agents}"))
            .arg(format!("--work_dir={}", dir.path().display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pando local");
        let local = Local {
            child,
            port,
            _dir: dir,
        };
        poll_json(&["agent", "list", "--json", &local.master_flag()], |v| {
            v.as_array().is_some_and(|a| a.len() == agents)
        });
        local
    }

    fn master_flag(&self) -> String {
        format!("--master=127.0.0.1:{}", self.port)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn local_cluster_runs_tasks_and_stops_clean() {
    let mut local = Local::start(2);
    let master = local.master_flag();

    // echo hello: its transitions, exit 0, and `hello` in its stdout.
    let out = run(&["execute", &master, "--name=hello", "--command=echo hello"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for expected in [
        "TASK_RUNNING",
        "TASK_FINISHED",
        "sandbox: ",
        "/files/read?path=",
    ] {
        assert!(stdout.contains(expected), "no {expected} in:\n{stdout}");
    }
    assert!(
        stdout.find("TASK_RUNNING") < stdout.find("TASK_FINISHED"),
        "{stdout}"
    );
    let log = run(&["task", "log", "hello", &master]);
    assert!(log.status.success(), "{}", text(&log.stderr));
    assert_eq!(text(&log.stdout), "hello\n");

    // A failing command's status is execute's status.
    let out = run(&["execute", &master, "--name=three", "--command=exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("TASK_FAILED"));

    // Run again under the same name, `task log` shows the newest run.
    let again = run(&["execute", &master, "--name=hello", "--command=echo again"]);
    assert!(again.status.success(), "{}", text(&again.stdout));
    let log = run(&["task", "log", "hello", &master]);
    assert_eq!(text(&log.stdout), "again\n");

    // Without --name, the task gets a fresh id of its own.
    let unnamed = run(&["execute", &master, "--command=echo unnamed"]);
    assert!(unnamed.status.success(), "{}", text(&unnamed.stdout));
    assert!(
        text(&unnamed.stdout).contains("task 'execute-"),
        "{}",
        text(&unnamed.stdout)
    );

    // The operator commands see every task and both agents.
    let tasks = poll_json(&["task", "list", "--json", &master], |v| {
        v.as_array().is_some_and(|a| a.len() == 4)
    });
    let states: Vec<&str> = tasks
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["state"].as_str())
        .collect();
    assert!(
        states.contains(&"TASK_FINISHED") && states.contains(&"TASK_FAILED"),
        "{tasks}"
    );
    let status = run(&["cluster", "status", &master]);
    let status_text = text(&status.stdout);
    assert!(status_text.contains("Agents:      2"), "{status_text}");
    let table = text(&run(&["task", "list", &master]).stdout);
    assert!(
        table.starts_with("ID") && table.contains("hello"),
        "{table}"
    );

    // Offers too small are declined, and the wait ends naming what was
    // asked for.
    let out = run(&[
        "execute",
        &master,
        "--name=huge",
        "--command=true",
        "--resources=cpus:1000;mem:32",
        "--timeout=2secs",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("no offer with cpus:1000;mem:32"), "{err}");

    // A second cluster on the same port says who holds it.
    let second = run(&["local", &format!("--port={}", local.port), "--agent_port=0"]);
    assert!(!second.status.success());
    let err = text(&second.stderr);
    assert!(
        err.contains(&format!(
            "port {} is in use by pid {}",
            local.port,
            local.child.id()
        )),
        "{err}"
    );

    // A task still running when SIGTERM arrives is killed with everything
    // else: no process descending from `pando local` survives it, and no
    // cgroup it made is left.
    let mut sleeper = pando()
        .args(["execute", &master, "--name=sleeper", "--command=sleep 300"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn execute");
    poll_json(&["task", "list", "--json", &master], |v| {
        v.as_array()
            .into_iter()
            .flatten()
            .any(|t| t["name"] == "sleeper" && t["state"] == "TASK_RUNNING")
    });
    let pid = local.child.id();
    let children = descendants(pid);
    assert!(!children.is_empty(), "the executor runs under pando local");
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(status) = local.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "pando local did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "pando local exited with {exit}");
    let survivors: Vec<u32> = children.into_iter().filter(|p| alive(*p)).collect();
    assert!(
        survivors.is_empty(),
        "processes outlived pando local: {survivors:?}"
    );
    let left = cgroup_dirs(&format!("pando-local-{}", local.port));
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    // The sleeper's execute sees its task end and exits.
    let start = Instant::now();
    while sleeper.try_wait().expect("wait").is_none() {
        assert!(
            start.elapsed() < DEADLINE,
            "execute did not end with its task"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn execute_against_an_unreachable_master_fails_fast_naming_it() {
    let port = free_port();
    let start = Instant::now();
    let out = run(&[
        "execute",
        &format!("--master=127.0.0.1:{port}"),
        "--name=x",
        "--command=true",
        "--timeout=3secs",
    ]);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[test]
fn bad_input_is_named() {
    let out = run(&[
        "execute",
        "--master=127.0.0.1:1",
        "--name=x",
        "--command=true",
        "--resources=cpus:lots;mem:32",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("invalid --resources 'cpus:lots;mem:32'"),
        "{err}"
    );

    let out = run(&["local", "--agents=0", &format!("--port={}", free_port())]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("--agents must be between 1 and"), "{err}");
}

/// `pando local --ha`: three masters elect a leader, the agents find it,
/// and the CLI, given every master, talks to whichever leads.
#[test]
fn local_ha_cluster_runs_tasks_through_the_leader() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Three consecutive free ports for the masters.
    let port = loop {
        let port = free_port();
        if port < 65000 && (1..3).all(|i| TcpListener::bind(("127.0.0.1", port + i)).is_ok()) {
            break port;
        }
    };
    let child = pando()
        .args(["local", "--ha", "--agents=2", "--agent_port=0"])
        .arg(format!("--port={port}"))
        .arg(format!("--work_dir={}", dir.path().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pando local --ha");
    let local = Local {
        child,
        port,
        _dir: dir,
    };
    let masters = format!(
        "--master=127.0.0.1:{port},127.0.0.1:{},127.0.0.1:{}",
        port + 1,
        port + 2
    );
    poll_json(&["agent", "list", "--json", &masters], |v| {
        v.as_array().is_some_and(|a| a.len() == 2)
    });
    let out = run(&[
        "execute",
        &masters,
        "--name=ha-hello",
        "--command=echo hello",
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("TASK_FINISHED"));
    let out = run(&["cluster", "masters", &masters]);
    let table = text(&out.stdout);
    assert!(out.status.success(), "{table}{}", text(&out.stderr));
    assert_eq!(table.matches("voter").count(), 3, "{table}");
    assert_eq!(table.matches("(leader)").count(), 1, "{table}");

    // The masters are processes of their own: kill -9 the leader, and the
    // cluster carries on with a new one.
    let leader = poll_json(&["cluster", "masters", "--json", &masters], |v| {
        v["leader"].is_string()
    });
    let leader_port: u16 = leader["leader"]
        .as_str()
        .and_then(|l| l.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .expect("the leader's port");
    let pid = support::master_pid(local.child.id(), leader_port).expect("the leader's process");
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    poll_json(&["cluster", "masters", "--json", &masters], |v| {
        v["leader"]
            .as_str()
            .is_some_and(|l| !l.ends_with(&format!(":{leader_port}")))
    });
    poll_json(&["agent", "list", "--json", &masters], |v| {
        v.as_array().is_some_and(|a| a.len() == 2)
    });
    let out = run(&[
        "execute",
        &masters,
        "--name=after-failover",
        "--command=echo again",
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    drop(local);
}

/// Whether a user with no rights but "other"'s can run `binary`: it is
/// readable and executable, and every directory above it searchable.
fn others_can_run(binary: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode())
            .unwrap_or(0)
    };
    mode(binary) & 0o005 == 0o005
        && binary
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .all(|dir| mode(dir) & 0o001 != 0)
}

/// The effective uid of this test process, from /proc.
fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[test]
fn local_as_non_root_chooses_posix_and_runs_tasks() {
    // Run as root, the test drops to `nobody` to see the non-root path;
    // run as non-root, the first test above already took it.
    let setpriv = Path::new("/usr/bin/setpriv");
    if euid() != Some(0) {
        // Not root: the first test above already took the non-root path.
        support::skip("dropping to `nobody` needs root");
        return;
    }
    if !setpriv.exists() {
        support::skip("/usr/bin/setpriv (util-linux) is missing");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
    }
    // `nobody` may not reach the build's binary (a checkout under /root,
    // say): then it runs a copy in the shared temporary directory.
    let built = Path::new(env!("CARGO_BIN_EXE_pando"));
    let binary = if others_can_run(built) {
        built.to_path_buf()
    } else {
        let copy = dir.path().join("pando");
        std::fs::copy(built, &copy).expect("copy the pando binary");
        copy
    };
    let port = free_port();
    let mut child = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&binary)
        .args(["local", "--agent_port=0", "--agents=1"])
        .arg(format!("--port={port}"))
        .arg(format!("--work_dir={}", dir.path().join("w").display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pando local as nobody");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let isolation = loop {
        match rx.recv_timeout(DEADLINE) {
            Ok(line) if line.contains("Isolation:") => break line,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("no isolation line from pando local: {e}");
            }
        }
    };
    let master = format!("--master=127.0.0.1:{port}");
    let out = run(&["execute", &master, "--name=hello", "--command=echo hello"]);
    let log = run(&["task", "log", "hello", &master]);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("pando local did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        isolation.contains("posix (not running as root"),
        "{isolation}"
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert_eq!(text(&log.stdout), "hello\n");
}
