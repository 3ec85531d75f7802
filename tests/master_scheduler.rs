//! The master's scheduler API against a real `pando master` process and
//! fake agents speaking the agent link: status codes, event order, offers,
//! launches, status updates with acknowledgements, invalid ACCEPTs,
//! reconciliation, failover and agent loss.

mod support;

use std::time::Duration;

use pando_link::master_message::Message as ToAgent;
use pando_proto::mesos::v1 as pb;
use serde_json::{json, Value};
use support::*;

fn framework(name: &str) -> Value {
    json!({"user": "root", "name": name, "failover_timeout": 0.0})
}

#[tokio::test]
async fn subscribe_answers_with_a_stream_id_and_subscribed_first() {
    let master = MasterProcess::start(&[]).await;
    let sub = master.subscribe(framework("first")).await;
    assert!(!sub.stream_id.is_empty());
    assert!(sub.framework_id.len() > 5);
    let frameworks = master.operator(json!({"type": "GET_FRAMEWORKS"})).await;
    let list = &frameworks["get_frameworks"]["frameworks"];
    assert_eq!(
        list[0]["framework_info"]["id"]["value"],
        sub.framework_id.as_str()
    );
    assert_eq!(list[0]["connected"], true);
}

#[tokio::test]
async fn bad_scheduler_requests_get_mesos_status_codes() {
    let master = MasterProcess::start(&[]).await;
    let mut info = framework("codes");
    info["failover_timeout"] = json!(60.0);
    let sub = master.subscribe(info).await;
    let fw = sub.framework_id.clone();
    let path = "/api/v1/scheduler";

    // 415: neither JSON nor protobuf.
    let r = master
        .post(path, &[("Content-Type", "text/plain")], "x")
        .await;
    assert_eq!(r.status, 415);
    // 400: no Content-Type at all.
    let r = master.post(path, &[], "{}").await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Content-Type"));
    // 400: malformed JSON names the problem.
    let r = master
        .post(path, &[("Content-Type", "application/json")], "{not json")
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().starts_with("Failed to parse body into JSON: "),
        "{}",
        r.text()
    );
    // 400: a missing required field is named.
    let r = master
        .post_json(
            path,
            &json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "x"}}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("user"), "{}", r.text());
    // A SUBSCRIBE with one extra header besides the JSON Content-Type.
    let subscribe_with = |header: (&'static str, &'static str)| {
        let body = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework("x")}});
        let master = &master;
        async move {
            master
                .post(
                    path,
                    &[("Content-Type", "application/json"), header],
                    body.to_string(),
                )
                .await
        }
    };
    // 406: an Accept the master cannot produce.
    assert_eq!(subscribe_with(("Accept", "text/html")).await.status, 406);
    // 400: SUBSCRIBE must not carry a stream id.
    assert_eq!(subscribe_with(("Mesos-Stream-Id", "abc")).await.status, 400);
    // 400: unknown framework.
    let r = master
        .call(
            &sub.stream_id,
            json!({"type": "REVIVE", "framework_id": {"value": "nope"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "Framework cannot be found");
    // 400: missing and wrong stream ids.
    let r = master
        .post_json(
            path,
            &json!({"type": "REVIVE", "framework_id": {"value": fw}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Mesos-Stream-Id"));
    let r = master
        .call(
            "not-the-stream",
            json!({"type": "REVIVE", "framework_id": {"value": fw}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("didn't match"));
    // 400: call validation.
    let r = master
        .call(
            &sub.stream_id,
            json!({"type": "DECLINE", "framework_id": {"value": fw}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Expecting 'decline' to be present"));
    // 202: a valid call.
    let r = master
        .call(
            &sub.stream_id,
            json!({"type": "REVIVE", "framework_id": {"value": fw}}),
        )
        .await;
    assert_eq!(r.status, 202);
    // 405: not a POST.
    let r = master.get(path).await.expect("GET");
    assert_eq!(r.status, 405);

    // 403: the framework's connection is gone.
    drop(sub);
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let r = master
            .call(
                "whatever",
                json!({"type": "REVIVE", "framework_id": {"value": fw}}),
            )
            .await;
        if r.status == 403 {
            assert_eq!(r.text(), "Framework is not subscribed");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never saw 403, last {}",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_task_runs_from_offer_to_acknowledged_finish() {
    let master = MasterProcess::start(&[]).await;
    let mut agent = FakeAgent::register(master.port, "cpus:2;mem:1024").await;
    let mut sub = master.subscribe(framework("runner")).await;
    let fw = sub.framework_id.clone();

    let event = sub.next_of("OFFERS").await;
    let offer = offers(&event)[0].clone();
    assert_eq!(offer["agent_id"]["value"], agent.id.as_str());
    assert_eq!(offer["allocation_info"]["role"], "*");

    let r = master
        .call(
            &sub.stream_id,
            launch_call(&fw, &offer, "t1", scalars(1.0, 128.0)),
        )
        .await;
    assert_eq!(r.status, 202);

    let ToAgent::RunTask(run) = agent.recv().await else {
        panic!("expected RunTask");
    };
    assert_eq!(run.task.task_id.value, "t1");
    assert_eq!(
        run.framework.id.as_ref().map(|i| i.value.as_str()),
        Some(fw.as_str())
    );

    // STAGING shows in the state until the agent reports.
    let state = master.state().await;
    assert_eq!(state["frameworks"][0]["tasks"][0]["state"], "TASK_STAGING");

    let uuid = agent.update(&fw, "t1", pb::TaskState::TaskRunning);
    let update = sub.next_of("UPDATE").await;
    assert_eq!(update["update"]["status"]["state"], "TASK_RUNNING");
    let ack = json!({
        "type": "ACKNOWLEDGE",
        "framework_id": {"value": fw},
        "acknowledge": {
            "agent_id": {"value": agent.id},
            "task_id": {"value": "t1"},
            "uuid": update["update"]["status"]["uuid"],
        }
    });
    assert_eq!(master.call(&sub.stream_id, ack).await.status, 202);
    let ToAgent::Acknowledgement(a) = agent.recv().await else {
        panic!("expected the acknowledgement");
    };
    assert_eq!(a.uuid.to_vec(), uuid);
    assert_eq!(a.task_id.value, "t1");

    agent.update(&fw, "t1", pb::TaskState::TaskFinished);
    let update = sub.next_of("UPDATE").await;
    assert_eq!(update["update"]["status"]["state"], "TASK_FINISHED");
    let ack = json!({
        "type": "ACKNOWLEDGE",
        "framework_id": {"value": fw},
        "acknowledge": {
            "agent_id": {"value": agent.id},
            "task_id": {"value": "t1"},
            "uuid": update["update"]["status"]["uuid"],
        }
    });
    assert_eq!(master.call(&sub.stream_id, ack).await.status, 202);
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let state = master.state().await;
        let fw_state = &state["frameworks"][0];
        if fw_state["completed_tasks"]
            .as_array()
            .is_some_and(|t| t.len() == 1)
        {
            assert_eq!(fw_state["completed_tasks"][0]["state"], "TASK_FINISHED");
            assert_eq!(fw_state["tasks"].as_array().map(Vec::len), Some(0));
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = master
        .get("/metrics/snapshot")
        .await
        .expect("metrics")
        .json();
    assert_eq!(metrics["master/tasks_finished"], 1.0);
    // The task's resources went back to the agent.
    let state = master.state().await;
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], 0.0);
    assert_eq!(state["slaves"][0]["used_resources"]["mem"], 0.0);
}

/// The next UPDATE, keeping the OFFERS events that come before it (the
/// resources of a refused launch are offered again, and that offer may
/// overtake the update).
async fn update_keeping_offers(sub: &mut Subscriber, reoffered: &mut Vec<Value>) -> Value {
    loop {
        let event = sub.next().await;
        match event["type"].as_str() {
            Some("UPDATE") => return event,
            Some("OFFERS") => reoffered.push(event),
            _ => {}
        }
    }
}

#[tokio::test]
async fn invalid_launches_are_answered_never_silent() {
    let master = MasterProcess::start(&[]).await;
    let _agent = FakeAgent::register(master.port, "cpus:1;mem:256").await;
    let mut sub = master.subscribe(framework("invalid")).await;
    let fw = sub.framework_id.clone();
    let offer = offers(&sub.next_of("OFFERS").await)[0].clone();
    let mut reoffered: Vec<Value> = Vec::new();

    // More than the offer holds: TASK_ERROR with REASON_TASK_INVALID.
    master
        .call(
            &sub.stream_id,
            launch_call(&fw, &offer, "big", scalars(4.0, 128.0)),
        )
        .await;
    let update = update_keeping_offers(&mut sub, &mut reoffered).await;
    let status = &update["update"]["status"];
    assert_eq!(status["state"], "TASK_ERROR");
    assert_eq!(status["reason"], "REASON_TASK_INVALID");
    assert_eq!(status["source"], "SOURCE_MASTER");
    assert!(status["message"]
        .as_str()
        .unwrap_or("")
        .contains("more resources"));

    // The same offer again: it is used, so TASK_LOST with REASON_INVALID_OFFERS.
    master
        .call(
            &sub.stream_id,
            launch_call(&fw, &offer, "late", scalars(0.5, 64.0)),
        )
        .await;
    let update = update_keeping_offers(&mut sub, &mut reoffered).await;
    let status = &update["update"]["status"];
    assert_eq!(status["state"], "TASK_LOST");
    assert_eq!(status["reason"], "REASON_INVALID_OFFERS");
    assert!(status["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("Task launched with invalid offers: Offer"));

    // No offers at all.
    let mut none = launch_call(&fw, &offer, "orphan", scalars(0.5, 64.0));
    none["accept"]["offer_ids"] = json!([]);
    master.call(&sub.stream_id, none).await;
    let update = update_keeping_offers(&mut sub, &mut reoffered).await;
    let status = &update["update"]["status"];
    assert_eq!(status["task_id"]["value"], "orphan");
    assert_eq!(status["state"], "TASK_LOST");
    assert_eq!(
        status["message"],
        "Task launched with invalid offers: No offers specified"
    );

    // A task with neither command nor executor, and a duplicate id.
    // The resources come back in an offer, which may have arrived while
    // the test waited for the updates above.
    let offer = match reoffered.pop() {
        Some(event) => offers(&event)[0].clone(),
        None => offers(&sub.next_of("OFFERS").await)[0].clone(),
    };
    let mut call = launch_call(&fw, &offer, "ok", scalars(0.5, 64.0));
    let tasks = &mut call["accept"]["operations"][0]["launch"]["task_infos"];
    let dup = tasks[0].clone();
    let mut no_command = tasks[0].clone();
    no_command["task_id"]["value"] = json!("bare");
    if let Some(o) = no_command.as_object_mut() {
        o.remove("command");
    }
    if let Some(a) = tasks.as_array_mut() {
        a.push(dup);
        a.push(no_command);
    }
    master.call(&sub.stream_id, call).await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let update = sub.next_of("UPDATE").await;
        seen.push((
            update["update"]["status"]["task_id"]["value"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            update["update"]["status"]["message"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        ));
    }
    seen.sort();
    assert_eq!(seen[0].0, "bare");
    assert!(
        seen[0].1.contains("CommandInfo or ExecutorInfo"),
        "{seen:?}"
    );
    assert_eq!(seen[1].0, "ok");
    assert!(seen[1].1.contains("duplicate ID"), "{seen:?}");
}

#[tokio::test]
async fn decline_filters_hold_until_revive() {
    let master = MasterProcess::start(&[]).await;
    let _agent = FakeAgent::register(master.port, "cpus:1;mem:256").await;
    let mut sub = master.subscribe(framework("decliner")).await;
    let fw = sub.framework_id.clone();
    let offer = offers(&sub.next_of("OFFERS").await)[0].clone();
    let decline = json!({
        "type": "DECLINE",
        "framework_id": {"value": fw},
        "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 3600.0}}
    });
    assert_eq!(master.call(&sub.stream_id, decline).await.status, 202);
    let quiet = sub.drain(Duration::from_millis(600)).await;
    assert!(
        quiet.iter().all(|e| e["type"] != "OFFERS"),
        "re-offered despite the filter: {quiet:?}"
    );
    let revive = json!({"type": "REVIVE", "framework_id": {"value": fw}});
    assert_eq!(master.call(&sub.stream_id, revive).await.status, 202);
    let offer = offers(&sub.next_of("OFFERS").await)[0].clone();

    // SUPPRESS stops offers even when the resources come back.
    let suppress = json!({"type": "SUPPRESS", "framework_id": {"value": fw}});
    assert_eq!(master.call(&sub.stream_id, suppress).await.status, 202);
    let decline = json!({
        "type": "DECLINE",
        "framework_id": {"value": fw},
        "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0.0}}
    });
    assert_eq!(master.call(&sub.stream_id, decline).await.status, 202);
    let quiet = sub.drain(Duration::from_millis(600)).await;
    assert!(
        quiet.iter().all(|e| e["type"] != "OFFERS"),
        "offered while suppressed: {quiet:?}"
    );
    let revive = json!({"type": "REVIVE", "framework_id": {"value": fw}});
    assert_eq!(master.call(&sub.stream_id, revive).await.status, 202);
    sub.next_of("OFFERS").await;
}

#[tokio::test]
async fn reconciliation_follows_partition_awareness() {
    let master = MasterProcess::start(&[]).await;
    let agent = FakeAgent::register(master.port, "cpus:1;mem:256").await;
    let mut plain = master.subscribe(framework("plain")).await;
    let mut aware_info = framework("aware");
    aware_info["capabilities"] = json!([{"type": "PARTITION_AWARE"}]);
    let mut aware = master.subscribe(aware_info).await;

    for (sub, expected) in [(&mut plain, "TASK_LOST"), (&mut aware, "TASK_UNKNOWN")] {
        let call = json!({
            "type": "RECONCILE",
            "framework_id": {"value": sub.framework_id},
            "reconcile": {"tasks": [{"task_id": {"value": "ghost"}}]}
        });
        assert_eq!(master.call(&sub.stream_id, call).await.status, 202);
        let update = sub.next_of("UPDATE").await;
        let status = &update["update"]["status"];
        assert_eq!(status["state"], expected);
        assert_eq!(status["reason"], "REASON_RECONCILIATION");
        assert!(status.get("uuid").is_none(), "master updates carry no uuid");
    }
    // A task unknown on a registered agent: TASK_GONE when partition-aware.
    let call = json!({
        "type": "RECONCILE",
        "framework_id": {"value": aware.framework_id},
        "reconcile": {"tasks": [{"task_id": {"value": "ghost"}, "agent_id": {"value": agent.id}}]}
    });
    master.call(&aware.stream_id, call).await;
    let update = aware.next_of("UPDATE").await;
    assert_eq!(update["update"]["status"]["state"], "TASK_GONE");

    // Implicit reconciliation answers for every known task, here none.
    let call = json!({
        "type": "RECONCILE",
        "framework_id": {"value": plain.framework_id},
        "reconcile": {"tasks": []}
    });
    assert_eq!(master.call(&plain.stream_id, call).await.status, 202);
    let events = plain.drain(Duration::from_millis(300)).await;
    assert!(events.iter().all(|e| e["type"] != "UPDATE"), "{events:?}");
}

#[tokio::test]
async fn a_second_subscription_fails_the_first_over() {
    let master = MasterProcess::start(&[]).await;
    let mut info = framework("failover");
    info["failover_timeout"] = json!(60.0);
    let mut first = master.subscribe(info.clone()).await;
    info["id"] = json!({"value": first.framework_id});
    let second = master
        .subscribe_raw(json!({
            "type": "SUBSCRIBE",
            "framework_id": {"value": first.framework_id},
            "subscribe": {"framework_info": info}
        }))
        .await;
    assert_eq!(second.framework_id, first.framework_id);
    let error = first.next_of("ERROR").await;
    assert_eq!(error["error"]["message"], "Framework failed over");
    assert!(
        first.closed_within(DEADLINE).await,
        "the old stream is closed"
    );
    // The old stream id is no longer accepted; the new one is.
    let revive = json!({"type": "REVIVE", "framework_id": {"value": first.framework_id}});
    assert_eq!(
        master.call(&first.stream_id, revive.clone()).await.status,
        400
    );
    assert_eq!(master.call(&second.stream_id, revive).await.status, 202);
}

#[tokio::test]
async fn a_framework_past_its_failover_timeout_is_removed_with_its_tasks() {
    let master = MasterProcess::start(&[]).await;
    let mut agent = FakeAgent::register(master.port, "cpus:1;mem:256").await;
    let mut info = framework("short-lived");
    info["failover_timeout"] = json!(0.2);
    let mut sub = master.subscribe(info).await;
    let fw = sub.framework_id.clone();
    let offer = offers(&sub.next_of("OFFERS").await)[0].clone();
    master
        .call(
            &sub.stream_id,
            launch_call(&fw, &offer, "t", scalars(0.5, 64.0)),
        )
        .await;
    let ToAgent::RunTask(_) = agent.recv().await else {
        panic!("expected RunTask");
    };
    drop(sub);
    let ToAgent::ShutdownFramework(shutdown) = agent.recv().await else {
        panic!("expected ShutdownFramework");
    };
    assert_eq!(shutdown.framework_id.value, fw);
    let state = master.state().await;
    assert_eq!(state["frameworks"].as_array().map(Vec::len), Some(0));
    let done = &state["completed_frameworks"][0];
    assert_eq!(done["id"], fw.as_str());
    assert_eq!(done["completed_tasks"][0]["state"], "TASK_KILLED");
}

#[tokio::test]
async fn an_agent_that_stops_answering_pings_becomes_unreachable() {
    let master =
        MasterProcess::start(&["--agent_ping_timeout=100ms", "--max_agent_ping_timeouts=2"]).await;
    let mut agent = FakeAgent::register(master.port, "cpus:1;mem:256").await;
    let mut aware_info = framework("aware");
    aware_info["capabilities"] = json!([{"type": "PARTITION_AWARE"}]);
    let mut aware = master.subscribe(aware_info).await;
    let fw = aware.framework_id.clone();
    let offer = offers(&aware.next_of("OFFERS").await)[0].clone();
    master
        .call(
            &aware.stream_id,
            launch_call(&fw, &offer, "t", scalars(0.5, 64.0)),
        )
        .await;
    let ToAgent::RunTask(_) = agent.recv().await else {
        panic!("expected RunTask");
    };
    agent.update(&fw, "t", pb::TaskState::TaskRunning);
    aware.next_of("UPDATE").await;
    agent.answer_pings = false;
    let waiter = tokio::spawn(async move {
        // Keep reading (and not answering) pings.
        loop {
            let _ = agent.recv().await;
        }
    });
    let update = aware.next_of("UPDATE").await;
    let status = &update["update"]["status"];
    assert_eq!(status["state"], "TASK_UNREACHABLE");
    assert_eq!(status["reason"], "REASON_AGENT_REMOVED");
    assert!(
        status["unreachable_time"]["nanoseconds"]
            .as_i64()
            .unwrap_or(0)
            > 0
    );
    let state = master.state().await;
    assert_eq!(state["unreachable_slaves"], 1);
    assert_eq!(state["frameworks"][0]["unreachable_tasks"][0]["id"], "t");
    waiter.abort();
}

#[tokio::test]
async fn a_new_master_rebuilds_tasks_from_agents_and_frameworks_reconcile_them() {
    // The agent and framework ids a previous master handed out.
    let master = MasterProcess::start(&[]).await;
    let framework_id = "old-master-0000";
    let agent_id = "old-master-S3";
    let info = pb::FrameworkInfo {
        user: "root".into(),
        name: "survivor".into(),
        id: Some(pb::FrameworkId {
            value: framework_id.into(),
        }),
        failover_timeout: Some(60.0),
        ..Default::default()
    };
    let task = pb::Task {
        name: "long".into(),
        task_id: pb::TaskId {
            value: "long".into(),
        },
        framework_id: pb::FrameworkId {
            value: framework_id.into(),
        },
        agent_id: pb::AgentId {
            value: agent_id.into(),
        },
        state: pb::TaskState::TaskRunning as i32,
        resources: pando_resources::Resources::parse("cpus:1;mem:128")
            .expect("resources")
            .allocate("*")
            .to_proto(),
        ..Default::default()
    };
    let agent = FakeAgent::open(
        master.port,
        pando_link::agent_message::Message::Reregister(pando_link::ReregisterAgent {
            agent_info: pb::AgentInfo {
                hostname: "127.0.0.1".into(),
                port: Some(i32::from(free_port())),
                id: Some(pb::AgentId {
                    value: agent_id.into(),
                }),
                resources: pando_resources::Resources::parse("cpus:2;mem:512")
                    .expect("resources")
                    .to_proto(),
                ..Default::default()
            },
            version: Some("test".into()),
            capabilities: Vec::new(),
            checkpointed_resources: Vec::new(),
            frameworks: vec![info],
            executors: Vec::new(),
            tasks: vec![task],
            endpoint: None,
        }),
    )
    .await;
    assert_eq!(agent.id, agent_id);
    let state = master.state().await;
    assert_eq!(state["frameworks"][0]["id"], framework_id);
    assert_eq!(state["frameworks"][0]["recovered"], true);
    assert_eq!(state["frameworks"][0]["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], 1.0);

    // The framework comes back with its id and finds its task.
    let mut sub = master
        .subscribe_raw(json!({
            "type": "SUBSCRIBE",
            "framework_id": {"value": framework_id},
            "subscribe": {"framework_info": {
                "user": "root", "name": "survivor",
                "id": {"value": framework_id}, "failover_timeout": 60.0
            }}
        }))
        .await;
    assert_eq!(sub.framework_id, framework_id);
    let call = json!({
        "type": "RECONCILE",
        "framework_id": {"value": framework_id},
        "reconcile": {"tasks": []}
    });
    assert_eq!(master.call(&sub.stream_id, call).await.status, 202);
    // The offer may come before or after the reconciliation answer.
    let (mut update, mut offer) = (None, None);
    while update.is_none() || offer.is_none() {
        let event = sub.next().await;
        match event["type"].as_str() {
            Some("UPDATE") => update = Some(event),
            Some("OFFERS") if offer.is_none() => offer = Some(offers(&event)[0].clone()),
            _ => {}
        }
    }
    let (update, offer) = (update.unwrap_or_default(), offer.unwrap_or_default());
    assert_eq!(update["update"]["status"]["task_id"]["value"], "long");
    assert_eq!(update["update"]["status"]["state"], "TASK_RUNNING");
    assert_eq!(
        update["update"]["status"]["reason"],
        "REASON_RECONCILIATION"
    );
    // Only the free part of the agent is offered.
    let cpus = offer["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == "cpus"))
        .and_then(|r| r["scalar"]["value"].as_f64());
    assert_eq!(cpus, Some(1.0));
}

#[tokio::test]
async fn a_deactivated_agent_stays_deactivated_when_it_reconnects() {
    let master = MasterProcess::start(&[]).await;
    let agent = FakeAgent::register(master.port, "cpus:1;mem:256").await;
    let id = agent.id.clone();
    let r = master
        .post_json(
            "/api/v1",
            &json!({"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": {"value": id}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    drop(agent);
    let back = FakeAgent::open(
        master.port,
        pando_link::agent_message::Message::Reregister(pando_link::ReregisterAgent {
            agent_info: pb::AgentInfo {
                hostname: "127.0.0.1".into(),
                port: Some(i32::from(free_port())),
                id: Some(pb::AgentId { value: id.clone() }),
                resources: pando_resources::Resources::parse("cpus:1;mem:256")
                    .expect("resources")
                    .to_proto(),
                ..Default::default()
            },
            version: Some("test".into()),
            capabilities: Vec::new(),
            checkpointed_resources: Vec::new(),
            frameworks: Vec::new(),
            executors: Vec::new(),
            tasks: Vec::new(),
            endpoint: None,
        }),
    )
    .await;
    assert_eq!(back.id, id);
    let state = master.state().await;
    assert_eq!(state["slaves"][0]["deactivated"], true);
    let mut sub = master.subscribe(framework("hopeful")).await;
    let events = sub.drain(Duration::from_millis(400)).await;
    assert!(
        events.iter().all(|e| e["type"] != "OFFERS"),
        "a deactivated agent was offered: {events:?}"
    );
}
