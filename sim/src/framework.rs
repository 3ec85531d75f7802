//! Simulated frameworks: real v1 scheduler clients (JSON over HTTP/1.1)
//! whose offer policy comes from a [`Profile`].
//!
//! Each framework subscribes, then reads its event stream in one task:
//! OFFERS become one ACCEPT per offer it launches on and one DECLINE for
//! the rest; every UPDATE that carries a uuid is acknowledged. Calls go out
//! from spawned tasks, at most `--calls_in_flight` at a time, so reading
//! events never waits for a call. For every task it launches the framework
//! remembers when the offer arrived, and the first TASK_RUNNING turns that
//! into one offer-to-launch latency sample.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use pando_proto::mesos::v1::TaskState;
use pando_proto::task_state::is_terminal;
use pando_scheduler::client::Client;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify, Semaphore};

use crate::api::{self, ApiError};
use crate::profile::{Plan, Profile, Size};

/// What went wrong with a simulated framework.
#[derive(Debug, thiserror::Error)]
pub enum FrameworkError {
    /// Subscribing or reading the stream failed.
    #[error("framework {0}: {1}")]
    Http(usize, ApiError),
    /// The master sent an ERROR event.
    #[error("framework {0} got ERROR: {1}")]
    Error(usize, String),
    /// The stream closed before the run ended.
    #[error("framework {0}: the master closed the event stream")]
    Closed(usize),
}

/// Figures every framework adds to, read by the report.
#[derive(Debug)]
pub struct Tally {
    /// When the workload started; event times are seconds since it.
    pub start: Instant,
    /// Tasks the whole workload must finish.
    pub target: u64,
    /// TASK_FINISHED received (once per task).
    pub finished: AtomicU64,
    /// First TASK_RUNNING received.
    pub running: AtomicU64,
    /// Tasks that ended in another terminal state (launched again).
    pub failed: AtomicU64,
    /// Offers received.
    pub offers: AtomicU64,
    /// ACCEPT calls sent, and tasks in them.
    pub accepts: AtomicU64,
    /// Tasks launched (in ACCEPTs answered 202).
    pub launched: AtomicU64,
    /// Offers declined.
    pub declined: AtomicU64,
    /// ACKNOWLEDGE calls sent.
    pub acknowledged: AtomicU64,
    /// Calls answered with anything but 202, or not answered.
    pub call_errors: AtomicU64,
    /// The first failed call's answer, for the report.
    pub first_call_error: Mutex<Option<String>>,
    /// The first task that ended in another state than TASK_FINISHED:
    /// its state, reason and message.
    pub first_failure: Mutex<Option<String>>,
    /// Offer-to-launch latencies (ms) and TASK_RUNNING times (s since start).
    pub samples: Mutex<Samples>,
    /// Notified when `finished` reaches `target`.
    pub done: Notify,
    /// Set when the run ends: calls still in flight no longer count.
    pub stopping: AtomicBool,
}

/// Raw samples, one per task.
#[derive(Debug, Default)]
pub struct Samples {
    /// Offer received → TASK_RUNNING received, in ms.
    pub latency_ms: Vec<f64>,
    /// TASK_RUNNING received, in seconds since the workload started.
    pub running_at: Vec<f64>,
    /// Offer received → its ACCEPT answered 202, in ms (one per ACCEPT).
    pub accepted_ms: Vec<f64>,
    /// Any call sent → answered 202, in ms.
    pub call_ms: Vec<f64>,
    /// The first ACCEPT sent, in seconds since the workload started.
    pub first_accept_at: Option<f64>,
    /// TASK_FINISHED received, in seconds since the workload started.
    pub finished_at: Vec<f64>,
}

