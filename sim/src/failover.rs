//! `pando simulate --failover`: how long a cluster of three masters takes
//! to get over the loss of its leader.
//!
//! One run goes:
//!
//! ```text
//!  start 3 masters (--registry=replicated_log --quorum=2 --masters=a,b,c)
//!  wait until one says master/elected = 1 ─► the leader
//!  register --agents simulated agents with it (they know all 3 masters)
//!  run --tasks tasks on them (frameworks with a long failover_timeout,
//!  then their streams close: the tasks stay)
//!  kill -9 the leader ─────────────────────────── t = 0
//!   ├─ a prober SUBSCRIBEs to both survivors every 20 ms, until one
//!   │  answers 200 with a SUBSCRIBED event ───── new leader figure
//!   └─ the agents' streams break; each looks for the leader
//!      (leader.rs) and re-registers with its id and tasks; the last
//!      AgentReregistered ────────────────────── re-registration figure
//!  read the new leader's /metrics/snapshot: agents and tasks back?
//! ```
//!
//! Runs repeat on fresh clusters, and the report gives each run and the
//! min, median and max of both figures next to the targets of the HA issue
//! (3 s and 5 s). The clock starts just before SIGKILL; the prober tries
//! the survivors directly (a 307 or 503 means not yet), so the first figure
//! is when a framework that knows the masters could subscribe again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pando_scheduler::client::Client;
use serde_json::{json, Value};

use crate::agent::{AgentFleet, FleetConfig};
use crate::api;
use crate::framework::Tally;
use crate::master::{self, ChildMaster};
use crate::stats;
use crate::SimulateFlags;

/// How many masters a failover cluster has.
pub const MASTERS: usize = 3;

/// How often the prober tries the survivors.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// The HA issue's target for a new leader accepting SUBSCRIBE, in seconds.
pub const LEADER_TARGET_S: f64 = 3.0;

/// The HA issue's target for 1,000 agents re-registered, in seconds.
pub const REREGISTRATION_TARGET_S: f64 = 5.0;

/// The failover_timeout of the frameworks that start the tasks: long
/// enough that their tasks outlive their streams and the failover.
const FRAMEWORK_FAILOVER_TIMEOUT_S: f64 = 7.0 * 86_400.0;

