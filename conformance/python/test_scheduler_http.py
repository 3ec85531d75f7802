"""The v1 scheduler API over raw HTTP, case by case from Mesos's docs.

Sources (apache/mesos): docs/scheduler-http-api.md, docs/recordio.md and
Master::Http::scheduler in src/master/http.cpp, whose error texts are quoted
here; heartbeats from src/master/framework.cpp (Framework::heartbeat) and
src/common/heartbeater.hpp; reconciliation from Master::reconcile in
src/master/master.cpp.
"""

import re
import time
import uuid

import pytest

import pando_harness as h


SCHEDULER = "/api/v1/scheduler"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def subscribe(port, headers=None, **framework):
    return h.RecordIOStream(port, SCHEDULER, h.scheduler_subscribe_call(**framework),
                            headers=headers)


# --- SUBSCRIBE ---------------------------------------------------------------


def test_subscribe_answers_200_chunked_recordio_with_stream_id(master):
    s = subscribe(master.port)
    try:
        assert s.status == 200, s.body
        assert s.headers.get("Content-Type") == "application/json"
        assert s.headers.get("Transfer-Encoding") == "chunked"
        assert s.headers.get("Content-Length") is None
        stream_id = s.stream_id()
        assert stream_id, "no Mesos-Stream-Id header"
        assert len(stream_id) <= 128
        assert UUID_RE.match(stream_id), stream_id

        event = s.next_event(timeout=10)
        assert event["type"] == "SUBSCRIBED", event
        subscribed = event["subscribed"]
        assert subscribed["framework_id"]["value"]
        assert subscribed["heartbeat_interval_seconds"] == h.HEARTBEAT_INTERVAL_SECONDS
        info = subscribed["master_info"]
        assert info["id"]
        assert info["port"] == master.port
        assert info["address"]["ip"] == "127.0.0.1"
        assert info["address"]["port"] == master.port
    finally:
        s.close()


def test_each_subscription_gets_its_own_framework_and_stream(master):
    a = h.RawScheduler(master.port, name="a")
    b = h.RawScheduler(master.port, name="b")
    try:
        assert a.framework_id != b.framework_id
        assert a.stream_id != b.stream_id
        ids = {f["id"]: f for f in master.master.state()["frameworks"]}
        assert ids[a.framework_id]["name"] == "a"
        assert ids[b.framework_id]["name"] == "b"
        assert ids[a.framework_id]["active"] is True
    finally:
        a.close()
        b.close()


def test_heartbeat_follows_subscribed_at_once_then_every_15s(master):
    # Framework::heartbeat starts a heartbeater with no initial delay: the
    # first HEARTBEAT comes right after SUBSCRIBED, then one per interval.
    s = h.RawScheduler(master.port)
    try:
        first = s.stream.next_event(timeout=5)
        assert first == {"type": "HEARTBEAT"}
        t0 = time.monotonic()
        second = s.stream.next_event(timeout=h.HEARTBEAT_INTERVAL_SECONDS + 5)
        elapsed = time.monotonic() - t0
        assert second == {"type": "HEARTBEAT"}
        assert h.HEARTBEAT_INTERVAL_SECONDS - 2 <= elapsed <= h.HEARTBEAT_INTERVAL_SECONDS + 3, elapsed
    finally:
        s.close()


def test_subscribe_with_stream_id_is_400(master):
    s = subscribe(master.port, headers={"Mesos-Stream-Id": str(uuid.uuid4())})
    assert s.status == 400
    assert s.body.decode() == "Subscribe calls should not include the 'Mesos-Stream-Id' header"


def test_subscribe_unacceptable_accept_is_406(master):
    s = subscribe(master.port, headers={"Accept": "text/html"})
    assert s.status == 406
    assert s.body.decode() == (
        "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'")