impl Tally {
    /// An empty tally for a workload of `target` tasks starting now.
    pub fn new(target: u64) -> Tally {
        Tally {
            start: Instant::now(),
            target,
            finished: AtomicU64::new(0),
            running: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            offers: AtomicU64::new(0),
            accepts: AtomicU64::new(0),
            launched: AtomicU64::new(0),
            declined: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            call_errors: AtomicU64::new(0),
            first_call_error: Mutex::new(None),
            first_failure: Mutex::new(None),
            samples: Mutex::new(Samples::default()),
            done: Notify::new(),
            stopping: AtomicBool::new(false),
        }
    }

    fn call_failed(&self, what: String) {
        self.call_errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_call_error.lock() {
            first.get_or_insert(what);
        }
    }
}

/// One simulated framework.
pub struct SimFramework {
    /// Its number, which also prefixes its task ids.
    pub index: usize,
    /// How it treats offers.
    pub profile: Profile,
    /// Tasks it still has to launch.
    pub remaining: u64,
    /// The most tasks it keeps launched and not yet finished (`None`: no
    /// limit), which paces a steady workload instead of one launch storm.
    pub max_active: Option<u64>,
    /// The size of each task.
    pub task: Size,
    /// Its most concurrent scheduler calls.
    pub calls_in_flight: usize,
    /// The `failover_timeout` it subscribes with, in seconds: 0 tears the
    /// framework (and its tasks) down when its stream closes; the failover
    /// benchmark uses a long one so tasks outlive the framework's stream.
    pub failover_timeout: f64,
    /// The refuse_seconds of a DECLINE of an offer the framework has no
    /// use for right now (at its `max_active` cap, or nothing left to
    /// launch). Real frameworks decline those for long and REVIVE when they
    /// want offers again: Marathon's `--decline_offer_duration` and Spark's
    /// `spark.mesos.rejectOfferDuration` both default to 120 s.
    pub refuse_unneeded_seconds: f64,
}

/// A task launched and not yet finished.
struct Launched {
    offered_at: Instant,
    running: bool,
}

/// The refuse_seconds of a decliner's DECLINE (Mesos's default filter),
/// and of a DECLINE of an offer that was merely too small.
const REFUSE_DECLINER_SECONDS: f64 = 5.0;
const REFUSE_SMALL_SECONDS: f64 = 1.0;

/// A framework that wants to launch and has had no offer for this long
/// sends REVIVE, at most once per [`REVIVE_INTERVAL`] (Marathon's
/// `--min_revive_offers_interval` is 5 s).
const STARVED_AFTER: std::time::Duration = std::time::Duration::from_secs(2);
const REVIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

impl SimFramework {
    /// How many tasks it may launch now, with `active` launched and not
    /// finished.
    fn launchable(&self, active: usize) -> u64 {
        match self.max_active {
            Some(cap) => self.remaining.min(cap.saturating_sub(active as u64)),
            None => self.remaining,
        }
    }

