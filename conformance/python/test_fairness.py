"""Weighted DRF between frameworks on a saturated cluster, seen through pymesos.

Three pymesos frameworks in roles weighted 1, 2 and 3 (`--weights`, Mesos's
`role=weight,...` form) keep a two-agent cluster full of short tasks on
their pymesos executors. Each freed slot goes to the role with the lowest
weighted dominant share (Mesos's hierarchical DRF allocator), so their shares
settle at 1:2:3; a fourth framework that declines every offer (with the
default 5 s filter) must not starve them.
"""

import copy
import itertools
import sys
import threading
import time

import pytest
from addict import Dict
from pymesos import MesosSchedulerDriver, encode_data

import pando_harness as h
from pymesos_support import EXECUTOR_SCRIPT, RecordingScheduler, framework_info, stop_driver


WEIGHTS = {"w1": 1, "w2": 2, "w3": 3}
TASK_CPUS, TASK_MEM, TASK_SECONDS = 0.025, 4, 8
EXEC_CPUS, EXEC_MEM = 0.01, 128


def like(resource, value):
    r = copy.deepcopy(resource)
    r.scalar.value = value
    return r


class Churn:
    """Offer policy: fill offers with short tasks, a few per offer, forever."""

    def __init__(self, name, per_offer=2):
        self.name = name
        self.per_offer = per_offer
        self.ids = itertools.count()
        self.lock = threading.Lock()
        self.executors = set()

    def __call__(self, driver, offers):
        for offer in offers:
            cpus = [r for r in offer.resources if r.name == "cpus" and r.type == "SCALAR"]
            mem = [r for r in offer.resources if r.name == "mem" and r.type == "SCALAR"]
            tasks = []
            if cpus and mem:
                free_cpus, free_mem = cpus[0].scalar.value, mem[0].scalar.value
                executor = Dict()
                executor.executor_id.value = f"{self.name}-exec"
                executor.command.value = f"exec {sys.executable} {EXECUTOR_SCRIPT}"
                executor.command.shell = True
                executor.resources = [like(cpus[0], EXEC_CPUS), like(mem[0], EXEC_MEM)]
                with self.lock:
                    agent = offer.agent_id.value
                    if agent not in self.executors:
                        free_cpus -= EXEC_CPUS
                        free_mem -= EXEC_MEM
                    while (len(tasks) < self.per_offer and free_cpus >= TASK_CPUS - 1e-9
                           and free_mem >= TASK_MEM):
                        task = Dict()
                        task.task_id.value = f"{self.name}-{next(self.ids)}"
                        task.name = task.task_id.value
                        task.agent_id.value = agent
                        task.executor = executor
                        task.data = encode_data(
                            b'{"action": "finish", "seconds": %d}' % TASK_SECONDS)
                        task.resources = [like(cpus[0], TASK_CPUS), like(mem[0], TASK_MEM)]
                        tasks.append(task)
                        free_cpus -= TASK_CPUS
                        free_mem -= TASK_MEM
                    if tasks:
                        self.executors.add(agent)
            driver.launchTasks(offer.id, tasks, filters=Dict(refuse_seconds=0.1))


