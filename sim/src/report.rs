//! The report of one run: figures computed from the raw samples, printed
//! as text or as one JSON object, with the targets of issue 8 checked.

use serde_json::{json, Value};

use crate::framework::Samples;
use crate::stats;

/// Errors of this module (rendering cannot fail; kept for the
/// one-enum-per-module rule).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {}

/// Everything a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// What ran: agents, frameworks, profile, tasks...
    pub setup: Setup,
    /// Time for every agent to register, in seconds.
    pub registration_s: f64,
    /// Tasks that reached TASK_RUNNING, and TASK_FINISHED.
    pub running: u64,
    /// Tasks that finished.
    pub finished: u64,
    /// Tasks that ended in another terminal state (and were relaunched).
    pub failed: u64,
    /// From the workload's start to the last task's first TASK_RUNNING.
    pub placed_s: Option<f64>,
    /// From the workload's start to the run's end.
    pub finished_s: f64,
    /// TASK_RUNNING per second over the whole placement.
    pub launches_per_s: Option<f64>,
    /// The most TASK_RUNNING in any one second.
    pub peak_launches_per_s: Option<f64>,
    /// Offer-to-launch latency percentiles, in ms.
    pub latency_p50_ms: Option<f64>,
    /// As above, p99.
    pub latency_p99_ms: Option<f64>,
    /// As above, the worst.
    pub latency_max_ms: Option<f64>,
    /// Offer received → ACCEPT answered, p50 and p99 in ms.
    pub accepted_p50_ms: Option<f64>,
    /// As above, p99.
    pub accepted_p99_ms: Option<f64>,
    /// Any scheduler call's round trip, p50 and p99 in ms.
    pub call_p50_ms: Option<f64>,
    /// As above, p99.
    pub call_p99_ms: Option<f64>,
    /// From /metrics/snapshot: allocation_run_ms (the last cycle), p50, p99.
    pub cycle_last_ms: Option<f64>,
    /// As above, p50 over the master's recent cycles.
    pub cycle_p50_ms: Option<f64>,
    /// As above, p99.
    pub cycle_p99_ms: Option<f64>,
    /// `allocator/mesos/allocation_runs` at the end.
    pub cycles: Option<f64>,
    /// Master cores used on average while agents registered.
    pub master_cores_registration: Option<f64>,
    /// Master cores used on average while the workload ran.
    pub master_cores_workload: Option<f64>,
    /// Master peak RSS (VmHWM), bytes.
    pub master_peak_rss: Option<u64>,
    /// Master RSS at the end, bytes.
    pub master_rss: Option<u64>,
    /// Cores this simulator used during the workload (it shares the machine).
    pub sim_cores_workload: Option<f64>,
    /// Offers received, declined, ACCEPT calls, ACKNOWLEDGE calls.
    pub offers: u64,
    /// Offers declined.
    pub declined: u64,
    /// ACCEPT calls.
    pub accepts: u64,
    /// ACKNOWLEDGE calls.
    pub acknowledged: u64,
    /// Calls not answered 202, and the first such answer.
    pub call_errors: u64,
    /// The first failed call.
    pub first_call_error: Option<String>,
    /// Agent sessions the master closed during the run.
    pub sessions_lost: u64,
    /// Whether the run stopped at `--duration` before every task finished.
    pub timed_out: bool,
}

/// The run's parameters, echoed in the report.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// Number of agents.
    pub agents: usize,
    /// Number of frameworks (decliners included).
    pub frameworks: usize,
    /// Of which decline everything.
    pub decliners: usize,
    /// `--profile`.
    pub profile: String,
    /// Tasks in the workload.
    pub tasks: u64,
    /// Seconds each task runs.
    pub task_duration_s: f64,
    /// `--agent_resources`.
    pub agent_resources: String,
    /// Task cpus and mem.
    pub task_cpus: f64,
    /// Task mem.
    pub task_mem: f64,
    /// `--max_active` (0: no limit).
    pub max_active: u64,
    /// `--refuse_unneeded_seconds`.
    pub refuse_unneeded_s: f64,
    /// Where the master was: "child pid N on 127.0.0.1:P" or the address.
    pub master: String,
}

/// Figures computed from raw samples.
pub fn figures(report: &mut Report, samples: &Samples) {
    let latency_ms = &samples.latency_ms;
    let running_at = &samples.running_at;
    report.accepted_p50_ms = stats::percentile(&samples.accepted_ms, 0.5);
    report.accepted_p99_ms = stats::percentile(&samples.accepted_ms, 0.99);
    report.call_p50_ms = stats::percentile(&samples.call_ms, 0.5);
    report.call_p99_ms = stats::percentile(&samples.call_ms, 0.99);
    let mut sorted = latency_ms.to_vec();
    sorted.sort_by(f64::total_cmp);
    if !sorted.is_empty() {
        report.latency_p50_ms = Some(stats::percentile_sorted(&sorted, 0.5));
        report.latency_p99_ms = Some(stats::percentile_sorted(&sorted, 0.99));
        report.latency_max_ms = sorted.last().copied();
    }
    report.launches_per_s = stats::sustained_rate(running_at);
    report.peak_launches_per_s = stats::peak_rate(running_at, 1.0);
    if report.running >= report.setup.tasks && report.setup.tasks > 0 {
        report.placed_s = running_at.iter().copied().reduce(f64::max);
    }
}