    /// Subscribes through `master`, a client of the master, and runs until
    /// `stop`.
    pub async fn run(
        mut self,
        master: Client,
        tally: Arc<Tally>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), FrameworkError> {
        let index = self.index;
        let info = json!({
            "user": "root",
            "name": format!("sim-{}-{}", self.profile.name(), index),
            "failover_timeout": self.failover_timeout
        });
        let call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}});
        let (stream_id, mut events) = api::subscribe(&master, Bytes::from(call.to_string()))
            .await
            .map_err(|e| FrameworkError::Http(index, e))?;
        let caller = Caller {
            master,
            stream_id,
            framework_id: String::new(),
            tally: tally.clone(),
            offer_permits: Arc::new(Semaphore::new(self.calls_in_flight.max(1))),
            ack_permits: Arc::new(Semaphore::new(self.calls_in_flight.max(1))),
        };
        let mut caller = caller;
        // ACCEPTs that failed hand their task count back here.
        let (returned_tx, mut returned_rx) = mpsc::unbounded_channel::<Vec<String>>();
        let mut launched: HashMap<String, Launched> = HashMap::new();
        let mut sequence: u64 = 0;
        // Offer interest, as a real framework manages it: SUPPRESS once
        // nothing is left to launch, REVIVE when that changes or when
        // the framework wants offers and has seen none for a while.
        let mut suppressed = false;
        // Declined offers for `refuse_unneeded_seconds` since the last
        // REVIVE: those agents stay filtered until the framework revives.
        let mut declined_long = false;
        let mut last_offer = Instant::now();
        let mut last_revive: Option<Instant> = None;
        let mut starvation = tokio::time::interval(std::time::Duration::from_millis(500));
        starvation.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                event = events.next() => event.map_err(|e| FrameworkError::Http(index, e))?,
                Some(ids) = returned_rx.recv() => {
                    for id in ids {
                        if launched.remove(&id).is_some() {
                            self.remaining += 1;
                        }
                    }
                    continue;
                }
                _ = starvation.tick() => {
                    let wants = self.profile != Profile::Decliner
                        && self.launchable(launched.len()) > 0;
                    let revived_lately = last_revive.is_some_and(|at| at.elapsed() < REVIVE_INTERVAL);
                    if wants && !caller.framework_id.is_empty()
                        && (suppressed || declined_long || last_offer.elapsed() >= STARVED_AFTER)
                        && !revived_lately
                    {
                        caller.simple_call("REVIVE");
                        suppressed = false;
                        declined_long = false;
                        last_revive = Some(Instant::now());
                    }
                    continue;
                }
                _ = stop.changed() => return Ok(()),
            };
            let Some(event) = event else {
                if *stop.borrow() {
                    return Ok(());
                }
                return Err(FrameworkError::Closed(index));
            };
            match event["type"].as_str().unwrap_or_default() {
                "SUBSCRIBED" => {
                    caller.framework_id = event["subscribed"]["framework_id"]["value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                }
                "OFFERS" => {
                    let received = Instant::now();
                    last_offer = received;
                    let offers = event["offers"]["offers"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    tally
                        .offers
                        .fetch_add(offers.len() as u64, Ordering::Relaxed);
                    let mut declines = Vec::new();
                    for offer in offers {
                        match self.profile.plan(
                            offer_size(&offer),
                            self.task,
                            self.launchable(launched.len()),
                        ) {
                            Plan::Decline => declines.push(offer["id"].clone()),
                            Plan::Launch(n) => {
                                self.remaining -= n;
                                let ids: Vec<String> = (0..n)
                                    .map(|_| {
                                        sequence += 1;
                                        format!("sim-{index}-{sequence}")
                                    })
                                    .collect();
                                for id in &ids {
                                    launched.insert(
                                        id.clone(),
                                        Launched {
                                            offered_at: received,
                                            running: false,
                                        },
                                    );
                                }
                                caller.accept(
                                    &offer,
                                    ids,
                                    self.task,
                                    received,
                                    returned_tx.clone(),
                                );
                            }
                        }
                    }
                    if !declines.is_empty() {
                        let refuse = if self.profile == Profile::Decliner {
                            REFUSE_DECLINER_SECONDS
                        } else if self.launchable(launched.len()) == 0 {
                            declined_long = true;
                            self.refuse_unneeded_seconds
                        } else {
                            REFUSE_SMALL_SECONDS
                        };
                        caller.decline(declines, refuse);
                    }
                    if self.remaining == 0 && self.profile != Profile::Decliner && !suppressed {
                        caller.simple_call("SUPPRESS");
                        suppressed = true;
                    }
                }
                "UPDATE" => {
                    let status = &event["update"]["status"];
                    let task_id = status["task_id"]["value"].as_str().unwrap_or_default();
                    let state = status["state"].as_str().unwrap_or_default();
                    match state {
                        "TASK_RUNNING" => {
                            if let Some(task) = launched.get_mut(task_id) {
                                if !task.running {
                                    task.running = true;
                                    let latency = task.offered_at.elapsed();
                                    tally.running.fetch_add(1, Ordering::Relaxed);
                                    if let Ok(mut s) = tally.samples.lock() {
                                        s.latency_ms.push(latency.as_secs_f64() * 1000.0);
                                        s.running_at.push(tally.start.elapsed().as_secs_f64());
                                    }
                                }
                            }
                        }
                        "TASK_FINISHED" => {
                            let ours = launched.remove(task_id).is_some();
                            if ours {
                                if let Ok(mut s) = tally.samples.lock() {
                                    s.finished_at.push(tally.start.elapsed().as_secs_f64());
                                }
                                let n = tally.finished.fetch_add(1, Ordering::Relaxed) + 1;
                                if n >= tally.target {
                                    tally.done.notify_one();
                                }
                            }
                        }
                        s if TaskState::from_str_name(s).is_some_and(is_terminal) => {
                            let ours = launched.remove(task_id).is_some();
                            if ours {
                                tally.failed.fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut first) = tally.first_failure.lock() {
                                    first.get_or_insert_with(|| {
                                        format!(
                                            "{s} ({}): {}",
                                            status["reason"].as_str().unwrap_or("no reason"),
                                            status["message"].as_str().unwrap_or_default()
                                        )
                                    });
                                }
                                self.remaining += 1;
                            }
                        }
                        _ => {}
                    }
                    if let Some(uuid) = status["uuid"].as_str() {
                        caller.acknowledge(status["agent_id"].clone(), task_id, uuid);
                    }
                }
                "ERROR" => {
                    let message = event["error"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    return Err(FrameworkError::Error(index, message));
                }
                _ => {}
            }
        }
    }
}

