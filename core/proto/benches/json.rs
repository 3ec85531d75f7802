//! Mesos JSON codec benchmark: what the master pays per scheduler call and
//! per event when frameworks speak JSON (pymesos does; so does
//! `pando simulate`).
//!
//! Run with `cargo bench -p pando-proto --bench json`. It prints, for each
//! message, the mean time to decode it from JSON (as the master reads a
//! call) and to encode it as JSON (as the master writes an event), over
//! enough iterations to take about half a second each.
//!
//! The messages are the ones a launch storm is made of: an ACCEPT carrying
//! 100 `true` tasks (Marathon-like), a one-task ACCEPT, a DECLINE, an
//! ACKNOWLEDGE, an UPDATE event and an OFFERS event of 10 offers.
//!
//! Without `--bench` (as under `cargo test --all-targets`) every message is
//! decoded and encoded once and checked to round-trip, so CI checks that
//! it works without paying for it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use pando_proto::json;
use pando_proto::mesos::v1::scheduler::{Call, Event};
use serde_json::{json as j, Value};

fn task(i: usize) -> Value {
    j!({
        "name": format!("sim-0-{i}"),
        "task_id": {"value": format!("sim-0-{i}")},
        "agent_id": {"value": "7a1c3e2f-1b2d-4c5e-8f90-123456789abc-S12"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.01}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 16.0}}
        ],
        "command": {"value": "true"}
    })
}

fn accept(tasks: usize) -> Value {
    j!({
        "framework_id": {"value": "7a1c3e2f-1b2d-4c5e-8f90-123456789abc-0001"},
        "type": "ACCEPT",
        "accept": {
            "offer_ids": [{"value": "7a1c3e2f-1b2d-4c5e-8f90-123456789abc-O42"}],
            "operations": [{"type": "LAUNCH", "launch": {
                "task_infos": (0..tasks).map(task).collect::<Vec<_>>()
            }}],
            "filters": {"refuse_seconds": 0.0}
        }
    })
}

fn decline() -> Value {
    j!({
        "framework_id": {"value": "7a1c3e2f-1b2d-4c5e-8f90-123456789abc-0001"},
        "type": "DECLINE",
        "decline": {
            "offer_ids": [{"value": "7a1c3e2f-1b2d-4c5e-8f90-123456789abc-O43"}],
            "filters": {"refuse_seconds": 120.0}
        }
    })
}

fn acknowledge() -> Value {
    j!({
        "framework_id": {"value": "7a1c3e2f-1b2d-4c5e-8f90-123456789abc-0001"},
        "type": "ACKNOWLEDGE",
        "acknowledge": {
            "agent_id": {"value": "7a1c3e2f-1b2d-4c5e-8f90-123456789abc-S12"},
            "task_id": {"value": "sim-0-17"},
            "uuid": "q83vEjRWeJCrze8SNFZ4kA=="
        }
    })
}

fn update() -> Value {
    j!({
        "type": "UPDATE",
        "update": {"status": {
            "task_id": {"value": "sim-0-17"},
            "state": "TASK_RUNNING",
            "source": "SOURCE_EXECUTOR",
            "agent_id": {"value": "7a1c3e2f-1b2d-4c5e-8f90-123456789abc-S12"},
            "executor_id": {"value": "sim-0-17"},
            "timestamp": 1764700000.123,
            "uuid": "q83vEjRWeJCrze8SNFZ4kA==",
            "container_status": {"container_id": {"value": "c0ffee00-1234-4567-89ab-cdef01234567"}}
        }}
    })
}

fn offers(n: usize) -> Value {
    let offer = |i: usize| {
        j!({
            "id": {"value": format!("7a1c3e2f-1b2d-4c5e-8f90-123456789abc-O{i}")},
            "framework_id": {"value": "7a1c3e2f-1b2d-4c5e-8f90-123456789abc-0001"},
            "agent_id": {"value": format!("7a1c3e2f-1b2d-4c5e-8f90-123456789abc-S{i}")},
            "hostname": format!("host-{i}"),
            "url": {"scheme": "http", "address": {"hostname": format!("host-{i}"), "ip": "10.0.0.1", "port": 5051}, "path": "/slave(1)"},
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 8.0}, "role": "*", "allocation_info": {"role": "*"}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 16384.0}, "role": "*", "allocation_info": {"role": "*"}},
                {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 32000}]}, "role": "*", "allocation_info": {"role": "*"}}
            ],
            "allocation_info": {"role": "*"}
        })
    };
    j!({"type": "OFFERS", "offers": {"offers": (0..n).map(offer).collect::<Vec<_>>()}})
}

/// Runs `f` for about `budget` and returns the mean time per run.
fn time(budget: Duration, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed() < budget || runs < 3 {
        f();
        runs += 1;
    }
    start.elapsed() / runs
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let budget = Duration::from_millis(500);
    let calls = [
        ("ACCEPT, 100 tasks", accept(100)),
        ("ACCEPT, 1 task", accept(1)),
        ("DECLINE", decline()),
        ("ACKNOWLEDGE", acknowledge()),
    ];
    let events = [("UPDATE", update()), ("OFFERS, 10 offers", offers(10))];
    println!("| message | bytes | decode | encode |");
    println!("|---|---:|---:|---:|");
    for (name, value) in calls {
        measure::<Call>(&format!("{name} call"), &value, benching, budget);
    }
    for (name, value) in events {
        measure::<Event>(&format!("{name} event"), &value, benching, budget);
    }
}

/// Checks that `value` round-trips as an `M`; when benching, prints a
/// table row with its size and mean decode and encode times.
fn measure<M>(name: &str, value: &Value, benching: bool, budget: Duration)
where
    M: prost::Message + prost::Name + Default,
{
    let text = value.to_string();
    let message: M = json::from_json(text.as_bytes()).expect("the message decodes");
    // Encoding writes unset fields that have defaults, so compare the text
    // of a second round, not the messages.
    let written = json::to_json(&message);
    let again: M = json::from_json(written.as_bytes()).expect("its encoding decodes");
    assert_eq!(json::to_json(&again), written, "{name} round-trips");
    if benching {
        let decode = time(budget, || {
            black_box(json::from_json::<M>(black_box(text.as_bytes())).ok());
        });
        let encode = time(budget, || {
            black_box(json::to_json(black_box(&message)));
        });
        println!("| {name} | {} | {decode:.1?} | {encode:.1?} |", text.len());
    }
}
