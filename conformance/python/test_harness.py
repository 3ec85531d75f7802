"""The harness itself: RecordIO parsing, process-group teardown, deadlines.

These run without a master, so they hold the harness to account even while
the suites that need one are pending.
"""

import http.server
import json
import os
import socketserver
import subprocess
import threading
import time

import pytest

import pando_harness as h


class _StreamHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Records whose RecordIO framing is cut into chunks at awkward places:
    # inside the length prefix, right after the newline, inside a record.
    records = [{"type": "SUBSCRIBED", "subscribed": {"n": 1}}, {"type": "HEARTBEAT"},
               {"type": "OFFERS", "offers": {"offers": [{"id": {"value": "o" * 300}}]}}]

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Mesos-Stream-Id", "7c3f5f1e-0000-4000-8000-000000000000")
        self.end_headers()
        payload = b""
        for record in self.records:
            data = json.dumps(record).encode()
            payload += str(len(data)).encode() + b"\n" + data
        cuts = [1, 2, 3, 17, 1, 40, 5]
        pos = 0
        for cut in cuts + [len(payload)]:
            piece = payload[pos:pos + cut]
            if not piece:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
            pos += len(piece)
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args):
        pass


class _QuietServer(socketserver.TCPServer):
    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def stream_server():
    server = _QuietServer(("127.0.0.1", 0), _StreamHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_recordio_records_survive_any_chunking(stream_server):
    s = h.RecordIOStream(stream_server, "/api/v1/scheduler", {"type": "SUBSCRIBE"})
    assert s.status == 200
    assert s.stream_id() == "7c3f5f1e-0000-4000-8000-000000000000"
    assert s.next_event() == _StreamHandler.records[0]
    # next_event_of skips heartbeats only.
    assert s.next_event_of("OFFERS") == _StreamHandler.records[2]
    with pytest.raises(EOFError):
        s.next_event()
    s.close()


def test_next_event_of_rejects_unexpected_events(stream_server):
    s = h.RecordIOStream(stream_server, "/api/v1/scheduler", {"type": "SUBSCRIBE"})
    s.next_event()
    with pytest.raises(AssertionError, match="HEARTBEAT"):
        s.next_event_of("UPDATE", skip=())
    s.close()


def test_process_group_is_killed_with_its_children(tmp_path):
    # A leader that ignores SIGTERM and leaves a child behind, as a crashed
    # agent might leave a task: stop() must still remove both.
    script = "trap '' TERM; sleep 300 & echo child $!; wait"
    p = h.PandoProcess("sh", ["sh", "-c", script], tmp_path / "sh.log")
    child = int(h.wait_until(
        lambda: next((line.split()[1] for line in p.log_text().splitlines()
                      if line.startswith("child ")), None),
        10, "the child's pid"))
    pgid = p.pid
    assert os.getpgid(child) == pgid
    p.stop(grace=0.5)
    assert not p.alive()
    assert p not in h.LIVE_PROCESSES

    def group_gone():
        try:
            os.killpg(pgid, 0)
            return False
        except ProcessLookupError:
            return True

    h.wait_until(group_gone, 5, "process group to be empty")


def test_check_alive_reports_exit_with_log(tmp_path):
    p = h.PandoProcess("false", ["sh", "-c", "echo boom; exit 3"], tmp_path / "f.log")
    p.proc.wait(timeout=10)
    with pytest.raises(RuntimeError, match=r"(?s)exited with status 3.*boom"):
        p.check_alive()
    p.stop()


def test_wait_until_times_out_with_reason():
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="the impossible"):
        h.wait_until(lambda: False, 0.3, "the impossible")
    assert time.monotonic() - start < 2


def test_free_ports_are_distinct_and_bindable():
    ports = {h.free_port() for _ in range(20)}
    assert len(ports) > 1
    assert all(1024 <= p <= 65535 for p in ports)


