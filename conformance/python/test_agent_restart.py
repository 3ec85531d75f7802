"""A restarted agent recovers a checkpointing framework's running task.

Sources (apache/mesos): docs/agent-recovery.md — with FrameworkInfo.checkpoint
set, an agent restarted on the same work_dir (--recover=reconnect, the
default) reattaches to running executors and reregisters with the master
under the same agent id; the task keeps running and stays controllable.
The master records the reregistration (`reregistered_time` in /master/state).
"""

import pando_harness as h


def test_checkpointed_task_survives_an_agent_restart(cluster):
    agent = cluster.agents[0]
    s = h.RawScheduler(cluster.port, name="checkpointer", checkpoint=True, failover_timeout=60)
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task("survivor", offer, "sleep 300")])
        s.wait_task_state("survivor", "TASK_RUNNING")

        agent.restart()

        def reregistered():
            slaves = [x for x in cluster.master.state()["slaves"] if x["id"] == agent.id]
            return slaves and slaves[0].get("active") and "reregistered_time" in slaves[0]

        h.wait_until(reregistered, 30, "the agent to reregister under the same id",
                     interval=0.2, check=cluster.check_alive)

        resp = s.call("RECONCILE", reconcile={"tasks": [{"task_id": {"value": "survivor"}}]})
        assert resp.status == 202
        status = s.next_update(timeout=10)
        while status["task_id"]["value"] != "survivor" or status.get("reason") != "REASON_RECONCILIATION":
            status = s.next_update(timeout=10)
        assert status["state"] == "TASK_RUNNING"
        states = [st["state"] for st in s.seen["survivor"]]
        assert not {"TASK_LOST", "TASK_FAILED", "TASK_KILLED", "TASK_GONE"} & set(states), states

        # The recovered executor still obeys.
        assert s.call("KILL", kill={"task_id": {"value": "survivor"}}).status == 202
        killed = s.wait_task_state("survivor", "TASK_KILLED", timeout=30)
        assert killed["agent_id"]["value"] == agent.id
    finally:
        s.close()
