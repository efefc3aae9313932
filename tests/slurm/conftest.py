"""A real one-node Slurm for the ``slurm``-marked tests (``scripts/slurm_up.sh``).

The session fixture :func:`slurm` brings the cluster up once (installing Debian's packages
when they are missing and this is root) and stops, at the end, exactly the daemons it
started (``scripts/slurm_down.sh``); a Slurm that was already up is left alone. Where it
cannot come up, the tests that need it skip with the script's reason — unless
``WORKBENCH_SLURM=required`` (set by ``.ci/run``), where that is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.projects import REPO, kill_run_processes, make_project

sys.path.insert(0, str(Path(__file__).resolve().parent))  # slurm_helpers

#: The cluster table every test project gets (the test node's default partition).
CLUSTER_TOML = """
[clusters.here]
kind = "slurm"
partition = "debug"
time = "10:00"
signal_lead = 30
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slurm: needs a real Slurm (scripts/slurm_up.sh brings one up)")


@pytest.fixture(scope="session")
def slurm() -> Iterator[dict[str, str]]:
    """A one-node Slurm; yields the environment the tests' processes need (``SLURM_CONF``)."""
    required = os.environ.get("WORKBENCH_SLURM") == "required"
    try:
        up = subprocess.run([str(REPO / "scripts" / "slurm_up.sh")], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        up = subprocess.CompletedProcess([], 1, "", f"slurm_up.sh: {exc}")
    if up.returncode != 0:
        reason = (up.stderr.strip().splitlines() or ["scripts/slurm_up.sh failed"])[-1]
        if required:
            pytest.fail(f"WORKBENCH_SLURM=required but Slurm did not come up: {reason}", pytrace=False)
        pytest.skip(f"no Slurm here: {reason}")
    env = {}
    for line in up.stdout.splitlines():
        if line.startswith("export SLURM_CONF="):
            env["SLURM_CONF"] = line.split("=", 1)[1]
    started_here = "already" not in up.stdout
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if started_here and os.environ.get("WORKBENCH_SLURM_KEEP") != "1":
            subprocess.run([str(REPO / "scripts" / "slurm_down.sh")], capture_output=True, timeout=120)


@pytest.fixture
def project(tmp_path: Path, probe_cache: Path) -> Iterator[Path]:
    """A git-committed copy of the quickstart project with ``[clusters.here]``; its runs'
    local processes (watchers) are killed at teardown."""
    root = make_project(tmp_path, probe_cache)
    toml = root / "workbench.toml"
    toml.write_text(toml.read_text() + CLUSTER_TOML)
    subprocess.run(["git", "commit", "-qam", "a cluster"], cwd=root, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "T",
                        "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": os.devnull})
    yield root
    kill_run_processes(root)
    cancel_jobs(root)


def cancel_jobs(root: Path) -> None:
    """``scancel`` every Slurm job the project's runs submitted (those that still run)."""
    import json
    import shutil

    if shutil.which("scancel") is None:
        return
    for placement in (root / ".workbench" / "runs").glob("*/cluster.json"):
        jobs = [str(j["job_id"]) for j in json.loads(placement.read_text()).get("jobs", [])]
        if jobs:
            subprocess.run(["scancel", *jobs], capture_output=True, timeout=60)
