"""The v1 operator API on /api/v1 and /api/v1/operator, over raw HTTP.

Sources (apache/mesos): docs/operator-http-api.md (request and response
shapes), Master::Http::api in src/master/http.cpp (status codes and error
texts), Master::Subscribers::Subscriber in src/master/master.hpp (the
operator stream's heartbeats start one interval after SUBSCRIBED).
"""

import pytest

import pando_harness as h


PATHS = ["/api/v1", "/api/v1/operator"]


def call(port, path, type_, **fields):
    body = {"type": type_}
    body.update(fields)
    return h.post_json(port, path, body)


@pytest.mark.parametrize("path", PATHS)
def test_get_health(master, path):
    resp = call(master.port, path, "GET_HEALTH")
    assert resp.status == 200
    assert resp.header("Content-Type") == "application/json"
    assert resp.json() == {"type": "GET_HEALTH", "get_health": {"healthy": True}}


@pytest.mark.parametrize("path", PATHS)
def test_get_version(master, path):
    resp = call(master.port, path, "GET_VERSION")
    assert resp.status == 200
    body = resp.json()
    assert body["type"] == "GET_VERSION"
    info = body["get_version"]["version_info"]
    assert info["version"] == h.get(master.port, "/version").json()["version"]
    assert isinstance(info["build_date"], str)
    assert isinstance(info["build_user"], str)


@pytest.mark.parametrize("path", PATHS)
def test_get_state_of_an_empty_cluster(master, path):
    resp = call(master.port, path, "GET_STATE")
    assert resp.status == 200
    body = resp.json()
    assert body["type"] == "GET_STATE"
    state = body["get_state"]
    # Every part is present even when empty: tools index into them.
    assert set(state) >= {"get_tasks", "get_executors", "get_frameworks", "get_agents"}
    assert state["get_agents"].get("agents", []) == []


def test_unsupported_content_type_is_415(master):
    resp = h.request(master.port, "POST", "/api/v1", body='{"type": "GET_HEALTH"}',
                     headers={"Content-Type": "text/plain"})
    assert resp.status == 415
    assert resp.text() == (
        "Expecting 'Content-Type' of application/json or application/x-protobuf")


def test_unacceptable_accept_is_406(master):
    resp = h.post_json(master.port, "/api/v1", {"type": "GET_HEALTH"},
                       headers={"Accept": "text/html"})
    assert resp.status == 406
    assert resp.text() == (
        "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'")


def test_malformed_json_is_400(master):
    resp = h.request(master.port, "POST", "/api/v1", body=b"{nope",
                     headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert resp.text().startswith("Failed to parse body into JSON: ")


def test_protobuf_response_when_asked(master):
    resp = h.post_json(master.port, "/api/v1", {"type": "GET_HEALTH"},
                       headers={"Accept": "application/x-protobuf"})
    assert resp.status == 200
    assert resp.header("Content-Type") == "application/x-protobuf"
    # Response{type=GET_HEALTH(1), get_health{healthy=true}}: field 1 varint 1,
    # field 2 length-delimited holding field 1 varint 1.
    assert resp.body == b"\x08\x01\x12\x02\x08\x01"


def test_get_is_405(master):
    resp = h.get(master.port, "/api/v1")
    assert resp.status == 405
    assert resp.header("Allow") == "POST"


def test_cluster_calls_see_agent_framework_and_task(cluster):
    agent = cluster.agents[0]
    s = h.RawScheduler(cluster.port, name="operator-view")
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task("op-task", offer, "sleep 300")])
        s.wait_task_state("op-task", "TASK_RUNNING")

        agents = call(cluster.port, "/api/v1", "GET_AGENTS").json()
        assert agents["type"] == "GET_AGENTS"
        [a] = agents["get_agents"]["agents"]
        assert a["active"] is True
        assert a["agent_info"]["id"]["value"] == agent.id
        assert a["agent_info"]["port"] == agent.port
        names = {r["name"] for r in a["total_resources"]}
        assert {"cpus", "mem", "ports"} <= names

        frameworks = call(cluster.port, "/api/v1", "GET_FRAMEWORKS").json()
        assert frameworks["type"] == "GET_FRAMEWORKS"
        [f] = [f for f in frameworks["get_frameworks"]["frameworks"]
               if f["framework_info"]["id"]["value"] == s.framework_id]
        assert f["active"] is True
        assert f["connected"] is True
        assert f["framework_info"]["name"] == "operator-view"
        assert "nanoseconds" in f["registered_time"]

        tasks = call(cluster.port, "/api/v1", "GET_TASKS").json()
        assert tasks["type"] == "GET_TASKS"
        [t] = tasks["get_tasks"]["tasks"]
        assert t["task_id"]["value"] == "op-task"
        assert t["framework_id"]["value"] == s.framework_id
        assert t["agent_id"]["value"] == agent.id
        assert t["state"] == "TASK_RUNNING"

        state = call(cluster.port, "/api/v1/operator", "GET_STATE").json()["get_state"]
        assert [x["task_id"]["value"] for x in state["get_tasks"]["tasks"]] == ["op-task"]
        assert [x["agent_info"]["id"]["value"] for x in state["get_agents"]["agents"]] == [agent.id]
    finally:
        s.close()


