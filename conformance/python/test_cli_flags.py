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


@pytest.mark.pending("`pando master` does not exist yet (issue 4)")
@pytest.mark.parametrize("flag", MASTER_FLAGS)
def test_master_takes_mesos_flag_names(pando_binary, flag):
    text = help_text(pando_binary, "master")
    assert f"--{flag} " in text or f"--{flag}\n" in text, \
        f"--{flag} missing from `pando master --help`"


AGENT_KEBAB = ("`pando agent` spells multi-word flags the clap way (--work-dir, "
               "--cgroups-root, ...), not Mesos's --work_dir")


AGENT_MISSING = "`pando agent` is not committed yet (the agent issue)"


@pytest.mark.parametrize("flag", [
    pytest.param(f, marks=pytest.mark.pending(AGENT_KEBAB if "_" in f else AGENT_MISSING))
    for f in AGENT_FLAGS
])
def test_agent_takes_mesos_flag_names(pando_binary, flag):
    text = help_text(pando_binary, "agent")
    assert f"--{flag} " in text or f"--{flag}\n" in text, \
        f"--{flag} missing from `pando agent --help`"
