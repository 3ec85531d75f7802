//! `pando simulate`: load a real Pando master with simulated agents and
//! frameworks, and measure it.
//!
//! ```text
//!  frameworks (framework.rs)  --- v1 scheduler API, JSON over HTTP/1.1 --->  master
//!  agents (agent.rs)          --- agent link, gRPC streams over HTTP/2 --->  (child process
//!                                                                             or --master)
//!  master.rs reads the child's /proc; report.rs turns samples into figures
//! ```
//!
//! A run goes: start a master (unless `--master` names one), register every
//! agent, subscribe every framework, let them launch `--tasks` tasks until
//! all have finished (or `--duration` passes), read the master's
//! `/metrics/snapshot` and /proc figures, stop everything, print the report.
//!
//! `--real` runs real.rs instead: real command tasks on one real `pando
//! agent` process, timed from the first ACCEPT to the last TASK_FINISHED.
//!
//! `--failover` runs failover.rs instead: three masters with a replicated
//! registry, `kill -9` of the leader, and the time until a new leader
//! accepts SUBSCRIBE and every agent has re-registered (leader.rs is how a
//! simulated agent finds the new leader).

pub mod agent;
pub mod api;
pub mod failover;
pub mod flags;
pub mod framework;
pub mod leader;
pub mod master;
pub mod profile;
pub mod real;
pub mod report;
pub mod stats;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use pando_scheduler::client::{Client, ClientError};

pub use flags::SimulateFlags;

use agent::{AgentFleet, FleetConfig};
use framework::{SimFramework, Tally};
use master::ChildMaster;
use profile::Size;
use report::{Report, Setup};