def test_weighted_shares_settle_and_a_decliner_starves_nobody(cluster_factory):
    cluster = cluster_factory(
        agents=2,
        master_flags={"weights": ",".join(f"{r}={w}" for r, w in WEIGHTS.items())},
        agent_resources="cpus:2;mem:4096;ports:[31000-31100]")
    drivers = []
    try:
        # The decliner subscribes first so it is offered everything early on.
        declines = []

        def decline_all(driver, offers):
            for offer in offers:
                declines.append(offer.id.value)
                driver.declineOffer(offer.id)  # the default 5 s filter

        idle = RecordingScheduler()
        idle.offer_policy = decline_all
        d = MesosSchedulerDriver(idle, framework_info("decliner", roles=["idle"],
                                                      capabilities=[{"type": "MULTI_ROLE"}]),
                                 cluster.address, use_addict=True)
        d.start()
        drivers.append(d)
        idle.wait_for("registered", check=cluster.check_alive)

        ids = {}
        for role in WEIGHTS:
            sched = RecordingScheduler()
            sched.offer_policy = Churn(role)
            d = MesosSchedulerDriver(sched, framework_info(f"fair-{role}", roles=[role],
                                                           capabilities=[{"type": "MULTI_ROLE"}]),
                                     cluster.address, use_addict=True)
            d.start()
            drivers.append(d)
            sched.wait_for("registered", check=cluster.check_alive)
            ids[role] = d.framework_id

        # Every task started before the shares could settle is gone after
        # TASK_SECONDS; give it three rounds, then measure for four.
        warmup_end = time.monotonic() + 3 * TASK_SECONDS
        h.wait_until(lambda: time.monotonic() >= warmup_end, 4 * TASK_SECONDS + 5,
                     "the warm-up", interval=0.5, check=cluster.check_alive)
        samples = {role: [] for role in WEIGHTS}
        total_used = []
        end = time.monotonic() + 4 * TASK_SECONDS
        while time.monotonic() < end:
            cluster.check_alive()
            state = cluster.master.state()
            used = {f["id"]: f["used_resources"].get("cpus", 0) for f in state["frameworks"]}
            for role, fid in ids.items():
                samples[role].append(used.get(fid, 0))
            total_used.append(sum(used.get(fid, 0) for fid in ids.values()))
            time.sleep(0.25)  # sampling period of the measurement, not a wait

        mean = {role: sum(v) / len(v) for role, v in samples.items()}
        total = sum(mean.values())
        weight_sum = sum(WEIGHTS.values())
        report = {role: (round(mean[role] / total, 3), round(w / weight_sum, 3))
                  for role, w in WEIGHTS.items()}
        for role, w in WEIGHTS.items():
            expected = w / weight_sum
            assert abs(mean[role] / total - expected) <= 0.1 * expected, report

        # Nobody starved: while the decliner was offered and declined, each
        # worker held at least half of its weighted share of the 4 cpus.
        # (Not "the cluster stayed 85% full": under Mesos's own filter
        # semantics a refuse filter covers only the resources declined, so
        # the decliner is offered each larger pool of freed cpus and an
        # allocation round on that agent is lost; the model below puts
        # utilization near 89% before any latency.)
        for role, w in WEIGHTS.items():
            fair = 4 * w / weight_sum
            assert mean[role] >= 0.5 * fair, (role, mean[role], fair, report)
        assert declines, "the decliner was never offered anything"
    finally:
        for d in drivers:
            try:
                stop_driver(d)
            except Exception:
                pass


def test_the_policy_settles_under_ideal_weighted_drf():
    """The bar above is reachable: model Mesos's allocator on this workload.

    Every allocation_interval each agent's free cpus go, whole, to the role
    with the lowest allocation/weight not filtered there; the framework takes
    up to `per_offer` tasks and declines the rest (a 0.1 s filter); tasks end
    after TASK_SECONDS plus a little jitter. The decliner, whose role's share
    is always lowest, is offered an agent's free cpus whenever they are not
    within what it last refused there in the past 5 s (Mesos's refuse-filter
    semantics), and that round is lost. Measured as the test measures.
    """
    import heapq
    import random

    rng = random.Random(7)
    free = [2 - 3 * EXEC_CPUS] * 2
    alloc = {r: 2 * EXEC_CPUS for r in WEIGHTS}
    ends, filtered, samples = [], {}, {r: [] for r in WEIGHTS}
    refused = {}  # agent -> (cpus the decliner refused, until)
    t, interval = 0.0, 0.1
    while t < 7 * TASK_SECONDS:
        while ends and ends[0][0] <= t:
            _, agent, role = heapq.heappop(ends)
            free[agent] += TASK_CPUS
            alloc[role] -= TASK_CPUS
        for agent in rng.sample([0, 1], 2):
            if free[agent] < TASK_CPUS - 1e-9:
                continue
            amount, until = refused.get(agent, (0.0, 0.0))
            if not (t < until and free[agent] <= amount + 1e-9):
                refused[agent] = (free[agent], t + 5)
                continue
            roles = [r for r in WEIGHTS if filtered.get((r, agent), 0) <= t]
            if not roles:
                continue
            role = min(roles, key=lambda r: alloc[r] / WEIGHTS[r])
            for _ in range(2):
                if free[agent] < TASK_CPUS - 1e-9:
                    break
                free[agent] -= TASK_CPUS
                alloc[role] += TASK_CPUS
                heapq.heappush(ends, (t + TASK_SECONDS + rng.uniform(0, 0.3), agent, role))
            if free[agent] > 1e-9:
                filtered[(role, agent)] = t + 0.1 + 1e-9
        if t >= 3 * TASK_SECONDS:
            for r in WEIGHTS:
                samples[r].append(alloc[r])
        t += interval
    mean = {r: sum(v) / len(v) for r, v in samples.items()}
    total = sum(mean.values())
    weight_sum = sum(WEIGHTS.values())
    for role, w in WEIGHTS.items():
        expected = w / weight_sum
        assert abs(mean[role] / total - expected) <= 0.1 * expected, (role, mean[role] / total)
        assert mean[role] >= 0.5 * 4 * expected
    assert total >= 0.8 * 4, total
