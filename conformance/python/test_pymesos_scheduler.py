"""pymesos 0.3.15's MesosSchedulerDriver and MesosExecutorDriver against Pando.

The scheduler side follows pymesos's own examples (a Scheduler subclass,
`use_addict=True`); the custom executor is executors/pymesos_executor.py,
started by the agent with this venv's python. Expected behaviour is Mesos's:
docs/scheduler-http-api.md, docs/reconciliation.md and Master::reconcile in
src/master/master.cpp (REASON_RECONCILIATION, SOURCE_MASTER).
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from addict import Dict
from pymesos import MesosSchedulerDriver, encode_data

import pando_harness as h
from pymesos_support import (RecordingScheduler, TaskQueue, command_task, executor_task,
                             framework_info, pymesos_executor_info, stop_driver)


@pytest.fixture
def start_framework():
    """Start pymesos scheduler drivers; stop (TEARDOWN) them at the end."""
    drivers = []

    def start(cluster, name="pymesos-conformance", scheduler=None, policy=None,
              wait=True, **framework):
        sched = scheduler or RecordingScheduler()
        if policy is not None:
            sched.offer_policy = policy
        driver = MesosSchedulerDriver(sched, framework_info(name, **framework),
                                      cluster.address, use_addict=True)
        driver.start()
        drivers.append(driver)
        if wait:
            sched.wait_for("registered", timeout=20, check=cluster.check_alive)
        return sched, driver

    yield start
    for driver in drivers:
        try:
            stop_driver(driver)
        except Exception:
            pass


def sandbox_files(agent, framework_id, name):
    pattern = f"slaves/*/frameworks/{framework_id}/executors/*/runs/*/{name}"
    return list(agent.work_dir.glob(pattern))


def test_subscribe_and_receive_offers(cluster, start_framework):
    sched, driver = start_framework(cluster)
    registered = sched.wait_for("registered")
    assert registered.framework_id.value
    assert driver.framework_id == registered.framework_id.value
    # pymesos read /version first and reports it with the master's address.
    assert registered.master_info.version.startswith("1.")
    assert registered.master_info.port == cluster.port

    offers = sched.wait_for("offers", check=cluster.check_alive).offers
    [offer] = offers
    assert offer.framework_id.value == registered.framework_id.value
    assert offer.agent_id.value == cluster.agents[0].id
    assert offer.hostname
    assert offer.id.value
    names = {r.name for r in offer.resources}
    assert {"cpus", "mem", "ports"} <= names
    cpus = [r for r in offer.resources if r.name == "cpus"][0]
    assert cpus.type == "SCALAR" and cpus.scalar.value == 2
    ports = [r for r in offer.resources if r.name == "ports"][0]
    assert ports.type == "RANGES"
    assert ports.ranges.range == [{"begin": 31000, "end": 31100}]


def test_command_task_runs_to_finished(cluster, start_framework):
    queue = TaskQueue([command_task("hello", "echo hello")])
    sched, driver = start_framework(cluster, policy=queue)
    sched.wait_task_state("hello", "TASK_FINISHED", check=cluster.check_alive)
    states = sched.task_states("hello")
    assert "TASK_RUNNING" in states
    assert states.index("TASK_RUNNING") < states.index("TASK_FINISHED")
    assert not {"TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED"} & set(states), states
    finished = sched.wait_task_state("hello", "TASK_FINISHED")
    assert finished.agent_id.value == cluster.agents[0].id
    assert finished.source == "SOURCE_EXECUTOR"
    stdouts = sandbox_files(cluster.agents[0], driver.framework_id, "stdout")
    assert any("hello" in p.read_text(errors="replace") for p in stdouts), stdouts


def test_failing_command_is_task_failed(cluster, start_framework):
    queue = TaskQueue([command_task("bad", "exit 3")])
    sched, _ = start_framework(cluster, policy=queue)
    failed = sched.wait_task_state("bad", "TASK_FAILED", check=cluster.check_alive)
    assert failed.source == "SOURCE_EXECUTOR"
    assert "TASK_FINISHED" not in sched.task_states("bad")


def test_custom_executor_runs_tasks(cluster, start_framework):
    executor = pymesos_executor_info("pymesos-exec")
    queue = TaskQueue([
        executor_task("custom-1", executor, {"action": "finish", "seconds": 0.2}),
        executor_task("custom-2", executor, {"action": "fail"}),
    ])
    sched, _ = start_framework(cluster, policy=queue)
    done = sched.wait_task_state("custom-1", "TASK_FINISHED", check=cluster.check_alive)
    assert done.executor_id.value == "pymesos-exec"
    assert done.source == "SOURCE_EXECUTOR"
    assert done.message == "done"
    failed = sched.wait_task_state("custom-2", "TASK_FAILED")
    assert failed.message == "asked to fail"
    for task_id in ("custom-1", "custom-2"):
        states = sched.task_states(task_id)
        assert states[0] == "TASK_RUNNING", states
    # The executor's registration message came through the master.
    message = sched.wait_for("message")
    assert message.data == b"registered:pymesos-exec"
    assert message.executor_id.value == "pymesos-exec"
    assert message.agent_id.value == cluster.agents[0].id


def test_fifty_tasks_on_custom_executors_across_two_agents(cluster2, start_framework):
    executor = pymesos_executor_info("pymesos-exec")
    tasks = [executor_task(f"t{i:02d}", executor, {"action": "finish", "seconds": 0.1})
             for i in range(50)]
    queue = TaskQueue(tasks)
    sched, _ = start_framework(cluster2, policy=queue)
    for task in tasks:
        sched.wait_task_state(task.task_id.value, "TASK_FINISHED", timeout=120,
                              check=cluster2.check_alive)
    assert len(queue.launched) == 50
    assert set(queue.launched.values()) == {a.id for a in cluster2.agents}
    for task in tasks:
        states = sched.task_states(task.task_id.value)
        assert states.count("TASK_FINISHED") >= 1
        assert not {"TASK_FAILED", "TASK_LOST", "TASK_ERROR"} & set(states), states
    # The master agrees: fifty finished tasks, none running.
    metrics = h.get(cluster2.port, "/metrics/snapshot").json()
    assert metrics["master/tasks_finished"] == 50
    assert metrics["master/tasks_running"] == 0


@pytest.mark.parametrize("kind", ["command", "custom"])
def test_kill_task(cluster, start_framework, kind):
    if kind == "command":
        task = command_task("victim", "sleep 300")
    else:
        task = executor_task("victim", pymesos_executor_info("pymesos-exec"), {"action": "wait"})
    sched, driver = start_framework(cluster, policy=TaskQueue([task]))
    sched.wait_task_state("victim", "TASK_RUNNING", check=cluster.check_alive)
    mark = sched.mark()
    driver.killTask(Dict(value="victim"))
    killed = sched.wait_task_state("victim", "TASK_KILLED", since=mark, check=cluster.check_alive)
    assert killed.agent_id.value == cluster.agents[0].id

    # The master retires the task once the terminal update is acknowledged
    # (pymesos acknowledges implicitly).
    def retired():
        state = cluster.master.state()
        [fw] = [f for f in state["frameworks"] if f["id"] == driver.framework_id]
        done = [t["state"] for t in fw["completed_tasks"] if t["id"] == "victim"]
        return (fw, done) if done else None

    fw, done = h.wait_until(retired, 10, "the killed task in completed_tasks")
    assert done == ["TASK_KILLED"]
    assert "victim" not in [t["id"] for t in fw["tasks"]]


def test_reconcile_explicit_and_implicit(cluster, start_framework):
    sched, driver = start_framework(cluster, policy=TaskQueue([command_task("long", "sleep 300")]))
    sched.wait_task_state("long", "TASK_RUNNING", check=cluster.check_alive)

    # Explicit: the master answers from its own view, with no uuid to ack.
    mark = sched.mark()
    driver.reconcileTasks([Dict(task_id=Dict(value="long"))])
    status = sched.wait_for("update", lambda d: d.status.task_id.value == "long",
                            since=mark).status
    assert status.state == "TASK_RUNNING"
    assert status.reason == "REASON_RECONCILIATION"
    assert status.source == "SOURCE_MASTER"
    assert status.agent_id.value == cluster.agents[0].id
    assert "uuid" not in status

    # Explicit, for a task nobody launched: TASK_LOST (not PARTITION_AWARE).
    mark = sched.mark()
    driver.reconcileTasks([Dict(task_id=Dict(value="never-launched"))])
    ghost = sched.wait_for("update", lambda d: d.status.task_id.value == "never-launched",
                           since=mark).status
    assert ghost.state == "TASK_LOST"
    assert ghost.reason == "REASON_RECONCILIATION"

    # Implicit: an empty list asks for every task the master knows.
    mark = sched.mark()
    driver.reconcileTasks([])
    implicit = sched.wait_for("update", lambda d: d.status.task_id.value == "long",
                              since=mark).status
    assert implicit.state == "TASK_RUNNING"
    assert implicit.reason == "REASON_RECONCILIATION"
    assert implicit.source == "SOURCE_MASTER"


def test_framework_messages_both_ways(cluster, start_framework):
    executor = pymesos_executor_info("pymesos-exec")
    sched, driver = start_framework(
        cluster, policy=TaskQueue([executor_task("chatty", executor, {"action": "wait"})]))
    sched.wait_task_state("chatty", "TASK_RUNNING", check=cluster.check_alive)
    # Executor -> scheduler, unprompted on registration.
    hello = sched.wait_for("message", lambda d: d.data.startswith(b"registered:"))
    assert hello.executor_id.value == "pymesos-exec"
    agent_id = hello.agent_id

    # Scheduler -> executor -> scheduler.
    mark = sched.mark()
    driver.sendFrameworkMessage(Dict(value="pymesos-exec"), agent_id, encode_data(b"ping \x00\xff"))
    pong = sched.wait_for("message", lambda d: d.data.startswith(b"pong:"), since=mark)
    assert pong.data == b"pong:ping \x00\xff"
    assert pong.executor_id.value == "pymesos-exec"
    assert pong.agent_id.value == agent_id.value


def test_decline_with_filters_then_revive(cluster, start_framework):
    declined = []

    def decline_long(driver, offers):
        for offer in offers:
            declined.append(offer.id.value)
            driver.declineOffer(offer.id, filters=Dict(refuse_seconds=3600))

    sched, driver = start_framework(cluster, policy=decline_long)
    sched.wait_for("offers", check=cluster.check_alive)
    # allocation_interval is 100ms: twenty rounds pass with the agent filtered.
    mark = sched.mark()
    sched.assert_no("offers", window=2.0, since=mark)

    # REVIVE clears the framework's filters.
    sched.offer_policy = None
    mark = sched.mark()
    driver.reviveOffers()
    again = sched.wait_for("offers", since=mark, timeout=10).offers
    assert again[0].agent_id.value == cluster.agents[0].id
    assert again[0].id.value not in declined


def test_short_filter_expires_on_its_own(cluster, start_framework):
    times = []

    def decline_short(driver, offers):
        times.append(time.monotonic())
        for offer in offers:
            driver.declineOffer(offer.id, filters=Dict(refuse_seconds=1))

    sched, _ = start_framework(cluster, policy=decline_short)
    sched.wait_for("offers", check=cluster.check_alive)
    first = sched.mark()
    sched.wait_for("offers", since=first, timeout=10)
    gap = times[1] - times[0]
    assert 0.9 <= gap <= 5, gap


def test_suppress_then_revive(cluster, start_framework):
    def suppress_and_decline(driver, offers):
        driver.suppressOffers()
        for offer in offers:
            driver.declineOffer(offer.id, filters=Dict(refuse_seconds=0))

    sched, driver = start_framework(cluster, policy=suppress_and_decline)
    sched.wait_for("offers", check=cluster.check_alive)
    sched.offer_policy = None
    mark = sched.mark()
    sched.assert_no("offers", window=2.0, since=mark)
    driver.reviveOffers()
    sched.wait_for("offers", since=mark, timeout=10)
    state = cluster.master.state()
    [fw] = [f for f in state["frameworks"] if f["id"] == driver.framework_id]
    assert fw["active"] is True


def test_teardown_kills_tasks_and_completes_framework(cluster, start_framework):
    sched, driver = start_framework(cluster, policy=TaskQueue([command_task("doomed", "sleep 300")]))
    sched.wait_task_state("doomed", "TASK_RUNNING", check=cluster.check_alive)
    framework_id = driver.framework_id
    stop_driver(driver)  # failover=False: pymesos sends TEARDOWN

    def completed():
        state = cluster.master.state()
        done = [f for f in state["completed_frameworks"] if f["id"] == framework_id]
        return done[0] if done else None

    fw = h.wait_until(completed, 15, "the framework in completed_frameworks")
    assert framework_id not in [f["id"] for f in cluster.master.state()["frameworks"]]
    assert fw["active"] is False
    assert [t["state"] for t in fw["completed_tasks"] if t["id"] == "doomed"] == ["TASK_KILLED"]

    def agent_idle():
        slave = cluster.master.state()["slaves"][0]
        return slave["used_resources"].get("cpus", 0) == 0

    h.wait_until(agent_idle, 15, "the agent to free the task's resources")


def test_scheduler_failover_keeps_tasks(cluster, start_framework):
    sched, driver = start_framework(cluster, policy=TaskQueue([command_task("survivor", "sleep 300")]),
                                    failover_timeout=60)
    sched.wait_task_state("survivor", "TASK_RUNNING", check=cluster.check_alive)
    framework_id = driver.framework_id
    stop_driver(driver, failover=True)  # no TEARDOWN: the framework may come back

    state = cluster.master.state()
    assert framework_id in [f["id"] for f in state["frameworks"]]

    sched2, driver2 = start_framework(cluster, wait=False, failover_timeout=60,
                                      id=Dict(value=framework_id))
    sched2.wait_for("reregistered", timeout=20, check=cluster.check_alive)
    assert driver2.framework_id == framework_id
    driver2.reconcileTasks([])
    status = sched2.wait_for("update", lambda d: d.status.task_id.value == "survivor").status
    assert status.state == "TASK_RUNNING"
    assert status.reason == "REASON_RECONCILIATION"


SCHEDULER_SCRIPT = Path(__file__).resolve().parent / "schedulers" / "pymesos_scheduler.py"


def scheduler_events(proc):
    events = []
    for line in proc.log_text().splitlines():
        if line.startswith('{"event"'):
            events.append(json.loads(line))
    return events


def wait_event(proc, predicate, what, timeout=30):
    return h.wait_until(lambda: next((e for e in scheduler_events(proc) if predicate(e)), None),
                        timeout, what, interval=0.1, check=proc.check_alive)


def test_scheduler_process_killed_and_restarted_keeps_its_tasks(cluster, tmp_path):
    # Issue 7's failover: the scheduler process dies without TEARDOWN and a
    # new process subscribes with the same framework id within
    # failover_timeout; the master keeps the framework and its task.
    first = h.PandoProcess("scheduler-1", [sys.executable, SCHEDULER_SCRIPT, cluster.address,
                                           "--launch", "phoenix"], tmp_path / "scheduler-1.log")
    second = None
    try:
        framework_id = wait_event(first, lambda e: e["event"] == "registered",
                                  "the first scheduler to register")["framework_id"]
        wait_event(first, lambda e: e["event"] == "update" and e["task_id"] == "phoenix"
                   and e["state"] == "TASK_RUNNING", "phoenix to run")
        first.signal_group(signal.SIGKILL)
        first.proc.wait(timeout=10)

        def disconnected():
            fws = [f for f in cluster.master.state()["frameworks"] if f["id"] == framework_id]
            return fws and fws[0]["connected"] is False

        h.wait_until(disconnected, 15, "the master to see the scheduler gone")

        second = h.PandoProcess("scheduler-2", [sys.executable, SCHEDULER_SCRIPT, cluster.address,
                                                "--framework-id", framework_id],
                                tmp_path / "scheduler-2.log")
        wait_event(second, lambda e: e["event"] == "reregistered", "the second scheduler to reregister")
        update = wait_event(second, lambda e: e["event"] == "update" and e["task_id"] == "phoenix",
                            "phoenix's state by implicit reconciliation")
        assert update["state"] == "TASK_RUNNING"
        assert update["reason"] == "REASON_RECONCILIATION"
        [fw] = [f for f in cluster.master.state()["frameworks"] if f["id"] == framework_id]
        assert fw["connected"] is True and fw["active"] is True
        assert [t["id"] for t in fw["tasks"]] == ["phoenix"]
        assert not [e for e in scheduler_events(second) if e["event"] == "error"]
    finally:
        first.stop()
        if second is not None:
            second.stop()


def processes_under(path):
    path = os.path.realpath(path)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd.startswith(path + os.sep):
            found.append(int(entry))
    return found


def test_teardown_shuts_the_custom_executor_down(cluster, start_framework):
    # On TEARDOWN the agent sends SHUTDOWN to the framework's executors
    # (pymesos calls Executor.shutdown and exits); nothing keeps running in
    # the framework's sandboxes afterwards.
    executor = pymesos_executor_info("pymesos-exec")
    sched, driver = start_framework(
        cluster, policy=TaskQueue([executor_task("held", executor, {"action": "wait"})]))
    sched.wait_task_state("held", "TASK_RUNNING", check=cluster.check_alive)
    framework_dir = next(cluster.agents[0].work_dir.glob(f"slaves/*/frameworks/{driver.framework_id}"))
    assert processes_under(framework_dir), "the executor should be running in its sandbox"
    stop_driver(driver)
    h.wait_until(lambda: not processes_under(framework_dir), 20,
                 "the executor to exit after TEARDOWN", interval=0.2)


def test_explicit_acknowledgements(cluster):
    # implicit_acknowledgements=False: pymesos leaves ACKNOWLEDGE to the
    # scheduler, and the agent holds later updates until it comes.
    sched = RecordingScheduler()
    sched.offer_policy = TaskQueue([command_task("acked", "sleep 1")])
    driver = MesosSchedulerDriver(sched, framework_info("explicit-acks"), cluster.address,
                                  use_addict=True, implicit_acknowledgements=False)
    driver.start()
    try:
        first = sched.wait_for("update", lambda d: d.status.task_id.value == "acked",
                               check=cluster.check_alive).status
        sched.assert_no("update", lambda d: d.status.state == "TASK_FINISHED", window=3)
        driver.acknowledgeStatusUpdate(first)
        acked = {first.uuid}
        while True:
            status = sched.wait_for(
                "update", lambda d: d.status.task_id.value == "acked" and d.status.uuid not in acked,
                timeout=30).status
            acked.add(status.uuid)
            driver.acknowledgeStatusUpdate(status)
            if status.state == "TASK_FINISHED":
                break
    finally:
        stop_driver(driver)
