"""The environment an agent gives a custom executor, as Mesos's does.

Sources (apache/mesos): executorEnvironment in src/slave/slave.cpp —
MESOS_FRAMEWORK_ID, MESOS_EXECUTOR_ID, MESOS_DIRECTORY (the sandbox),
MESOS_SLAVE_ID, MESOS_SLAVE_PID (slave(1)@ip:port), MESOS_AGENT_ENDPOINT
(ip:port), MESOS_CHECKPOINT ("1"/"0"), MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD,
and, for checkpointing frameworks, MESOS_RECOVERY_TIMEOUT and
MESOS_SUBSCRIPTION_BACKOFF_MAX; the containerizer adds MESOS_SANDBOX.
"""

import pando_harness as h


def test_custom_executor_environment(cluster):
    agent = cluster.agents[0]
    s = h.RawScheduler(cluster.port, name="env-reader", checkpoint=True)
    try:
        offer = s.next_offers()[0]
        executor = {
            "executor_id": {"value": "env-exec"},
            "command": {"shell": True, "value": "env > executor.env; sleep 300"},
            "resources": [h.scalar("cpus", 0.1), h.scalar("mem", 32)],
        }
        task = h.command_task("env-task", offer, "true")
        del task["command"]
        task["executor"] = executor
        s.accept_launch(offer, [task])

        def env_file():
            files = list(agent.work_dir.glob(
                f"slaves/*/frameworks/{s.framework_id}/executors/env-exec/runs/*/executor.env"))
            return files and files[0].stat().st_size > 0 and files[0]

        path = h.wait_until(env_file, 30, "the executor's environment dump")
        h.wait_until(lambda: "MESOS_EXECUTOR_ID=" in path.read_text(), 5, "a complete dump")
        env = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        sandbox = str(path.parent)
        assert env["MESOS_FRAMEWORK_ID"] == s.framework_id
        assert env["MESOS_EXECUTOR_ID"] == "env-exec"
        assert env["MESOS_SLAVE_ID"] == agent.id
        assert env["MESOS_AGENT_ENDPOINT"] == f"127.0.0.1:{agent.port}"
        assert env["MESOS_SLAVE_PID"] == f"slave(1)@127.0.0.1:{agent.port}"
        assert env["MESOS_DIRECTORY"] == sandbox
        assert env["MESOS_SANDBOX"] == sandbox
        assert env["MESOS_CHECKPOINT"] == "1"
        assert env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"]
        assert env["MESOS_RECOVERY_TIMEOUT"]
        assert env["MESOS_SUBSCRIPTION_BACKOFF_MAX"]
    finally:
        s.close()


def test_scheduler_shutdown_call_ends_the_executor(cluster):
    # SHUTDOWN {executor_id, agent_id}: the agent shuts the executor down; its
    # live task ends TASK_FAILED with REASON_EXECUTOR_TERMINATED from
    # SOURCE_AGENT (sendExecutorTerminatedStatusUpdate, no containerizer
    # state), and the framework gets FAILURE naming the executor.
    from pymesos_support import executor_task, pymesos_executor_info
    agent = cluster.agents[0]
    s = h.RawScheduler(cluster.port, name="shutdown-caller")
    try:
        offer = s.next_offers()[0]
        task = executor_task("held", pymesos_executor_info("pymesos-exec"), {"action": "wait"})
        task["agent_id"] = offer["agent_id"]
        s.accept_launch(offer, [task])
        s.wait_task_state("held", "TASK_RUNNING", timeout=60)
        resp = s.call("SHUTDOWN", shutdown={"executor_id": {"value": "pymesos-exec"},
                                            "agent_id": {"value": agent.id}})
        assert resp.status == 202
        failed = s.wait_task_state("held", "TASK_FAILED", timeout=30)
        assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"
        assert failed["source"] == "SOURCE_AGENT"
        failure = s.next_event_of("FAILURE", timeout=20, skip=("HEARTBEAT", "OFFERS", "UPDATE"))
        assert failure["failure"]["executor_id"] == {"value": "pymesos-exec"}
        assert failure["failure"]["agent_id"] == {"value": agent.id}
        assert "status" in failure["failure"]
    finally:
        s.close()
