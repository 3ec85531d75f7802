//! The operator commands: `pando task list`, `pando task log`, `pando agent
//! list`, `pando framework list` and `pando cluster status`.
//!
//! Each reads the master's `/master/state` (the JSON every Mesos tool
//! reads), turns it into rows, and prints them as a table, or as JSON with
//! `--json`. `task log` goes on from there: the task's agent (from the
//! state's `slaves[].pid`), the agent's `/state` for the sandbox, and the
//! agent's `/files/read` for the bytes, polled while `--follow`ing.

use std::io::Write;
use std::time::Duration;

use pando_proto::task_state::is_terminal;
use serde_json::{json, Value};

use crate::table;
use pando_scheduler::client::{encode_query, pid_address, Client, ClientError};

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// A request failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// No task has that id or name.
    #[error("no task '{0}' on this cluster (see `pando task list`)")]
    NoTask(String),
    /// More than one task has that name.
    #[error("{count} tasks are named '{name}'; give a task id (see `pando task list`)")]
    Ambiguous {
        /// The name.
        name: String,
        /// How many tasks have it.
        count: usize,
    },
    /// The task's agent is not in the master's state.
    #[error("the agent {0} of the task is not registered with the master")]
    NoAgent(String),
    /// The agent does not list the task's sandbox.
    #[error("agent {agent} does not list a sandbox for task '{task}' (it may have been garbage collected)")]
    NoSandbox {
        /// The agent's address.
        agent: String,
        /// The task.
        task: String,
    },
    /// Writing to stdout failed (a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

/// Flags every listing command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ListFlags {
    /// The master, `host:port`.
    #[arg(long, env = "MESOS_MASTER", default_value = "127.0.0.1:5050")]
    pub master: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How long the master has to answer.
    #[arg(long, default_value = "10secs")]
    pub timeout: String,
}

/// The flags of `pando task log`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogFlags {
    /// The task's id, or its name if no task has that id.
    pub task: String,
    /// The master, `host:port`.
    #[arg(long, env = "MESOS_MASTER", default_value = "127.0.0.1:5050")]
    pub master: String,
    /// Keep printing new output until the task ends.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Print stderr instead of stdout.
    #[arg(long)]
    pub stderr: bool,
    /// How long each request may take.
    #[arg(long, default_value = "10secs")]
    pub timeout: String,
}

/// `pando task ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TaskCommand {
    /// List the tasks: active and completed.
    List(ListFlags),
    /// Print a task's stdout (or --stderr) through the agent's files API.
    Log(LogFlags),
}

/// `pando framework ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum FrameworkCommand {
    /// List the frameworks.
    List(ListFlags),
}

/// `pando cluster ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClusterCommand {
    /// The leader, the agents and the resources used of the total.
    Status(ListFlags),
    /// The masters of the replicated registry and their roles.
    Masters(ListFlags),
    /// Adds a master (started with the new `--masters` list) to the
    /// registry's voters, once it has caught up with the log.
    AddMaster(MemberFlags),
    /// Removes a master from the registry's voters (to replace a failed one).
    RemoveMaster(MemberFlags),
}

/// The flags of `pando cluster add-master` and `remove-master`.
#[derive(Debug, Clone, clap::Args)]
pub struct MemberFlags {
    /// The master to add or remove, `host:port` (its HTTP address).
    pub address: String,
    /// Its Raft address when it runs Raft on a separate `--raft_port`.
    #[arg(long)]
    pub raft: Option<String>,
    /// Any master of the cluster, or several joined by commas.
    #[arg(long, env = "MESOS_MASTER", default_value = "127.0.0.1:5050")]
    pub master: String,
    /// How long the change may take (adding waits for the new master to
    /// catch up with the log).
    #[arg(long, default_value = "60secs")]
    pub timeout: String,
}

