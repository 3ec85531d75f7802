"""Persistent volumes: CREATE_VOLUMES / DESTROY_VOLUMES and data that outlives tasks.

Sources (apache/mesos): docs/persistent-volume.md and operator-http-api.md —
a volume is created on reserved disk (`disk.persistence.id`,
`disk.volume{mode, container_path}`), offered back to the role with that
DiskInfo, appears at `container_path` in the sandbox of a task that uses it
(the filesystem/posix isolator links it there), and keeps its data across
tasks until DESTROY_VOLUMES; both calls answer 202 Accepted.
"""

import pytest

import pando_harness as h

CAPS = ("MULTI_ROLE", "RESERVATION_REFINEMENT")
DISK = {"type": "SCALAR", "name": "disk", "scalar": {"value": 100},
        "reservations": [{"type": "DYNAMIC", "role": "r1"}]}
VOLUME = dict(DISK, disk={"persistence": {"id": "vol-1"},
                          "volume": {"mode": "RW", "container_path": "data"}})


def create_volume(cluster):
    aid = {"value": cluster.agents[0].id}
    assert h.post_json(cluster.port, "/api/v1", {"type": "RESERVE_RESOURCES", "reserve_resources": {
        "agent_id": aid, "resources": [DISK]}}).status == 202
    assert h.post_json(cluster.port, "/api/v1", {"type": "CREATE_VOLUMES", "create_volumes": {
        "agent_id": aid, "volumes": [VOLUME]}}).status == 202


def offer_with_volume(s):
    while True:
        offer = s.next_offers(skip=("HEARTBEAT", "UPDATE", "FAILURE"))[0]
        vols = [r for r in offer["resources"]
                if r.get("disk", {}).get("persistence", {}).get("id") == "vol-1"]
        if vols:
            return offer, vols[0]
        s.decline([offer], refuse_seconds=0)


def test_volume_is_offered_and_destroyed(cluster_factory):
    cluster = cluster_factory(agents=1, agent_resources="cpus:2;mem:1024;disk:1000")
    create_volume(cluster)
    s = h.RawScheduler(cluster.port, name="volume-viewer", roles=["r1"], capabilities=CAPS)
    try:
        offer, vol = offer_with_volume(s)
        assert vol["disk"]["volume"] == {"mode": "RW", "container_path": "data"}
        assert vol["scalar"]["value"] == 100
        assert vol["reservations"] == [{"type": "DYNAMIC", "role": "r1"}]
        s.decline([offer], refuse_seconds=3600)
    finally:
        s.close()
    resp = h.post_json(cluster.port, "/api/v1", {"type": "DESTROY_VOLUMES", "destroy_volumes": {
        "agent_id": {"value": cluster.agents[0].id}, "volumes": [VOLUME]}})
    assert resp.status == 202
    other = h.RawScheduler(cluster.port, name="after-destroy", roles=["r1"], capabilities=CAPS)
    try:
        offer = other.next_offers()[0]
        assert not [r for r in offer["resources"] if r.get("disk", {}).get("persistence")]
    finally:
        other.close()


def test_volume_data_outlives_its_tasks(cluster_factory):
    cluster = cluster_factory(agents=1, agent_resources="cpus:2;mem:1024;disk:1000")
    agent = cluster.agents[0]
    create_volume(cluster)
    s = h.RawScheduler(cluster.port, name="volume-user", roles=["r1"], capabilities=CAPS)
    try:
        for task_id, command in (("writer", "echo persisted > data/f"),
                                 ("reader", "cat data/f")):
            offer, vol = offer_with_volume(s)
            task = h.command_task(task_id, offer, command)
            task["resources"] = [dict(r, scalar={"value": v}) for r, v in (
                (next(x for x in offer["resources"] if x["name"] == "cpus"), 0.1),
                (next(x for x in offer["resources"] if x["name"] == "mem"), 32))] + [vol]
            s.accept_launch(offer, [task])
            seen = []
            try:
                s.wait_task_state(task_id, "TASK_FINISHED", timeout=30, seen=seen)
            except TimeoutError:
                raise AssertionError(f"{task_id} did not finish: {seen}")
        stdouts = list(agent.work_dir.glob(
            f"slaves/*/frameworks/{s.framework_id}/executors/reader/runs/*/stdout"))
        assert any("persisted" in p.read_text() for p in stdouts), stdouts
    finally:
        s.close()
