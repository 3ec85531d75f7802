//! The master under bad input and through its other faces: garbage on
//! every endpoint, oversized bodies, slow clients, protobuf streams, and the
//! operator event stream, against a real `pando master` process.

mod support;

use bytes::Bytes;
use pando_link::master_message::Message as ToAgent;
use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::scheduler as sched;
use prost::Message;
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ENDPOINTS: &[&str] = &[
    "/api/v1/scheduler",
    "/api/v1",
    "/api/v1/operator",
    "/master/teardown",
    "/master/reserve",
    "/master/unreserve",
    "/master/state",
];

#[tokio::test]
async fn garbage_on_every_endpoint_is_refused_and_changes_nothing() {
    let master = MasterProcess::start(&["--max_request_body_bytes=65536"]).await;
    let _agent = FakeAgent::register(master.port, "cpus:2;mem:512").await;
    let mut sub = master
        .subscribe(json!({"user": "root", "name": "witness", "failover_timeout": 60.0}))
        .await;
    sub.next_of("OFFERS").await;
    let before = master.state().await;

    let bodies: Vec<(&str, Bytes)> = vec![
        ("application/json", Bytes::from_static(b"{")),
        ("application/json", Bytes::from_static(b"[1,2,3]")),
        ("application/json", Bytes::from_static(b"{\"type\": \"NOT_A_CALL\"}")),
        ("application/json", Bytes::from_static(b"{\"type\": 7.5}")),
        (
            "application/json",
            Bytes::from(json!({"type": "ACCEPT", "framework_id": {"value": sub.framework_id}, "accept": {"offer_ids": [{"value": 5}]}}).to_string()),
        ),
        ("application/x-protobuf", Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f])),
        ("application/x-protobuf", Bytes::from_static(&[0x12, 0x80, 0x80, 0x80])),
        ("application/x-www-form-urlencoded", Bytes::from_static(b"slaveId=%zz&resources=[{")),
        ("text/plain", Bytes::from(vec![0u8; 1024])),
    ];
    for path in ENDPOINTS {
        for (content_type, body) in &bodies {
            let r = request(
                master.port,
                "POST",
                path,
                &[("Content-Type", content_type)],
                body.clone(),
            )
            .await
            .expect("the master answers");
            assert!(
                (400..500).contains(&r.status) || (*path == "/master/state" && r.status == 405),
                "{path} with {content_type} {body:?} answered {}: {}",
                r.status,
                r.text()
            );
        }
        // Too large a body is 413, not a crash or a hang.
        let big = Bytes::from(vec![b'x'; 200_000]);
        let r = request(
            master.port,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            big,
        )
        .await
        .expect("the master answers");
        assert!(
            r.status == 413 || (*path == "/master/state" && r.status == 405),
            "{path} with a large body answered {}",
            r.status
        );
    }
    // Random bytes, many times.
    for i in 0..200u32 {
        let len = (i * 37 % 300) as usize;
        let body: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
        let ct = if i % 2 == 0 {
            "application/json"
        } else {
            "application/x-protobuf"
        };
        let path = ENDPOINTS[(i as usize) % 3];
        let r = request(
            master.port,
            "POST",
            path,
            &[("Content-Type", ct)],
            Bytes::from(body),
        )
        .await
        .expect("the master answers");
        assert!(r.status < 500, "{path} answered {}", r.status);
    }

    let after = master.state().await;
    let strip = |v: &Value| {
        let mut v = v.clone();
        v["flags"] = Value::Null;
        for s in v["slaves"].as_array_mut().into_iter().flatten() {
            s["offered_resources"] = Value::Null;
            s["offered_resources_full"] = Value::Null;
        }
        for f in v["frameworks"].as_array_mut().into_iter().flatten() {
            f["offers"] = Value::Null;
            f["offered_resources"] = Value::Null;
        }
        v
    };
    assert_eq!(strip(&before)["slaves"], strip(&after)["slaves"]);
    assert_eq!(strip(&before)["frameworks"], strip(&after)["frameworks"]);
    // And the framework's connection still works.
    let revive = json!({"type": "REVIVE", "framework_id": {"value": sub.framework_id}});
    assert_eq!(master.call(&sub.stream_id, revive).await.status, 202);
}

