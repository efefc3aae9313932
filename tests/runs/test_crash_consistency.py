"""Nothing lost: a crash right after a checkpoint leaves no gap, and a failing metric writer
stops the run instead of training into the void. Real processes, a real index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runs_helpers import index_of, wb

pytestmark = pytest.mark.slow

#: Kills its own training process (SIGKILL: no handler runs, no flush) the moment the
#: checkpoint at step 97 is on disk, in the first attempt only. Fast steps and a 0.25 s
#: flush interval mean dozens of points were still in the writer's memory then.
CRASHY_TASK = '''"""SineRegression that dies right after its checkpoint at step 97 (first attempt only)."""

import os
import signal

from sine import SineRegression
from workbench.extensions import Checkpoint


class DieAfterCheckpoint:
    """Kills the process just after the step-97 checkpoint was written."""

    def after_batch(self, state):
        if state.step == 97 and os.environ.get("WORKBENCH_ATTEMPT", "1") == "1":
            os.kill(os.getpid(), signal.SIGKILL)


class Crashy(SineRegression):
    """Checkpoints every 97 steps; its first attempt is killed after the first one."""

    def extensions(self):
        return [Checkpoint(every_steps=97, every_epochs=0), DieAfterCheckpoint()]
'''

#: Logs one point whose step SQLite cannot hold, at step 5.
BAD_POINT_TASK = '''"""SineRegression that logs a point the index cannot store."""

from sine import SineRegression


class BadPoint(SineRegression):
    """At step 5, logs a step beyond SQLite's 64-bit integers."""

    def training_step(self, batch, batch_idx):
        if self.state.step == 5:
            self.log("oops", 1.0, step=2**70)
        return super().training_step(batch, batch_idx)
'''

PROJECT_FILES = {"tasks/crashy.py": CRASHY_TASK, "tasks/badpoint.py": BAD_POINT_TASK}


def test_a_kill_right_after_a_checkpoint_leaves_no_gap_in_the_curves(module_project: Path) -> None:
    args = ("-s", "epochs=3", "-s", "samples=2000", "-s", "batch_size=32")
    # (No fixed name: the project is the module's, and a rerun of this test must not find the
    # first try's run holding it.)
    first = wb(module_project, "run", "Crashy", *args, "--wait", "--json")
    assert first.stdout.strip(), f"exit {first.returncode}: {first.stderr}"
    record = json.loads(first.stdout)
    assert record["status"] == "interrupted", record

    resumed = wb(module_project, "resume", record["id"], "--wait", "--json")

    assert resumed.returncode == 0, resumed.stderr
    with index_of(module_project) as index:
        run = index.get_run(record["id"])
        total = run.total_steps
        assert run.status == "completed" and run.step == total and total > 97
        steps = [s for s, _, _ in index.points(run.id, "train/loss")]
        assert steps == list(range(1, total + 1)), "every step once, none lost before the checkpoint"
        kinds = [e.kind for e in index.events(run.id)]
        assert "points-missing" not in kinds
        restored = [e for e in index.events(run.id) if e.kind == "restored"]
        assert restored and restored[-1].data["step"] == 97


def test_a_failing_metric_writer_fails_the_run_promptly(module_project: Path) -> None:
    result = wb(module_project, "run", "BadPoint", "-s", "epochs=50", "-s", "samples=2000", "--name", "badpoint",
                "--wait", "--json")

    record = json.loads(result.stdout)
    assert result.returncode == 1 and record["status"] == "failed", record
    assert "metric" in record["error"] and "dropped" in record["error"], record["error"]
    # Promptly: within a second or so of steps, not after 50 epochs of training into the void.
    assert record["progress"]["step"] < record["progress"]["total"] // 10, record["progress"]
