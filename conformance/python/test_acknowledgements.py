"""Status updates are delivered at least once, one at a time, until acknowledged.

Sources (apache/mesos): docs/scheduler-http-api.md (ACKNOWLEDGE; an update
with a `uuid` must be acknowledged) and the agent's status update manager
(src/status_update_manager/): the next update of a task is forwarded only
after the previous one is acknowledged, and an unacknowledged update is
retried, first after STATUS_UPDATE_RETRY_INTERVAL_MIN = 10s
(src/slave/constants.hpp), with the same uuid.
"""

import time

import pando_harness as h


def test_updates_wait_for_acknowledgement_and_are_retried(cluster):
    s = h.RawScheduler(cluster.port, name="slow-acker")
    try:
        offer = s.next_offers()[0]
        s.accept_launch(offer, [h.command_task("patient", offer, "sleep 1")])
        first = s.next_update(ack=False)
        assert first["task_id"]["value"] == "patient"
        assert "uuid" in first
        # The task ends within a second, but while `first` is unacknowledged
        # no later update of it may arrive; only `first` again, as a retry.
        t0 = time.monotonic()
        retry = s.next_update(ack=False, timeout=30)
        waited = time.monotonic() - t0
        assert retry["task_id"]["value"] == "patient"
        assert retry["uuid"] == first["uuid"], (first["state"], retry["state"])
        assert retry["state"] == first["state"]
        # Mesos retries 10 s after it sent `first`; `waited` starts when
        # `first` arrived, a moment later, hence the half second.
        assert waited >= 9.5, waited
        # Acknowledge: the rest follows, through TASK_FINISHED.
        s.acknowledge(retry)
        finished = s.wait_task_state("patient", "TASK_FINISHED", timeout=30)
        assert finished["uuid"] != first["uuid"]
    finally:
        s.close()