/// What stopped a failover run.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// A master would not start.
    #[error(transparent)]
    Master(#[from] master::MasterError),
    /// The agents did not all register at first.
    #[error(transparent)]
    Agents(#[from] crate::agent::AgentError),
    /// No master became leader in time.
    #[error("{0}: no master reported master/elected = 1 within {1:?} (logs: {2})")]
    NoLeader(&'static str, Duration, String),
    /// The tasks did not all start before the kill.
    #[error("only {0} of {1} tasks were running within {2:?}")]
    Tasks(u64, u64, Duration),
    /// A framework failed while starting the tasks.
    #[error(transparent)]
    Framework(#[from] crate::framework::FrameworkError),
    /// An agent gave up (a master told it to shut down).
    #[error("agent {0} gave up after the failover: {1}")]
    AgentGaveUp(usize, String),
    /// Not every agent came back in time.
    #[error("only {0} of {1} agents re-registered within {2:?} of the kill (logs: {3})")]
    NotBack(usize, usize, Duration, String),
}

/// The figures of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailoverRun {
    /// The leader killed, `host:port`.
    pub old_leader: String,
    /// The survivor whose SUBSCRIBE answered first, `host:port`.
    pub new_leader: String,
    /// Kill → a survivor's `/metrics/snapshot` says `master/elected` = 1,
    /// in seconds: the election (and recovery, if the master flips the
    /// metric after it), without the first SUBSCRIBE.
    pub elected_s: Option<f64>,
    /// Kill → a SUBSCRIBE answered 200 with SUBSCRIBED, in seconds.
    pub new_leader_s: f64,
    /// Kill → the last agent's re-registration, in seconds.
    pub reregistered_s: f64,
    /// Agents registered with the old leader (and killed with it).
    pub agents: usize,
    /// Agents registered again after the kill.
    pub agents_back: usize,
    /// Of those, answered AgentReregistered (they kept their ids).
    pub kept_ids: usize,
    /// The first registration of every agent, in seconds.
    pub registration_s: f64,
    /// Tasks running on the agents at the kill.
    pub tasks: u64,
    /// `master/tasks_running` on the new leader once every agent is back.
    pub tasks_running_after: Option<f64>,
    /// `master/agents_active` (or `slaves_active`) on the new leader.
    pub agents_active_after: Option<f64>,
    /// Agent sessions refused or unreachable while the agents looked for
    /// the new leader.
    pub refusals: u64,
}

/// Every run, and what they ran with.
#[derive(Debug, Clone, Default)]
pub struct FailoverReport {
    /// Agents per run.
    pub agents: usize,
    /// Tasks per run.
    pub tasks: u64,
    /// `debug` or `release`: how this binary (and so the masters) was built.
    pub build: &'static str,
    /// The runs, in order.
    pub runs: Vec<FailoverRun>,
}

/// The build profile of this binary.
pub fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Runs `--runs` failovers with masters started from `exe` (a `pando`
/// binary) and returns their figures.
pub async fn run(flags: &SimulateFlags, exe: &Path) -> Result<FailoverReport, crate::SimError> {
    let resources = pando_resources::Resources::parse(&flags.agent_resources)
        .map_err(|e| crate::SimError::Resources(e.to_string()))?
        .to_proto();
    let mut report = FailoverReport {
        agents: flags.agents,
        tasks: flags.tasks,
        build: build_profile(),
        runs: Vec::with_capacity(flags.runs),
    };
    for _ in 0..flags.runs {
        let run = one_run(flags, exe, resources.clone()).await?;
        report.runs.push(run);
    }
    Ok(report)
}

/// One cluster, one kill.
async fn one_run(
    flags: &SimulateFlags,
    exe: &Path,
    resources: Vec<pando_proto::mesos::v1::Resource>,
) -> Result<FailoverRun, FailoverError> {
    let ports = master::free_ports(MASTERS)?;
    let masters: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let extra = vec![
        "--registry=replicated_log".to_string(),
        format!("--quorum={}", MASTERS / 2 + 1),
        format!("--masters={}", masters.join(",")),
        format!(
            "--allocation_interval={}ms",
            flags.allocation_interval.as_millis().max(1)
        ),
    ];
    let mut children = Vec::with_capacity(MASTERS);
    for port in &ports {
        children.push(ChildMaster::spawn(exe, *port, &extra)?);
    }
    for child in &mut children {
        child.wait_up(Duration::from_secs(30)).await?;
    }
    let clients: Vec<Client> = children.iter().map(|c| c.client().clone()).collect();
    let election_wait = Duration::from_secs(30);
    let leader = find_leader(&clients, None, election_wait)
        .await
        .ok_or_else(|| FailoverError::NoLeader("at start", election_wait, logs(&children)))?;

    let wait = Duration::from_secs(60) + Duration::from_millis(flags.agents as u64 * 10);
    let (mut fleet, registration) = AgentFleet::start(FleetConfig {
        masters: masters.clone(),
        first: leader,
        count: flags.agents,
        per_connection: flags.agents_per_connection,
        resources,
        task_duration: None,
        wait,
        follow_leader: true,
    })
    .await?;
    let tasks = start_tasks(flags, &clients[leader]).await?;

    // The failover.
    let refused_before = fleet.counters.sessions_refused.load(Ordering::Relaxed);
    let killed_at = Instant::now();
    if let Some(child) = children.get_mut(leader) {
        child.kill();
    }
    let survivors: Vec<(usize, Client)> = clients
        .iter()
        .cloned()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .collect();
    let elected = tokio::spawn(first_elected(survivors.clone(), killed_at, election_wait));
    let probe = tokio::spawn(first_subscribe(survivors, killed_at, election_wait));

    let mut back: HashMap<usize, (Instant, bool)> = HashMap::with_capacity(flags.agents);
    let deadline = tokio::time::Instant::from_std(killed_at) + wait;
    while back.len() < flags.agents {
        tokio::select! {
            registration = fleet.registrations.recv() => match registration {
                Some(r) if r.at >= killed_at => {
                    back.insert(r.index, (r.at, r.reregistered));
                }
                Some(_) => {}
                None => break,
            },
            Some((index, why)) = fleet.failures.recv() => {
                fleet.stop().await;
                return Err(FailoverError::AgentGaveUp(index, why));
            }
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    if back.len() < flags.agents {
        let count = back.len();
        fleet.stop().await;
        return Err(FailoverError::NotBack(
            count,
            flags.agents,
            wait,
            logs(&children),
        ));
    }
    let last = back.values().map(|(at, _)| *at).max().unwrap_or(killed_at);
    let kept_ids = back.values().filter(|(_, kept)| *kept).count();
    let refusals = fleet.counters.sessions_refused.load(Ordering::Relaxed) - refused_before;

    let first = probe.await.ok().flatten();
    let elected_s = elected.await.ok().flatten();
    let Some((new_leader, new_leader_s)) = first else {
        fleet.stop().await;
        return Err(FailoverError::NoLeader(
            "after the kill",
            election_wait,
            logs(&children),
        ));
    };
    let metrics = metrics(&clients[new_leader]).await;
    fleet.stop().await;
    drop(children);
    Ok(FailoverRun {
        old_leader: masters[leader].clone(),
        new_leader: masters[new_leader].clone(),
        elected_s,
        new_leader_s,
        reregistered_s: last.duration_since(killed_at).as_secs_f64(),
        agents: flags.agents,
        agents_back: back.len(),
        kept_ids,
        registration_s: registration.as_secs_f64(),
        tasks,
        tasks_running_after: metrics
            .as_ref()
            .and_then(|m| m["master/tasks_running"].as_f64()),
        agents_active_after: metrics.as_ref().and_then(|m| {
            m["master/agents_active"]
                .as_f64()
                .or_else(|| m["master/slaves_active"].as_f64())
        }),
        refusals,
    })
}

/// The last lines of every master's log, for errors.
fn logs(children: &[ChildMaster]) -> String {
    children
        .iter()
        .map(|c| format!("[{}] {}", c.addr(), c.log_tail()))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Polls `/metrics/snapshot` until a master other than `except` says
/// `master/elected` = 1; its index.
async fn find_leader(masters: &[Client], except: Option<usize>, wait: Duration) -> Option<usize> {
    let start = Instant::now();
    while start.elapsed() < wait {
        for (index, master) in masters.iter().enumerate() {
            if Some(index) == except {
                continue;
            }
            let elected = metrics(master)
                .await
                .and_then(|m| m["master/elected"].as_f64());
            if elected == Some(1.0) {
                return Some(index);
            }
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    None
}

/// A master's `/metrics/snapshot`, if it answers.
async fn metrics(master: &Client) -> Option<Value> {
    master.get_json("/metrics/snapshot").await.ok()
}

/// Starts `--tasks` tasks through `--frameworks` frameworks and waits until
/// all are running; then the frameworks' streams close and the tasks stay
/// (their failover_timeout is a week). Returns how many run.
async fn start_tasks(flags: &SimulateFlags, master: &Client) -> Result<u64, FailoverError> {
    if flags.tasks == 0 {
        return Ok(0);
    }
    let tally = Arc::new(Tally::new(flags.tasks));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut frameworks = crate::spawn_frameworks(
        flags,
        master,
        &tally,
        &stop_rx,
        FRAMEWORK_FAILOVER_TIMEOUT_S,
    );
    let deadline = Instant::now() + flags.duration;
    let mut failure = None;
    while tally.running.load(Ordering::Relaxed) < flags.tasks {
        if Instant::now() >= deadline {
            break;
        }
        if let Some(at) = frameworks.iter().position(|f| f.is_finished()) {
            if let Ok(Err(e)) = frameworks.swap_remove(at).await {
                failure = Some(e);
                break;
            }
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    tally.stopping.store(true, Ordering::Relaxed);
    let _ = stop.send(true);
    for f in frameworks {
        let _ = f.await;
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    let running = tally.running.load(Ordering::Relaxed);
    if running < flags.tasks {
        return Err(FailoverError::Tasks(running, flags.tasks, flags.duration));
    }
    Ok(running)
}

/// Polls the survivors' `/metrics/snapshot` every [`PROBE_INTERVAL`] until
/// one says `master/elected` = 1; the seconds since `since`.
async fn first_elected(
    survivors: Vec<(usize, Client)>,
    since: Instant,
    wait: Duration,
) -> Option<f64> {
    while since.elapsed() < wait {
        for (_, master) in &survivors {
            let elected = metrics(master)
                .await
                .and_then(|m| m["master/elected"].as_f64());
            if elected == Some(1.0) {
                return Some(since.elapsed().as_secs_f64());
            }
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    None
}

/// SUBSCRIBEs to each survivor in turn every [`PROBE_INTERVAL`] until one
/// answers 200 with a SUBSCRIBED event; which one, and the seconds since
/// `since`.
async fn first_subscribe(
    survivors: Vec<(usize, Client)>,
    since: Instant,
    wait: Duration,
) -> Option<(usize, f64)> {
    let call = json!({
        "type": "SUBSCRIBE",
        "subscribe": {"framework_info": {
            "user": "root",
            "name": "sim-failover-probe",
            "failover_timeout": 0.0
        }}
    });
    let body = Bytes::from(call.to_string());
    while since.elapsed() < wait {
        for (index, master) in &survivors {
            let attempt = async {
                let (_, mut events) = api::subscribe(master, body.clone()).await.ok()?;
                let event = events.next().await.ok()??;
                let at = since.elapsed().as_secs_f64();
                (event["type"].as_str() == Some("SUBSCRIBED")).then_some(at)
            };
            if let Ok(Some(at)) = tokio::time::timeout(Duration::from_secs(2), attempt).await {
                return Some((*index, at));
            }
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    None
}

/// Min, median and max of some figures.
fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let min = *sorted.first()?;
    let max = *sorted.last()?;
    Some((min, stats::percentile_sorted(&sorted, 0.5), max))
}

impl FailoverReport {
    /// Min, median and max of the new-leader figure.
    pub fn new_leader_spread(&self) -> Option<(f64, f64, f64)> {
        spread(&self.runs.iter().map(|r| r.new_leader_s).collect::<Vec<_>>())
    }

    /// Min, median and max of the re-registration figure.
    pub fn reregistered_spread(&self) -> Option<(f64, f64, f64)> {
        spread(
            &self
                .runs
                .iter()
                .map(|r| r.reregistered_s)
                .collect::<Vec<_>>(),
        )
    }

    /// Whether every run brought every agent back.
    pub fn complete(&self) -> bool {
        !self.runs.is_empty() && self.runs.iter().all(|r| r.agents_back == r.agents)
    }

    /// The report as text.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "pando simulate --failover: {MASTERS} masters on 127.0.0.1 (replicated_log, default \
             Raft timeouts), kill -9 of the leader, {} run(s), {} build\n\
             agents {}, tasks running at the kill {}\n",
            self.runs.len(),
            self.build,
            self.agents,
            self.tasks
        );
        for (i, r) in self.runs.iter().enumerate() {
            out += &format!(
                "run {}: {} agents registered in {:.3} s, {} tasks started; ",
                i + 1,
                r.agents,
                r.registration_s,
                r.tasks
            );
            out += &format!(
                "killed {}; elected after {} s; {} accepted SUBSCRIBE after {:.3} s; \
                 {}/{} agents re-registered after {:.3} s ({} kept their ids, {} refused or unreachable \
                 attempts); new leader reports {} agents active, {} tasks running\n",
                r.old_leader,
                r.elected_s.map_or_else(|| "?".into(), |s| format!("{s:.3}")),
                r.new_leader,
                r.new_leader_s,
                r.agents_back,
                r.agents,
                r.reregistered_s,
                r.kept_ids,
                r.refusals,
                show(r.agents_active_after),
                show(r.tasks_running_after),
            );
        }
        if let Some((min, median, max)) = self.new_leader_spread() {
            out += &format!(
                "new leader accepting SUBSCRIBE: min {min:.3} s, median {median:.3} s, \
                 max {max:.3} s (target {LEADER_TARGET_S} s)\n"
            );
        }
        if let Some((min, median, max)) = self.reregistered_spread() {
            out += &format!(
                "all {} agents re-registered: min {min:.3} s, median {median:.3} s, \
                 max {max:.3} s (target {REREGISTRATION_TARGET_S} s for 1,000)\n",
                self.agents
            );
        }
        out
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> Value {
        let spread_json = |s: Option<(f64, f64, f64)>| match s {
            Some((min, median, max)) => json!({"min": min, "median": median, "max": max}),
            None => Value::Null,
        };
        json!({
            "mode": "failover",
            "masters": MASTERS,
            "build": self.build,
            "agents": self.agents,
            "tasks": self.tasks,
            "runs": self.runs.iter().map(|r| json!({
                "old_leader": r.old_leader,
                "new_leader": r.new_leader,
                "elected_s": r.elected_s,
                "new_leader_s": r.new_leader_s,
                "reregistered_s": r.reregistered_s,
                "agents": r.agents,
                "agents_back": r.agents_back,
                "kept_ids": r.kept_ids,
                "registration_s": r.registration_s,
                "tasks": r.tasks,
                "tasks_running_after": r.tasks_running_after,
                "agents_active_after": r.agents_active_after,
                "refusals": r.refusals,
            })).collect::<Vec<_>>(),
            "new_leader_s": spread_json(self.new_leader_spread()),
            "reregistered_s": spread_json(self.reregistered_spread()),
            "targets_s": {"new_leader": LEADER_TARGET_S, "reregistered_1000": REREGISTRATION_TARGET_S},
        })
    }
}

fn show(value: Option<f64>) -> String {
    value.map_or_else(|| "?".into(), |v| format!("{v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(new_leader_s: f64, reregistered_s: f64) -> FailoverRun {
        FailoverRun {
            new_leader_s,
            reregistered_s,
            agents: 10,
            agents_back: 10,
            ..FailoverRun::default()
        }
    }

    #[test]
    fn the_report_gives_min_median_and_max_of_the_runs() {
        let report = FailoverReport {
            agents: 10,
            tasks: 0,
            build: "debug",
            runs: vec![run(2.0, 3.0), run(1.0, 4.0), run(3.0, 2.0)],
        };
        assert_eq!(report.new_leader_spread(), Some((1.0, 2.0, 3.0)));
        assert_eq!(report.reregistered_spread(), Some((2.0, 3.0, 4.0)));
        assert!(report.complete());
        let text = report.to_text();
        assert!(text.contains("median 2.000 s"), "{text}");
        assert_eq!(report.to_json()["reregistered_s"]["max"], 4.0);
    }

    #[test]
    fn a_run_with_agents_missing_is_not_complete() {
        let mut missing = run(1.0, 1.0);
        missing.agents_back = 9;
        let report = FailoverReport {
            runs: vec![missing],
            ..FailoverReport::default()
        };
        assert!(!report.complete());
        assert!(!FailoverReport::default().complete());
    }
}
