//! Every operator read call and the scheduler's calls in protobuf, both
//! ways, against a real master: the binary encoding must work for all of
//! them, not only for SUBSCRIBE.

mod support;

use bytes::Bytes;
use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::master as operator;
use pando_proto::mesos::v1::scheduler as sched;
use prost::Message;
use serde_json::json;
use support::*;

const PROTOBUF: &str = "application/x-protobuf";

#[tokio::test]
async fn operator_reads_answer_in_protobuf() {
    let master = MasterProcess::start(&["--weights=eng=2"]).await;
    let _agent = FakeAgent::register(master.port, "cpus:1;mem:256").await;
    use operator::call::Type as T;
    use operator::response::Type as R;
    let cases = [
        (T::GetHealth, R::GetHealth),
        (T::GetFlags, R::GetFlags),
        (T::GetVersion, R::GetVersion),
        (T::GetMetrics, R::GetMetrics),
        (T::GetLoggingLevel, R::GetLoggingLevel),
        (T::GetState, R::GetState),
        (T::GetAgents, R::GetAgents),
        (T::GetFrameworks, R::GetFrameworks),
        (T::GetExecutors, R::GetExecutors),
        (T::GetTasks, R::GetTasks),
        (T::GetRoles, R::GetRoles),
        (T::GetWeights, R::GetWeights),
        (T::GetMaster, R::GetMaster),
        (T::GetMaintenanceStatus, R::GetMaintenanceStatus),
        (T::GetMaintenanceSchedule, R::GetMaintenanceSchedule),
        (T::GetQuota, R::GetQuota),
        (T::GetOperations, R::GetOperations),
    ];
    for (call_type, response_type) in cases {
        let call = operator::Call {
            r#type: Some(call_type as i32),
            ..Default::default()
        };
        let r = master
            .post(
                "/api/v1",
                &[("Content-Type", PROTOBUF), ("Accept", PROTOBUF)],
                call.encode_to_vec(),
            )
            .await;
        assert_eq!(r.status, 200, "{call_type:?}: {}", r.text());
        let response = operator::Response::decode(r.body.clone())
            .unwrap_or_else(|e| panic!("{call_type:?} answered bad protobuf: {e}"));
        assert_eq!(response.r#type, Some(response_type as i32), "{call_type:?}");
        match call_type {
            T::GetAgents => {
                assert_eq!(response.get_agents.map(|a| a.agents.len()), Some(1));
            }
            T::GetWeights => {
                let weights = response
                    .get_weights
                    .map(|w| w.weight_infos)
                    .unwrap_or_default();
                assert_eq!(weights.len(), 1);
                assert_eq!(weights[0].role.as_deref(), Some("eng"));
                assert_eq!(weights[0].weight, 2.0);
            }
            T::GetHealth => {
                assert_eq!(response.get_health.map(|h| h.healthy), Some(true));
            }
            _ => {}
        }
    }
    // A write call in protobuf: UPDATE_WEIGHTS, then read it back in JSON.
    let call = operator::Call {
        r#type: Some(T::UpdateWeights as i32),
        update_weights: Some(operator::call::UpdateWeights {
            weight_infos: vec![pb::WeightInfo {
                weight: 3.5,
                role: Some("ops".into()),
            }],
        }),
        ..Default::default()
    };
    let r = master
        .post(
            "/api/v1",
            &[("Content-Type", PROTOBUF)],
            call.encode_to_vec(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let weights = master.operator(json!({"type": "GET_WEIGHTS"})).await;
    let infos = weights["get_weights"]["weight_infos"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        infos
            .iter()
            .any(|w| w["role"] == "ops" && w["weight"] == 3.5),
        "{infos:?}"
    );
}

#[tokio::test]
async fn scheduler_calls_are_accepted_in_protobuf() {
    let master = MasterProcess::start(&[]).await;
    let _agent = FakeAgent::register(master.port, "cpus:1;mem:256").await;
    let mut sub = master
        .subscribe(json!({"user": "root", "name": "binary", "failover_timeout": 60.0}))
        .await;
    let offer = offers(&sub.next_of("OFFERS").await)[0].clone();
    let framework_id = pb::FrameworkId {
        value: sub.framework_id.clone(),
    };
    let offer_id = pb::OfferId {
        value: offer["id"]["value"].as_str().unwrap_or("").to_string(),
    };
    let agent_id = pb::AgentId {
        value: offer["agent_id"]["value"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    };
    use sched::call::Type as T;
    let calls = vec![
        sched::Call {
            r#type: Some(T::Decline as i32),
            decline: Some(sched::call::Decline {
                offer_ids: vec![offer_id],
                filters: Some(pb::Filters {
                    refuse_seconds: Some(0.0),
                }),
            }),
            ..Default::default()
        },
        sched::Call {
            r#type: Some(T::Revive as i32),
            revive: Some(sched::call::Revive { roles: vec![] }),
            ..Default::default()
        },
        sched::Call {
            r#type: Some(T::Suppress as i32),
            suppress: Some(sched::call::Suppress { roles: vec![] }),
            ..Default::default()
        },
        sched::Call {
            r#type: Some(T::Reconcile as i32),
            reconcile: Some(sched::call::Reconcile {
                tasks: vec![sched::call::reconcile::Task {
                    task_id: pb::TaskId {
                        value: "none".into(),
                    },
                    agent_id: None,
                }],
            }),
            ..Default::default()
        },
        sched::Call {
            r#type: Some(T::Kill as i32),
            kill: Some(sched::call::Kill {
                task_id: pb::TaskId {
                    value: "none".into(),
                },
                agent_id: None,
                kill_policy: None,
            }),
            ..Default::default()
        },
        sched::Call {
            r#type: Some(T::Message as i32),
            message: Some(sched::call::Message {
                agent_id: agent_id.clone(),
                executor_id: pb::ExecutorId { value: "e".into() },
                data: Bytes::from_static(b"hello"),
            }),
            ..Default::default()
        },
        sched::Call {
            r#type: Some(T::Shutdown as i32),
            shutdown: Some(sched::call::Shutdown {
                executor_id: pb::ExecutorId { value: "e".into() },
                agent_id,
            }),
            ..Default::default()
        },
        sched::Call {
            r#type: Some(T::Request as i32),
            request: Some(sched::call::Request { requests: vec![] }),
            ..Default::default()
        },
    ];
    for mut call in calls {
        call.framework_id = Some(framework_id.clone());
        let kind = call.r#type;
        let r = master
            .post(
                "/api/v1/scheduler",
                &[
                    ("Content-Type", PROTOBUF),
                    ("Mesos-Stream-Id", &sub.stream_id),
                ],
                call.encode_to_vec(),
            )
            .await;
        assert_eq!(r.status, 202, "{kind:?}: {}", r.text());
    }
    // The reconcile and the kill of unknown tasks were answered.
    for _ in 0..2 {
        let update = sub.next_of("UPDATE").await;
        assert_eq!(update["update"]["status"]["state"], "TASK_LOST");
    }
    // UPDATE_FRAMEWORK answers 200; TEARDOWN 202 and the stream ends.
    let update = sched::Call {
        framework_id: Some(framework_id.clone()),
        r#type: Some(T::UpdateFramework as i32),
        update_framework: Some(sched::call::UpdateFramework {
            framework_info: pb::FrameworkInfo {
                user: "root".into(),
                name: "binary-renamed".into(),
                id: Some(framework_id.clone()),
                failover_timeout: Some(60.0),
                ..Default::default()
            },
            suppressed_roles: vec![],
            offer_constraints: None,
        }),
        ..Default::default()
    };
    let r = master
        .post(
            "/api/v1/scheduler",
            &[
                ("Content-Type", PROTOBUF),
                ("Mesos-Stream-Id", &sub.stream_id),
            ],
            update.encode_to_vec(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let state = master.state().await;
    assert_eq!(state["frameworks"][0]["name"], "binary-renamed");
    let teardown = sched::Call {
        framework_id: Some(framework_id),
        r#type: Some(T::Teardown as i32),
        ..Default::default()
    };
    let r = master
        .post(
            "/api/v1/scheduler",
            &[
                ("Content-Type", PROTOBUF),
                ("Mesos-Stream-Id", &sub.stream_id),
            ],
            teardown.encode_to_vec(),
        )
        .await;
    assert_eq!(r.status, 202);
    assert!(
        sub.closed_within(DEADLINE).await,
        "TEARDOWN ends the stream"
    );
    let state = master.state().await;
    assert_eq!(state["completed_frameworks"][0]["name"], "binary-renamed");
}
