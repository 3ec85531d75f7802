"""The legacy JSON endpoints tools poll: /master/state, its aliases, jsonp,
/version, /master/health and /metrics/snapshot.

Sources (apache/mesos): Master::ReadOnlyHandler::state in
src/master/readonly_handler.cpp (the keys and their order of nesting),
json(Task)/json(SlaveInfo) in src/common/http.cpp, OK(JSON, jsonp) in
3rdparty/libprocess/src/http.cpp (`cb(<json>)` as text/javascript),
src/version/version.cpp and src/master/metrics.cpp.
"""

import json

import pytest

import pando_harness as h


def test_health_is_200(master):
    resp = h.get(master.port, "/master/health")
    assert resp.status == 200


def test_state_top_level_layout(master):
    resp = h.get(master.port, "/master/state")
    assert resp.status == 200
    assert resp.header("Content-Type") == "application/json"
    state = resp.json()
    assert isinstance(state["version"], str) and state["version"].startswith("1.")
    assert isinstance(state["id"], str) and state["id"]
    assert state["pid"] == f"master@127.0.0.1:{master.port}"
    assert isinstance(state["hostname"], str) and state["hostname"]
    # The only master elects itself: it is the leader and says so.
    assert state["leader"] == state["pid"]
    assert state["leader_info"]["id"] == state["id"]
    assert state["leader_info"]["port"] == master.port
    for key in ("build_date", "build_user"):
        assert isinstance(state[key], str)
    for key in ("build_time", "start_time", "elected_time"):
        assert isinstance(state[key], (int, float))
    for key in ("activated_slaves", "deactivated_slaves", "unreachable_slaves"):
        assert state[key] == 0, key
    for key in ("slaves", "recovered_slaves", "frameworks", "completed_frameworks",
                "orphan_tasks", "unregistered_frameworks"):
        assert isinstance(state[key], list), key
    # Flags are strings keyed by their Mesos names.
    flags = state["flags"]
    assert flags["port"] == str(master.port)
    assert flags["ip"] == "127.0.0.1"
    assert flags["work_dir"] == str(master.master.work_dir)
    assert flags["allocation_interval"] == "100ms"


@pytest.mark.parametrize("alias", ["/master/state.json", "/state.json"])
def test_state_json_aliases(master, alias):
    canonical = h.get(master.port, "/master/state").json()
    resp = h.get(master.port, alias)
    assert resp.status == 200
    assert resp.header("Content-Type") == "application/json"
    state = resp.json()
    assert state["id"] == canonical["id"]
    assert set(state) == set(canonical)


@pytest.mark.parametrize("path", ["/master/state", "/version", "/metrics/snapshot"])
def test_jsonp_wraps_the_body_as_javascript(master, path):
    resp = h.get(master.port, path + "?jsonp=cb")
    assert resp.status == 200
    assert resp.header("Content-Type") == "text/javascript"
    body = resp.text()
    assert body.startswith("cb(") and body.endswith(")"), body[:80]
    inner = json.loads(body[3:-1])
    assert isinstance(inner, dict) and inner


def test_version_endpoint(master):
    resp = h.get(master.port, "/version")
    assert resp.status == 200
    assert resp.header("Content-Type") == "application/json"
    version = resp.json()
    # pymesos reads `version` and enables its v1 behaviour for 1.x.
    assert version["version"].split(".")[0] == "1"
    assert tuple(int(n) for n in version["version"].split(".")) >= (1, 0, 0)
    assert isinstance(version["build_date"], str)
    assert isinstance(version["build_time"], (int, float))
    assert isinstance(version["build_user"], str)
    assert version["version"] == h.get(master.port, "/master/state").json()["version"]


def test_metrics_snapshot_keys(master):
    resp = h.get(master.port, "/metrics/snapshot")
    assert resp.status == 200
    assert resp.header("Content-Type") == "application/json"
    metrics = resp.json()
    assert metrics["master/elected"] == 1
    assert metrics["master/uptime_secs"] > 0
    for key in ("master/frameworks_active", "master/frameworks_connected",
                "master/slaves_active", "master/slaves_connected",
                "master/tasks_running", "master/tasks_finished", "master/tasks_failed",
                "master/tasks_killed", "master/tasks_lost", "master/outstanding_offers",
                "master/cpus_total", "master/cpus_used", "master/mem_total", "master/mem_used",
                "master/disk_total", "master/disk_used",
                "allocator/mesos/allocation_runs", "allocator/mesos/allocation_run_ms"):
        assert key in metrics, key
        assert isinstance(metrics[key], (int, float)), key
    assert all(isinstance(v, (int, float)) for v in metrics.values())


