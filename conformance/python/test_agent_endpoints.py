"""The agent's own HTTP face: /slave(1)/state, the files API and its operator API.

Sources (apache/mesos): src/slave/http.cpp (the state layout: frameworks[].
executors[] with `directory` and tasks[]), src/files/files.cpp (/files/browse
lists FileInfo objects; /files/read answers {"data", "offset"}, and
offset=-1 answers the file's size with no data), include/mesos/v1/agent/
agent.proto (GET_TASKS' launched_tasks, GET_CONTAINERS). Tools such as the
Mesos UI and CLI read sandboxes this way; pymesos's MesosOperatorAgentDriver
drives the v1 agent API.
"""

import json
import urllib.parse

import pytest
from pymesos import MesosOperatorAgentDriver

import pando_harness as h


@pytest.fixture
def sandboxed(cluster):
    """A running command task that wrote a line to its stdout."""
    s = h.RawScheduler(cluster.port, name="sandboxed")
    offer = s.next_offers()[0]
    s.accept_launch(offer, [h.command_task("sbx", offer, "echo hello-sandbox; sleep 300")])
    s.wait_task_state("sbx", "TASK_RUNNING")
    yield cluster, s
    s.close()


def agent_state(agent):
    resp = h.get(agent.port, "/slave(1)/state")
    assert resp.status == 200, resp
    return resp.json()


def test_agent_health(cluster):
    assert h.get(cluster.agents[0].port, "/slave(1)/health").status == 200


def test_agent_state_layout(sandboxed):
    cluster, s = sandboxed
    agent = cluster.agents[0]
    state = agent_state(agent)
    assert state["id"] == agent.id
    assert state["hostname"]
    assert state["version"] == h.get(cluster.port, "/version").json()["version"]
    assert state["resources"]["cpus"] == 2
    assert state["resources"]["mem"] == 1024
    assert state["resources"]["ports"] == "[31000-31100]"
    assert state["flags"]["work_dir"] == str(agent.work_dir)
    [fw] = [f for f in state["frameworks"] if f["id"] == s.framework_id]
    assert fw["name"] == "sandboxed"
    [executor] = fw["executors"]
    # A command task's executor is named after the task.
    assert executor["id"] == "sbx"
    assert [t["id"] for t in executor["tasks"]] == ["sbx"]
    assert executor["tasks"][0]["state"] == "TASK_RUNNING"
    assert executor["directory"].startswith(str(agent.work_dir) + "/slaves/" + agent.id
                                            + "/frameworks/" + s.framework_id
                                            + "/executors/sbx/runs/")
    alias = h.get(agent.port, "/slave(1)/state.json")
    assert alias.status == 200 and alias.json()["id"] == agent.id


def test_files_browse_and_read_the_sandbox(sandboxed):
    cluster, s = sandboxed
    agent = cluster.agents[0]
    [fw] = [f for f in agent_state(agent)["frameworks"] if f["id"] == s.framework_id]
    directory = fw["executors"][0]["directory"]
    q = urllib.parse.quote

    listing = h.get(agent.port, f"/files/browse?path={q(directory)}")
    assert listing.status == 200
    entries = {e["path"]: e for e in listing.json()}
    assert f"{directory}/stdout" in entries and f"{directory}/stderr" in entries
    entry = entries[f"{directory}/stdout"]
    for key in ("mode", "nlink", "size", "mtime", "uid", "gid"):
        assert key in entry, key

    def read():
        r = h.get(agent.port, f"/files/read?path={q(directory + '/stdout')}&offset=0")
        assert r.status == 200
        body = r.json()
        return body if "hello-sandbox" in body["data"] else None

    body = h.wait_until(read, 10, "hello-sandbox in the task's stdout")
    assert body["offset"] == 0
    size = h.get(agent.port, f"/files/read?path={q(directory + '/stdout')}&offset=-1").json()
    assert size["data"] == ""
    assert size["offset"] >= len("hello-sandbox\n")
    part = h.get(agent.port,
                 f"/files/read?path={q(directory + '/stdout')}&offset=6&length=7").json()
    assert part == {"data": "sandbox", "offset": 6}

    assert h.get(agent.port, "/files/read").status == 400
    assert h.get(agent.port, f"/files/read?path={q(directory + '/no-such-file')}").status == 404


