"""Dynamic reservations, by the operator and by a framework's ACCEPT.

Sources (apache/mesos): docs/reservation.md and docs/operator-http-api.md
(RESERVE_RESOURCES / UNRESERVE_RESOURCES answer 202 Accepted); resources in
the "post-reservation-refinement" format carry a `reservations` stack of
{type: DYNAMIC, role}; offers to a MULTI_ROLE framework carry
allocation_info.role; /master/state's slaves[] report reserved_resources by
role and unreserved_resources.
"""

import time

import pytest

import pando_harness as h

CAPS = ("MULTI_ROLE", "RESERVATION_REFINEMENT")


def reserved_cpus(role, value):
    return {"type": "SCALAR", "name": "cpus", "scalar": {"value": value},
            "reservations": [{"type": "DYNAMIC", "role": role}]}


def cpus_of(offer):
    """(reserved role or None, value) for each cpus resource of an offer."""
    out = []
    for r in offer["resources"]:
        if r["name"] == "cpus":
            stack = r.get("reservations", [])
            out.append((stack[-1]["role"] if stack else None, r["scalar"]["value"]))
    return sorted(out, key=lambda x: (x[0] or "", x[1]))


def wait_reserved(cluster, expected):
    def check():
        slave = cluster.master.state()["slaves"][0]
        got = {role: res.get("cpus", 0) for role, res in slave.get("reserved_resources", {}).items()
               if res.get("cpus", 0)}
        return got == expected
    h.wait_until(check, 10, f"reserved cpus {expected} in /master/state")


def test_operator_reserve_and_unreserve(cluster):
    agent = cluster.agents[0]
    resp = h.post_json(cluster.port, "/api/v1", {
        "type": "RESERVE_RESOURCES",
        "reserve_resources": {"agent_id": {"value": agent.id},
                              "resources": [reserved_cpus("r1", 1.0)]}})
    assert resp.status == 202, resp
    wait_reserved(cluster, {"r1": 1.0})
    slave = cluster.master.state()["slaves"][0]
    assert slave["unreserved_resources"]["cpus"] == 1.0

    mine = h.RawScheduler(cluster.port, name="in-r1", roles=["r1"], capabilities=CAPS)
    try:
        offer = mine.next_offers()[0]
        assert cpus_of(offer) == [(None, 1.0), ("r1", 1.0)]
        for r in offer["resources"]:
            assert r["allocation_info"]["role"] == "r1"
        mine.decline([offer], refuse_seconds=3600)
    finally:
        mine.close()

    other = h.RawScheduler(cluster.port, name="in-r2", roles=["r2"], capabilities=CAPS)
    try:
        offer = other.next_offers()[0]
        assert cpus_of(offer) == [(None, 1.0)]
        other.decline([offer], refuse_seconds=3600)
    finally:
        other.close()

    resp = h.post_json(cluster.port, "/api/v1", {
        "type": "UNRESERVE_RESOURCES",
        "unreserve_resources": {"agent_id": {"value": agent.id},
                                "resources": [reserved_cpus("r1", 1.0)]}})
    assert resp.status == 202, resp
    wait_reserved(cluster, {})


def test_framework_reserves_through_accept(cluster):
    s = h.RawScheduler(cluster.port, name="reserver", roles=["r1"], capabilities=CAPS)
    try:
        offer = s.next_offers()[0]
        resp = s.call("ACCEPT", accept={
            "offer_ids": [offer["id"]],
            "operations": [{"type": "RESERVE", "reserve": {"resources": [
                dict(reserved_cpus("r1", 0.5), allocation_info={"role": "r1"})]}}],
            "filters": {"refuse_seconds": 0}})
        assert resp.status == 202, resp
        wait_reserved(cluster, {"r1": 0.5})
        deadline = time.monotonic() + 20
        while True:
            offers = s.next_offers(timeout=max(0.1, deadline - time.monotonic()),
                                   skip=("HEARTBEAT", "RESCIND"))
            if ("r1", 0.5) in cpus_of(offers[0]):
                break
            s.decline(offers, refuse_seconds=0)
        assert cpus_of(offers[0]) == [(None, 1.5), ("r1", 0.5)]
        resp = s.call("ACCEPT", accept={
            "offer_ids": [offers[0]["id"]],
            "operations": [{"type": "UNRESERVE", "unreserve": {"resources": [
                dict(reserved_cpus("r1", 0.5), allocation_info={"role": "r1"})]}}],
            "filters": {"refuse_seconds": 0}})
        assert resp.status == 202, resp
        wait_reserved(cluster, {})
    finally:
        s.close()


def test_static_reservation_from_agent_resources(cluster_factory):
    # `cpus(r1):1` in --resources is a STATIC reservation for r1
    # (docs/reservation.md); it is offered only to r1, with the stack
    # [{type: STATIC, role: r1}].
    cluster = cluster_factory(agents=1,
                              agent_resources="cpus(r1):1;cpus:1;mem:1024;ports:[31000-31100]")
    wait_reserved(cluster, {"r1": 1.0})
    s = h.RawScheduler(cluster.port, name="static-r1", roles=["r1"], capabilities=CAPS)
    try:
        offer = s.next_offers()[0]
        reserved = [r for r in offer["resources"] if r["name"] == "cpus" and r.get("reservations")]
        assert [(r["reservations"], r["scalar"]["value"]) for r in reserved] == [
            ([{"type": "STATIC", "role": "r1"}], 1.0)]
        s.decline([offer], refuse_seconds=3600)
    finally:
        s.close()
    other = h.RawScheduler(cluster.port, name="static-other", roles=["r2"], capabilities=CAPS)
    try:
        assert cpus_of(other.next_offers()[0]) == [(None, 1.0)]
    finally:
        other.close()
