"""executors/pymesos_executor.py against a scripted stand-in for the agent.

The pymesos suites start this executor through Pando's agent; here a small
server plays the agent's side of Mesos's executor API (docs/executor-http-
api.md: SUBSCRIBE answered by a chunked RecordIO stream starting with
SUBSCRIBED, then LAUNCH, KILL, MESSAGE, SHUTDOWN events; UPDATE and MESSAGE
calls answered 202), so that a failure in those suites points at Pando, not
at the executor. It needs no master or agent and runs in CI.
"""

import http.server
import json
import os
import queue
import socketserver
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from pymesos import decode_data, encode_data

import pando_harness as h

SCRIPT = Path(__file__).resolve().parent / "executors" / "pymesos_executor.py"


class FakeAgent:
    """Serves /api/v1/executor on loopback; events are pushed by the test."""

    def __init__(self):
        self.events = queue.Queue()
        self.calls = queue.Queue()
        self.subscribed = threading.Event()
        agent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                call = json.loads(body)
                if self.path != "/api/v1/executor":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if call["type"] != "SUBSCRIBE":
                    agent.calls.put(call)
                    self.send_response(202)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                agent.calls.put(call)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                agent.subscribed.set()
                while True:
                    event = agent.events.get()
                    if event is None:
                        self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()
                        return
                    data = json.dumps(event).encode()
                    record = str(len(data)).encode() + b"\n" + data
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(record), record))
                    self.wfile.flush()

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # The executor hanging up mid-stream is expected at teardown.
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next_call(self, type_, timeout=20):
        while True:
            call = self.calls.get(timeout=timeout)
            if call["type"] == type_:
                return call

    def close(self):
        self.events.put(None)
        self.server.shutdown()
        self.server.server_close()


FRAMEWORK_ID = "fw-0001"
EXECUTOR_ID = "pymesos-exec"
AGENT_ID = "agent-S0"


@pytest.fixture
def executor(tmp_path):
    agent = FakeAgent()
    env = dict(os.environ)
    env.update({
        "MESOS_AGENT_ENDPOINT": f"127.0.0.1:{agent.port}",
        "MESOS_FRAMEWORK_ID": FRAMEWORK_ID,
        "MESOS_EXECUTOR_ID": EXECUTOR_ID,
        "MESOS_SANDBOX": str(tmp_path),
        "MESOS_DIRECTORY": str(tmp_path),
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
    })
    # pymesos reads MESOS_CHECKPOINT with bool(): any non-empty value is on.
    env.pop("MESOS_CHECKPOINT", None)
    proc = h.PandoProcess("pymesos-executor", [sys.executable, SCRIPT],
                          tmp_path / "executor.log", env=env)
    try:
        subscribe = agent.next_call("SUBSCRIBE")
        assert subscribe["framework_id"] == {"value": FRAMEWORK_ID}
        assert subscribe["executor_id"] == {"value": EXECUTOR_ID}
        agent.events.put({"type": "SUBSCRIBED", "subscribed": {
            "executor_info": {"executor_id": {"value": EXECUTOR_ID},
                              "command": {"value": "true"}},
            "framework_info": {"id": {"value": FRAMEWORK_ID}, "user": "root", "name": "fw"},
            "agent_info": {"id": {"value": AGENT_ID}, "hostname": "localhost"},
            "container_id": {"value": str(uuid.uuid4())},
        }})
        yield agent, proc
    finally:
        agent.close()
        proc.stop(grace=2)


def launch(agent, task_id, spec):
    agent.events.put({"type": "LAUNCH", "launch": {
        "framework_info": {"id": {"value": FRAMEWORK_ID}, "user": "root", "name": "fw"},
        "task": {"name": task_id, "task_id": {"value": task_id},
                 "agent_id": {"value": AGENT_ID},
                 "data": encode_data(json.dumps(spec).encode())},
    }})


def next_update(agent, task_id):
    while True:
        call = agent.next_call("UPDATE")
        status = call["update"]["status"]
        assert call["framework_id"] == {"value": FRAMEWORK_ID}
        assert call["executor_id"] == {"value": EXECUTOR_ID}
        assert status["source"] == "SOURCE_EXECUTOR"
        assert uuid.UUID(bytes=decode_data(status["uuid"]))
        if status["task_id"]["value"] == task_id:
            return status


def test_registers_with_a_message(executor):
    agent, _ = executor
    message = agent.next_call("MESSAGE")
    assert decode_data(message["message"]["data"]) == f"registered:{EXECUTOR_ID}".encode()


def test_runs_finishes_and_fails_tasks(executor):
    agent, _ = executor
    launch(agent, "ok", {"action": "finish", "seconds": 0.1})
    assert next_update(agent, "ok")["state"] == "TASK_RUNNING"
    finished = next_update(agent, "ok")
    assert finished["state"] == "TASK_FINISHED"
    assert finished["message"] == "done"
    launch(agent, "bad", {"action": "fail"})
    assert next_update(agent, "bad")["state"] == "TASK_RUNNING"
    assert next_update(agent, "bad")["state"] == "TASK_FAILED"


def test_kill_and_messages(executor):
    agent, _ = executor
    launch(agent, "w", {"action": "wait"})
    assert next_update(agent, "w")["state"] == "TASK_RUNNING"
    agent.events.put({"type": "MESSAGE", "message": {"data": encode_data(b"hi")}})
    while True:
        data = decode_data(agent.next_call("MESSAGE")["message"]["data"])
        if data.startswith(b"pong:"):
            break
    assert data == b"pong:hi"
    agent.events.put({"type": "KILL", "kill": {"task_id": {"value": "w"}}})
    assert next_update(agent, "w")["state"] == "TASK_KILLED"


def test_shutdown_ends_the_process(executor):
    agent, proc = executor
    agent.next_call("MESSAGE")
    agent.events.put({"type": "SHUTDOWN"})
    proc.proc.wait(timeout=20)
    assert not proc.alive()
