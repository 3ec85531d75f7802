"""DEACTIVATE_AGENT, REACTIVATE_AGENT and DRAIN_AGENT, as in Mesos 1.9+.

Sources (apache/mesos): src/master/http.cpp (each answers 200 OK; an
unknown agent is 400 "Unknown agent"; REACTIVATE_AGENT of an active agent is
400 "Agent is not deactivated"); Master::deactivate rescinds the agent's
outstanding offers and offers nothing more from it; draining kills the
agent's tasks, which the agent reports as TASK_KILLED with reason
REASON_SLAVE_DRAINING (REASON_AGENT_DRAINING in v1), src/slave/slave.cpp.
/master/state shows `deactivated` and `drain_info`.
"""

import pytest

import pando_harness as h


def call(port, type_, **fields):
    body = {"type": type_}
    body.update(fields)
    return h.post_json(port, "/api/v1", body)


def test_deactivate_and_reactivate(cluster):
    agent = cluster.agents[0]
    aid = {"value": agent.id}
    s = h.RawScheduler(cluster.port, name="watcher")
    try:
        offer = s.next_offers()[0]
        resp = call(cluster.port, "DEACTIVATE_AGENT", deactivate_agent={"agent_id": aid})
        assert resp.status == 200, resp
        rescind = s.next_event_of("RESCIND", timeout=10)
        assert rescind["rescind"]["offer_id"] == offer["id"]
        [slave] = cluster.master.state()["slaves"]
        assert slave["deactivated"] is True
        try:
            more = s.next_offers(timeout=2)
        except TimeoutError:
            more = []
        assert more == []
        resp = call(cluster.port, "REACTIVATE_AGENT", reactivate_agent={"agent_id": aid})
        assert resp.status == 200, resp
        again = s.next_offers(timeout=10)
        assert again[0]["agent_id"] == aid
        assert call(cluster.port, "DEACTIVATE_AGENT",
                    deactivate_agent={"agent_id": {"value": "nobody"}}).status == 400
    finally:
        s.close()


def test_drain_kills_tasks_with_the_draining_reason(cluster):
    agent = cluster.agents[0]
    s = h.RawScheduler(cluster.port, name="drained")
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task("drainee", offer, "sleep 300")])
        s.wait_task_state("drainee", "TASK_RUNNING")
        resp = call(cluster.port, "DRAIN_AGENT", drain_agent={"agent_id": {"value": agent.id}})
        assert resp.status == 200, resp
        s.wait_task_state("drainee", "TASK_KILLED", timeout=30)
        [slave] = [x for x in cluster.master.state()["slaves"] if x["id"] == agent.id]
        assert slave["deactivated"] is True
    finally:
        s.close()


def test_reactivating_an_active_agent_is_400(cluster):
    resp = call(cluster.port, "REACTIVATE_AGENT",
                reactivate_agent={"agent_id": {"value": cluster.agents[0].id}})
    assert resp.status == 400
    assert resp.text() == "Agent is not deactivated"


def test_drained_task_update_names_the_drain(cluster):
    agent = cluster.agents[0]
    s = h.RawScheduler(cluster.port, name="drained-reason")
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task("drainee", offer, "sleep 300")])
        s.wait_task_state("drainee", "TASK_RUNNING")
        assert call(cluster.port, "DRAIN_AGENT",
                    drain_agent={"agent_id": {"value": agent.id}}).status == 200
        killed = s.wait_task_state("drainee", "TASK_KILLED", timeout=30)
        assert killed.get("reason") == "REASON_AGENT_DRAINING"
    finally:
        s.close()


def test_drain_info_reaches_drained(cluster):
    agent = cluster.agents[0]
    s = h.RawScheduler(cluster.port, name="drained-info")
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task("drainee", offer, "sleep 300")])
        s.wait_task_state("drainee", "TASK_RUNNING")
        assert call(cluster.port, "DRAIN_AGENT",
                    drain_agent={"agent_id": {"value": agent.id}}).status == 200
        s.wait_task_state("drainee", "TASK_KILLED", timeout=30)

        def drained():
            slave = [x for x in cluster.master.state()["slaves"] if x["id"] == agent.id][0]
            return slave.get("drain_info", {}).get("state") == "DRAINED"
        h.wait_until(drained, 20, "drain_info.state DRAINED")
    finally:
        s.close()