async fn client(master: &str, timeout: &str) -> Result<Client, OperatorError> {
    let timeout = pando_proto::stout::parse_duration(timeout).unwrap_or(Duration::from_secs(10));
    Ok(Client::leading(master, timeout).await?)
}

fn array<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v[key].as_array().into_iter().flatten()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A scalar resource as a short number: `0.5`, `1024`.
fn scalar(v: &Value) -> String {
    let n = v.as_f64().unwrap_or(0.0);
    if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// Every task in a master state, active then completed, with its
/// framework's id.
pub fn task_rows(state: &Value) -> Vec<Value> {
    let hosts: std::collections::HashMap<String, String> = array(state, "slaves")
        .map(|s| (text(&s["id"]), text(&s["hostname"])))
        .collect();
    let mut rows = Vec::new();
    for fw in array(state, "frameworks").chain(array(state, "completed_frameworks")) {
        for task in array(fw, "tasks")
            .chain(array(fw, "unreachable_tasks"))
            .chain(array(fw, "completed_tasks"))
        {
            let agent = text(&task["slave_id"]);
            rows.push(json!({
                "id": task["id"],
                "name": task["name"],
                "state": task["state"],
                "framework_id": fw["id"],
                "framework": fw["name"],
                "agent_id": agent,
                "hostname": hosts.get(&agent).cloned().unwrap_or_default(),
                "cpus": task["resources"]["cpus"],
                "mem": task["resources"]["mem"],
            }));
        }
    }
    rows
}

/// The frameworks of a master state, active then completed.
pub fn framework_rows(state: &Value) -> Vec<Value> {
    let mut rows = Vec::new();
    for (fw, completed) in array(state, "frameworks")
        .map(|f| (f, false))
        .chain(array(state, "completed_frameworks").map(|f| (f, true)))
    {
        let roles = fw["roles"]
            .as_array()
            .map(|r| r.iter().map(text).collect::<Vec<_>>().join(","))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| text(&fw["role"]));
        rows.push(json!({
            "id": fw["id"],
            "name": fw["name"],
            "roles": roles,
            "active": fw["active"].as_bool().unwrap_or(false) && !completed,
            "completed": completed,
            "tasks": fw["tasks"].as_array().map_or(0, Vec::len),
            "cpus": fw["used_resources"]["cpus"],
            "mem": fw["used_resources"]["mem"],
        }));
    }
    rows
}

/// The agents of a master state.
pub fn agent_rows(state: &Value) -> Vec<Value> {
    array(state, "slaves")
        .map(|s| {
            json!({
                "id": s["id"],
                "hostname": s["hostname"],
                "address": text(&s["pid"]).rsplit_once('@').map(|(_, a)| a.to_string()).unwrap_or_default(),
                "active": s["active"],
                "cpus_used": s["used_resources"]["cpus"],
                "cpus": s["resources"]["cpus"],
                "mem_used": s["used_resources"]["mem"],
                "mem": s["resources"]["mem"],
                "disk_used": s["used_resources"]["disk"],
                "disk": s["resources"]["disk"],
            })
        })
        .collect()
}

/// The summary `pando cluster status` prints.
pub fn cluster_summary(state: &Value) -> Value {
    let mut used = serde_json::Map::new();
    let mut total = serde_json::Map::new();
    for slave in array(state, "slaves") {
        for (map, key) in [(&mut used, "used_resources"), (&mut total, "resources")] {
            for name in ["cpus", "mem", "disk", "gpus"] {
                let add = slave[key][name].as_f64().unwrap_or(0.0);
                let sum = map.get(name).and_then(Value::as_f64).unwrap_or(0.0) + add;
                map.insert(name.to_string(), json!(sum));
            }
        }
    }
    let tasks: usize = array(state, "frameworks")
        .map(|f| f["tasks"].as_array().map_or(0, Vec::len))
        .sum();
    json!({
        "leader": state["leader"],
        "version": state["version"],
        "cluster": state["cluster"],
        "agents": state["slaves"].as_array().map_or(0, Vec::len),
        "frameworks": state["frameworks"].as_array().map_or(0, Vec::len),
        "active_tasks": tasks,
        "used": used,
        "total": total,
    })
}

