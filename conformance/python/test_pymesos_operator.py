"""pymesos.operator_v1 (MesosOperatorMasterDriver) against Pando's master.

pymesos posts to /api/v1/operator and, for SUBSCRIBE, keeps the RecordIO
stream open and calls an OperatorMaster's taskAdded/taskUpdated/
frameworkAdded/agentAdded. Shapes from docs/operator-http-api.md.
"""

import threading
import time

import pytest
from pymesos import MesosOperatorMasterDriver, MesosSchedulerDriver, OperatorMaster

import conftest
from pymesos_support import RecordingScheduler, TaskQueue, command_task, framework_info, stop_driver


class RecordingOperator(OperatorMaster):
    def __init__(self):
        self.cv = threading.Condition()
        self.events = []

    def _record(self, kind, data):
        with self.cv:
            self.events.append((kind, data))
            self.cv.notify_all()

    def taskAdded(self, task_info):
        self._record("task_added", task_info)

    def taskUpdated(self, task_info):
        self._record("task_updated", task_info)

    def frameworkAdded(self, framework_info):
        self._record("framework_added", framework_info)

    def frameworkUpdated(self, framework_info):
        self._record("framework_updated", framework_info)

    def frameworkRemoved(self, framework_info):
        self._record("framework_removed", framework_info)

    def agentAdded(self, agent_info):
        self._record("agent_added", agent_info)

    def agentRemoved(self, agent_id):
        self._record("agent_removed", agent_id)

    def wait_for(self, kind, predicate=lambda e: True, timeout=30.0):
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for k, data in self.events:
                    if k == kind and predicate(data):
                        return data
                conftest.check_driver_errors()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {kind} within {timeout}s; saw {[k for k, _ in self.events]}")
                self.cv.wait(min(left, 0.2))


@pytest.fixture
def running_task(cluster):
    """A pymesos framework with one `sleep` task running on the cluster."""
    sched = RecordingScheduler()
    sched.offer_policy = TaskQueue([command_task("op-sleeper", "sleep 300")])
    driver = MesosSchedulerDriver(sched, framework_info("operator-target"), cluster.address,
                                  use_addict=True)
    driver.start()
    try:
        sched.wait_task_state("op-sleeper", "TASK_RUNNING", check=cluster.check_alive)
        yield driver
    finally:
        stop_driver(driver)


def test_get_state_agents_frameworks_tasks(cluster, running_task):
    framework_id = running_task.framework_id
    agent = cluster.agents[0]
    op = MesosOperatorMasterDriver(cluster.address)

    state = op.getState()
    assert state["type"] == "GET_STATE"
    get_state = state["get_state"]
    assert [t["task_id"]["value"] for t in get_state["get_tasks"]["tasks"]] == ["op-sleeper"]
    assert [a["agent_info"]["id"]["value"] for a in get_state["get_agents"]["agents"]] == [agent.id]
    assert framework_id in [f["framework_info"]["id"]["value"]
                            for f in get_state["get_frameworks"]["frameworks"]]

    agents = op.getAgents()
    assert agents["type"] == "GET_AGENTS"
    [a] = agents["get_agents"]["agents"]
    assert a["agent_info"]["id"]["value"] == agent.id
    assert a["active"] is True

    frameworks = op.getFrameworks()
    assert frameworks["type"] == "GET_FRAMEWORKS"
    [f] = [f for f in frameworks["get_frameworks"]["frameworks"]
           if f["framework_info"]["id"]["value"] == framework_id]
    assert f["framework_info"]["name"] == "operator-target"
    assert f["active"] is True and f["connected"] is True

    tasks = op.getTasks()
    assert tasks["type"] == "GET_TASKS"
    [t] = tasks["get_tasks"]["tasks"]
    assert t["task_id"]["value"] == "op-sleeper"
    assert t["state"] == "TASK_RUNNING"
    assert t["framework_id"]["value"] == framework_id
    assert t["agent_id"]["value"] == agent.id

    health = op.getHealth()
    assert health == {"type": "GET_HEALTH", "get_health": {"healthy": True}}


def test_subscribe_sees_task_added_and_updated(cluster):
    operator = RecordingOperator()
    op = MesosOperatorMasterDriver(cluster.address, operator=operator, use_addict=True)
    op.start()
    sched = RecordingScheduler()
    driver = None
    try:
        # Wait until pymesos holds the stream (it sets stream_id on the 200).
        from pando_harness import wait_until
        wait_until(lambda: op.stream_id is not None, 10, "the operator SUBSCRIBE stream",
                   check=conftest.check_driver_errors)

        sched.offer_policy = TaskQueue([command_task("watched", "sleep 1")])
        driver = MesosSchedulerDriver(sched, framework_info("watched-framework"),
                                      cluster.address, use_addict=True)
        driver.start()
        sched.wait_task_state("watched", "TASK_FINISHED", check=cluster.check_alive)

        fw = operator.wait_for("framework_added")
        assert fw.framework_info.name == "watched-framework"
        assert fw.framework_info.id.value == driver.framework_id

        added = operator.wait_for("task_added", lambda t: t.task_id.value == "watched")
        assert added.framework_id.value == driver.framework_id
        assert added.agent_id.value == cluster.agents[0].id

        # pymesos hands over TaskUpdated as is: {framework_id, status, state}.
        finished = operator.wait_for(
            "task_updated",
            lambda u: u.status.task_id.value == "watched" and u.state == "TASK_FINISHED")
        assert finished.framework_id.value == driver.framework_id
        assert finished.status.agent_id.value == cluster.agents[0].id
        # TASK_ADDED precedes every TASK_UPDATED of the task.

        def task_of(kind, data):
            return (data.task_id if kind == "task_added" else data.status.task_id).value

        kinds = [k for k, d in operator.events
                 if k.startswith("task_") and task_of(k, d) == "watched"]
        assert kinds[0] == "task_added", kinds
    finally:
        if driver is not None:
            stop_driver(driver)
        op.stop()
        op.join()