def test_subscribe_accepts_protobuf_or_json_by_accept_header(master):
    s = subscribe(master.port, headers={"Accept": "application/x-protobuf"})
    try:
        assert s.status == 200
        assert s.headers.get("Content-Type") == "application/x-protobuf"
        record = s.next_record(timeout=10)
        # Event.type = SUBSCRIBED (1) is field 1, a varint: 0x08 0x01.
        assert record[:2] == b"\x08\x01", record[:16]
    finally:
        s.close()


def test_subscribe_missing_required_field_is_400_naming_it(master):
    call = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "no-user"}}}
    resp = h.post_json(master.port, SCHEDULER, call)
    assert resp.status == 400
    assert resp.text().startswith(
        "Failed to convert JSON into Call protobuf: Missing required fields: "), resp
    assert "subscribe.framework_info.user" in resp.text()


# --- Content-Type and body ---------------------------------------------------


def test_unsupported_content_type_is_415(master):
    resp = h.request(master.port, "POST", SCHEDULER,
                     body='{"type": "SUBSCRIBE"}',
                     headers={"Content-Type": "text/plain", "Accept": "application/json"})
    assert resp.status == 415
    assert resp.text() == (
        "Expecting 'Content-Type' of application/json or application/x-protobuf")


def test_missing_content_type_is_400(master):
    resp = h.request(master.port, "POST", SCHEDULER, body=b'{"type": "SUBSCRIBE"}',
                     headers={"Accept": "application/json"})
    assert resp.status == 400
    assert resp.text() == "Expecting 'Content-Type' to be present"


