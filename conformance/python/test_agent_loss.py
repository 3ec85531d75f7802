"""An agent that stops answering pings is marked unreachable, as in Mesos.

Sources (apache/mesos): --agent_ping_timeout and --max_agent_ping_timeouts
(src/master/flags.cpp); Master::markUnreachable and __removeSlave in
src/master/master.cpp: each task becomes TASK_UNREACHABLE for PARTITION_AWARE
frameworks (with unreachable_time) or TASK_LOST otherwise, reason
REASON_SLAVE_REMOVED (REASON_AGENT_REMOVED in the v1 enum the API speaks),
source SOURCE_MASTER; then the framework gets a
FAILURE event for the agent (sendSlaveLost), operator subscribers get
AGENT_REMOVED, and /master/state counts it in unreachable_slaves.
"""

import signal

import pytest

import pando_harness as h

FLAGS = {"agent_ping_timeout": "500ms", "max_agent_ping_timeouts": "2"}


@pytest.mark.parametrize("aware, expected", [(False, "TASK_LOST"), (True, "TASK_UNREACHABLE")])
def test_silent_agent_is_marked_unreachable(cluster_factory, aware, expected):
    cluster = cluster_factory(agents=1, master_flags=FLAGS)
    agent = cluster.agents[0]
    caps = ("PARTITION_AWARE",) if aware else ()
    s = h.RawScheduler(cluster.port, capabilities=caps)
    operator = None
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task("stranded", offer, "sleep 300")])
        s.wait_task_state("stranded", "TASK_RUNNING")
        operator = h.RecordIOStream(cluster.port, "/api/v1", {"type": "SUBSCRIBE"})
        assert operator.next_event(timeout=10)["type"] == "SUBSCRIBED"

        agent.process.signal_group(signal.SIGKILL)

        status = s.wait_task_state("stranded", expected, timeout=30)
        assert status["reason"] == "REASON_AGENT_REMOVED"
        assert status["source"] == "SOURCE_MASTER"
        assert status["agent_id"]["value"] == agent.id
        if aware:
            assert "unreachable_time" in status
        failure = s.next_event_of("FAILURE", timeout=10,
                                  skip=("HEARTBEAT", "UPDATE", "OFFERS", "RESCIND"))
        assert failure["failure"]["agent_id"]["value"] == agent.id
        assert "executor_id" not in failure["failure"]

        removed = operator.next_event_of("AGENT_REMOVED", timeout=10,
                                          skip=("HEARTBEAT", "TASK_UPDATED"))
        assert removed["agent_removed"]["agent_id"]["value"] == agent.id

        state = cluster.master.state()
        assert state["unreachable_slaves"] == 1
        assert state["activated_slaves"] == 0
        assert agent.id not in [x["id"] for x in state["slaves"]]
    finally:
        s.close()
        if operator is not None:
            operator.close()


@pytest.mark.parametrize("aware, expected, reason", [
    (False, "TASK_LOST", "REASON_AGENT_REMOVED"),
    (True, "TASK_GONE_BY_OPERATOR", "REASON_AGENT_REMOVED_BY_OPERATOR"),
])
def test_mark_agent_gone(cluster, aware, expected, reason):
    # Master::Http::markAgentGone answers 200 and Master::markGone ends each
    # task with TASK_GONE_BY_OPERATOR and REASON_SLAVE_REMOVED_BY_OPERATOR,
    # or, without PARTITION_AWARE, TASK_LOST and REASON_SLAVE_REMOVED (v1
    # names: REASON_AGENT_...); an unknown agent is 404.
    agent = cluster.agents[0]
    caps = ("PARTITION_AWARE",) if aware else ()
    s = h.RawScheduler(cluster.port, capabilities=caps)
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task("evicted", offer, "sleep 300")])
        s.wait_task_state("evicted", "TASK_RUNNING")
        resp = h.post_json(cluster.port, "/api/v1", {
            "type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent.id}}})
        assert resp.status == 200, resp
        status = s.wait_task_state("evicted", expected, timeout=20)
        assert status["reason"] == reason
        assert status["source"] == "SOURCE_MASTER"
        assert agent.id not in [x["id"] for x in cluster.master.state()["slaves"]]
        missing = h.post_json(cluster.port, "/api/v1", {
            "type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": "no-agent"}}})
        assert missing.status == 404
    finally:
        s.close()
