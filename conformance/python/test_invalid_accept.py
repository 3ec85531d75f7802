"""Invalid ACCEPT calls are answered 202 and then with status updates, never silence.

Sources (apache/mesos): Master::accept in src/master/master.cpp — invalid
offers turn every task into TASK_LOST (TASK_DROPPED for PARTITION_AWARE
frameworks) with REASON_INVALID_OFFERS and the message "Task launched with
invalid offers: ..."; a task failing validation::task::validate becomes
TASK_ERROR with REASON_TASK_INVALID. All come from SOURCE_MASTER.
"""

import pytest

import pando_harness as h


def launch_raw(s, offer_ids, tasks):
    resp = s.call("ACCEPT", accept={
        "offer_ids": offer_ids,
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
    })
    assert resp.status == 202, resp
    return resp


def update_for(s, task_id, timeout=20):
    while True:
        status = s.next_update(timeout=timeout)
        if status["task_id"]["value"] == task_id:
            return status


@pytest.mark.parametrize("aware, expected", [(False, "TASK_LOST"), (True, "TASK_DROPPED")])
def test_unknown_offer(cluster, aware, expected):
    caps = ("PARTITION_AWARE",) if aware else ()
    s = h.RawScheduler(cluster.port, capabilities=caps)
    try:
        offer = s.next_offers()[0]
        task = h.command_task("t", offer, "true")
        launch_raw(s, [{"value": "no-such-offer"}], [task])
        status = update_for(s, "t")
        assert status["state"] == expected
        assert status["reason"] == "REASON_INVALID_OFFERS"
        assert status["source"] == "SOURCE_MASTER"
        assert status["message"].startswith("Task launched with invalid offers: ")
    finally:
        s.close()


def test_offer_used_twice(cluster):
    s = h.RawScheduler(cluster.port)
    try:
        offer = s.next_offers()[0]
        launch_raw(s, [offer["id"]], [h.command_task("first", offer, "sleep 300")])
        launch_raw(s, [offer["id"]], [h.command_task("second", offer, "sleep 300")])
        status = update_for(s, "second")
        assert status["state"] == "TASK_LOST"
        assert status["reason"] == "REASON_INVALID_OFFERS"
        s.wait_task_state("first", "TASK_RUNNING")
    finally:
        s.close()


def test_offers_from_two_agents_in_one_accept(cluster2):
    s = h.RawScheduler(cluster2.port)
    try:
        offers = {}
        while len(offers) < 2:
            for o in s.next_offers():
                offers[o["agent_id"]["value"]] = o
        a, b = offers.values()
        launch_raw(s, [a["id"], b["id"]], [h.command_task("split", a, "true")])
        status = update_for(s, "split")
        assert status["state"] == "TASK_LOST"
        assert status["reason"] == "REASON_INVALID_OFFERS"
    finally:
        s.close()


@pytest.mark.parametrize("case", ["too_many_cpus", "no_command_or_executor", "duplicate_id"])
def test_invalid_task_is_task_error(cluster, case):
    s = h.RawScheduler(cluster.port)
    try:
        offer = s.next_offers()[0]
        if case == "too_many_cpus":
            tasks = [h.command_task("bad", offer, "true", cpus=64)]
        elif case == "no_command_or_executor":
            task = h.command_task("bad", offer, "true")
            del task["command"]
            tasks = [task]
        else:
            tasks = [h.command_task("bad", offer, "sleep 300"),
                     h.command_task("bad", offer, "sleep 300")]
        launch_raw(s, [offer["id"]], tasks)
        status = update_for(s, "bad")
        if case == "duplicate_id":
            # The first "bad" launches; the second is the one refused.
            while status["state"] != "TASK_ERROR":
                status = update_for(s, "bad")
        assert status["state"] == "TASK_ERROR"
        assert status["reason"] == "REASON_TASK_INVALID"
        assert status["source"] == "SOURCE_MASTER"
        assert status["message"]
    finally:
        s.close()


def test_resources_of_an_invalid_launch_are_offered_again(cluster):
    # Master::_accept recovers what the refused task would have used; with
    # refuse_seconds=0 the agent is offered again in the next rounds.
    s = h.RawScheduler(cluster.port)
    try:
        offer = s.next_offers()[0]
        resp = s.call("ACCEPT", accept={
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [
                h.command_task("huge", offer, "true", cpus=64)]}}],
            "filters": {"refuse_seconds": 0}})
        assert resp.status == 202
        assert update_for(s, "huge")["state"] == "TASK_ERROR"
        again = s.next_offers(timeout=10, skip=("HEARTBEAT", "UPDATE"))
        assert again[0]["agent_id"] == offer["agent_id"]
        assert h.offer_scalar(again[0], "cpus") == 2
    finally:
        s.close()