def test_malformed_json_is_400_with_reason(master):
    resp = h.request(master.port, "POST", SCHEDULER, body=b'{"type": "SUBSCRIBE",',
                     headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert resp.text().startswith("Failed to parse body into JSON: "), resp
    assert len(resp.text()) > len("Failed to parse body into JSON: ")


def test_malformed_protobuf_is_400(master):
    resp = h.request(master.port, "POST", SCHEDULER, body=b"\xff\xff\xff\xff",
                     headers={"Content-Type": "application/x-protobuf"})
    assert resp.status == 400
    assert resp.text() == "Failed to parse body into Call protobuf"


def test_unknown_call_type_is_400(master):
    # Call.type is optional, so stout drops an unknown enum name and the
    # call then fails validation for having no type.
    resp = h.post_json(master.port, SCHEDULER, {"type": "NO_SUCH_CALL"})
    assert resp.status == 400
    assert resp.text() == "Failed to validate scheduler::Call: Expecting 'type' to be present"


def test_get_is_405_allowing_post(master):
    resp = h.get(master.port, SCHEDULER)
    assert resp.status == 405
    assert resp.header("Allow") == "POST"


def test_non_subscribe_call_without_framework_id_is_400(master):
    resp = h.post_json(master.port, SCHEDULER, {"type": "REVIVE"})
    assert resp.status == 400
    assert resp.text() == (
        "Failed to validate scheduler::Call: Expecting 'framework_id' to be present")


# --- Mesos-Stream-Id and framework checks ------------------------------------


def test_unknown_framework_is_400(master):
    resp = h.post_json(master.port, SCHEDULER,
                       {"type": "REVIVE", "framework_id": {"value": "no-such-framework"}},
                       headers={"Mesos-Stream-Id": str(uuid.uuid4())})
    assert resp.status == 400
    assert resp.text() == "Framework cannot be found"


def test_missing_stream_id_is_400(master):
    s = h.RawScheduler(master.port)
    try:
        resp = s.call("REVIVE", stream_id=False)
        assert resp.status == 400
        assert resp.text() == (
            "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
    finally:
        s.close()


def test_wrong_stream_id_is_400(master):
    s = h.RawScheduler(master.port)
    try:
        other = str(uuid.uuid4())
        resp = h.post_json(master.port, SCHEDULER,
                           {"type": "REVIVE", "framework_id": {"value": s.framework_id}},
                           headers={"Mesos-Stream-Id": other})
        assert resp.status == 400
        assert resp.text() == (
            f"The stream ID '{other}' included in this request didn't match the stream "
            f"ID currently associated with framework ID {s.framework_id}")
    finally:
        s.close()


@pytest.mark.parametrize("call_type, fields", [
    ("REVIVE", {}),
    ("SUPPRESS", {}),
    ("RECONCILE", {"reconcile": {"tasks": []}}),
    ("DECLINE", {"decline": {"offer_ids": [{"value": "no-such-offer"}]}}),
    ("REQUEST", {"request": {"requests": []}}),
])
def test_non_subscribe_calls_answer_202_with_empty_body(master, call_type, fields):
    s = h.RawScheduler(master.port)
    try:
        resp = s.call(call_type, **fields)
        assert resp.status == 202, resp
        assert resp.body == b""
    finally:
        s.close()


def test_call_after_stream_closed_is_403_not_subscribed(master):
    # A failover timeout keeps the disconnected framework known (with 0 it
    # is removed at the master's next housekeeping tick, and the call gets
    # 400 "Framework cannot be found" instead, as in Mesos).
    s = h.RawScheduler(master.port, failover_timeout=60.0)
    framework_id, stream_id = s.framework_id, s.stream_id
    s.close()

    def disconnected():
        resp = h.post_json(master.port, SCHEDULER,
                           {"type": "REVIVE", "framework_id": {"value": framework_id}},
                           headers={"Mesos-Stream-Id": stream_id})
        if resp.status == 202:
            return None
        return resp

    resp = h.wait_until(disconnected, 10, "the master to notice the closed stream")
    assert resp.status == 403
    assert resp.text() == "Framework is not subscribed"
    framework = next(f for f in master.master.state()["frameworks"] if f["id"] == framework_id)
    assert framework["connected"] is False
    assert framework["active"] is False


def test_teardown_ends_the_stream_and_completes_the_framework(master):
    s = h.RawScheduler(master.port)
    try:
        resp = s.call("TEARDOWN")
        assert resp.status == 202
        with pytest.raises(EOFError):
            s.next_event_of("NONE", timeout=10)
        state = master.master.state()
        assert s.framework_id not in [f["id"] for f in state["frameworks"]]
        assert s.framework_id in [f["id"] for f in state["completed_frameworks"]]
    finally:
        s.close()


def test_resubscribe_with_same_id_fails_over_the_old_stream(master):
    a = h.RawScheduler(master.port, failover_timeout=60)
    b = None
    try:
        b = h.RawScheduler(master.port, id={"value": a.framework_id}, failover_timeout=60)
        assert b.framework_id == a.framework_id
        assert b.stream_id != a.stream_id
        error = a.next_event_of("ERROR", timeout=10)
        assert error["error"]["message"] == "Framework failed over"
        # The old stream id no longer works; the new one does.
        old = h.post_json(master.port, SCHEDULER,
                          {"type": "REVIVE", "framework_id": {"value": a.framework_id}},
                          headers={"Mesos-Stream-Id": a.stream_id})
        assert old.status == 400
        assert b.call("REVIVE").status == 202
    finally:
        a.close()
        if b:
            b.close()


# --- reconciliation of tasks the master never heard of -----------------------


def test_explicit_reconcile_of_unknown_task_is_task_lost(master):
    s = h.RawScheduler(master.port)
    try:
        resp = s.call("RECONCILE", reconcile={"tasks": [{"task_id": {"value": "ghost"}}]})
        assert resp.status == 202
        status = s.next_event_of("UPDATE", timeout=10)["update"]["status"]
        assert status["task_id"] == {"value": "ghost"}
        assert status["state"] == "TASK_LOST"
        assert status["reason"] == "REASON_RECONCILIATION"
        assert status["source"] == "SOURCE_MASTER"
        # Master-generated reconciliation updates carry no uuid: nothing to ack.
        assert "uuid" not in status
    finally:
        s.close()


def test_explicit_reconcile_of_unknown_task_is_task_unknown_when_partition_aware(master):
    s = h.RawScheduler(master.port, capabilities=("PARTITION_AWARE",))
    try:
        resp = s.call("RECONCILE", reconcile={"tasks": [{"task_id": {"value": "ghost"}}]})
        assert resp.status == 202
        status = s.next_event_of("UPDATE", timeout=10)["update"]["status"]
        assert status["task_id"] == {"value": "ghost"}
        assert status["state"] == "TASK_UNKNOWN"
        assert status["reason"] == "REASON_RECONCILIATION"
    finally:
        s.close()


# --- disconnection and failover_timeout ---------------------------------------


def test_offers_of_a_disconnected_framework_go_to_others(cluster):
    # Master::deactivate rescinds a framework's outstanding offers, so another
    # framework is offered the agent without waiting for any offer timeout.
    a = h.RawScheduler(cluster.port, name="holder")
    offer = a.next_offers()[0]
    assert offer["agent_id"]["value"] == cluster.agents[0].id
    a.close()  # holds the offer, then goes away
    b = h.RawScheduler(cluster.port, name="newcomer")
    try:
        offers = b.next_offers(timeout=15)
        assert offers[0]["agent_id"]["value"] == cluster.agents[0].id
        cpus = sum(r["scalar"]["value"] for r in offers[0]["resources"] if r["name"] == "cpus")
        assert cpus == 2
    finally:
        b.close()


def test_failover_timeout_expiry_kills_tasks_and_removes_the_framework(cluster):
    s = h.RawScheduler(cluster.port, name="short-lived", failover_timeout=1)
    offer = s.next_offers()[0]
    s.accept_launch(offer, [h.command_task("orphan", offer, "sleep 300")])
    s.wait_task_state("orphan", "TASK_RUNNING")
    framework_id = s.framework_id
    s.close()

    def removed():
        state = cluster.master.state()
        done = [f for f in state["completed_frameworks"] if f["id"] == framework_id]
        return done[0] if done else None

    framework = h.wait_until(removed, 20, "the framework to be removed after failover_timeout")
    assert framework_id not in [f["id"] for f in cluster.master.state()["frameworks"]]
    assert [t["state"] for t in framework["completed_tasks"] if t["id"] == "orphan"] == ["TASK_KILLED"]


# --- operation reconciliation --------------------------------------------------


def test_reconcile_operations_of_an_unknown_operation(master):
    # Master::reconcileOperations, case (7): an unknown operation with no
    # agent id is OPERATION_UNKNOWN, sent as UPDATE_OPERATION_STATUS without
    # a uuid; the call itself is 202.
    s = h.RawScheduler(master.port)
    try:
        resp = s.call("RECONCILE_OPERATIONS", reconcile_operations={
            "operations": [{"operation_id": {"value": "ghost-op"}}]})
        assert resp.status == 202, resp
        event = s.next_event_of("UPDATE_OPERATION_STATUS", timeout=10)
        status = event["update_operation_status"]["status"]
        assert status["operation_id"] == {"value": "ghost-op"}
        assert status["state"] == "OPERATION_UNKNOWN"
        assert "uuid" not in status
    finally:
        s.close()


def test_reconcile_operations_checks_accept(master):
    # Master::Http::scheduler negotiates the response type for SUBSCRIBE and
    # RECONCILE_OPERATIONS only, so only these two can be 406.
    s = h.RawScheduler(master.port)
    try:
        resp = h.post_json(
            master.port, SCHEDULER,
            {"type": "RECONCILE_OPERATIONS", "framework_id": {"value": s.framework_id},
             "reconcile_operations": {"operations": []}},
            headers={"Mesos-Stream-Id": s.stream_id, "Accept": "text/html"})
        assert resp.status == 406
        revive = h.post_json(master.port, SCHEDULER,
                             {"type": "REVIVE", "framework_id": {"value": s.framework_id}},
                             headers={"Mesos-Stream-Id": s.stream_id, "Accept": "text/html"})
        assert revive.status == 202
    finally:
        s.close()