/// Sends one framework's scheduler calls from spawned tasks.
struct Caller {
    /// The master's client; its clones share keep-alive connections.
    master: Client,
    stream_id: String,
    framework_id: String,
    tally: Arc<Tally>,
    /// ACCEPT and DECLINE go out under these permits, ACKNOWLEDGE under
    /// its own, so a backlog of acknowledgements never delays a launch.
    offer_permits: Arc<Semaphore>,
    ack_permits: Arc<Semaphore>,
}

impl Caller {
    /// Sends a call from a task of its own. `offered_at` (for ACCEPTs)
    /// turns its 202 into an offer-to-accepted sample.
    fn spawn_call(
        &self,
        call: Value,
        offered_at: Option<Instant>,
        on_failure: Option<Box<dyn FnOnce() + Send>>,
    ) {
        let master = self.master.clone();
        let stream_id = self.stream_id.clone();
        let tally = self.tally.clone();
        let permits = if call["type"] == "ACKNOWLEDGE" {
            self.ack_permits.clone()
        } else {
            self.offer_permits.clone()
        };
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let kind = call["type"].as_str().unwrap_or_default().to_string();
            let body = Bytes::from(call.to_string());
            let sent = Instant::now();
            let result = api::call(&master, &stream_id, body).await;
            let failure = match result {
                Ok(reply) if reply.status == 202 => {
                    if let Ok(mut s) = tally.samples.lock() {
                        s.call_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
                        if let Some(at) = offered_at {
                            s.accepted_ms.push(at.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    None
                }
                Ok(reply) => Some(format!(
                    "{kind} answered {}: {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                )),
                Err(e) => Some(format!("{kind}: {e}")),
            };
            // Calls cut short by the end of the run are not failures.
            if tally.stopping.load(Ordering::Relaxed) {
                return;
            }
            if let Some(what) = failure {
                tally.call_failed(what);
                if let Some(f) = on_failure {
                    f();
                }
            }
        });
    }

    fn accept(
        &self,
        offer: &Value,
        task_ids: Vec<String>,
        task: Size,
        offered_at: Instant,
        returned: mpsc::UnboundedSender<Vec<String>>,
    ) {
        let resources = json!([
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": task.cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": task.mem}}
        ]);
        let task_infos: Vec<Value> = task_ids
            .iter()
            .map(|id| {
                json!({
                    "name": id,
                    "task_id": {"value": id},
                    "agent_id": offer["agent_id"],
                    "resources": resources,
                    "command": {"value": "true"}
                })
            })
            .collect();
        let call = json!({
            "framework_id": {"value": self.framework_id},
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [offer["id"]],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": task_infos}}],
                "filters": {"refuse_seconds": 0.0}
            }
        });
        let n = task_ids.len() as u64;
        if let Ok(mut s) = self.tally.samples.lock() {
            let now = self.tally.start.elapsed().as_secs_f64();
            s.first_accept_at.get_or_insert(now);
        }
        self.tally.accepts.fetch_add(1, Ordering::Relaxed);
        self.tally.launched.fetch_add(n, Ordering::Relaxed);
        let tally = self.tally.clone();
        self.spawn_call(
            call,
            Some(offered_at),
            Some(Box::new(move || {
                tally.launched.fetch_sub(n, Ordering::Relaxed);
                let _ = returned.send(task_ids);
            })),
        );
    }

