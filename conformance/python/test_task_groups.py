"""Task groups on the default executor (LAUNCH_GROUP), as in Mesos.

Sources (apache/mesos): docs/nested-container-and-task-group.md and
src/launcher/default_executor.cpp — an ExecutorInfo of type DEFAULT runs the
tasks of a TaskGroupInfo; each task reports its own updates from the
executor; when one task fails or is killed, the default executor kills the
other tasks of the group.
"""

import pando_harness as h


def default_executor(s, executor_id):
    return {
        "type": "DEFAULT",
        "executor_id": {"value": executor_id},
        "framework_id": {"value": s.framework_id},
        "resources": [h.scalar("cpus", 0.1), h.scalar("mem", 32)],
    }


def group_task(task_id, offer, command):
    return h.command_task(task_id, offer, command, cpus=0.1, mem=32)


def launch_group(s, offer, executor, tasks):
    resp = s.call("ACCEPT", accept={
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH_GROUP", "launch_group": {
            "executor": executor, "task_group": {"tasks": tasks}}}]})
    assert resp.status == 202, resp


def test_task_group_runs_to_finished(cluster):
    s = h.RawScheduler(cluster.port, name="grouped")
    try:
        offer = s.next_offers()[0]
        executor = default_executor(s, "group-exec")
        launch_group(s, offer, executor, [group_task("g1", offer, "echo one"),
                                          group_task("g2", offer, "sleep 0.5; echo two")])
        for task_id in ("g1", "g2"):
            finished = s.wait_task_state(task_id, "TASK_FINISHED", timeout=60)
            assert finished["executor_id"]["value"] == "group-exec"
            assert finished["source"] == "SOURCE_EXECUTOR"
            states = [st["state"] for st in s.seen[task_id]]
            assert "TASK_RUNNING" in states, states
            assert states.index("TASK_RUNNING") < states.index("TASK_FINISHED")
    finally:
        s.close()


def test_killing_one_task_kills_the_group(cluster):
    s = h.RawScheduler(cluster.port, name="grouped-kill")
    try:
        offer = s.next_offers()[0]
        executor = default_executor(s, "group-exec")
        launch_group(s, offer, executor, [group_task("k1", offer, "sleep 300"),
                                          group_task("k2", offer, "sleep 300")])
        s.wait_task_state("k1", "TASK_RUNNING", timeout=60)
        s.wait_task_state("k2", "TASK_RUNNING", timeout=60)
        assert s.call("KILL", kill={"task_id": {"value": "k1"}}).status == 202
        s.wait_task_state("k1", "TASK_KILLED", timeout=30)
        s.wait_task_state("k2", "TASK_KILLED", timeout=30)
    finally:
        s.close()
