//! The registry as a single master (`--registry=in_memory`) keeps it: what
//! reaches it, and its pruning of old unreachable and gone agents, seen
//! through `/registrar(1)/registry`.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

async fn registry(master: &MasterProcess) -> Value {
    let reply = master
        .get("/registrar(1)/registry")
        .await
        .expect("registry");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["id"]["value"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn agents_frameworks_and_settings_reach_the_registry() {
    let master = MasterProcess::start(&[]).await;
    let agent = FakeAgent::register(master.port, "cpus:1;mem:128").await;
    let sub = master
        .subscribe(json!({"user": "root", "name": "recorded", "failover_timeout": 60.0}))
        .await;
    let reply = master
        .post_json(
            "/api/v1",
            &json!({
                "type": "UPDATE_WEIGHTS",
                "update_weights": {"weight_infos": [{"role": "analytics", "weight": 3.0}]}
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let r = registry(&master).await;
    let agents: Vec<&str> = r["slaves"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["info"]["id"]["value"].as_str())
        .collect();
    assert_eq!(agents, vec![agent.id.as_str()], "{r}");
    let frameworks: Vec<&str> = r["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["id"]["value"].as_str())
        .collect();
    assert_eq!(frameworks, vec![sub.framework_id.as_str()], "{r}");
    assert_eq!(r["weights"], json!([{"role": "analytics", "weight": 3.0}]));
    assert!(
        r["master"]["id"].is_string(),
        "the leader records itself: {r}"
    );
}

#[tokio::test]
async fn old_gone_agents_are_pruned_beyond_the_count_limit() {
    let master = MasterProcess::start(&[
        "--registry_gc_interval=100ms",
        "--registry_max_agent_count=1",
    ])
    .await;
    let first = FakeAgent::register(master.port, "cpus:1;mem:128").await;
    let second = FakeAgent::register(master.port, "cpus:1;mem:128").await;
    for agent in [&first, &second] {
        let reply = master
            .post_json(
                "/api/v1",
                &json!({
                    "type": "MARK_AGENT_GONE",
                    "mark_agent_gone": {"agent_id": {"value": agent.id}}
                }),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        // Distinct gone times, so that the first is the older.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = Instant::now();
    loop {
        let r = registry(&master).await;
        let gone = ids(&r["gone"]);
        if gone == vec![second.id.clone()] {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "expected only {} left gone: {r}",
            second.id
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