fn print_json(value: &Value) -> Result<(), OperatorError> {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(OperatorError::Output)
}

fn print_text(text: &str) -> Result<(), OperatorError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(OperatorError::Output)
}

/// Reads `/master/state`, picks its rows with `rows`, and prints them as a
/// JSON array (`--json`) or as a table with `headers` and `cells` per row.
async fn print_rows(
    flags: &ListFlags,
    rows: fn(&Value) -> Vec<Value>,
    headers: &[&str],
    cells: impl Fn(&Value) -> Vec<String>,
) -> Result<(), OperatorError> {
    let state = client(&flags.master, &flags.timeout)
        .await?
        .get_json("/master/state")
        .await?;
    let rows = rows(&state);
    if flags.json {
        return print_json(&Value::Array(rows));
    }
    let cells: Vec<Vec<String>> = rows.iter().map(cells).collect();
    print_text(&table::render(headers, &cells))
}

/// `pando task list`.
pub async fn task_list(flags: &ListFlags) -> Result<(), OperatorError> {
    print_rows(
        flags,
        task_rows,
        &["ID", "NAME", "STATE", "FRAMEWORK", "HOST", "CPUS", "MEM"],
        |r| {
            vec![
                text(&r["id"]),
                text(&r["name"]),
                text(&r["state"]),
                text(&r["framework_id"]),
                text(&r["hostname"]),
                scalar(&r["cpus"]),
                scalar(&r["mem"]),
            ]
        },
    )
    .await
}

/// `pando framework list`.
pub async fn framework_list(flags: &ListFlags) -> Result<(), OperatorError> {
    print_rows(
        flags,
        framework_rows,
        &["ID", "NAME", "ROLES", "STATUS", "TASKS", "CPUS", "MEM"],
        |r| {
            let status = if r["completed"] == true {
                "completed"
            } else if r["active"] == true {
                "active"
            } else {
                "inactive"
            };
            vec![
                text(&r["id"]),
                text(&r["name"]),
                text(&r["roles"]),
                status.to_string(),
                text(&r["tasks"]),
                scalar(&r["cpus"]),
                scalar(&r["mem"]),
            ]
        },
    )
    .await
}

/// `pando agent list`.
pub async fn agent_list(flags: &ListFlags) -> Result<(), OperatorError> {
    print_rows(
        flags,
        agent_rows,
        &[
            "ID",
            "HOST",
            "ADDRESS",
            "ACTIVE",
            "CPUS",
            "MEM (MB)",
            "DISK (MB)",
        ],
        |r| {
            vec![
                text(&r["id"]),
                text(&r["hostname"]),
                text(&r["address"]),
                if r["active"] == true { "yes" } else { "no" }.to_string(),
                format!("{}/{}", scalar(&r["cpus_used"]), scalar(&r["cpus"])),
                format!("{}/{}", scalar(&r["mem_used"]), scalar(&r["mem"])),
                format!("{}/{}", scalar(&r["disk_used"]), scalar(&r["disk"])),
            ]
        },
    )
    .await
}