def test_state_with_an_agent_and_a_running_task(cluster):
    agent = cluster.agents[0]
    s = h.RawScheduler(cluster.port, name="state-layout")
    try:
        offer = s.next_offers()[0]
        assert offer["agent_id"]["value"] == agent.id
        s.accept_launch(offer, [h.command_task("sleeper", offer, "sleep 300", cpus=0.5, mem=64)])
        s.wait_task_state("sleeper", "TASK_RUNNING")

        state = cluster.master.state()
        assert state["activated_slaves"] == 1

        [slave] = state["slaves"]
        assert slave["id"] == agent.id
        assert slave["port"] == agent.port
        assert isinstance(slave["hostname"], str) and slave["hostname"]
        assert slave["active"] is True
        # Resources are an object: scalars as numbers, ranges as text.
        assert slave["resources"]["cpus"] == 2
        assert slave["resources"]["mem"] == 1024
        assert slave["resources"]["ports"] == "[31000-31100]"
        assert slave["used_resources"]["cpus"] == pytest.approx(0.5)
        assert slave["used_resources"]["mem"] == pytest.approx(64)

        [framework] = [f for f in state["frameworks"] if f["id"] == s.framework_id]
        assert framework["name"] == "state-layout"
        assert framework["active"] is True
        assert framework["connected"] is True
        [task] = framework["tasks"]
        assert task["id"] == "sleeper"
        assert task["name"] == "sleeper"
        assert task["framework_id"] == s.framework_id
        assert task["slave_id"] == agent.id
        assert task["state"] == "TASK_RUNNING"
        assert task["resources"]["cpus"] == pytest.approx(0.5)
        assert task["resources"]["mem"] == pytest.approx(64)
        assert "TASK_RUNNING" in [st["state"] for st in task["statuses"]]
        assert all(isinstance(st["timestamp"], (int, float)) for st in task["statuses"])

        metrics = h.get(cluster.port, "/metrics/snapshot").json()
        assert metrics["master/tasks_running"] == 1
        assert metrics["master/slaves_active"] == 1
        assert metrics["master/frameworks_active"] >= 1
        assert metrics["master/cpus_total"] == 2
        assert metrics["master/cpus_used"] == pytest.approx(0.5)
        assert metrics["master/mem_total"] == 1024
    finally:
        s.close()


def test_agent_pid_is_slave1_at_its_ip_and_port(cluster):
    # libprocess names the agent's process slave(1) at the address it binds
    # (--ip), not at its hostname; tools parse host:port out of it.
    agent = cluster.agents[0]
    [slave] = cluster.master.state()["slaves"]
    assert slave["pid"] == f"slave(1)@127.0.0.1:{agent.port}"
    agents = h.post_json(cluster.port, "/api/v1", {"type": "GET_AGENTS"}).json()
    assert agents["get_agents"]["agents"][0]["pid"] == slave["pid"]


