"""A custom executor built on pymesos's MesosExecutorDriver.

The agent starts it with the environment Mesos defines (MESOS_AGENT_ENDPOINT,
MESOS_FRAMEWORK_ID, MESOS_EXECUTOR_ID, ...); pymesos subscribes on
/api/v1/executor. What a task does comes from TaskInfo.data, a JSON object:

  {"action": "finish", "seconds": S}  TASK_RUNNING, then TASK_FINISHED after S
  {"action": "fail"}                  TASK_RUNNING, then TASK_FAILED
  {"action": "wait"}                  TASK_RUNNING, then nothing until killed

A KILL answers TASK_KILLED. A framework message `X` is answered with
`pong:X`; on registration the executor sends `registered:<executor id>`.
"""

import json
import logging
import sys
import threading
import time

from addict import Dict
from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data

log = logging.getLogger("pymesos-executor")


def send_update(driver, task_id, state, message=None):
    update = Dict()
    update.task_id.value = task_id
    update.state = state
    update.timestamp = time.time()
    if message:
        update.message = message
    driver.sendStatusUpdate(update)


class ConformanceExecutor(Executor):
    def __init__(self):
        self.lock = threading.Lock()
        self.killed = set()

    def registered(self, driver, executor_info, framework_info, agent_info):
        executor_id = executor_info["executor_id"]["value"]
        log.info("registered as %s on agent %s", executor_id, agent_info["id"]["value"])
        driver.sendFrameworkMessage(encode_data(f"registered:{executor_id}".encode()))

    def launchTask(self, driver, task):
        task_id = task.task_id.value
        spec = json.loads(decode_data(task.data)) if task.data else {}

        def run():
            send_update(driver, task_id, "TASK_RUNNING")
            action = spec.get("action", "finish")
            if action == "wait":
                return
            time.sleep(float(spec.get("seconds", 0)))
            with self.lock:
                if task_id in self.killed:
                    return
            if action == "fail":
                send_update(driver, task_id, "TASK_FAILED", "asked to fail")
            else:
                send_update(driver, task_id, "TASK_FINISHED", "done")

        threading.Thread(target=run, daemon=True).start()

    def killTask(self, driver, task_id):
        with self.lock:
            self.killed.add(task_id.value)
        send_update(driver, task_id.value, "TASK_KILLED", "killed by the framework")

    def frameworkMessage(self, driver, message):
        data = decode_data(message)
        driver.sendFrameworkMessage(encode_data(b"pong:" + data))

    def shutdown(self, driver):
        log.info("shutdown")

    def error(self, driver, message):
        log.error("error from agent: %s", message)


def main():
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    driver = MesosExecutorDriver(ConformanceExecutor(), use_addict=True)
    driver.run()


if __name__ == "__main__":
    main()