/// `pando cluster status`.
pub async fn cluster_status(flags: &ListFlags) -> Result<(), OperatorError> {
    let state = client(&flags.master, &flags.timeout)
        .await?
        .get_json("/master/state")
        .await?;
    let summary = cluster_summary(&state);
    if flags.json {
        return print_json(&summary);
    }
    let pair = |name: &str| {
        format!(
            "{} / {}",
            scalar(&summary["used"][name]),
            scalar(&summary["total"][name])
        )
    };
    let leader = text(&summary["leader"]);
    let mut out = String::new();
    out.push_str(&format!(
        "Leader:      {} ({})\n",
        if leader.is_empty() { "none" } else { &leader },
        pid_address(&leader).unwrap_or_else(|| flags.master.clone())
    ));
    out.push_str(&format!("Version:     {}\n", text(&summary["version"])));
    out.push_str(&format!("Agents:      {}\n", summary["agents"]));
    out.push_str(&format!("Frameworks:  {}\n", summary["frameworks"]));
    out.push_str(&format!(
        "Tasks:       {} active\n",
        summary["active_tasks"]
    ));
    out.push_str("Resources:   used / total\n");
    out.push_str(&format!("  cpus:      {}\n", pair("cpus")));
    out.push_str(&format!("  mem (MB):  {}\n", pair("mem")));
    out.push_str(&format!("  disk (MB): {}\n", pair("disk")));
    if summary["total"]["gpus"].as_f64().unwrap_or(0.0) > 0.0 {
        out.push_str(&format!("  gpus:      {}\n", pair("gpus")));
    }
    print_text(&out)
}

/// `pando cluster masters`: the registry's masters, voters and learners.
pub async fn cluster_masters(flags: &ListFlags) -> Result<(), OperatorError> {
    let masters = client(&flags.master, &flags.timeout)
        .await?
        .get_json("/master/masters")
        .await?;
    if flags.json {
        return print_json(&masters);
    }
    let leader = text(&masters["leader"]);
    let mut out = format!("{:<24}{:<24}{:<10}\n", "ADDRESS", "RAFT", "ROLE");
    for m in array(&masters, "masters") {
        let address = text(&m["address"]);
        let role = if address == leader {
            format!("{} (leader)", text(&m["role"]))
        } else {
            text(&m["role"])
        };
        out.push_str(&format!("{address:<24}{:<24}{role}\n", text(&m["raft"])));
    }
    print_text(&out)
}

/// `pando cluster add-master` / `remove-master`.
pub async fn change_master(flags: &MemberFlags, adding: bool) -> Result<(), OperatorError> {
    let leader = client(&flags.master, &flags.timeout).await?;
    let mut body = serde_json::json!({ "address": flags.address });
    if let Some(raft) = &flags.raft {
        body["raft"] = serde_json::json!(raft);
    }
    let path = if adding {
        "/master/masters/add"
    } else {
        "/master/masters/remove"
    };
    let reply = leader.post_json(path, &[], body.to_string()).await?;
    if reply.status != 200 {
        return Err(OperatorError::Client(leader.status_error(path, &reply)));
    }
    print_text(&format!(
        "{} {} the registry's voters\n",
        flags.address,
        if adding { "joined" } else { "left" }
    ))
}

/// Where a task's output lives: its agent and sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSandbox {
    /// The agent's `host:port`.
    pub agent: String,
    /// The sandbox directory on the agent.
    pub directory: String,
    /// The task's id.
    pub task_id: String,
}

/// Finds a task by id, or by name when no id matches. Task ids are unique
/// only within a framework (`pando execute` uses the name as the id), so
/// of several matches the running one wins, else the one whose last
/// status is newest.
pub fn find_task<'a>(state: &'a Value, wanted: &str) -> Result<&'a Value, OperatorError> {
    let all: Vec<&Value> = array(state, "frameworks")
        .chain(array(state, "completed_frameworks"))
        .flat_map(|fw| {
            array(fw, "tasks")
                .chain(array(fw, "unreachable_tasks"))
                .chain(array(fw, "completed_tasks"))
        })
        .collect();
    let by_id: Vec<&Value> = all.iter().copied().filter(|t| t["id"] == wanted).collect();
    if !by_id.is_empty() {
        return newest(by_id).ok_or_else(|| OperatorError::NoTask(wanted.to_string()));
    }
    let named: Vec<&Value> = all
        .iter()
        .copied()
        .filter(|t| t["name"] == wanted)
        .collect();
    let mut ids: Vec<String> = named.iter().map(|t| text(&t["id"])).collect();
    ids.sort();
    ids.dedup();
    if ids.len() > 1 {
        return Err(OperatorError::Ambiguous {
            name: wanted.to_string(),
            count: ids.len(),
        });
    }
    newest(named).ok_or_else(|| OperatorError::NoTask(wanted.to_string()))
}

