"""Helpers for the tests that start real run processes (imported by tests/runs/conftest.py).

Every run here is a real supervisor and real training processes writing to a real SQLite
file in a copy of the quickstart project. What other test folders need as well (projects,
the CLI as a subprocess, waiting, killing what runs left behind) is in
:mod:`support.projects`, passed on from here; this module adds what only these tests use.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Iterable

from click.testing import CliRunner, Result
from support.projects import (
    CLI,
    PATIENCE,
    QUICKSTART,
    REPO,
    index_of,
    kill_run_processes,
    make_project,
    pids_gone,
    poll,
    run_row,
    wait_ended,
    wb,
)
from support.projects import clean_env as git_env

from workbench.store import Run

__all__ = [
    "BROKEN_TASK", "CHATTY_TASK", "CLI", "PATIENCE", "QUICKSTART", "REPO", "SLOW_TASK", "end_cli",
    "git_env", "index_of", "invoke", "kill_run_processes", "launch", "make_project", "pid_gone", "poll",
    "run_row", "train_loss_steps", "wait_ended", "wait_training", "wb", "wb_start",
]

#: A task whose training step fails (for the ``failed`` outcome).
BROKEN_TASK = '''"""A task whose training step fails."""

from sine import SineRegression


class Broken(SineRegression):
    """SineRegression whose first training step raises."""

    def training_step(self, batch, batch_idx):
        raise RuntimeError(f"boom in batch {batch_idx}")
'''

#: A task that prints which version of its code runs (for the code-snapshot test).
CHATTY_TASK = '''"""A task that says which version of its code runs."""

from sine import SineRegression


class Chatty(SineRegression):
    """SineRegression that prints a marker when it builds its model."""

    def build_model(self):
        print("chatty code version: original", flush=True)
        return super().build_model()
'''


#: A task that trains for as long as a test needs while using almost no CPU (the machines
#: that run the tests may have two cores; three busy long runs would starve everything else).
SLOW_TASK = '''"""A task whose steps take a while but cost almost no CPU."""

import time

from sine import SineRegression


class Slow(SineRegression):
    """SineRegression that sleeps a little in every training step."""

    def training_step(self, batch, batch_idx):
        time.sleep(0.05)
        return super().training_step(batch, batch_idx)
'''


def invoke(project: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``workbench --project PROJECT ARGS`` in this process (click's CliRunner): for
    what a command prints and its exit status, without a Python start-up per call."""
    from workbench.cli import cli

    result = CliRunner().invoke(cli, ["--project", str(project), *args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def wb_start(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``workbench ARGS`` as a subprocess in ``project``; the caller waits for it."""
    return subprocess.Popen([*CLI, *args], cwd=project, env=env or git_env(project.parent),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def launch(project: Path, *args: str) -> dict[str, Any]:
    """``workbench run ARGS --json`` (no waiting); returns the new run's record."""
    result = wb(project, "run", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_training(project: Path, run_id: str, min_step: int = 1) -> Run:
    """Wait until the run is ``running`` and has reported step ``min_step`` or later."""
    def going() -> Run | None:
        row = run_row(project, run_id)
        assert row.status.is_live, f"run ended early: {row.status} {row.error}"
        return row if row.status == "running" and (row.step or 0) >= min_step else None

    return poll(going, f"run {run_id} to reach step {min_step}")


def train_loss_steps(project: Path, run_id: str) -> list[int]:
    """The steps of the run's ``train/loss`` points, in order."""
    with index_of(project) as index:
        return [step for step, _, _ in index.points(run_id, "train/loss")]


def pid_gone(pid: int, timeout: float = 30.0) -> bool:
    """Wait until the process ``pid`` has exited (reaped or a zombie); return True."""
    return pids_gone([pid], timeout)


def end_cli(procs: Iterable[subprocess.Popen[str]]) -> None:
    """Kill CLI subprocesses a test started and did not wait for."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        try:
            proc.communicate(timeout=10)
        except (subprocess.TimeoutExpired, ValueError):
            pass
