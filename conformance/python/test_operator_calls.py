"""More of the master's v1 operator calls, with the status codes Mesos's code gives.

Sources (apache/mesos): include/mesos/v1/master/master.proto (response
shapes) and src/master/http.cpp / weights_handler.cpp (status codes: the
docs say "202 Accepted" for several writes, but SET_LOGGING_LEVEL,
UPDATE_WEIGHTS and TEARDOWN return OK(), i.e. 200 with an empty body;
RESERVE_RESOURCES returns Accepted()). An unknown framework in TEARDOWN is
400 "No framework found with specified ID" (Master::Http::_teardown).
"""

import pytest

import pando_harness as h


def call(port, type_, **fields):
    body = {"type": type_}
    body.update(fields)
    return h.post_json(port, "/api/v1", body)


def test_get_flags(master):
    resp = call(master.port, "GET_FLAGS")
    assert resp.status == 200
    body = resp.json()
    assert body["type"] == "GET_FLAGS"
    flags = {f["name"]: f.get("value") for f in body["get_flags"]["flags"]}
    assert flags["port"] == str(master.port)
    assert flags["work_dir"] == str(master.master.work_dir)
    assert flags["allocation_interval"] == "100ms"


def test_get_master(master):
    body = call(master.port, "GET_MASTER").json()
    assert body["type"] == "GET_MASTER"
    info = body["get_master"]["master_info"]
    state = master.master.state()
    assert info["id"] == state["id"]
    assert info["port"] == master.port
    assert info["address"]["ip"] == "127.0.0.1"
    assert info["hostname"] == state["hostname"]


def test_get_metrics(master):
    resp = call(master.port, "GET_METRICS", get_metrics={"timeout": {"nanoseconds": 5_000_000_000}})
    assert resp.status == 200
    metrics = {m["name"]: m.get("value", 0) for m in resp.json()["get_metrics"]["metrics"]}
    assert metrics["master/elected"] == 1
    assert "master/uptime_secs" in metrics


def test_set_logging_level_answers_200(master):
    before = call(master.port, "GET_LOGGING_LEVEL").json()
    assert before["type"] == "GET_LOGGING_LEVEL"
    assert isinstance(before["get_logging_level"]["level"], int)
    resp = call(master.port, "SET_LOGGING_LEVEL", set_logging_level={
        "level": 1, "duration": {"nanoseconds": 60_000_000_000}})
    assert resp.status == 200, resp
    assert resp.body == b""


def test_logging_level_round_trip(master):
    resp = call(master.port, "SET_LOGGING_LEVEL", set_logging_level={
        "level": 2, "duration": {"nanoseconds": 60_000_000_000}})
    assert resp.status == 200, resp
    after = call(master.port, "GET_LOGGING_LEVEL").json()
    assert after["get_logging_level"]["level"] == 2


def test_weights_get_and_update(cluster_factory):
    cluster = cluster_factory(agents=0, master_flags={"weights": "r1=2,r2=3"})
    got = call(cluster.port, "GET_WEIGHTS").json()
    assert got["type"] == "GET_WEIGHTS"
    weights = {w["role"]: w["weight"] for w in got["get_weights"].get("weight_infos", [])}
    assert weights == {"r1": 2, "r2": 3}
    resp = call(cluster.port, "UPDATE_WEIGHTS", update_weights={
        "weight_infos": [{"role": "r1", "weight": 5}]})
    assert resp.status == 200, resp
    got = call(cluster.port, "GET_WEIGHTS").json()
    weights = {w["role"]: w["weight"] for w in got["get_weights"]["weight_infos"]}
    assert weights == {"r1": 5, "r2": 3}


def test_get_roles_lists_a_subscribed_role(master):
    s = h.RawScheduler(master.port, name="role-holder", roles=["analytics"],
                       capabilities=("MULTI_ROLE",))
    try:
        body = call(master.port, "GET_ROLES").json()
        assert body["type"] == "GET_ROLES"
        roles = {r["name"]: r for r in body["get_roles"]["roles"]}
        assert "analytics" in roles
        assert roles["analytics"]["weight"] == 1
        assert s.framework_id in [f["value"] for f in roles["analytics"].get("frameworks", [])]
    finally:
        s.close()


def test_operator_teardown(master):
    s = h.RawScheduler(master.port, name="doomed-by-operator")
    try:
        resp = call(master.port, "TEARDOWN", teardown={"framework_id": {"value": s.framework_id}})
        assert resp.status == 200, resp
        state = master.master.state()
        assert s.framework_id in [f["id"] for f in state["completed_frameworks"]]
        unknown = call(master.port, "TEARDOWN", teardown={"framework_id": {"value": "nobody"}})
        assert unknown.status == 400
    finally:
        s.close()


def test_operator_teardown_of_unknown_framework_text(master):
    unknown = call(master.port, "TEARDOWN", teardown={"framework_id": {"value": "nobody"}})
    assert unknown.status == 400
    assert unknown.text() == "No framework found with specified ID"


def test_get_executors_after_a_custom_executor_runs(cluster):
    s = h.RawScheduler(cluster.port, name="with-executor")
    try:
        offer = s.next_offers()[0]
        task = h.command_task("via-default", offer, "sleep 300")
        resp = s.call("ACCEPT", accept={
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH_GROUP", "launch_group": {
                "executor": {"type": "DEFAULT", "executor_id": {"value": "default-exec"},
                             "framework_id": {"value": s.framework_id},
                             "resources": [h.scalar("cpus", 0.1), h.scalar("mem", 32)]},
                "task_group": {"tasks": [task]}}}]})
        assert resp.status == 202
        s.wait_task_state("via-default", "TASK_RUNNING", timeout=60)
        body = call(cluster.port, "GET_EXECUTORS").json()
        assert body["type"] == "GET_EXECUTORS"
        executors = body["get_executors"]["executors"]
        assert [(e["executor_info"]["executor_id"]["value"], e["agent_id"]["value"])
                for e in executors] == [("default-exec", cluster.agents[0].id)]
    finally:
        s.close()
