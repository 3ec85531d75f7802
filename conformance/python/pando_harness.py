"""Start real Pando processes on loopback and talk to them over raw HTTP.

Nothing here builds anything: the `pando` binary comes from $PANDO_BIN or
target/debug/pando (scripts/test builds it before pytest runs). Every wait
is a poll against a deadline; nothing sleeps a fixed time and hopes.
"""

import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Mesos's scheduler and operator SUBSCRIBED events announce this interval.
HEARTBEAT_INTERVAL_SECONDS = 15

# Every process any fixture started and has not stopped yet; conftest attaches
# their logs to the report of a failing test.
LIVE_PROCESSES = []
_LIVE_LOCK = threading.Lock()


def pando_bin():
    """The pando binary under test."""
    path = Path(os.environ.get("PANDO_BIN", REPO / "target" / "debug" / "pando"))
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(
            f"pando binary not found at {path}: build it with `cargo build -p pando` "
            "or point $PANDO_BIN at one"
        )
    return path


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what, interval=0.05, check=None):
    """Poll `predicate` until it returns something truthy; return that value.

    `check` runs on every round and may raise to stop early (a process that
    died, a driver thread that failed). On timeout, raise with `what`.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        if check is not None:
            check()
        try:
            value = predicate()
            if value:
                return value
        except (OSError, http.client.HTTPException, ValueError) as e:
            last_error = e
        if time.monotonic() >= deadline:
            suffix = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}{suffix}")
        time.sleep(interval)


def flag_args(flags):
    """Mesos-style flags: `--name=value`, or a bare `--name` for True."""
    args = []
    for key, value in (flags or {}).items():
        if value is True:
            args.append(f"--{key}")
        else:
            args.append(f"--{key}={value}")
    return args


class PandoProcess:
    """One `pando` process in its own process group, logging to a file."""

    def __init__(self, name, args, log_path, env=None):
        self.name = name
        self.args = [str(a) for a in args]
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.setdefault("RUST_BACKTRACE", "1")
        full_env.setdefault("NO_COLOR", "1")  # plain logs in the report
        if env:
            full_env.update(env)
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=full_env,
        )
        with _LIVE_LOCK:
            LIVE_PROCESSES.append(self)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def check_alive(self):
        """Raise with the log if the process has exited."""
        code = self.proc.poll()
        if code is not None:
            raise RuntimeError(
                f"{self.name} exited with status {code}: {' '.join(self.args)}\n"
                f"--- {self.log_path} ---\n{self.log_tail()}"
            )

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"<cannot read {self.log_path}: {e}>"

    def log_tail(self, lines=200):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace=5.0):
        """SIGTERM the whole process group, then SIGKILL what is left."""
        if self.proc.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # Children (executors, tasks) may outlive the leader: kill the group.
        self.signal_group(signal.SIGKILL)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        with _LIVE_LOCK:
            if self in LIVE_PROCESSES:
                LIVE_PROCESSES.remove(self)


# ---------------------------------------------------------------------------
# Raw HTTP


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage (case-insensitive)
        self.body = body

    def header(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def __repr__(self):
        return f"<Response {self.status} {self.reason} {self.body[:300]!r}>"


def request(port, method, path, body=None, headers=None, timeout=10.0, host="127.0.0.1"):
    """One HTTP request on a fresh connection; returns a Response."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
        elif isinstance(body, str):
            body = body.encode("utf-8")
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, resp.reason, resp.headers, data)
    finally:
        conn.close()


def get(port, path, headers=None, timeout=10.0):
    return request(port, "GET", path, headers=headers, timeout=timeout)


def post_json(port, path, call, headers=None, timeout=10.0):
    h = {"Content-Type": "application/json", "Accept": "application/json"}
    h.update(headers or {})
    return request(port, "POST", path, body=call, headers=h, timeout=timeout)


class Headers(dict):
    """Response headers with case-insensitive lookup (last value wins)."""

    def get(self, name, default=None):
        return super().get(name.lower(), default)


