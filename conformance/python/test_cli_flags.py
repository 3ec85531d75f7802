"""`pando master` and `pando agent` take Mesos's flag names, underscores and all.

Operators bring their Mesos command lines and config management along, and
every suite here starts processes with them (`--work_dir`, not
`--work-dir`). Names from Mesos's docs/configuration/master.md and
agent.md (src/master/flags.cpp, src/slave/flags.cpp).
"""

import subprocess

import pytest

MASTER_FLAGS = [
    "ip", "port", "work_dir", "hostname", "cluster",
    "allocation_interval", "offer_timeout", "min_allocatable_resources", "roles", "weights",
    "agent_ping_timeout", "max_agent_ping_timeouts", "agent_reregister_timeout",
    "max_completed_frameworks", "max_completed_tasks_per_framework",
    "authenticate_frameworks", "authenticate_http_readonly", "authenticate_http_readwrite",
    "credentials", "quorum",
]

AGENT_FLAGS = [
    "master", "ip", "port", "hostname", "work_dir", "resources", "attributes", "isolation",
    "cgroups_root", "recover", "strict", "executor_shutdown_grace_period",
    "executor_registration_timeout", "recovery_timeout", "registration_backoff_factor",
    "launcher_dir",
]


def help_text(pando_binary, role):
    run = subprocess.run([str(pando_binary), role, "--help"], capture_output=True, text=True,
                         timeout=30)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.parametrize("flag", MASTER_FLAGS)
def test_master_takes_mesos_flag_names(pando_binary, flag):
    text = help_text(pando_binary, "master")
    assert f"--{flag} " in text or f"--{flag}\n" in text, \
        f"--{flag} missing from `pando master --help`"


@pytest.mark.parametrize("flag", AGENT_FLAGS)
def test_agent_takes_mesos_flag_names(pando_binary, flag):
    text = help_text(pando_binary, "agent")
    assert f"--{flag} " in text or f"--{flag}\n" in text, \
        f"--{flag} missing from `pando agent --help`"


@pytest.mark.parametrize("form, expected", [
    ("--authenticate_http_readwrite=true", "true"),
    ("--authenticate_http_readwrite=false", "false"),
    ("--no-authenticate_http_readwrite", "false"),
])
def test_boolean_flags_take_every_mesos_form(tmp_path, pando_binary, form, expected):
    import pando_harness as h
    port = h.free_port()
    proc = h.PandoProcess("master", [pando_binary, "master", "--ip", "127.0.0.1", "--port", port,
                                     "--work_dir", tmp_path / "m", form],
                          tmp_path / "master.log")
    try:
        h.wait_until(lambda: h.get(port, "/master/health", timeout=2).status == 200, 30,
                     "the master", check=proc.check_alive)
        flags = h.get(port, "/master/state").json()["flags"]
        assert flags["authenticate_http_readwrite"] == expected
    finally:
        proc.stop()