def test_pando_binary_answers_as_mesos_1_x(pando_binary):
    out = subprocess.run([str(pando_binary), "version"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    assert "Mesos API 1." in out, out


class _FakeDriver:
    def __init__(self):
        self.launches = []

    def launchTasks(self, offer_id, tasks, filters=None):
        self.launches.append((offer_id.value, [t.task_id.value for t in tasks], filters))


def _offer(offer_id, agent, cpus, mem):
    from pymesos_support import scalar
    from addict import Dict
    return Dict(id=Dict(value=offer_id), agent_id=Dict(value=agent),
                resources=[scalar("cpus", cpus), scalar("mem", mem)])


def test_task_queue_counts_each_executor_once_per_agent():
    from pymesos_support import TaskQueue, executor_task, pymesos_executor_info
    executor = pymesos_executor_info("e", cpus=0.5, mem=100)
    tasks = [executor_task(f"t{i}", executor, {}, cpus=0.5, mem=100) for i in range(4)]
    queue = TaskQueue(tasks, refuse_seconds=0.1)
    driver = _FakeDriver()
    # 1.5 cpus: the executor (0.5) and two tasks fit on agent a.
    queue(driver, [_offer("o1", "a", 1.5, 1000)])
    assert driver.launches == [("o1", ["t0", "t1"], {"refuse_seconds": 0.1})]
    # Agent b needs its own executor: again two tasks in 1.5 cpus.
    queue(driver, [_offer("o2", "b", 1.5, 1000)])
    assert driver.launches[-1][1] == ["t2", "t3"]
    assert queue.launched == {"t0": "a", "t1": "a", "t2": "b", "t3": "b"}
    assert tasks[0].agent_id.value == "a" and tasks[3].agent_id.value == "b"
    # Nothing left: the next offer is declined through an empty launch.
    queue(driver, [_offer("o3", "a", 2, 1000)])
    assert driver.launches[-1][:2] == ("o3", [])


def test_recording_scheduler_waits_from_a_mark():
    from pymesos_support import RecordingScheduler
    from addict import Dict
    s = RecordingScheduler()
    s.statusUpdate(None, Dict(task_id=Dict(value="x"), state="TASK_RUNNING"))
    mark = s.mark()
    threading.Timer(0.2, lambda: s.statusUpdate(
        None, Dict(task_id=Dict(value="x"), state="TASK_FINISHED"))).start()
    assert s.wait_for("update", since=mark, timeout=5).status.state == "TASK_FINISHED"
    assert s.task_states("x") == ["TASK_RUNNING", "TASK_FINISHED"]
    with pytest.raises(TimeoutError):
        s.wait_for("update", lambda d: d.status.state == "TASK_KILLED", timeout=0.3)
    s.assert_no("offers", window=0.2)


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, pause in enumerate([0, 1.0]):
            time.sleep(pause)
            data = json.dumps({"type": "HEARTBEAT", "n": i}).encode()
            record = str(len(data)).encode() + b"\n" + data
            self.wfile.write(b"%x\r\n%s\r\n" % (len(record), record))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args):
        pass


def test_a_read_timeout_leaves_the_stream_usable():
    server = _QuietServer(("127.0.0.1", 0), _SlowHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        s = h.RecordIOStream(server.server_address[1], "/", {})
        assert s.next_event(timeout=5)["n"] == 0
        with pytest.raises(TimeoutError):
            s.next_event(timeout=0.2)
        assert s.next_event(timeout=5)["n"] == 1
        with pytest.raises(EOFError):
            s.next_event(timeout=5)
        s.close()
    finally:
        server.shutdown()
        server.server_close()


def test_kill_processes_under_a_work_dir(tmp_path):
    # What an agent leaves behind: a process in its own session, cwd in a sandbox.
    sandbox = tmp_path / "slaves" / "s" / "runs" / "r"
    sandbox.mkdir(parents=True)
    orphan = subprocess.Popen(["sleep", "300"], cwd=sandbox, start_new_session=True)
    bystander = subprocess.Popen(["sleep", "300"], cwd="/", start_new_session=True)
    try:
        h.kill_processes_under(tmp_path)
        assert orphan.wait(timeout=10) == -9
        assert bystander.poll() is None
    finally:
        for p in (orphan, bystander):
            if p.poll() is None:
                p.kill()
                p.wait()