class RecordIOStream:
    """A streaming POST whose response body is RecordIO: `<length>\\n<record>`.

    It speaks HTTP/1.1 on a plain socket and undoes the chunked transfer
    coding itself, so chunk boundaries mean nothing here, exactly as Mesos
    specifies, and a read that times out leaves the stream usable (a socket
    file from http.client is dead after its first timeout).
    """

    def __init__(self, port, path, call, headers=None, timeout=10.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        h = {"Host": f"{host}:{port}", "Content-Type": "application/json",
             "Accept": "application/json"}
        h.update(headers or {})
        body = json.dumps(call).encode("utf-8") if isinstance(call, (dict, list)) else call
        h["Content-Length"] = str(len(body))
        head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        self.sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        self.sock.setblocking(False)
        self._raw = b""       # bytes received and not yet decoded
        self._data = b""      # decoded body bytes not yet consumed
        self._eof = False     # the peer closed the connection
        self._done = False    # the body ended (last chunk, or Content-Length)
        self._chunk_left = None
        self._length_left = None
        self._read_head(time.monotonic() + timeout)
        self.body = None
        if self.status != 200:
            self.body = self._read_all(time.monotonic() + timeout)
            self.close()

    # -- transport

    def _recv(self, deadline):
        """Receive more bytes; False once the peer has closed."""
        if self._eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        ready, _, _ = select.select([self.sock], [], [], left)
        if not ready:
            raise socket.timeout("timed out")
        data = self.sock.recv(65536)
        if not data:
            self._eof = True
            return False
        self._raw += data
        return True

    def _read_head(self, deadline):
        while b"\r\n\r\n" not in self._raw:
            if not self._recv(deadline):
                raise EOFError("connection closed before the response head")
        head, self._raw = self._raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers = Headers()
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            self._chunk_left = 0
        elif self.headers.get("Content-Length") is not None:
            self._length_left = int(self.headers.get("Content-Length"))
            self._done = self._length_left == 0

    def _decode(self):
        """Move what can be decoded from _raw into _data."""
        if self._chunk_left is None:
            if self._length_left is None:
                self._data += self._raw
            else:
                take = self._raw[:self._length_left]
                self._data += take
                self._length_left -= len(take)
                self._done = self._length_left == 0
            self._raw = b""
            return
        while not self._done:
            if self._chunk_left > 0:
                take = self._raw[:self._chunk_left]
                self._data += take
                self._raw = self._raw[len(take):]
                self._chunk_left -= len(take)
                if self._chunk_left > 0:
                    return
                self._chunk_left = -2  # the CRLF after the chunk's data
            if self._chunk_left == -2:
                if len(self._raw) < 2:
                    return
                if self._raw[:2] != b"\r\n":
                    raise ValueError(f"bad chunk terminator {self._raw[:2]!r}")
                self._raw = self._raw[2:]
                self._chunk_left = 0
            if b"\r\n" not in self._raw:
                return
            size_line, self._raw = self._raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                self._done = True
                return
            self._chunk_left = size

    def _fill(self, n, deadline):
        """Ensure at least n decoded bytes, or raise EOFError."""
        while True:
            self._decode()
            if len(self._data) >= n:
                return
            if self._done or not self._recv(deadline):
                self._decode()
                if len(self._data) >= n:
                    return
                raise EOFError(f"stream ended with {len(self._data)} of {n} bytes")

    def _read_all(self, deadline):
        while not self._done:
            self._decode()
            if self._done or not self._recv(deadline):
                break
        self._decode()
        data, self._data = self._data, b""
        return data

    # -- RecordIO

    def stream_id(self):
        return self.headers.get("Mesos-Stream-Id")

    def next_record(self, timeout=20.0):
        """The next RecordIO record's bytes; raises socket.timeout or EOFError."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._data:
            if len(self._data) > 20:
                raise ValueError(f"bad RecordIO length prefix {self._data[:30]!r}")
            self._fill(len(self._data) + 1, deadline)
        digits = self._data.partition(b"\n")[0]
        if not digits.isdigit():
            raise ValueError(f"bad RecordIO length prefix {digits!r}")
        length = int(digits)
        self._fill(len(digits) + 1 + length, deadline)
        start = len(digits) + 1
        record = self._data[start:start + length]
        self._data = self._data[start + length:]
        return record

    def next_event(self, timeout=20.0):
        return json.loads(self.next_record(timeout).decode("utf-8"))

    def next_event_of(self, types, timeout=20.0, skip=("HEARTBEAT",)):
        """The next event whose type is in `types`, skipping only `skip`.

        Any other event fails loudly: tests state exactly what may come.
        """
        if isinstance(types, str):
            types = (types,)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {types} event within {timeout}s")
            event = self.next_event(timeout=left)
            if event.get("type") in types:
                return event
            if event.get("type") not in skip:
                raise AssertionError(f"expected one of {types}, got {event}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self._eof = True


# ---------------------------------------------------------------------------
# A cluster: one master and some agents


class Master:
    def __init__(self, work_root, flags=None, name="master"):
        self.port = free_port()
        self.work_dir = Path(work_root) / name
        self.work_dir.mkdir(parents=True, exist_ok=True)
        args = [
            pando_bin(), "master",
            "--ip", "127.0.0.1",
            "--port", self.port,
            "--work_dir", self.work_dir,
        ]
        args += flag_args(flags)
        self.process = PandoProcess(name, args, Path(work_root) / f"{name}.log")
        self.address = f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout=30.0):
        def healthy():
            return get(self.port, "/master/health", timeout=2.0).status == 200

        wait_until(healthy, timeout, f"{self.address}/master/health to answer 200",
                   check=self.process.check_alive)

    def state(self):
        resp = get(self.port, "/master/state")
        assert resp.status == 200, resp
        return resp.json()

    def stop(self):
        self.process.stop()


class Agent:
    def __init__(self, work_root, master, resources, name, flags=None):
        self.port = free_port()
        self.work_dir = Path(work_root) / name
        self.work_dir.mkdir(parents=True, exist_ok=True)
        args = [
            pando_bin(), "agent",
            "--master", master.address,
            "--ip", "127.0.0.1",
            "--port", self.port,
            "--work_dir", self.work_dir,
            "--resources", resources,
        ]
        args += flag_args(flags)
        self.name = name
        self.args = args
        self.work_root = Path(work_root)
        self.restarts = 0
        self.process = PandoProcess(name, args, self.work_root / f"{name}.log")
        self.address = f"127.0.0.1:{self.port}"
        self.id = None

    def restart(self, sig=signal.SIGTERM):
        """Stop the agent process only (executors live in sessions of their
        own) and start it again with the same flags and work dir."""
        self.process.signal_group(sig)
        try:
            self.process.proc.wait(timeout=10)
        finally:
            self.process.stop()
        self.restarts += 1
        self.process = PandoProcess(f"{self.name}-restart{self.restarts}", self.args,
                                    self.work_root / f"{self.name}.restart{self.restarts}.log")

    def stop(self):
        self.process.stop()


DEFAULT_AGENT_RESOURCES = "cpus:2;mem:1024;ports:[31000-31100]"

# Short intervals so a test sees offers and liveness changes in well under a
# second; the names are Mesos's.
DEFAULT_MASTER_FLAGS = {
    "allocation_interval": "100ms",
}


class Cluster:
    """A master and `agents` agents, ready when the constructor returns."""

    def __init__(self, work_root, agents=1, master_flags=None, agent_resources=None,
                 agent_flags=None, timeout=30.0):
        self.work_root = Path(work_root)
        flags = dict(DEFAULT_MASTER_FLAGS)
        flags.update(master_flags or {})
        self.master = Master(self.work_root, flags)
        self.agents = []
        try:
            self.master.wait_ready(timeout)
            for i in range(agents):
                self.agents.append(Agent(
                    self.work_root, self.master,
                    agent_resources or DEFAULT_AGENT_RESOURCES,
                    name=f"agent{i}", flags=agent_flags))
            if agents:
                self.wait_agents(agents, timeout)
        except BaseException:
            self.stop()
            raise

    def check_alive(self):
        self.master.process.check_alive()
        for agent in self.agents:
            agent.process.check_alive()

    def wait_agents(self, count, timeout=30.0):
        """Wait until the master reports `count` active agents; learn their ids."""
        def registered():
            state = self.master.state()
            active = [s for s in state.get("slaves", []) if s.get("active")]
            if len(active) >= count and state.get("activated_slaves") >= count:
                return active
            return None

        slaves = wait_until(registered, timeout, f"{count} active agents in /master/state",
                            interval=0.1, check=self.check_alive)
        by_port = {s.get("port"): s for s in slaves}
        for agent in self.agents:
            slave = by_port.get(agent.port)
            if slave is None:
                # Mesos's pid is slave(1)@ip:port; fall back to matching it.
                slave = next((s for s in slaves if s.get("pid", "").endswith(f":{agent.port}")), None)
            if slave is not None:
                agent.id = slave["id"]
        return slaves

    @property
    def port(self):
        return self.master.port

    @property
    def address(self):
        return self.master.address

    def processes(self):
        return [self.master.process] + [a.process for a in self.agents]

    def stop(self):
        # Agents first so their tasks are torn down while the master still runs.
        for agent in self.agents:
            agent.stop()
        self.master.stop()
        # An agent starts executors in sessions of their own and, like Mesos's,
        # leaves them running for recovery when it stops; pymesos executors
        # then wait a day for it to return (MESOS_CHECKPOINT="0" is truthy
        # to pymesos). Whatever still runs in a sandbox of ours goes now.
        kill_processes_under(self.work_root)


def kill_processes_under(root):
    """SIGKILL every process whose working directory lies under `root`."""
    root = os.path.realpath(root)
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd.endswith(" (deleted)"):
            cwd = cwd[: -len(" (deleted)")]
        if cwd == root or cwd.startswith(root + os.sep):
            try:
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def scheduler_subscribe_call(name="pando-conformance", **framework):
    info = {"user": os.environ.get("USER", "root") or "root", "name": name}
    info.update(framework)
    call = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
    if "id" in info:
        # A resubscription names its id in both places, or validation fails
        # with "'framework_id' differs from 'subscribe.framework_info.id'".
        call["framework_id"] = info["id"]
    return call


# ---------------------------------------------------------------------------
# A scheduler written against the raw v1 HTTP API (no client library)


def scalar(name, value):
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def offer_scalar(offer, name):
    return sum(r["scalar"]["value"] for r in offer.get("resources", [])
               if r.get("name") == name and r.get("type") == "SCALAR")


class RawScheduler:
    """SUBSCRIBE over /api/v1/scheduler and keep the event stream open."""

    def __init__(self, port, name="pando-raw-scheduler", capabilities=(), **framework):
        self.port = port
        info = dict(framework)
        if capabilities:
            info["capabilities"] = [{"type": c} for c in capabilities]
        self.stream = RecordIOStream(port, "/api/v1/scheduler",
                                     scheduler_subscribe_call(name, **info))
        assert self.stream.status == 200, (self.stream.status, self.stream.body)
        self.stream_id = self.stream.stream_id()
        self.subscribed = self.stream.next_event_of("SUBSCRIBED", skip=())["subscribed"]
        self.framework_id = self.subscribed["framework_id"]["value"]
        self.seen = {}  # task id -> statuses read by next_update, in order
        # Events read while waiting for another kind, kept for whoever asks
        # for their kind next: an offer skipped while waiting for an update
        # is still the framework's to use or decline.
        self.backlog = []

    def call(self, type_, stream_id=True, **fields):
        body = {"type": type_, "framework_id": {"value": self.framework_id}}
        body.update(fields)
        headers = {}
        if stream_id:
            headers["Mesos-Stream-Id"] = self.stream_id
        return post_json(self.port, "/api/v1/scheduler", body, headers=headers)

    def next_event_of(self, types, timeout=20.0, skip=("HEARTBEAT",)):
        """The next event of one of `types`, from the backlog first.

        Events of a kind in `skip` are kept in the backlog (heartbeats are
        dropped); any other kind fails the test. A RESCIND removes its offer
        from the backlog.
        """
        if isinstance(types, str):
            types = (types,)
        for i, event in enumerate(self.backlog):
            if event.get("type") in types:
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {types} event within {timeout}s")
            event = self.stream.next_event(timeout=left)
            kind = event.get("type")
            if kind == "RESCIND":
                self._forget_offer(event["rescind"]["offer_id"])
            if kind in types:
                return event
            if kind not in skip:
                raise AssertionError(f"expected one of {types}, got {event}")
            if kind != "HEARTBEAT":
                self.backlog.append(event)

    def _forget_offer(self, offer_id):
        for event in list(self.backlog):
            if event.get("type") == "OFFERS":
                offers = event["offers"]["offers"]
                offers[:] = [o for o in offers if o["id"] != offer_id]
                if not offers:
                    self.backlog.remove(event)

    def next_offers(self, timeout=20.0, skip=("HEARTBEAT",)):
        return self.next_event_of("OFFERS", timeout, skip)["offers"]["offers"]

    def accept_launch(self, offer, tasks):
        resp = self.call("ACCEPT", accept={
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
        })
        assert resp.status == 202, resp
        return resp

    def decline(self, offers, refuse_seconds=None):
        decline = {"offer_ids": [o["id"] for o in offers]}
        if refuse_seconds is not None:
            decline["filters"] = {"refuse_seconds": refuse_seconds}
        resp = self.call("DECLINE", decline=decline)
        assert resp.status == 202, resp
        return resp

    def acknowledge(self, status):
        resp = self.call("ACKNOWLEDGE", acknowledge={
            "agent_id": status["agent_id"],
            "task_id": status["task_id"],
            "uuid": status["uuid"],
        })
        assert resp.status == 202, resp
        return resp

    def next_update(self, timeout=30.0, ack=True, skip=("HEARTBEAT", "OFFERS", "FAILURE",
                                                         "RESCIND", "MESSAGE")):
        status = self.next_event_of("UPDATE", timeout, skip)["update"]["status"]
        self.seen.setdefault(status["task_id"]["value"], []).append(status)
        if ack and "uuid" in status:
            self.acknowledge(status)
        return status

    def wait_task_state(self, task_id, state, timeout=30.0, seen=None):
        """Acknowledge updates until `task_id` reaches `state`; return that status.

        An update read earlier (while waiting for another task) counts. States
        seen on the way are appended to `seen` when given.
        """
        for status in self.seen.get(task_id, []):
            if seen is not None:
                seen.append(status["state"])
            if status["state"] == state:
                return status
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"task {task_id} did not reach {state}; saw {seen}")
            status = self.next_update(timeout=left)
            if status["task_id"]["value"] != task_id:
                continue
            if seen is not None:
                seen.append(status["state"])
            if status["state"] == state:
                return status

    def ack_in_background(self):
        """Read the stream on a thread from now on, acknowledging every update.

        For tests that watch another stream (the operator's) while this
        framework must keep acknowledging so the agent sends the next update.
        Events read are kept in `self.background_events`.
        """
        self.background_events = []
        self._stop_background = threading.Event()

        def run():
            while not self._stop_background.is_set():
                try:
                    event = self.stream.next_event(timeout=1.0)
                except socket.timeout:
                    continue
                except (OSError, EOFError, ValueError, AttributeError):
                    return
                self.background_events.append(event)
                status = event.get("update", {}).get("status", {})
                if event.get("type") == "UPDATE" and "uuid" in status:
                    try:
                        # Not asserted here: after close() the master may
                        # rightly refuse; the test's own checks decide.
                        self.call("ACKNOWLEDGE", acknowledge={
                            "agent_id": status["agent_id"],
                            "task_id": status["task_id"],
                            "uuid": status["uuid"],
                        })
                    except OSError:
                        return

        self._background = threading.Thread(target=run, daemon=True)
        self._background.start()

    def close(self):
        if getattr(self, "_stop_background", None) is not None:
            self._stop_background.set()
        self.stream.close()


def command_task(task_id, offer, command, cpus=0.1, mem=32.0):
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": [scalar("cpus", cpus), scalar("mem", mem)],
        "command": {"shell": True, "value": command},
    }


# ---------------------------------------------------------------------------
# A highly available cluster: masters sharing a replicated-log registry


HA_MASTER_FLAGS = {
    "allocation_interval": "100ms",
    # An agent that stops answering pings is noticed within seconds.
    "agent_ping_timeout": "1secs",
}

HA_AGENT_FLAGS = {
    # Agents retry registration quickly after the leader they knew is gone.
    "registration_backoff_factor": "100ms",
}


class _LeadingMasters:
    """What both HA cluster kinds answer about their masters, given
    `self.ports`, `self.agents`, `self.running(i)` and `self.check_alive()`."""

    def elected(self, i):
        """`master/elected` of master i as a bool; None if it does not answer."""
        if not self.running(i):
            return None
        try:
            resp = get(self.ports[i], "/metrics/snapshot", timeout=2.0)
            if resp.status != 200:
                return None
            return resp.json().get("master/elected") == 1
        except (OSError, http.client.HTTPException, ValueError):
            return None

    def leaders(self):
        """Indexes of the running masters that report master/elected 1."""
        return [i for i in range(len(self.ports)) if self.elected(i)]

    def wait_leader(self, timeout=30.0, exclude=()):
        """Wait until exactly one running master leads (not one in
        `exclude`); return its index."""
        def single():
            found = self.leaders()
            if len(found) == 1 and found[0] not in exclude:
                return [found[0]]
            return None

        return wait_until(single, timeout, "exactly one master with master/elected 1",
                          interval=0.05, check=self.check_alive)[0]

    def state(self, i):
        resp = get(self.ports[i], "/master/state")
        assert resp.status == 200, resp
        return resp.json()

    def masters(self, i):
        """GET /master/masters on master i: {"leader": "host:port", "masters": [...]}."""
        resp = get(self.ports[i], "/master/masters", timeout=2.0)
        assert resp.status == 200, resp
        return resp.json()

    def leader_pid(self, i):
        """How /master/state names master i as the leader."""
        return f"master@{self.addresses[i]}"

    # -- agents

    def wait_agents(self, leader, count, timeout=30.0):
        """Wait until master `leader` reports `count` active agents; learn their ids."""
        def registered():
            slaves = [s for s in self.state(leader).get("slaves", []) if s.get("active")]
            return slaves if len(slaves) >= count else None

        slaves = wait_until(registered, timeout, f"{count} active agents on master{leader}",
                            interval=0.1, check=self.check_alive)
        for agent in self.agents:
            slave = next((s for s in slaves if s.get("port") == agent.port
                          or s.get("pid", "").endswith(f":{agent.port}")), None)
            if slave is not None:
                agent.id = slave["id"]
        return slaves

    # -- everything


class HaCluster(_LeadingMasters):
    """`masters` masters with `--registry=replicated_log` and agents that
    know every one of them (`--master=host:port,host:port,...`), ready when
    the constructor returns: one master leads and every agent is active.

    Masters are indexed 0..masters-1 in `--masters` order. A master can be
    killed (`kill_master`, SIGKILL to the master process alone, like a
    crashed machine) and started again on the same port and work_dir
    (`restart_master`). `stop()` ends everything, killed masters' logs
    included in failure reports until then.
    """

    def __init__(self, work_root, masters=3, agents=2, master_flags=None,
                 agent_resources=None, agent_flags=None, timeout=30.0):
        self.work_root = Path(work_root)
        self.ports = []
        while len(self.ports) < masters:
            port = free_port()
            if port not in self.ports:
                self.ports.append(port)
        self.addresses = [f"127.0.0.1:{p}" for p in self.ports]
        # What agents are given as --master (Agent reads `.address`).
        self.address = ",".join(self.addresses)
        flags = dict(HA_MASTER_FLAGS)
        flags.update(master_flags or {})
        flags.update({
            "registry": "replicated_log",
            "quorum": masters // 2 + 1,
            "masters": self.address,
        })
        self.master_flags = flags
        self.processes_by_master = [[] for _ in range(masters)]  # every start, in order
        self.killed = set()  # masters killed by kill_master and not restarted
        self.agents = []
        try:
            for i in range(masters):
                self._start_master(i)
            self.wait_leader(timeout)
            agent_flags_all = dict(HA_AGENT_FLAGS)
            agent_flags_all.update(agent_flags or {})
            for i in range(agents):
                self.agents.append(Agent(
                    self.work_root, self,
                    agent_resources or DEFAULT_AGENT_RESOURCES,
                    name=f"agent{i}", flags=agent_flags_all))
            if agents:
                self.wait_agents(self.wait_leader(timeout), agents, timeout)
        except BaseException:
            self.stop()
            raise

    # -- masters

    def _start_master(self, i):
        starts = len(self.processes_by_master[i])
        name = f"master{i}" if starts == 0 else f"master{i}-restart{starts}"
        work_dir = self.work_root / f"master{i}"
        work_dir.mkdir(parents=True, exist_ok=True)
        args = [
            pando_bin(), "master",
            "--ip", "127.0.0.1",
            "--port", self.ports[i],
            "--work_dir", work_dir,
        ] + flag_args(self.master_flags)
        self.processes_by_master[i].append(
            PandoProcess(name, args, self.work_root / f"{name}.log"))

    def master_process(self, i):
        """The latest process started for master i."""
        return self.processes_by_master[i][-1]

    def running(self, i):
        return self.master_process(i).alive()

    def kill_master(self, i, sig=signal.SIGKILL):
        """Signal master i's process (not its group) and reap it."""
        proc = self.master_process(i).proc
        self.killed.add(i)
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)

    def restart_master(self, i):
        """Start master i again with the same flags, port and work_dir."""
        assert not self.running(i), f"master{i} is still running"
        self._start_master(i)
        self.killed.discard(i)

    def check_alive(self):
        """Raise if an agent, or a master not killed on purpose, has exited."""
        for i, procs in enumerate(self.processes_by_master):
            if i not in self.killed:
                procs[-1].check_alive()
        for agent in self.agents:
            agent.process.check_alive()

    def stop(self):
        for agent in self.agents:
            agent.stop()
        for procs in self.processes_by_master:
            for proc in procs:
                proc.stop()
        kill_processes_under(self.work_root)


# ---------------------------------------------------------------------------
# `pando local --ha`: the same three masters and two agents, started by one
# command


def parent_pid(pid):
    """The parent pid of `pid` from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: split after it.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1])


def process_running(pid):
    """Whether `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def is_master_at(pid, port):
    """Whether process `pid` is a `pando master ... --port=<port>`."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = [a.decode(errors="replace") for a in f.read().split(b"\0")]
    except OSError:
        return False
    return "master" in args and f"--port={port}" in args


def child_master_pid(parent, port):
    """The `pando master` child of `parent` started with `--port=<port>`
    (a /proc scan, like tests/cli_local.rs `master_pid`)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and parent_pid(entry) == parent and is_master_at(entry, port):
            return int(entry)
    return None


def free_port_run(count, limit=200):
    """The first of `count` consecutive ports on 127.0.0.1 that are all free."""
    for _ in range(limit):
        first = free_port()
        if first + count - 1 > 65535:
            continue
        held = []
        try:
            for port in range(first, first + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"found no {count} consecutive free ports in {limit} tries")


class LogFile:
    """A log written by a process the harness did not start itself (a
    `pando local` master child); listed in LIVE_PROCESSES so a failing
    test's report carries it."""

    def __init__(self, name, log_path):
        self.name = name
        self.log_path = Path(log_path)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"<cannot read {self.log_path}: {e}>"

    def log_tail(self, lines=200):
        return "\n".join(self.log_text().splitlines()[-lines:])


class LocalAgent:
    """An in-process agent of `pando local`, known by its port."""

    def __init__(self, port):
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.id = None


class LocalHaCluster(_LeadingMasters):
    """`pando local --ha --agents=N`: three `pando master` child processes
    on ports P, P+1, P+2 (Raft-replicated registry) and N in-process agents
    that know all three. Ready when the constructor returns: one master
    leads and every agent is active.

    The interface HaCluster offers a failover test: `ports`, `addresses`,
    `agents` (with ids), `elected`, `leaders`, `wait_leader`, `state`,
    `leader_pid`, `kill_master` (SIGKILL to that master child alone),
    `check_alive` and `stop`. Masters are not restarted: `pando local`
    does not restart them, so there is no `restart_master`.

    `stop()` sends SIGTERM to `pando local` alone and waits for it to stop
    its masters and agents (`exit_code`, `masters_left` tell how that
    went), then kills whatever is left under the work root.
    """

    BANNER_MASTER = re.compile(r"^\s*Master (\d+):\s+http://127\.0\.0\.1:(\d+)\s+\(pid (\d+), log (.+)\)\s*$")
    BANNER_AGENT = re.compile(r"^\s*Agent (\d+):\s+http://127\.0\.0\.1:(\d+)/state")
    BANNER_END = "Stop with Ctrl-C."

    def __init__(self, work_root, agents=2, timeout=30.0, stop_grace=20.0):
        self.work_root = Path(work_root)
        self.work_dir = self.work_root / "local"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.stop_grace = stop_grace
        first = free_port_run(3)
        self.ports = [first, first + 1, first + 2]
        self.addresses = [f"127.0.0.1:{p}" for p in self.ports]
        self.address = ",".join(self.addresses)
        self.killed = set()
        self.agents = []
        self.master_pids = []
        self.master_logs = []
        self.exit_code = None
        self.masters_left = None
        self.process = PandoProcess("pando-local-ha", [
            pando_bin(), "local", "--ha",
            f"--port={first}",
            f"--agents={agents}",
            "--agent_port=0",
            f"--work_dir={self.work_dir}",
        ], self.work_root / "pando-local.log")
        try:
            banner = wait_until(self._banner, timeout, "the `pando local --ha` banner",
                                interval=0.05, check=self.process.check_alive)
            self._learn(banner, agents)
            self.wait_agents(self.wait_leader(timeout), agents, timeout)
        except BaseException:
            self.stop()
            raise

    def _banner(self):
        text = self.process.log_text()
        if self.BANNER_END not in text:
            return None
        return text.split(self.BANNER_END, 1)[0].splitlines()

    def _learn(self, banner, agents):
        masters = {}
        for line in banner:
            m = self.BANNER_MASTER.match(line)
            if m:
                masters[int(m.group(2))] = (int(m.group(3)), m.group(4).strip())
                continue
            m = self.BANNER_AGENT.match(line)
            if m:
                self.agents.append(LocalAgent(int(m.group(2))))
        assert sorted(masters) == self.ports, (masters, self.ports, banner)
        assert len(self.agents) == agents, banner
        for i, port in enumerate(self.ports):
            pid, log = masters[port]
            # The banner's pid is the `pando master --port=<port>` child of
            # `pando local`: never signal a pid that is not.
            found = child_master_pid(self.process.pid, port)
            assert found == pid, f"banner says pid {pid} for port {port}, /proc says {found}"
            self.master_pids.append(pid)
            log_file = LogFile(f"pando-local master {i + 1} (port {port})", log)
            self.master_logs.append(log_file)
            with _LIVE_LOCK:
                LIVE_PROCESSES.append(log_file)

    # -- masters

    def running(self, i):
        return (process_running(self.master_pids[i])
                and parent_pid(self.master_pids[i]) == self.process.pid)

    def kill_master(self, i, sig=signal.SIGKILL):
        """Signal master i's process (not `pando local`, not its group) and
        wait until it is gone (reaped by `pando local`)."""
        assert self.running(i), f"master {i + 1} (pid {self.master_pids[i]}) is not running"
        self.killed.add(i)
        try:
            os.kill(self.master_pids[i], sig)
        except ProcessLookupError:
            pass
        wait_until(lambda: not process_running(self.master_pids[i]), 10,
                   f"master {i + 1} (pid {self.master_pids[i]}) to exit", interval=0.02)

    def check_alive(self):
        """Raise if `pando local`, or a master not killed on purpose, has exited."""
        self.process.check_alive()
        for i in range(len(self.ports)):
            if i not in self.killed and not self.running(i):
                raise RuntimeError(
                    f"pando local master {i + 1} (pid {self.master_pids[i]}, port "
                    f"{self.ports[i]}) has exited\n--- {self.master_logs[i].log_path} ---\n"
                    f"{self.master_logs[i].log_tail()}")

    def stop(self):
        """SIGTERM `pando local` alone and wait for it; then clean up."""
        if self.process.alive():
            try:
                os.kill(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.exit_code = self.process.proc.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                pass
        else:
            self.exit_code = self.process.proc.poll()
        self.masters_left = [pid for pid, port in zip(self.master_pids, self.ports)
                             if process_running(pid) and is_master_at(pid, port)]
        self.process.stop()  # SIGKILL to its group, if anything is left
        for pid in self.masters_left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        kill_processes_under(self.work_root)
        with _LIVE_LOCK:
            for log_file in self.master_logs:
                if log_file in LIVE_PROCESSES:
                    LIVE_PROCESSES.remove(log_file)
