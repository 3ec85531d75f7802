"""A pymesos scheduler in its own process, for failover cases.

Usage: pymesos_scheduler.py MASTER [--framework-id ID] [--launch TASK_ID]
       [--failover-timeout SECS]

Prints one JSON object per line on stdout for every callback (registered,
reregistered, update, error), launches a `sleep 300` command task named
TASK_ID on the first offer that fits when --launch is given, declines other
offers, and after reregistering reconciles every task implicitly. It runs
until killed; SIGTERM stops the driver with failover (no TEARDOWN).
"""

import argparse
import getpass
import json
import signal
import socket
import sys
import threading

from addict import Dict
from pymesos import MesosSchedulerDriver, Scheduler


def emit(kind, **data):
    sys.stdout.write(json.dumps(dict(event=kind, **data)) + "\n")
    sys.stdout.flush()


class FailoverScheduler(Scheduler):
    def __init__(self, launch):
        self.launch = launch
        self.lock = threading.Lock()

    def registered(self, driver, framework_id, master_info):
        emit("registered", framework_id=framework_id.value)

    def reregistered(self, driver, master_info):
        emit("reregistered", framework_id=driver.framework_id)
        driver.reconcileTasks([])

    def resourceOffers(self, driver, offers):
        for offer in offers:
            with self.lock:
                task_id, self.launch = self.launch, None
            if task_id is None:
                driver.declineOffer(offer.id, filters=Dict(refuse_seconds=1))
                continue
            task = Dict()
            task.task_id.value = task_id
            task.name = task_id
            task.agent_id.value = offer.agent_id.value
            task.command.value = "sleep 300"
            task.resources = [Dict(name="cpus", type="SCALAR", scalar=Dict(value=0.1)),
                              Dict(name="mem", type="SCALAR", scalar=Dict(value=32))]
            driver.launchTasks(offer.id, [task])

    def statusUpdate(self, driver, status):
        emit("update", task_id=status.task_id.value, state=status.state,
             reason=status.get("reason"), source=status.get("source"))

    def error(self, driver, message):
        emit("error", message=message)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("master")
    parser.add_argument("--framework-id")
    parser.add_argument("--launch")
    parser.add_argument("--failover-timeout", type=float, default=60)
    args = parser.parse_args()

    framework = Dict()
    framework.user = getpass.getuser()
    framework.name = "pymesos-failover"
    framework.hostname = socket.gethostname()
    framework.failover_timeout = args.failover_timeout
    if args.framework_id:
        framework.id.value = args.framework_id

    driver = MesosSchedulerDriver(FailoverScheduler(args.launch), framework, args.master,
                                  use_addict=True)
    signal.signal(signal.SIGTERM, lambda *_: driver.stop(failover=True))
    driver.run()


if __name__ == "__main__":
    main()
