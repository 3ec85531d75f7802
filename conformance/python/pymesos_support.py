"""Helpers for driving Pando with pymesos's own drivers, as its users do.

A RecordingScheduler keeps every callback pymesos makes, in order, and lets a
test wait for the one it expects. Offers are handled on pymesos's I/O thread
by a policy the test sets (launch queued tasks, decline, hold).
"""

import getpass
import json
import socket
import sys
import threading
import time
from pathlib import Path

from addict import Dict
from pymesos import Scheduler, encode_data, decode_data

import conftest

EXECUTOR_SCRIPT = Path(__file__).resolve().parent / "executors" / "pymesos_executor.py"


def framework_info(name, **extra):
    framework = Dict()
    framework.user = getpass.getuser()
    framework.name = name
    framework.hostname = socket.gethostname()
    for key, value in extra.items():
        framework[key] = value
    return framework


def scalar(name, value):
    return Dict(name=name, type="SCALAR", scalar=Dict(value=value))


def offer_scalar(offer, name):
    return sum(r.scalar.value for r in offer.resources
               if r.name == name and r.type == "SCALAR")


def command_task(task_id, command, cpus=0.1, mem=32):
    task = Dict()
    task.task_id.value = task_id
    task.name = task_id
    task.command.value = command
    task.command.shell = True
    task.resources = [scalar("cpus", cpus), scalar("mem", mem)]
    return task


def pymesos_executor_info(executor_id, cpus=0.1, mem=128):
    """An ExecutorInfo whose command runs the pymesos executor from this venv."""
    executor = Dict()
    executor.executor_id.value = executor_id
    executor.name = executor_id
    executor.command.value = f"exec {sys.executable} {EXECUTOR_SCRIPT}"
    executor.command.shell = True
    executor.resources = [scalar("cpus", cpus), scalar("mem", mem)]
    return executor


def executor_task(task_id, executor, spec, cpus=0.05, mem=16):
    task = Dict()
    task.task_id.value = task_id
    task.name = task_id
    task.executor = executor
    task.data = encode_data(json.dumps(spec).encode())
    task.resources = [scalar("cpus", cpus), scalar("mem", mem)]
    return task


class RecordingScheduler(Scheduler):
    def __init__(self):
        self.cv = threading.Condition()
        self.events = []
        self.offer_policy = None

    def _record(self, kind, **data):
        with self.cv:
            self.events.append((time.monotonic(), kind, Dict(data)))
            self.cv.notify_all()

    # pymesos callbacks

    def registered(self, driver, framework_id, master_info):
        self._record("registered", framework_id=framework_id, master_info=master_info)

    def reregistered(self, driver, master_info):
        self._record("reregistered", master_info=master_info)

    def disconnected(self, driver):
        self._record("disconnected")

    def resourceOffers(self, driver, offers):
        self._record("offers", offers=offers)
        policy = self.offer_policy
        if policy is not None:
            policy(driver, offers)

    def offerRescinded(self, driver, offer_id):
        self._record("rescinded", offer_id=offer_id)

    def statusUpdate(self, driver, status):
        self._record("update", status=status)

    def frameworkMessage(self, driver, executor_id, agent_id, data):
        self._record("message", executor_id=executor_id, agent_id=agent_id,
                     data=decode_data(data))

    def slaveLost(self, driver, agent_id):
        self._record("agent_lost", agent_id=agent_id)

    def executorLost(self, driver, executor_id, agent_id, status):
        self._record("executor_lost", executor_id=executor_id, agent_id=agent_id,
                     status=status)

    def error(self, driver, message):
        self._record("error", message=message)

    # waiting

    def mark(self):
        """An index to wait from: only events recorded after this count."""
        with self.cv:
            return len(self.events)

    def wait_for(self, kind, predicate=lambda e: True, timeout=30.0, since=0, check=None):
        """The first `kind` event at index >= `since` for which predicate holds."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for _, k, data in self.events[since:]:
                    if k == kind and predicate(data):
                        return data
                conftest.check_driver_errors()
                if check is not None:
                    check()
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [k for _, k, _ in self.events[since:]]
                    raise TimeoutError(f"no {kind} event within {timeout}s; saw {kinds}")
                self.cv.wait(min(left, 0.2))

    def assert_no(self, kind, predicate=lambda e: True, window=2.0, since=0):
        """Fail if a matching event arrives within `window` seconds."""
        try:
            event = self.wait_for(kind, predicate, timeout=window, since=since)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {kind} event: {event}")

    def task_states(self, task_id, since=0):
        with self.cv:
            return [d.status.state for _, k, d in self.events[since:]
                    if k == "update" and d.status.task_id.value == task_id]

    def wait_task_state(self, task_id, state, timeout=60.0, since=0, check=None):
        return self.wait_for(
            "update",
            lambda d: d.status.task_id.value == task_id and d.status.state == state,
            timeout=timeout, since=since, check=check).status


class TaskQueue:
    """An offer policy: pack queued tasks into offers, decline what is left.

    Tasks are Dicts without agent_id; the offer that takes one fills it in.
    The first task of an executor on an agent also needs room for the
    executor's own resources, as Mesos requires.
    """

    def __init__(self, tasks=(), refuse_seconds=0.1):
        self.lock = threading.Lock()
        self.pending = list(tasks)
        self.refuse_seconds = refuse_seconds
        self.launched = {}  # task id -> agent id
        self.executors = set()  # (agent id, executor id) launched

    def add(self, *tasks):
        with self.lock:
            self.pending.extend(tasks)

    @staticmethod
    def _needs(resources):
        cpus = sum(r.scalar.value for r in resources if r.name == "cpus")
        mem = sum(r.scalar.value for r in resources if r.name == "mem")
        return cpus, mem

    def __call__(self, driver, offers):
        for offer in offers:
            agent = offer.agent_id.value
            cpus = offer_scalar(offer, "cpus")
            mem = offer_scalar(offer, "mem")
            batch = []
            with self.lock:
                keep = []
                for task in self.pending:
                    need_cpus, need_mem = self._needs(task.resources)
                    new_executor = None
                    if task.executor:
                        key = (agent, task.executor.executor_id.value)
                        if key not in self.executors:
                            new_executor = key
                            e_cpus, e_mem = self._needs(task.executor.resources)
                            need_cpus += e_cpus
                            need_mem += e_mem
                    if need_cpus <= cpus + 1e-9 and need_mem <= mem + 1e-9:
                        cpus -= need_cpus
                        mem -= need_mem
                        if new_executor:
                            self.executors.add(new_executor)
                        task.agent_id.value = agent
                        batch.append(task)
                        self.launched[task.task_id.value] = agent
                    else:
                        keep.append(task)
                self.pending = keep
            driver.launchTasks(offer.id, batch, filters=Dict(refuse_seconds=self.refuse_seconds))


def stop_driver(driver, failover=False, timeout=15.0):
    """Stop a pymesos driver (TEARDOWN unless failover) and join its thread."""
    driver.stop(failover=failover)
    thread = driver._io_thread
    if thread is not None:
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError("pymesos I/O thread did not stop")
        driver._io_thread = None
