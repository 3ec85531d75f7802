"""Maintenance primitives: schedule, inverse offers, machine down and up.

Sources (apache/mesos): docs/maintenance.md and docs/operator-http-api.md;
src/master/http.cpp — UPDATE_MAINTENANCE_SCHEDULE, START_MAINTENANCE and
STOP_MAINTENANCE answer 200 OK; a machine (hostname + ip) in a schedule is
DRAINING; frameworks using it get INVERSE_OFFERS and its offers carry
`unavailability`; START_MAINTENANCE of a DRAINING machine shuts its agents
down and removes them (Master::removeSlave: TASK_LOST,
REASON_SLAVE_REMOVED, i.e. REASON_AGENT_REMOVED in v1); starting
maintenance on a machine outside any schedule is 400.
"""

import time

import pytest

import pando_harness as h

HOUR_NS = 3600 * 10**9


def call(port, type_, **fields):
    body = {"type": type_}
    body.update(fields)
    return h.post_json(port, "/api/v1", body)


def test_schedule_inverse_offers_down_and_up(cluster):
    # The removal of a downed machine's agents is its own case below.
    agent = cluster.agents[0]
    [slave] = cluster.master.state()["slaves"]
    machine = {"hostname": slave["hostname"], "ip": "127.0.0.1"}
    # Whole seconds: the exactness of odd nanoseconds is its own case below.
    start = (time.time_ns() // 10**9) * 10**9 + HOUR_NS
    s = h.RawScheduler(cluster.port, name="maintained")
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task("resident", offer, "sleep 300")])
        s.wait_task_state("resident", "TASK_RUNNING")

        outside = call(cluster.port, "START_MAINTENANCE",
                       start_maintenance={"machines": [machine]})
        assert outside.status == 400

        schedule = {"windows": [{"machine_ids": [machine], "unavailability": {
            "start": {"nanoseconds": start}, "duration": {"nanoseconds": HOUR_NS}}}]}
        resp = call(cluster.port, "UPDATE_MAINTENANCE_SCHEDULE",
                    update_maintenance_schedule={"schedule": schedule})
        assert resp.status == 200, resp

        got = call(cluster.port, "GET_MAINTENANCE_SCHEDULE").json()
        assert got["type"] == "GET_MAINTENANCE_SCHEDULE"
        window = got["get_maintenance_schedule"]["schedule"]["windows"][0]
        assert window["machine_ids"] == [machine]
        assert int(window["unavailability"]["start"]["nanoseconds"]) == start

        status = call(cluster.port, "GET_MAINTENANCE_STATUS").json()
        draining = status["get_maintenance_status"]["status"]["draining_machines"]
        assert [d["id"] for d in draining] == [machine]

        inverse = s.next_event_of("INVERSE_OFFERS", timeout=20,
                                  skip=("HEARTBEAT", "OFFERS", "UPDATE", "RESCIND"))
        [io] = inverse["inverse_offers"]["inverse_offers"]
        assert io["agent_id"]["value"] == agent.id
        assert int(io["unavailability"]["start"]["nanoseconds"]) == start

        resp = call(cluster.port, "START_MAINTENANCE", start_maintenance={"machines": [machine]})
        assert resp.status == 200, resp
        status = call(cluster.port, "GET_MAINTENANCE_STATUS").json()
        assert status["get_maintenance_status"]["status"].get("down_machines") == [machine]

        resp = call(cluster.port, "STOP_MAINTENANCE", stop_maintenance={"machines": [machine]})
        assert resp.status == 200, resp
        status = call(cluster.port, "GET_MAINTENANCE_STATUS").json()
        assert not status["get_maintenance_status"]["status"].get("down_machines")
    finally:
        s.close()


def test_inverse_offer_keeps_int64_nanoseconds_exact(cluster):
    # int64 fields travel as exact JSON integers in Mesos (stout's
    # JSON::Number keeps signed integers), so an odd nanosecond survives.
    [slave] = cluster.master.state()["slaves"]
    machine = {"hostname": slave["hostname"], "ip": "127.0.0.1"}
    # Odd, and above 2**53: no double holds it exactly.
    start = (time.time_ns() // 10**9) * 10**9 + HOUR_NS + 1
    s = h.RawScheduler(cluster.port, name="precise")
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task("resident", offer, "sleep 300")])
        s.wait_task_state("resident", "TASK_RUNNING")
        schedule = {"windows": [{"machine_ids": [machine], "unavailability": {
            "start": {"nanoseconds": start}, "duration": {"nanoseconds": HOUR_NS}}}]}
        resp = call(cluster.port, "UPDATE_MAINTENANCE_SCHEDULE",
                    update_maintenance_schedule={"schedule": schedule})
        assert resp.status == 200, resp
        inverse = s.next_event_of("INVERSE_OFFERS", timeout=20,
                                  skip=("HEARTBEAT", "OFFERS", "UPDATE", "RESCIND"))
        [io] = inverse["inverse_offers"]["inverse_offers"]
        assert int(io["unavailability"]["start"]["nanoseconds"]) == start
    finally:
        s.close()


def test_start_maintenance_removes_the_machines_agents(cluster):
    agent = cluster.agents[0]
    [slave] = cluster.master.state()["slaves"]
    machine = {"hostname": slave["hostname"], "ip": "127.0.0.1"}
    start = (time.time_ns() // 10**9) * 10**9 + HOUR_NS
    s = h.RawScheduler(cluster.port, name="downed")
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task("resident", offer, "sleep 300")])
        s.wait_task_state("resident", "TASK_RUNNING")
        schedule = {"windows": [{"machine_ids": [machine], "unavailability": {
            "start": {"nanoseconds": start}, "duration": {"nanoseconds": HOUR_NS}}}]}
        assert call(cluster.port, "UPDATE_MAINTENANCE_SCHEDULE",
                    update_maintenance_schedule={"schedule": schedule}).status == 200
        s.next_event_of("INVERSE_OFFERS", timeout=20,
                        skip=("HEARTBEAT", "OFFERS", "UPDATE", "RESCIND"))
        assert call(cluster.port, "START_MAINTENANCE",
                    start_maintenance={"machines": [machine]}).status == 200
        lost = s.wait_task_state("resident", "TASK_LOST", timeout=20)
        assert lost["reason"] == "REASON_AGENT_REMOVED"
        assert lost["source"] == "SOURCE_MASTER"
        assert agent.id not in [x["id"] for x in cluster.master.state()["slaves"]]
    finally:
        s.close()
