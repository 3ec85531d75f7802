"""Quota limits (UPDATE_QUOTA / GET_QUOTA) and what they do to offers.

Sources (apache/mesos): include/mesos/v1/quota/quota.proto (QuotaConfig:
role, guarantees and limits as maps of Value.Scalar), master.proto
(Call.UpdateQuota{force, quota_configs}; Response.GetQuota{status:
QuotaStatus{configs}}), docs/quota.md and the hierarchical allocator: a
role's allocation, offers included, never exceeds its limits.
"""

import pando_harness as h


def test_quota_limit_caps_offers(cluster):
    resp = h.post_json(cluster.port, "/api/v1", {
        "type": "UPDATE_QUOTA",
        "update_quota": {"force": False, "quota_configs": [
            {"role": "capped", "limits": {"cpus": {"value": 1}}}]}})
    assert resp.status == 200, resp
    got = h.post_json(cluster.port, "/api/v1", {"type": "GET_QUOTA"}).json()
    assert got["type"] == "GET_QUOTA"
    configs = got["get_quota"]["status"]["configs"]
    assert [(c["role"], c["limits"]["cpus"]["value"]) for c in configs] == [("capped", 1)]

    s = h.RawScheduler(cluster.port, name="capped-framework", roles=["capped"],
                       capabilities=("MULTI_ROLE",))
    try:
        offer = s.next_offers()[0]
        assert h.offer_scalar(offer, "cpus") == 1
        s.accept_launch(offer, [h.command_task("within", offer, "sleep 300", cpus=1, mem=32)])
        s.wait_task_state("within", "TASK_RUNNING")
        # At its limit, the role is offered no more cpus.
        more = []
        try:
            more = s.next_offers(timeout=2, skip=("HEARTBEAT", "UPDATE"))
        except TimeoutError:
            pass
        assert all(h.offer_scalar(o, "cpus") == 0 for o in more), more
    finally:
        s.close()
