"""Mesos's own generated Java classes drive Pando over application/x-protobuf.

conformance/java/ProtobufScheduler.java is compiled here with javac against
mesos-1.4.3-shaded-protobuf.jar from pyspark 3.5.9's jars; it subscribes,
reads the RecordIO stream, accepts an offer with a LAUNCH, acknowledges the
updates and tears down, all in protobuf.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import pando_harness as h

JAVA_SRC = h.REPO / "conformance" / "java" / "ProtobufScheduler.java"


@pytest.fixture(scope="module")
def mesos_jar():
    import pyspark
    jar = Path(pyspark.__file__).parent / "jars" / "mesos-1.4.3-shaded-protobuf.jar"
    assert jar.is_file(), jar
    return jar


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, mesos_jar):
    javac = shutil.which("javac")
    assert javac, "javac not found: .ci/run installs openjdk-17-jdk-headless"
    out = tmp_path_factory.mktemp("java")
    subprocess.run([javac, "-cp", str(mesos_jar), "-d", str(out), str(JAVA_SRC)],
                   check=True, capture_output=True, text=True, timeout=300)
    return out


def test_protobuf_scheduler_launches_a_task(cluster, mesos_jar, compiled):
    run = subprocess.run(
        ["java", "-cp", f"{mesos_jar}{os.pathsep}{compiled}", "ProtobufScheduler",
         cluster.address, "echo proto-hello"],
        capture_output=True, text=True, timeout=120)
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stdout + run.stderr
    assert lines[0].startswith("SUBSCRIBED ") and lines[0].endswith(" heartbeat 15.0"), lines
    assert lines[1] == f"OFFER {cluster.agents[0].id}"
    assert lines[2] == "ACCEPT 202"
    updates = [l for l in lines if l.startswith("UPDATE ")]
    assert updates[-1] == "UPDATE TASK_FINISHED"
    assert "UPDATE TASK_RUNNING" in updates
    assert lines[-2:] == ["TEARDOWN 202", "OK"]