/// One of issue 8's targets, checked against a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What it asks, in words.
    pub what: &'static str,
    /// Whether it is met; `None` when the run did not measure it.
    pub met: Option<bool>,
    /// The measured figure, in words.
    pub measured: String,
}

/// Issue 8's targets for 10,000 agents and 100 frameworks.
pub fn targets(r: &Report) -> Vec<Target> {
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    vec![
        Target {
            what: "master RSS at most 1 GB",
            met: r.master_peak_rss.map(|b| b <= 1 << 30),
            measured: r
                .master_peak_rss
                .map_or("not measured".into(), |b| format!("{:.0} MB peak", mb(b))),
        },
        Target {
            what: "steady master CPU under one core",
            met: r.master_cores_workload.map(|c| c < 1.0),
            measured: r
                .master_cores_workload
                .map_or("not measured".into(), |c| format!("{c:.2} cores")),
        },
        Target {
            what: "at least 5,000 task launches/s sustained",
            met: r.launches_per_s.map(|l| l >= 5000.0),
            measured: r
                .launches_per_s
                .map_or("none".into(), |l| format!("{l:.0}/s")),
        },
        Target {
            what: "p99 offer-to-launch latency under 1 s",
            met: r.latency_p99_ms.map(|l| l < 1000.0),
            measured: r
                .latency_p99_ms
                .map_or("none".into(), |l| format!("{l:.0} ms")),
        },
    ]
}

fn opt(v: Option<f64>, unit: &str, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}{unit}"))
}