#[tokio::test]
async fn state_json_summarises_resources_and_wraps_jsonp_only_for_named_callbacks() {
    let master = MasterProcess::start(&[]).await;
    let _agent = FakeAgent::register(master.port, "cpus:2;mem:1024;ports:[31000-32000]").await;
    let state = master.state().await;
    assert_eq!(
        state["slaves"][0]["resources"].to_string(),
        r#"{"disk":0.0,"mem":1024.0,"gpus":0.0,"cpus":2.0,"ports":"[31000-32000]"}"#
    );

    let wrapped = master.get("/master/state?jsonp=cb_1").await.expect("state");
    assert_eq!(wrapped.status, 200);
    assert_eq!(
        wrapped.header("content-type").as_deref(),
        Some("text/javascript")
    );
    let text = wrapped.text();
    assert!(text.starts_with("cb_1({") && text.ends_with("})"), "{text}");

    // A callback that is not a name is not echoed into script.
    let plain = master
        .get("/master/state?jsonp=alert(1)")
        .await
        .expect("state");
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-type").as_deref(),
        Some("application/json")
    );
    let text = plain.text();
    assert!(text.starts_with('{') && text.ends_with('}'), "{text}");
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed() {
    let master = MasterProcess::start(&["--http_header_read_timeout=300ms"]).await;
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", master.port))
        .await
        .expect("connect");
    slow.write_all(b"GET /master/state HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write part of the headers");
    let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", master.port))
        .await
        .expect("connect");
    for stream in [&mut slow, &mut idle] {
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(DEADLINE, async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(
            read.is_ok(),
            "the master kept a slow or idle connection open"
        );
    }
    // Meanwhile it serves everyone else.
    assert_eq!(
        master.get("/master/health").await.map(|r| r.status),
        Ok(200)
    );
}

#[tokio::test]
async fn protobuf_subscribe_streams_protobuf_events() {
    let master = MasterProcess::start(&[]).await;
    let call = sched::Call {
        r#type: Some(sched::call::Type::Subscribe as i32),
        subscribe: Some(sched::call::Subscribe {
            framework_info: pb::FrameworkInfo {
                user: "root".into(),
                name: "proto".into(),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let (status, headers, body) = open_stream(
        master.port,
        "/api/v1/scheduler",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Accept", "application/x-protobuf"),
        ],
        Bytes::from(call.encode_to_vec()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/x-protobuf")
    );
    let mut records = spawn_raw_reader(body);
    let first = tokio::time::timeout(DEADLINE, records.recv())
        .await
        .expect("a record")
        .expect("open");
    let event = sched::Event::decode(first).expect("a protobuf Event");
    assert_eq!(event.r#type, Some(sched::event::Type::Subscribed as i32));
    let second = tokio::time::timeout(DEADLINE, records.recv())
        .await
        .expect("a record")
        .expect("open");
    let event = sched::Event::decode(second).expect("a protobuf Event");
    assert_eq!(event.r#type, Some(sched::event::Type::Heartbeat as i32));
}

#[tokio::test]
async fn operator_subscribers_see_tasks_agents_and_frameworks() {
    let master = MasterProcess::start(&[]).await;
    let (status, _, body) = open_stream(
        master.port,
        "/api/v1",
        &[("Content-Type", "application/json")],
        Bytes::from(json!({"type": "SUBSCRIBE"}).to_string()),
    )
    .await;
    assert_eq!(status, 200);
    let mut raw = spawn_raw_reader(body);
    let first = next_json(&mut raw).await;
    assert_eq!(first["type"], "SUBSCRIBED");
    assert!(first["subscribed"]["get_state"].is_object());

    let mut agent = FakeAgent::register(master.port, "cpus:1;mem:256").await;
    let e = next_json(&mut raw).await;
    assert_eq!(e["type"], "AGENT_ADDED");
    assert_eq!(
        e["agent_added"]["agent"]["agent_info"]["id"]["value"],
        agent.id.as_str()
    );

    let mut sub = master
        .subscribe(json!({"user": "root", "name": "watched", "failover_timeout": 0.0}))
        .await;
    let e = next_json(&mut raw).await;
    assert_eq!(e["type"], "FRAMEWORK_ADDED");
    let offer = offers(&sub.next_of("OFFERS").await)[0].clone();
    master
        .call(
            &sub.stream_id,
            launch_call(&sub.framework_id, &offer, "w", scalars(0.5, 64.0)),
        )
        .await;
    let ToAgent::RunTask(_) = agent.recv().await else {
        panic!("expected RunTask");
    };
    let e = next_json(&mut raw).await;
    assert_eq!(e["type"], "TASK_ADDED");
    assert_eq!(e["task_added"]["task"]["task_id"]["value"], "w");
    assert_eq!(e["task_added"]["task"]["state"], "TASK_STAGING");
    agent.update(&sub.framework_id, "w", pb::TaskState::TaskRunning);
    let e = next_json(&mut raw).await;
    assert_eq!(e["type"], "TASK_UPDATED");
    assert_eq!(e["task_updated"]["state"], "TASK_RUNNING");
}

async fn next_json(raw: &mut tokio::sync::mpsc::UnboundedReceiver<Bytes>) -> Value {
    let record = tokio::time::timeout(DEADLINE, raw.recv())
        .await
        .expect("an event")
        .expect("open");
    serde_json::from_slice(&record).expect("JSON event")
}

#[tokio::test]
async fn files_calls_for_sandboxes_no_agent_holds_answer_404() {
    let master = MasterProcess::start(&[]).await;
    let r = master
        .post_json(
            "/api/v1",
            &json!({"type": "READ_FILE", "read_file": {"path": "/etc/passwd", "offset": 0}}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = master
        .post_json(
            "/api/v1",
            &json!({"type": "LIST_FILES", "list_files": {"path": "/tmp/slaves/no-such-agent/frameworks"}}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
}

#[tokio::test]
async fn authentication_guards_each_realm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let creds = dir.path().join("credentials.json");
    std::fs::write(
        &creds,
        json!({"credentials": [{"principal": "ops", "secret": "s3cret"}]}).to_string(),
    )
    .expect("write credentials");
    let creds_flag = format!("--credentials={}", creds.display());
    let master = MasterProcess::start(&[
        "--authenticate_http_frameworks",
        "--authenticate_http_readonly",
        "--authenticate_http_readwrite",
        &creds_flag,
    ])
    .await;
    let r = master.get("/master/state").await.expect("answer");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Basic realm=\"mesos-master-readonly\"")
    );
    let good = "Basic b3BzOnMzY3JldA=="; // ops:s3cret
    let bad = "Basic b3BzOndyb25n"; // ops:wrong
    let r = request(
        master.port,
        "GET",
        "/master/state",
        &[("Authorization", bad)],
        Bytes::new(),
    )
    .await
    .expect("answer");
    assert_eq!(r.status, 401);
    let r = request(
        master.port,
        "GET",
        "/master/state",
        &[("Authorization", good)],
        Bytes::new(),
    )
    .await
    .expect("answer");
    assert_eq!(r.status, 200);
    let subscribe = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "x", "principal": "ops"}}});
    let r = master.post_json("/api/v1/scheduler", &subscribe).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Basic realm=\"mesos-master-scheduler\"")
    );
    // A principal other than the authenticated one is refused.
    let other = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "x", "principal": "mallory"}}});
    let r = request(
        master.port,
        "POST",
        "/api/v1/scheduler",
        &[
            ("Authorization", good),
            ("Content-Type", "application/json"),
        ],
        Bytes::from(other.to_string()),
    )
    .await
    .expect("answer");
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("does not match principal"),
        "{}",
        r.text()
    );
}