/// The running task of `tasks`, else the one with the newest status.
fn newest(tasks: Vec<&Value>) -> Option<&Value> {
    let rank = |t: &Value| {
        let running = pando_proto::mesos::v1::TaskState::from_str_name(&text(&t["state"]))
            .is_some_and(|s| !is_terminal(s));
        let last = array(t, "statuses")
            .filter_map(|s| s["timestamp"].as_f64())
            .fold(0.0_f64, f64::max);
        (running, last)
    };
    tasks.into_iter().max_by(|a, b| {
        let (ra, ta) = rank(a);
        let (rb, tb) = rank(b);
        ra.cmp(&rb).then(ta.total_cmp(&tb))
    })
}

async fn locate(master: &Client, task: &str) -> Result<(TaskSandbox, Client), OperatorError> {
    let state = master.get_json("/master/state").await?;
    let found = find_task(&state, task)?;
    let agent_id = text(&found["slave_id"]);
    let framework_id = text(&found["framework_id"]);
    let task_id = text(&found["id"]);
    let agent = array(&state, "slaves")
        .find(|s| s["id"] == agent_id.as_str())
        .and_then(|s| pid_address(&text(&s["pid"])))
        .ok_or_else(|| OperatorError::NoAgent(agent_id.clone()))?;
    let agent_client = Client::new(&agent, master.timeout())?;
    let agent_state = agent_client.get_json("/state").await?;
    let directory = crate::execute::sandbox_directory(&agent_state, &framework_id, &task_id)
        .ok_or_else(|| OperatorError::NoSandbox {
            agent: agent.clone(),
            task: task_id.clone(),
        })?;
    Ok((
        TaskSandbox {
            agent,
            directory,
            task_id,
        },
        agent_client,
    ))
}

/// Whether the master reports `task` as in a terminal state.
async fn task_is_terminal(master: &Client, task_id: &str) -> bool {
    let Ok(state) = master.get_json("/master/state").await else {
        return false;
    };
    match find_task(&state, task_id) {
        Ok(task) => {
            let state = text(&task["state"]);
            pando_proto::mesos::v1::TaskState::from_str_name(&state).is_some_and(is_terminal)
        }
        Err(_) => true,
    }
}