def test_master_files_calls_reach_the_agent_that_holds_the_sandbox(sandboxed):
    """LIST_FILES and READ_FILE on the master's operator API name a sandbox
    path; the master forwards them to that path's agent (Mesos's
    master/http.cpp listFiles/readFile go through the agent's files
    process) and answers in the encoding the client asked for."""
    import base64

    cluster, s = sandboxed
    agent = cluster.agents[0]
    [fw] = [f for f in agent_state(agent)["frameworks"] if f["id"] == s.framework_id]
    directory = fw["executors"][0]["directory"]

    listing = h.post_json(cluster.port, "/api/v1",
                          {"type": "LIST_FILES", "list_files": {"path": directory}})
    assert listing.status == 200, listing
    body = listing.json()
    assert body["type"] == "LIST_FILES"
    paths = {f["path"] for f in body["list_files"]["file_infos"]}
    assert f"{directory}/stdout" in paths and f"{directory}/stderr" in paths, paths

    def read():
        r = h.post_json(cluster.port, "/api/v1",
                        {"type": "READ_FILE",
                         "read_file": {"path": directory + "/stdout", "offset": 0}})
        assert r.status == 200, r
        data = base64.b64decode(r.json()["read_file"]["data"])
        return r.json() if b"hello-sandbox" in data else None

    answer = h.wait_until(read, 10, "hello-sandbox through the master's READ_FILE")
    assert answer["type"] == "READ_FILE"
    assert answer["read_file"]["size"] >= len("hello-sandbox\n")

    # A path inside the agent's tree that does not exist is the agent's 404.
    missing = h.post_json(cluster.port, "/api/v1",
                          {"type": "READ_FILE",
                           "read_file": {"path": directory + "/no-such-file", "offset": 0}})
    assert missing.status == 404, missing


def test_pymesos_agent_operator_driver(sandboxed):
    cluster, s = sandboxed
    agent = cluster.agents[0]
    op = MesosOperatorAgentDriver(agent.address)
    assert op.getHealth() == {"type": "GET_HEALTH", "get_health": {"healthy": True}}

    tasks = op.getTasks()
    assert tasks["type"] == "GET_TASKS"
    assert [t["task_id"]["value"] for t in tasks["get_tasks"]["launched_tasks"]] == ["sbx"]

    state = op.getState()["get_state"]
    assert [t["task_id"]["value"] for t in state["get_tasks"]["launched_tasks"]] == ["sbx"]
    assert [f["framework_info"]["id"]["value"]
            for f in state["get_frameworks"]["frameworks"]] == [s.framework_id]
    assert [e["executor_info"]["executor_id"]["value"]
            for e in state["get_executors"]["executors"]] == ["sbx"]

    containers = op.getContainers()["get_containers"]["containers"]
    [c] = containers
    assert c["framework_id"]["value"] == s.framework_id
    assert c["executor_id"]["value"] == "sbx"
    assert c["container_id"]["value"]


def test_agent_state_jsonp(cluster):
    # OK(json, jsonp) in libprocess: `cb(<json>)` as text/javascript, no ';'.
    agent = cluster.agents[0]
    resp = h.get(agent.port, "/slave(1)/state?jsonp=cb")
    assert resp.status == 200
    assert resp.header("Content-Type") == "text/javascript"
    body = resp.text()
    assert body.startswith("cb(") and body.endswith(")"), body[-20:]
    assert json.loads(body[3:-1])["id"] == agent.id


def test_agent_metrics_snapshot(sandboxed):
    # src/slave/metrics.cpp names, under slave/.
    cluster, s = sandboxed
    metrics = h.get(cluster.agents[0].port, "/metrics/snapshot").json()
    assert metrics["slave/registered"] == 1
    assert metrics["slave/uptime_secs"] > 0
    assert metrics["slave/tasks_running"] == 1
    assert metrics["slave/executors_running"] == 1
    assert metrics["slave/frameworks_active"] == 1
    assert metrics["slave/cpus_total"] == 2
    assert metrics["slave/mem_total"] == 1024
    # The task's 0.1, plus the command executor's own 0.1 where the agent
    # accounts it (Mesos's DEFAULT_EXECUTOR_CPUS).
    assert 0.1 - 1e-9 <= metrics["slave/cpus_used"] <= 0.2 + 1e-9
    assert all(isinstance(v, (int, float)) for v in metrics.values())


def test_task_updates_and_state_carry_the_container_status(sandboxed):
    """Every update of a live task says which container runs it, the
    executor's pid and the task's IP (host networking: the agent's), as
    Mesos's agent sets `container_status` (see the UPDATE events in
    ../shared/fixtures/mesos-1.12/scheduler_events.json); /master/state
    shows the same without the pid (master_state_running.json there)."""
    cluster, s = sandboxed
    [running] = [u for u in s.seen["sbx"] if u["state"] == "TASK_RUNNING"]
    container = running["container_status"]
    assert container["container_id"]["value"]
    assert isinstance(container["executor_pid"], int)
    assert container["network_infos"] == [
        {"ip_addresses": [{"protocol": "IPv4", "ip_address": "127.0.0.1"}]}]

    state = cluster.master.state()
    [fw] = [f for f in state["frameworks"] if f["id"] == s.framework_id]
    [task] = [t for t in fw["tasks"] if t["id"] == "sbx"]
    shown = task["statuses"][-1]["container_status"]
    assert shown == {"container_id": container["container_id"],
                     "network_infos": container["network_infos"]}