/// What stopped a simulation.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The flags cannot make a run.
    #[error(transparent)]
    Flags(#[from] flags::FlagsError),
    /// `--agent_resources` does not parse.
    #[error("--agent_resources: {0}")]
    Resources(String),
    /// No tokio runtime.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The path of this binary, to start a master with.
    #[error("cannot find this binary to start a master: {0}")]
    Exe(std::io::Error),
    /// Starting the master failed.
    #[error(transparent)]
    Master(#[from] master::MasterError),
    /// `--master` is not `host:port`.
    #[error("--master: {0}")]
    MasterAddress(ClientError),
    /// The agents did not all register.
    #[error(transparent)]
    Agents(#[from] agent::AgentError),
    /// A framework failed to subscribe.
    #[error(transparent)]
    Framework(#[from] framework::FrameworkError),
    /// A failover run failed.
    #[error(transparent)]
    Failover(#[from] failover::FailoverError),
    /// A `--real` run's agent failed.
    #[error(transparent)]
    Real(#[from] real::RealError),
    /// The master died during the run.
    #[error("the master exited during the run (its log: {0})")]
    MasterDied(String),
}

/// Runs a simulation on a runtime of its own and prints the report;
/// returns the exit status: 0 when every task finished, 1 otherwise.
pub fn run_blocking(flags: SimulateFlags) -> Result<i32, SimError> {
    flags.check()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(SimError::Runtime)?;
    let json = flags.json;
    if flags.failover {
        let exe = std::env::current_exe().map_err(SimError::Exe)?;
        let report = runtime.block_on(failover::run(&flags, &exe))?;
        if json {
            println!("{}", report.to_json());
        } else {
            print!("{}", report.to_text());
        }
        return Ok(if report.complete() { 0 } else { 1 });
    }
    if flags.real {
        let report = runtime.block_on(real::run(flags))?;
        if json {
            println!("{}", report.to_json());
        } else {
            print!("{}", report.to_text());
        }
        return Ok(if report.finished >= report.tasks {
            0
        } else {
            1
        });
    }
    let report = runtime.block_on(run(flags))?;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.finished >= report.setup.tasks {
        0
    } else {
        1
    })
}

/// Runs a simulation and returns its report.
pub async fn run(flags: SimulateFlags) -> Result<Report, SimError> {
    let resources = pando_resources::Resources::parse(&flags.agent_resources)
        .map_err(|e| SimError::Resources(e.to_string()))?
        .to_proto();
    let (addr, client, mut child) = match &flags.master {
        Some(addr) => {
            let client = api::pooled(addr).map_err(SimError::MasterAddress)?;
            (addr.clone(), client, None)
        }
        None => {
            let exe = std::env::current_exe().map_err(SimError::Exe)?;
            let child = ChildMaster::start(&exe, flags.allocation_interval).await?;
            let client = child.client().clone();
            (format!("127.0.0.1:{}", child.port), client, Some(child))
        }
    };
    let pid = child.as_ref().map(ChildMaster::pid);
    let mut report = Report {
        setup: Setup {
            agents: flags.agents,
            frameworks: flags.frameworks,
            decliners: flags.decliners,
            profile: flags.profile.name().into(),
            tasks: flags.tasks,
            task_duration_s: flags.task_duration.as_secs_f64(),
            agent_resources: flags.agent_resources.clone(),
            task_cpus: flags.task_cpus,
            task_mem: flags.task_mem,
            max_active: flags.max_active,
            refuse_unneeded_s: flags.refuse_unneeded_seconds,
            master: match pid {
                Some(pid) => format!("child pid {pid} on {addr}"),
                None => addr.clone(),
            },
        },
        ..Report::default()
    };

    // Agents.
    let before_registration = pid.and_then(master::sample);
    let registration_wait =
        Duration::from_secs(60) + Duration::from_millis(flags.agents as u64 * 10);
    let (fleet, registration) = AgentFleet::start(FleetConfig {
        masters: vec![addr.clone()],
        first: 0,
        count: flags.agents,
        per_connection: flags.agents_per_connection,
        resources,
        task_duration: Some(flags.task_duration),
        wait: registration_wait,
        follow_leader: false,
    })
    .await?;
    report.registration_s = registration.as_secs_f64();
    let after_registration = pid.and_then(master::sample);
    if let (Some(a), Some(b)) = (&before_registration, &after_registration) {
        report.master_cores_registration = master::cores_between(a, b);
    }

    // Frameworks and the workload.
    let tally = Arc::new(Tally::new(flags.tasks));
    let sim_start = master::sample(std::process::id());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut frameworks = spawn_frameworks(&flags, &client, &tally, &stop_rx, 0.0);

    // Wait for the last TASK_FINISHED, the deadline, the master's death or
    // a framework's failure.
    let deadline = tokio::time::Instant::now() + flags.duration;
    let mut failure = None;
    loop {
        if tally.finished.load(Ordering::Relaxed) >= flags.tasks {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            report.timed_out = true;
            break;
        }
        if let Some(c) = child.as_mut() {
            if !c.alive() {
                failure = Some(SimError::MasterDied(c.log_tail()));
                break;
            }
        }
        if let Some(at) = frameworks.iter().position(|f| f.is_finished()) {
            // A framework ends before `stop` only when it failed.
            if let Ok(Err(e)) = frameworks.swap_remove(at).await {
                failure = Some(SimError::Framework(e));
                break;
            }
        }
        let tick = tokio::time::sleep(Duration::from_millis(100));
        tokio::select! {
            _ = tally.done.notified() => {}
            _ = tick => {}
        }
    }
    report.finished_s = tally.start.elapsed().as_secs_f64();
    let end = pid.and_then(master::sample);
    let sim_end = master::sample(std::process::id());
    if let (Some(a), Some(b)) = (&after_registration, &end) {
        report.master_cores_workload = master::cores_between(a, b);
    }
    if let Some(b) = &end {
        report.master_peak_rss = Some(b.peak_rss_bytes);
        report.master_rss = Some(b.rss_bytes);
    }
    if let (Some(a), Some(b)) = (&sim_start, &sim_end) {
        report.sim_cores_workload = master::cores_between(a, b);
    }
    read_metrics(&client, &mut report).await;

    tally.stopping.store(true, Ordering::Relaxed);
    let _ = stop.send(true);
    for f in frameworks {
        let _ = f.await;
    }
    report.sessions_lost = fleet.counters.sessions_lost.load(Ordering::Relaxed);
    fleet.stop().await;
    drop(child);
    if let Some(e) = failure {
        return Err(e);
    }

    report.running = tally.running.load(Ordering::Relaxed);
    report.finished = tally.finished.load(Ordering::Relaxed);
    report.failed = tally.failed.load(Ordering::Relaxed);
    report.offers = tally.offers.load(Ordering::Relaxed);
    report.declined = tally.declined.load(Ordering::Relaxed);
    report.accepts = tally.accepts.load(Ordering::Relaxed);
    report.acknowledged = tally.acknowledged.load(Ordering::Relaxed);
    report.call_errors = tally.call_errors.load(Ordering::Relaxed);
    report.first_call_error = tally.first_call_error.lock().ok().and_then(|e| e.clone());
    if let Ok(samples) = tally.samples.lock() {
        report::figures(&mut report, &samples);
    }
    Ok(report)
}

/// Starts `--frameworks` simulated frameworks against the master behind
/// the client `master`, sharing `--tasks` among those that launch; each
/// subscribes with `failover_timeout` (seconds) and runs until `stop`.
pub(crate) fn spawn_frameworks(
    flags: &SimulateFlags,
    master: &Client,
    tally: &Arc<Tally>,
    stop: &tokio::sync::watch::Receiver<bool>,
    failover_timeout: f64,
) -> Vec<tokio::task::JoinHandle<Result<(), framework::FrameworkError>>> {
    let launching = flags.frameworks - flags.decliners.min(flags.frameworks);
    let task = Size {
        cpus: flags.task_cpus,
        mem: flags.task_mem,
    };
    let mut frameworks = Vec::with_capacity(flags.frameworks);
    for index in 0..flags.frameworks {
        let profile = flags
            .profile
            .for_framework(index, flags.frameworks, flags.decliners);
        let quota = if index < launching {
            let share = flags.tasks / launching as u64;
            share + u64::from((index as u64) < flags.tasks % launching as u64)
        } else {
            0
        };
        let framework = SimFramework {
            index,
            profile,
            remaining: quota,
            max_active: (flags.max_active > 0).then_some(flags.max_active),
            task,
            calls_in_flight: flags.calls_in_flight,
            failover_timeout,
            refuse_unneeded_seconds: flags.refuse_unneeded_seconds,
        };
        frameworks.push(tokio::spawn(framework.run(
            master.clone(),
            tally.clone(),
            stop.clone(),
        )));
    }
    frameworks
}

/// Copies the allocator's cycle figures from `/metrics/snapshot`.
async fn read_metrics(master: &Client, report: &mut Report) {
    let Ok(metrics) = master.get_json("/metrics/snapshot").await else {
        return;
    };
    let get = |k: &str| metrics[k].as_f64();
    report.cycle_last_ms = get("allocator/mesos/allocation_run_ms");
    report.cycle_p50_ms = get("allocator/mesos/allocation_run_ms/p50");
    report.cycle_p99_ms = get("allocator/mesos/allocation_run_ms/p99");
    report.cycles = get("allocator/mesos/allocation_runs");
}