def test_slaves_frameworks_and_tasks_endpoints(cluster):
    # ReadOnlyHandler::{slaves,frameworks,tasks}: the same objects as in
    # /master/state, under their own top-level keys.
    agent = cluster.agents[0]
    s = h.RawScheduler(cluster.port, name="lists")
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task("l1", offer, "sleep 300", cpus=0.1),
                                h.command_task("l2", offer, "sleep 300", cpus=0.1)])
        s.wait_task_state("l1", "TASK_RUNNING")
        s.wait_task_state("l2", "TASK_RUNNING")

        slaves = h.get(cluster.port, "/master/slaves").json()
        assert set(slaves) >= {"slaves", "recovered_slaves"}
        assert [x["id"] for x in slaves["slaves"]] == [agent.id]
        assert slaves["slaves"][0]["resources"]["cpus"] == 2

        frameworks = h.get(cluster.port, "/master/frameworks").json()
        assert set(frameworks) >= {"frameworks", "completed_frameworks", "unregistered_frameworks"}
        [fw] = [f for f in frameworks["frameworks"] if f["id"] == s.framework_id]
        assert sorted(t["id"] for t in fw["tasks"]) == ["l1", "l2"]
        only = h.get(cluster.port, f"/master/frameworks?framework_id={s.framework_id}").json()
        assert [f["id"] for f in only["frameworks"]] == [s.framework_id]

        tasks = h.get(cluster.port, "/master/tasks").json()
        assert sorted(t["id"] for t in tasks["tasks"]) == ["l1", "l2"]
        assert all(t["framework_id"] == s.framework_id and t["slave_id"] == agent.id
                   for t in tasks["tasks"])
        for alias in ("/master/slaves.json", "/master/tasks.json", "/master/frameworks.json"):
            assert h.get(cluster.port, alias).status == 200, alias
    finally:
        s.close()


def test_tasks_endpoint_filters_and_pages(cluster):
    # ReadOnlyHandler::tasks: framework_id and task_id select; limit and
    # offset page.
    s = h.RawScheduler(cluster.port, name="paging")
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task(f"p{i}", offer, "sleep 300", cpus=0.1)
                                for i in range(3)])
        for i in range(3):
            s.wait_task_state(f"p{i}", "TASK_RUNNING")
        one = h.get(cluster.port, "/master/tasks?task_id=p2").json()
        assert [t["id"] for t in one["tasks"]] == ["p2"]
        mine = h.get(cluster.port, f"/master/tasks?framework_id={s.framework_id}").json()
        assert len(mine["tasks"]) == 3
        none = h.get(cluster.port, "/master/tasks?framework_id=nobody").json()
        assert none["tasks"] == []
        assert len(h.get(cluster.port, "/master/tasks?limit=2").json()["tasks"]) == 2
        assert len(h.get(cluster.port, "/master/tasks?limit=1&offset=1").json()["tasks"]) == 1
        assert h.get(cluster.port, "/master/tasks?offset=3").json()["tasks"] == []
    finally:
        s.close()


def test_redirect_points_at_the_leader(master):
    # Master::Http::redirect: a protocol-relative URL to the leading master,
    # "//<hostname>:<port>", with 307 Temporary Redirect.
    state = master.master.state()
    resp = h.get(master.port, "/master/redirect")
    assert resp.status == 307
    assert resp.header("Location") == f"//{state['hostname']}:{master.port}"


def test_state_summary(cluster):
    # ReadOnlyHandler::stateSummary: hostname and cluster, slaves with their
    # resources, task counts by state and framework_ids; frameworks with
    # their counts and slave_ids.
    agent = cluster.agents[0]
    s = h.RawScheduler(cluster.port, name="summarized")
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task("counted", offer, "sleep 300")])
        s.wait_task_state("counted", "TASK_RUNNING")
        summary = h.get(cluster.port, "/master/state-summary").json()
        assert summary["hostname"] == cluster.master.state()["hostname"]
        [slave] = summary["slaves"]
        assert slave["id"] == agent.id
        assert slave["resources"]["cpus"] == 2
        assert slave["TASK_RUNNING"] == 1
        assert slave["framework_ids"] == [s.framework_id]
        [fw] = [f for f in summary["frameworks"] if f["id"] == s.framework_id]
        assert fw["name"] == "summarized"
        assert fw["TASK_RUNNING"] == 1
        # Every count is written, zeros included.
        assert fw["TASK_FINISHED"] == 0 and slave["TASK_FINISHED"] == 0
        assert fw["slave_ids"] == [agent.id]
    finally:
        s.close()


def test_roles_endpoint(cluster):
    s = h.RawScheduler(cluster.port, name="in-a-role", roles=["ml"], capabilities=("MULTI_ROLE",))
    try:
        roles = h.get(cluster.port, "/master/roles").json()
        by_name = {r["name"]: r for r in roles["roles"]}
        assert "ml" in by_name
        assert by_name["ml"]["weight"] == 1
        assert s.framework_id in by_name["ml"]["frameworks"]
    finally:
        s.close()
