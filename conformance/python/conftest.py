"""Fixtures for the conformance suites: real `pando` processes on loopback.

Markers:
  pending(reason): the test is correct against Mesos but Pando lacks the
      feature named in `reason`; scripts/test deselects these (`-m "not
      pending"`). Run everything with `.venv/bin/python -m pytest
      conformance/python`.
"""

import signal
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pando_harness as h  # noqa: E402


# --- pymesos driver threads ------------------------------------------------
#
# pymesos reports an exception on its I/O thread by interrupting the main
# thread (SIGINT), which would abort the whole pytest session. We record it
# instead; `driver_errors()` lets the waiting test fail at once with it.

DRIVER_THREAD_ERRORS = []
_errors_lock = threading.Lock()


def _install_pymesos_sigint_handler():
    try:
        import pymesos.process as pp
    except ImportError:
        return

    def handler(signum, frame):
        info = pp._exc_info
        if info is not None:
            pp._exc_info = None
            with _errors_lock:
                DRIVER_THREAD_ERRORS.append(info)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)


_install_pymesos_sigint_handler()


def check_driver_errors():
    """Raise the first exception a pymesos I/O thread died with, if any."""
    with _errors_lock:
        if DRIVER_THREAD_ERRORS:
            exc_type, exc, tb = DRIVER_THREAD_ERRORS.pop(0)
            raise RuntimeError(f"pymesos I/O thread failed: {exc_type.__name__}: {exc}") from exc


@pytest.fixture(autouse=True)
def pymesos_thread_errors_fail_their_test():
    """An exception on a pymesos I/O thread fails the test it happened in.

    A test's waits raise it as soon as they see it; one that happens after
    the last wait would otherwise be lost, or fail the next test. Whatever
    is left is raised at this test's teardown, and the next test starts
    with none."""
    with _errors_lock:
        DRIVER_THREAD_ERRORS.clear()
    yield
    with _errors_lock:
        left = list(DRIVER_THREAD_ERRORS)
        DRIVER_THREAD_ERRORS.clear()
    if left:
        exc_type, exc, _ = left[0]
        raise RuntimeError(
            f"pymesos I/O thread failed ({len(left)} error(s)), first: "
            f"{exc_type.__name__}: {exc}"
        ) from exc


# --- logs of the processes under test, on failure ---------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for proc in list(h.LIVE_PROCESSES):
            report.sections.append(
                (f"{proc.name} log ({proc.log_path})", proc.log_tail(300))
            )


# --- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="session")
def pando_binary():
    return h.pando_bin()


@pytest.fixture(scope="module")
def master(tmp_path_factory, pando_binary):
    """A master with no agents, shared by a module's read-only tests."""
    cluster = h.Cluster(tmp_path_factory.mktemp("master"), agents=0)
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_factory(tmp_path_factory, pando_binary):
    """Build clusters with chosen flags; all are stopped at teardown."""
    made = []

    def make(agents=1, **kwargs):
        c = h.Cluster(tmp_path_factory.mktemp("cluster"), agents=agents, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


@pytest.fixture
def cluster(cluster_factory):
    """A fresh master with one agent (cpus:2;mem:1024;ports:[31000-31100])."""
    return cluster_factory(agents=1)


@pytest.fixture
def cluster2(cluster_factory):
    """A fresh master with two agents."""
    return cluster_factory(agents=2)