def test_subscribe_streams_state_then_task_events(cluster):
    stream = h.RecordIOStream(cluster.port, "/api/v1", {"type": "SUBSCRIBE"})
    s = None
    try:
        assert stream.status == 200
        assert stream.headers.get("Content-Type") == "application/json"
        assert stream.headers.get("Transfer-Encoding") == "chunked"
        first = stream.next_event(timeout=10)
        assert first["type"] == "SUBSCRIBED"
        subscribed = first["subscribed"]
        assert subscribed["heartbeat_interval_seconds"] == h.HEARTBEAT_INTERVAL_SECONDS
        agents = subscribed["get_state"]["get_agents"]["agents"]
        assert [a["agent_info"]["id"]["value"] for a in agents] == [cluster.agents[0].id]

        s = h.RawScheduler(cluster.port, name="watched")
        # (When the first HEARTBEAT may come is its own case below.)
        added = stream.next_event_of("FRAMEWORK_ADDED", timeout=10)
        info = added["framework_added"]["framework"]["framework_info"]
        assert info["id"]["value"] == s.framework_id

        offer = s.next_offers()[0]
        s.ack_in_background()
        s.accept_launch(offer, [h.command_task("watched-task", offer, "echo hi")])

        task_added = stream.next_event_of("TASK_ADDED", timeout=20, skip=("FRAMEWORK_UPDATED",))
        task = task_added["task_added"]["task"]
        assert task["task_id"]["value"] == "watched-task"
        assert task["framework_id"]["value"] == s.framework_id

        # The master reports each state change it makes; an agent's retried
        # update may carry a later state, so only the end is certain.
        states = []
        while "TASK_FINISHED" not in states:
            ev = stream.next_event_of("TASK_UPDATED", timeout=30,
                                      skip=("FRAMEWORK_UPDATED", "HEARTBEAT"))
            # TaskUpdated is {framework_id, status, state} (master.proto);
            # the JSON sample in operator-http-api.md predates it.
            upd = ev["task_updated"]
            assert upd["status"]["task_id"]["value"] == "watched-task"
            assert upd["framework_id"]["value"] == s.framework_id
            assert upd["status"]["agent_id"]["value"] == cluster.agents[0].id
            states.append(upd["state"])
        assert set(states) <= {"TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"}, states
        assert states[-1] == "TASK_FINISHED"
    finally:
        stream.close()
        if s:
            s.close()


def test_operator_stream_first_heartbeat_waits_an_interval(master):
    # Master::Subscribers::Subscriber builds its heartbeater with
    # delay = DEFAULT_HEARTBEAT_INTERVAL (src/master/master.hpp), unlike the
    # scheduler stream's, which beats at once.
    stream = h.RecordIOStream(master.port, "/api/v1", {"type": "SUBSCRIBE"})
    try:
        assert stream.next_event(timeout=10)["type"] == "SUBSCRIBED"
        try:
            event = stream.next_event(timeout=5)
        except TimeoutError:
            return
        raise AssertionError(f"an event within 5 s of SUBSCRIBED on an idle master: {event}")
    finally:
        stream.close()