/// `pando task log`.
pub async fn task_log(flags: &LogFlags) -> Result<(), OperatorError> {
    let master = client(&flags.master, &flags.timeout).await?;
    // A task just launched may not have a sandbox yet; a follower waits.
    let deadline = tokio::time::Instant::now() + master.timeout();
    let (sandbox, agent) = loop {
        match locate(&master, &flags.task).await {
            Err(OperatorError::NoSandbox { .. } | OperatorError::NoTask(_))
                if flags.follow && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => break other?,
        }
    };
    let file = if flags.stderr { "stderr" } else { "stdout" };
    let path = encode_query(&format!("{}/{file}", sandbox.directory));
    // Each read asks for exactly the bytes the file has past `offset`, so
    // the offset stays exact even where the agent's JSON had to replace
    // bytes that are not UTF-8.
    const CHUNK: u64 = 64 * 1024;
    let mut offset: u64 = 0;
    let mut ended = false;
    loop {
        let size = agent
            .get_json(&format!("/files/read?path={path}&offset=-1"))
            .await?["offset"]
            .as_u64()
            .unwrap_or(0);
        if size < offset {
            // Truncated under us: go on from its new end.
            offset = size;
        }
        if size > offset {
            let length = (size - offset).min(CHUNK);
            let reply = agent
                .get_json(&format!(
                    "/files/read?path={path}&offset={offset}&length={length}"
                ))
                .await?;
            print_text(reply["data"].as_str().unwrap_or_default())?;
            offset += length;
            continue;
        }
        // Following: stop once the task has ended and all is printed.
        if !flags.follow || ended {
            return Ok(());
        }
        if task_is_terminal(&master, &sandbox.task_id).await {
            // One more look: output may have landed just before the end.
            ended = true;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Value {
        json!({
            "leader": "master@127.0.0.1:5050",
            "version": pando_proto::MESOS_VERSION,
            "slaves": [
                {"id": "a1", "hostname": "h1", "pid": "slave(1)@127.0.0.1:5051", "active": true,
                 "resources": {"cpus": 1.0, "mem": 1024.0, "disk": 100.0},
                 "used_resources": {"cpus": 0.1, "mem": 32.0, "disk": 0.0}},
                {"id": "a2", "hostname": "h2", "pid": "slave(1)@127.0.0.1:5052", "active": true,
                 "resources": {"cpus": 1.0, "mem": 1024.0, "disk": 100.0},
                 "used_resources": {}}
            ],
            "frameworks": [{"id": "f1", "name": "fw", "roles": ["*"], "active": true,
                "used_resources": {"cpus": 0.1, "mem": 32.0},
                "tasks": [{"id": "t1", "name": "hello", "state": "TASK_RUNNING", "slave_id": "a1", "framework_id": "f1", "resources": {"cpus": 0.1, "mem": 32.0}}],
                "completed_tasks": [{"id": "t0", "name": "hello", "state": "TASK_FINISHED", "slave_id": "a2", "framework_id": "f1", "resources": {}}]}],
            "completed_frameworks": []
        })
    }

    #[test]
    fn tasks_are_listed_with_their_hosts() {
        let rows = task_rows(&state());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["hostname"], "h1");
        assert_eq!(rows[1]["state"], "TASK_FINISHED");
    }

    #[test]
    fn tasks_are_found_by_id_then_unique_name() {
        let s = state();
        assert_eq!(find_task(&s, "t0").unwrap()["slave_id"], "a2");
        assert!(matches!(
            find_task(&s, "hello"),
            Err(OperatorError::Ambiguous { count: 2, .. })
        ));
        assert!(matches!(
            find_task(&s, "nope"),
            Err(OperatorError::NoTask(_))
        ));
    }

    #[test]
    fn of_tasks_sharing_an_id_the_newest_wins() {
        let s = json!({
            "frameworks": [],
            "completed_frameworks": [
                {"id": "f1", "completed_tasks": [{"id": "hello", "name": "hello", "state": "TASK_FINISHED",
                    "slave_id": "a1", "statuses": [{"state": "TASK_FINISHED", "timestamp": 2.0}]}]},
                {"id": "f2", "completed_tasks": [{"id": "hello", "name": "hello", "state": "TASK_FINISHED",
                    "slave_id": "a2", "statuses": [{"state": "TASK_FINISHED", "timestamp": 5.0}]}]}
            ]
        });
        assert_eq!(find_task(&s, "hello").unwrap()["slave_id"], "a2");
    }

    #[test]
    fn the_cluster_sums_used_and_total() {
        let summary = cluster_summary(&state());
        assert_eq!(summary["agents"], 2);
        assert_eq!(summary["total"]["cpus"], 2.0);
        assert_eq!(summary["used"]["mem"], 32.0);
        assert_eq!(summary["active_tasks"], 1);
        assert_eq!(scalar(&json!(0.1)), "0.1");
        assert_eq!(scalar(&json!(1024.0)), "1024");
    }

    #[test]
    fn agents_and_frameworks_become_rows() {
        let s = state();
        assert_eq!(agent_rows(&s)[1]["address"], "127.0.0.1:5052");
        let fw = &framework_rows(&s)[0];
        assert_eq!(fw["roles"], "*");
        assert_eq!(fw["tasks"], 1);
    }
}
