"""Offer lifecycle and framework updates on the scheduler API.

Sources (apache/mesos): --offer_timeout (src/master/flags.cpp) and
Master::offerTimeout/rescindOffer in src/master/master.cpp — an offer held
past the timeout is rescinded with a RESCIND event naming it, and its
resources are offered again; Master::updateFramework answers UPDATE_FRAMEWORK
with 200 OK (not 202) and operator subscribers see FRAMEWORK_UPDATED.
"""

import time

import pando_harness as h


def test_offer_timeout_rescinds_held_offers(cluster_factory):
    cluster = cluster_factory(agents=1, master_flags={"offer_timeout": "1secs"})
    s = h.RawScheduler(cluster.port, name="hoarder")
    try:
        offer = s.next_offers()[0]
        rescind = s.next_event_of("RESCIND", timeout=10)
        assert rescind["rescind"]["offer_id"] == offer["id"]
        again = s.next_offers(timeout=10)
        assert again[0]["agent_id"] == offer["agent_id"]
        assert again[0]["id"] != offer["id"]
        # The rescinded offer can no longer be used.
        resp = s.call("ACCEPT", accept={
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [
                h.command_task("late", offer, "true")]}}]})
        assert resp.status == 202
        status = s.next_update(skip=("HEARTBEAT", "OFFERS", "RESCIND"))
        assert status["task_id"]["value"] == "late"
        assert status["state"] == "TASK_LOST"
        assert status["reason"] == "REASON_INVALID_OFFERS"
    finally:
        s.close()


def test_update_framework(master):
    operator = h.RecordIOStream(master.port, "/api/v1", {"type": "SUBSCRIBE"})
    s = h.RawScheduler(master.port, name="before")
    try:
        assert operator.next_event(timeout=10)["type"] == "SUBSCRIBED"
        info = {"user": "root", "name": "after", "id": {"value": s.framework_id}}
        resp = s.call("UPDATE_FRAMEWORK", update_framework={"framework_info": info})
        assert resp.status == 200, resp
        [fw] = [f for f in master.master.state()["frameworks"] if f["id"] == s.framework_id]
        assert fw["name"] == "after"
        updated = operator.next_event_of("FRAMEWORK_UPDATED", timeout=10,
                                         skip=("HEARTBEAT", "FRAMEWORK_ADDED"))
        assert updated["framework_updated"]["framework"]["framework_info"]["name"] == "after"
    finally:
        s.close()
        operator.close()


def test_suppress_and_revive_per_role(cluster_factory):
    # A MULTI_ROLE framework suppresses one of its roles (Call.Suppress.roles):
    # offers then come only for the other, until REVIVE names the role again.
    # Each offer is allocated to one role (allocation_info.role).
    cluster = cluster_factory(agents=2)
    s = h.RawScheduler(cluster.port, name="two-roles", roles=["a", "b"],
                       capabilities=("MULTI_ROLE",))
    try:
        resp = s.call("SUPPRESS", suppress={"roles": ["a"]})
        assert resp.status == 202
        # Offers already made before the SUPPRESS was handled may still come;
        # decline what arrives in the first half second, then watch.
        drain = time.monotonic() + 0.5
        while time.monotonic() < drain:
            try:
                s.decline(s.next_offers(timeout=max(0.05, drain - time.monotonic())),
                          refuse_seconds=0.2)
            except TimeoutError:
                pass
        roles_seen = set()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                offers = s.next_offers(timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            for o in offers:
                roles_seen.add(o["resources"][0]["allocation_info"]["role"])
            s.decline(offers, refuse_seconds=0.2)
        assert roles_seen == {"b"}, roles_seen
        resp = s.call("REVIVE", revive={"roles": ["a"]})
        assert resp.status == 202
        deadline = time.monotonic() + 10
        while "a" not in roles_seen:
            offers = s.next_offers(timeout=max(0.1, deadline - time.monotonic()))
            for o in offers:
                roles_seen.add(o["resources"][0]["allocation_info"]["role"])
            s.decline(offers, refuse_seconds=0.2)
    finally:
        s.close()
