//! `pando-scheduler`'s Driver against a real `pando master` process, over
//! the HTTP transport in both encodings: it subscribes, its calls are
//! answered, a refusal comes back with the master's reason, a
//! reconciliation is answered on the stream, and a master restart is a
//! re-subscription of the same framework.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pando_proto::codec::ContentType;
use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::scheduler::call;
use pando_scheduler::{Config, Driver, DriverError, HttpTransport, Incoming};
use support::{free_port, request, MasterProcess, DEADLINE};
use tokio::sync::mpsc;

fn framework() -> pb::FrameworkInfo {
    pb::FrameworkInfo {
        user: "root".into(),
        name: "driver-test".into(),
        failover_timeout: Some(3600.0),
        ..Default::default()
    }
}

/// Starts (or restarts) a master on `port` over `dir` and waits until it
/// answers.
async fn master(port: u16, dir: &Path) -> MasterProcess {
    let master = MasterProcess::spawn(port, &dir.join("work"), &dir.join("master.log"), &[]);
    let start = Instant::now();
    while !request(port, "GET", "/health", &[], Bytes::new())
        .await
        .is_ok_and(|r| r.status == 200)
    {
        assert!(start.elapsed() < DEADLINE, "the master did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    master
}

/// SUBSCRIBED, as (framework id, whether it is a re-subscription).
fn subscribed(item: Incoming) -> Option<(pb::FrameworkId, bool)> {
    match item {
        Incoming::Subscribed {
            framework_id,
            reregistered,
            ..
        } => Some((framework_id, reregistered)),
        _ => None,
    }
}

/// The next item the driver hands over that `wanted` picks.
async fn next<T>(
    incoming: &mut mpsc::UnboundedReceiver<Incoming>,
    wanted: impl Fn(Incoming) -> Option<T>,
) -> T {
    support::next_incoming(incoming, DEADLINE, "what was expected", wanted).await
}

async fn a_framework_lives_through_a_master_restart(content_type: ContentType) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut first = master(port, dir.path()).await;
    let transport = HttpTransport::new(&format!("127.0.0.1:{port}"), content_type)
        .expect("an address")
        .with_timeout(Duration::from_secs(5));
    let (driver, mut incoming) = Driver::start(Config::new(framework()), transport);
    let (framework_id, reregistered) = next(&mut incoming, subscribed).await;
    assert!(!reregistered);

    driver.revive(vec![]).await.expect("REVIVE is accepted");

    // A call the master refuses comes back with its reason.
    let bad = pb::TaskStatus {
        task_id: pb::TaskId { value: "t1".into() },
        state: pb::TaskState::TaskRunning as i32,
        agent_id: Some(pb::AgentId { value: "a1".into() }),
        uuid: Some(Bytes::from_static(b"not-a-uuid")),
        ..Default::default()
    };
    match driver.acknowledge(&bad).await {
        Err(DriverError::Refused {
            call,
            status,
            reason,
        }) => {
            assert_eq!((call, status), ("ACKNOWLEDGE", 400));
            assert!(reason.contains("Not a valid UUID"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // A reconciliation is answered on the stream.
    let ghost = pb::TaskId {
        value: "ghost".into(),
    };
    driver
        .reconcile(vec![call::reconcile::Task {
            task_id: ghost.clone(),
            agent_id: None,
        }])
        .await
        .expect("RECONCILE is accepted");
    let state = next(&mut incoming, |item| match item {
        Incoming::Update(status) if status.task_id == ghost => Some(status.state()),
        _ => None,
    })
    .await;
    assert!(
        matches!(
            state,
            pb::TaskState::TaskUnknown | pb::TaskState::TaskLost | pb::TaskState::TaskGone
        ),
        "{state:?}"
    );

    // The master goes away and comes back on the same port: the driver
    // notices and subscribes again as the same framework.
    first.kill();
    next(&mut incoming, |item| {
        matches!(item, Incoming::Disconnected(_)).then_some(())
    })
    .await;
    let _second = master(port, dir.path()).await;
    let (again, reregistered) = next(&mut incoming, subscribed).await;
    assert_eq!(again, framework_id);
    assert!(reregistered);
    assert_eq!(driver.framework_id(), Some(framework_id));

    driver.teardown().await.expect("TEARDOWN is accepted");
    assert_eq!(
        incoming.recv().await,
        None,
        "the driver stops after TEARDOWN"
    );
}

#[tokio::test]
async fn a_json_framework_lives_through_a_master_restart() {
    a_framework_lives_through_a_master_restart(ContentType::Json).await;
}

#[tokio::test]
async fn a_protobuf_framework_lives_through_a_master_restart() {
    a_framework_lives_through_a_master_restart(ContentType::Protobuf).await;
}