    fn decline(&self, offer_ids: Vec<Value>, refuse_seconds: f64) {
        self.tally
            .declined
            .fetch_add(offer_ids.len() as u64, Ordering::Relaxed);
        let call = json!({
            "framework_id": {"value": self.framework_id},
            "type": "DECLINE",
            "decline": {
                "offer_ids": offer_ids,
                "filters": {"refuse_seconds": refuse_seconds}
            }
        });
        self.spawn_call(call, None, None);
    }

    /// A call with no body of its own: REVIVE or SUPPRESS (of every role).
    fn simple_call(&self, kind: &str) {
        let call = json!({
            "framework_id": {"value": self.framework_id},
            "type": kind
        });
        self.spawn_call(call, None, None);
    }

    fn acknowledge(&self, agent_id: Value, task_id: &str, uuid: &str) {
        self.tally.acknowledged.fetch_add(1, Ordering::Relaxed);
        let call = json!({
            "framework_id": {"value": self.framework_id},
            "type": "ACKNOWLEDGE",
            "acknowledge": {
                "agent_id": agent_id,
                "task_id": {"value": task_id},
                "uuid": uuid
            }
        });
        self.spawn_call(call, None, None);
    }
}

/// The cpus and mem of an offer (all roles together).
pub fn offer_size(offer: &Value) -> Size {
    let mut size = Size {
        cpus: 0.0,
        mem: 0.0,
    };
    for r in offer["resources"].as_array().into_iter().flatten() {
        let value = r["scalar"]["value"].as_f64().unwrap_or(0.0);
        match r["name"].as_str() {
            Some("cpus") => size.cpus += value,
            Some("mem") => size.mem += value,
            _ => {}
        }
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_sizes_add_up_scalars_by_name() {
        let offer = json!({"resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 3.5}},
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}, "role": "web"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 1024.0}},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 2}]}}
        ]});
        assert_eq!(
            offer_size(&offer),
            Size {
                cpus: 4.0,
                mem: 1024.0
            }
        );
        assert_eq!(
            offer_size(&json!({})),
            Size {
                cpus: 0.0,
                mem: 0.0
            }
        );
    }

    #[test]
    fn max_active_paces_launches() {
        let mut f = SimFramework {
            index: 0,
            profile: Profile::Marathon,
            remaining: 500,
            max_active: Some(60),
            task: Size {
                cpus: 0.01,
                mem: 16.0,
            },
            calls_in_flight: 1,
            failover_timeout: 0.0,
            refuse_unneeded_seconds: 120.0,
        };
        assert_eq!(f.launchable(0), 60);
        assert_eq!(f.launchable(45), 15);
        assert_eq!(f.launchable(80), 0);
        f.max_active = None;
        assert_eq!(f.launchable(80), 500);
    }
}
