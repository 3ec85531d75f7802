#!/usr/bin/env python3
"""A tiny executor for the agent's tests: speaks the v1 executor HTTP API in
JSON, runs each task's shell command, and reports RUNNING then FINISHED or
FAILED (or KILLED). With MESOS_CHECKPOINT=1 it re-subscribes when the agent
goes away, sending its unacknowledged updates, as real executors do."""
import base64, http.client, json, os, signal, subprocess, sys, threading, time, uuid

env = os.environ
host, port = env["MESOS_AGENT_ENDPOINT"].rsplit(":", 1)
fw = {"value": env["MESOS_FRAMEWORK_ID"]}
ex = {"value": env["MESOS_EXECUTOR_ID"]}
checkpoint = env.get("MESOS_CHECKPOINT") == "1"
lock = threading.Lock()
procs = {}          # task id -> Popen
tasks = {}          # task id -> TaskInfo
unacked = {}        # uuid -> update
done = {}           # task id -> uuid of its terminal update
acked_terminal = set()

def post(call):
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", "/api/v1/executor", json.dumps(call),
                 {"Content-Type": "application/json", "Accept": "application/json"})
    r = conn.getresponse(); r.read(); conn.close()
    return r.status

def update(task_id, state, message=None):
    u = str(uuid.uuid4()).encode()
    status = {"task_id": {"value": task_id}, "state": state, "source": "SOURCE_EXECUTOR",
              "executor_id": ex, "uuid": base64.b64encode(uuid.UUID(u.decode()).bytes).decode()}
    if message:
        status["message"] = message
    with lock:
        unacked[status["uuid"]] = {"status": status}
        if state not in ("TASK_RUNNING", "TASK_STARTING"):
            done[task_id] = status["uuid"]
    for _ in range(50):
        try:
            if post({"type": "UPDATE", "framework_id": fw, "executor_id": ex,
                     "update": {"status": status}}) == 202:
                return
        except OSError:
            pass
        time.sleep(0.2)

def run(task):
    tid = task["task_id"]["value"]
    cmd = task.get("command", {}).get("value", "true")
    p = subprocess.Popen(["/bin/sh", "-c", cmd])
    with lock:
        procs[tid] = p
    update(tid, "TASK_RUNNING")
    code = p.wait()
    with lock:
        killed = getattr(p, "killed_by_agent", False)
    if killed:
        update(tid, "TASK_KILLED")
    elif code == 0:
        update(tid, "TASK_FINISHED")
    else:
        update(tid, "TASK_FAILED", "exited with %d" % code)

def subscribe():
    with lock:
        body = {"unacknowledged_updates": list(unacked.values()),
                "unacknowledged_tasks": [t for k, t in tasks.items() if k not in acked_terminal]}
    conn = http.client.HTTPConnection(host, int(port), timeout=3600)
    conn.request("POST", "/api/v1/executor", json.dumps(
        {"type": "SUBSCRIBE", "framework_id": fw, "executor_id": ex, "subscribe": body}),
        {"Content-Type": "application/json", "Accept": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        raise OSError("subscribe answered %d" % r.status)
    while True:
        line = r.readline()
        if not line:
            raise OSError("stream ended")
        n = int(line.strip())
        event = json.loads(r.read(n))
        t = event.get("type")
        if t == "LAUNCH":
            task = event["launch"]["task"]
            tasks[task["task_id"]["value"]] = task
            threading.Thread(target=run, args=(task,), daemon=True).start()
        elif t == "LAUNCH_GROUP":
            for task in event["launch_group"]["task_group"]["tasks"]:
                tasks[task["task_id"]["value"]] = task
                threading.Thread(target=run, args=(task,), daemon=True).start()
        elif t == "KILL":
            tid = event["kill"]["task_id"]["value"]
            with lock:
                p = procs.get(tid)
                if p:
                    p.killed_by_agent = True
                    p.kill()
        elif t == "ACKNOWLEDGED":
            u = event["acknowledged"]["uuid"]
            tid = event["acknowledged"]["task_id"]["value"]
            with lock:
                unacked.pop(u, None)
                if done.get(tid) == u:
                    acked_terminal.add(tid)
                finished = tasks and all(k in acked_terminal for k in tasks)
            if finished:
                os._exit(0)
        elif t == "SHUTDOWN":
            with lock:
                for p in procs.values():
                    p.kill()
            os._exit(0)

deadline = None
while True:
    try:
        subscribe()
    except (OSError, http.client.HTTPException, ValueError):
        pass
    if not checkpoint and tasks:
        os._exit(1)
    if deadline is None:
        deadline = time.time() + 60
    if time.time() > deadline:
        os._exit(1)
    time.sleep(0.2)