impl Report {
    /// The report as text, one figure per line.
    pub fn to_text(&self) -> String {
        let s = &self.setup;
        let mb = |b: Option<u64>| b.map(|b| b as f64 / (1024.0 * 1024.0));
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k:<28}{v}\n"));
        line(
            "setup",
            format!(
                "{} agents ({}), {} frameworks ({}, {} decliners), {} tasks of cpus {} mem {} for {}s",
                s.agents, s.agent_resources, s.frameworks, s.profile, s.decliners, s.tasks,
                s.task_cpus, s.task_mem, s.task_duration_s
            ),
        );
        if s.max_active > 0 {
            line(
                "pacing",
                format!("at most {} tasks active per framework", s.max_active),
            );
        }
        line(
            "offer interest",
            format!(
                "SUPPRESS when done, REVIVE when starved; unneeded offers refused for {} s",
                s.refuse_unneeded_s
            ),
        );
        line("master", s.master.clone());
        line(
            "agents registered",
            format!("{} in {:.2} s", s.agents, self.registration_s),
        );
        line(
            "workload placed",
            match self.placed_s {
                Some(t) => format!("{} tasks TASK_RUNNING in {t:.2} s", self.running),
                None => format!(
                    "{} of {} tasks TASK_RUNNING (not all)",
                    self.running, s.tasks
                ),
            },
        );
        line(
            "workload finished",
            format!(
                "{} of {} tasks TASK_FINISHED in {:.2} s{}",
                self.finished,
                s.tasks,
                self.finished_s,
                if self.timed_out {
                    " (stopped at --duration)"
                } else {
                    ""
                }
            ),
        );
        line(
            "task launches/s",
            format!(
                "{} sustained, {} peak (1 s window)",
                opt(self.launches_per_s, "", 0),
                opt(self.peak_launches_per_s, "", 0)
            ),
        );
        line(
            "offer-to-launch latency",
            format!(
                "p50 {}, p99 {}, max {}",
                opt(self.latency_p50_ms, " ms", 1),
                opt(self.latency_p99_ms, " ms", 1),
                opt(self.latency_max_ms, " ms", 1)
            ),
        );
        line(
            "  of which offer→ACCEPT 202",
            format!(
                "p50 {}, p99 {} (scheduler call round trip p50 {}, p99 {})",
                opt(self.accepted_p50_ms, " ms", 1),
                opt(self.accepted_p99_ms, " ms", 1),
                opt(self.call_p50_ms, " ms", 1),
                opt(self.call_p99_ms, " ms", 1)
            ),
        );
        line(
            "allocation cycle",
            format!(
                "last {}, p50 {}, p99 {} over {} cycles",
                opt(self.cycle_last_ms, " ms", 2),
                opt(self.cycle_p50_ms, " ms", 2),
                opt(self.cycle_p99_ms, " ms", 2),
                opt(self.cycles, "", 0)
            ),
        );
        line(
            "master CPU",
            format!(
                "{} cores during the workload, {} during registration",
                opt(self.master_cores_workload, "", 2),
                opt(self.master_cores_registration, "", 2)
            ),
        );
        line(
            "master RSS",
            format!(
                "{} peak, {} at the end",
                opt(mb(self.master_peak_rss), " MB", 0),
                opt(mb(self.master_rss), " MB", 0)
            ),
        );
        line(
            "simulator CPU",
            format!(
                "{} cores during the workload",
                opt(self.sim_cores_workload, "", 2)
            ),
        );
        line(
            "calls",
            format!(
                "{} offers, {} declined, {} ACCEPTs, {} ACKNOWLEDGEs, {} failed calls",
                self.offers, self.declined, self.accepts, self.acknowledged, self.call_errors
            ),
        );
        if let Some(e) = &self.first_call_error {
            line("first failed call", e.clone());
        }
        if self.failed > 0 || self.sessions_lost > 0 {
            line(
                "losses",
                format!(
                    "{} tasks ended other than FINISHED, {} agent sessions lost",
                    self.failed, self.sessions_lost
                ),
            );
        }
        out.push_str("targets (issue 8, for 10,000 agents x 100 frameworks):\n");
        for t in targets(self) {
            let verdict = match t.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not measured",
            };
            out.push_str(&format!("  {:<44}{:<14}{}\n", t.what, verdict, t.measured));
        }
        out
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> Value {
        let s = &self.setup;
        let targets: Vec<Value> = targets(self)
            .into_iter()
            .map(|t| json!({"target": t.what, "met": t.met, "measured": t.measured}))
            .collect();
        json!({
            "setup": {
                "agents": s.agents,
                "frameworks": s.frameworks,
                "decliners": s.decliners,
                "profile": s.profile,
                "tasks": s.tasks,
                "task_duration_seconds": s.task_duration_s,
                "task_cpus": s.task_cpus,
                "task_mem": s.task_mem,
                "agent_resources": s.agent_resources,
                "max_active": s.max_active,
                "refuse_unneeded_seconds": s.refuse_unneeded_s,
                "master": s.master,
            },
            "registration_seconds": self.registration_s,
            "tasks_running": self.running,
            "tasks_finished": self.finished,
            "tasks_failed": self.failed,
            "placed_seconds": self.placed_s,
            "finished_seconds": self.finished_s,
            "timed_out": self.timed_out,
            "launches_per_second": self.launches_per_s,
            "peak_launches_per_second": self.peak_launches_per_s,
            "offer_to_launch_ms": {
                "p50": self.latency_p50_ms,
                "p99": self.latency_p99_ms,
                "max": self.latency_max_ms,
                "accepted_p50": self.accepted_p50_ms,
                "accepted_p99": self.accepted_p99_ms,
            },
            "call_round_trip_ms": {"p50": self.call_p50_ms, "p99": self.call_p99_ms},
            "allocation_run_ms": {
                "last": self.cycle_last_ms,
                "p50": self.cycle_p50_ms,
                "p99": self.cycle_p99_ms,
                "runs": self.cycles,
            },
            "master_cpu_cores": {
                "registration": self.master_cores_registration,
                "workload": self.master_cores_workload,
            },
            "master_rss_bytes": {"peak": self.master_peak_rss, "end": self.master_rss},
            "simulator_cpu_cores": self.sim_cores_workload,
            "offers": self.offers,
            "declined": self.declined,
            "accepts": self.accepts,
            "acknowledged": self.acknowledged,
            "call_errors": self.call_errors,
            "first_call_error": self.first_call_error,
            "agent_sessions_lost": self.sessions_lost,
            "targets": targets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_and_targets_follow_the_samples() {
        let mut r = Report {
            running: 4,
            setup: Setup {
                tasks: 4,
                ..Setup::default()
            },
            master_peak_rss: Some(2 << 30),
            master_cores_workload: Some(0.5),
            ..Report::default()
        };
        let samples = Samples {
            latency_ms: vec![10.0, 20.0, 30.0, 2000.0],
            running_at: vec![0.5, 1.0, 1.5, 2.0],
            accepted_ms: vec![5.0],
            call_ms: vec![1.0, 3.0],
            ..Samples::default()
        };
        figures(&mut r, &samples);
        assert_eq!(r.accepted_p99_ms, Some(5.0));
        assert_eq!(r.call_p50_ms, Some(1.0));
        assert_eq!(r.latency_p50_ms, Some(20.0));
        assert_eq!(r.latency_p99_ms, Some(2000.0));
        assert_eq!(r.launches_per_s, Some(2.0));
        assert_eq!(r.placed_s, Some(2.0));
        let t = targets(&r);
        assert_eq!(t[0].met, Some(false)); // 2 GB
        assert_eq!(t[1].met, Some(true)); // half a core
        assert_eq!(t[2].met, Some(false)); // 2 launches/s
        assert_eq!(t[3].met, Some(false)); // p99 2 s
        let text = r.to_text();
        assert!(text.contains("MISSED"), "{text}");
        assert_eq!(r.to_json()["offer_to_launch_ms"]["p50"], 20.0);
    }

    #[test]
    fn a_run_that_placed_nothing_has_no_rates() {
        let mut r = Report::default();
        figures(&mut r, &Samples::default());
        assert_eq!(r.launches_per_s, None);
        assert_eq!(r.placed_s, None);
        assert!(r.to_text().contains("not measured"));
    }
}
