"""One trainer per run, stops that never silently kill, and orphans that are never doubled.

DESIGN.md, "Who owns a run": a stop is a request in the row; a repeated graceful stop does
not escalate; killing is its own request; a trainer whose supervisor died still holds its
run (an OS lock that dies with it), so stop, resume, rm, reconcile and a second trainer all
see it. Real processes, a real index.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from runs_helpers import SLOW_TASK, git_env, invoke, launch, pid_gone, run_row, wait_ended, wait_training, wb

from workbench.runs.liveness import STALE_AFTER_ENV
from workbench.runs.locks import TRAINER_LOCK, trainer_alive
from workbench.runs.outcome import read_outcome

pytestmark = pytest.mark.slow

#: Its steps get slow after a few: a graceful stop then takes seconds to end its batch.
SLUGGISH_TASK = '''"""A task whose batches take seconds after the first few."""

import time

from sine import SineRegression


class Sluggish(SineRegression):
    """SineRegression whose steps sleep 3 s from the fourth on."""

    def training_step(self, batch, batch_idx):
        time.sleep(3.0 if self.state.step >= 3 else 0.05)
        return super().training_step(batch, batch_idx)
'''

PROJECT_FILES = {"tasks/slow.py": SLOW_TASK, "tasks/sluggish.py": SLUGGISH_TASK}
LONG = ("Slow", "-s", "epochs=1000", "-s", "samples=2000")


def _checkpoints(run_dir: str) -> list[str]:
    folder = Path(run_dir) / "checkpoints"
    return sorted(p.name for p in folder.glob("step-*.pt")) if folder.is_dir() else []


def test_a_second_stop_says_it_is_in_progress_and_never_kills(module_project: Path) -> None:
    run_id = launch(module_project, "Sluggish", "-s", "epochs=1000", "--name", "twice")["id"]
    wait_training(module_project, run_id, min_step=3)  # now in a 3-second batch

    first = invoke(module_project, "stop", run_id)
    second = invoke(module_project, "stop", run_id)

    assert first.exit_code == 0 and "stop requested" in first.stdout, first.output
    assert second.exit_code == 0, second.output
    assert "already in progress" in second.stdout and "s of grace left" in second.stdout
    row = wait_ended(module_project, [run_id])[run_id]
    assert row.status == "stopped", (row.status, row.error)  # not killed, not interrupted
    assert _checkpoints(row.run_dir), "a graceful stop writes a checkpoint"
    outcome = read_outcome(Path(row.run_dir), 1)
    assert outcome is not None and outcome.status == "stopped" and outcome.last_step == row.step


def test_stop_kill_is_explicit_and_ends_the_run_at_once(module_project: Path) -> None:
    run_id = launch(module_project, *LONG, "--name", "killme")["id"]
    wait_training(module_project, run_id, min_step=2)

    result = wb(module_project, "stop", run_id, "--kill")

    assert result.returncode == 0 and "kill requested" in result.stdout, result.stderr
    row = wait_ended(module_project, [run_id], timeout=30)[run_id]
    assert row.status == "interrupted" and row.signal == signal.SIGKILL
    assert "--kill" in (row.error or "")
    assert read_outcome(Path(row.run_dir), 1).status == "interrupted"


def test_an_orphan_trainer_is_seen_by_everyone_and_stops_through_the_row(module_project: Path) -> None:
    env = {**git_env(module_project.parent), STALE_AFTER_ENV: "0"}
    run_id = launch(module_project, *LONG, "--name", "orphan")["id"]
    before = wait_training(module_project, run_id, min_step=2)
    os.kill(before.supervisor_pid, signal.SIGKILL)
    assert pid_gone(before.supervisor_pid)
    assert trainer_alive(before.run_dir)

    listed = {r["id"]: r for r in json.loads(wb(module_project, "ls", "--json", env=env).stdout)}
    assert listed[run_id]["status"] == "running", "a live trainer is not reconciled away"

    resumed = wb(module_project, "resume", run_id, env=env)
    assert resumed.returncode == 2 and "still trains" in resumed.stderr, resumed.stderr
    removed = wb(module_project, "rm", run_id, "--yes", env=env)
    assert removed.returncode == 2 and "stop it first" in removed.stderr, removed.stderr
    assert Path(before.run_dir).is_dir()

    second = subprocess.run([sys.executable, "-m", "workbench.runs.train", before.run_dir], cwd=module_project,
                            capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert second.returncode == 3 and "another training process" in second.stderr
    assert run_row(module_project, run_id).pid == before.pid  # the second one touched nothing

    stopped = wb(module_project, "stop", run_id, env=env)
    assert stopped.returncode == 0 and "stop requested" in stopped.stdout, stopped.stderr
    row = wait_ended(module_project, [run_id])[run_id]
    assert row.status == "stopped", (row.status, row.error)
    assert pid_gone(before.pid) and not trainer_alive(before.run_dir)
    assert (Path(before.run_dir) / TRAINER_LOCK).is_file()  # left in place, free
