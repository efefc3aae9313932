"""Pipelines: a run performs its steps in order, and a resumed run continues at the step it
was in (mml's atomic steps). Real processes, a real index."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
from runs_helpers import index_of, invoke, launch, poll, run_row, wait_ended

from workbench.runs.launch import check_steps
from workbench.store import RunStatus, StepStatus
from workbench.errors import WorkbenchError

pytestmark = pytest.mark.slow

#: Its test step takes a few seconds (so it can be killed there).
PIPED_TASK = '''"""SineRegression as a three-step pipeline whose test step is slow."""

import time

from sine import SineRegression


class Piped(SineRegression):
    """Fit, then a slow test, then evaluate."""

    steps = ("fit", "test", "evaluate")

    def test_step(self, batch, batch_idx):
        time.sleep(0.4)
        return super().test_step(batch, batch_idx)
'''

PROJECT_FILES = {"tasks/piped.py": PIPED_TASK}
SMALL = ["epochs=1", "samples=400"]


def _launch(project: Path, *steps: str) -> str:
    """``workbench run Piped`` (the task's own steps) or with ``--steps``."""
    args = [arg for pair in SMALL for arg in ("-s", pair)]
    return launch(project, "Piped", *args, *(["--steps", ",".join(steps)] if steps else []))["id"]


def test_a_pipeline_killed_in_its_second_step_resumes_there(module_project: Path) -> None:
    run_id = _launch(module_project)  # Piped declares steps = ("fit", "test", "evaluate")

    def in_test() -> int | None:
        with index_of(module_project) as index:
            steps = {s.name: s for s in index.run_steps(run_id)}
        row = run_row(module_project, run_id)
        assert row.status.is_live, f"run ended before its test step: {row.status} {row.error}"
        running = "test" in steps and steps["test"].status is StepStatus.RUNNING
        return row.pid if running and row.pid else None

    trainer = poll(in_test, "the run to reach its test step")
    os.kill(trainer, signal.SIGKILL)
    killed = wait_ended(module_project, [run_id])[run_id]
    assert killed.status in (RunStatus.FAILED, RunStatus.INTERRUPTED)
    with index_of(module_project) as index:
        fit, test, evaluate = index.run_steps(run_id)
        fit_points = index.points(run_id, "train/loss")
    assert fit.status is StepStatus.COMPLETED and fit.attempt == 1
    assert test.status is not StepStatus.COMPLETED and evaluate.status is StepStatus.PENDING

    result = invoke(module_project, "resume", run_id)
    assert result.exit_code == 0, result.output
    done = wait_ended(module_project, [run_id])[run_id]
    assert done.status is RunStatus.COMPLETED, done.error
    with index_of(module_project) as index:
        fit, test, evaluate = index.run_steps(run_id)
        events = index.events(run_id)
        assert index.points(run_id, "train/loss") == fit_points  # fit was not redone
        test_points = index.points(run_id, "test/loss")
        val_points = index.points(run_id, "val/loss")
    assert (fit.status, fit.attempt) == (StepStatus.COMPLETED, 1)
    assert (test.status, test.attempt) == (StepStatus.COMPLETED, 2)
    assert (evaluate.status, evaluate.attempt) == (StepStatus.COMPLETED, 2)
    last_step = fit_points[-1][0]
    assert [p[0] for p in test_points] == [last_step]  # tested the fitted weights, at fit's last step
    assert val_points[-1][0] == last_step
    kinds = [e.kind for e in events]
    restored = [e for e in events if e.kind == "restored"]
    assert restored and "fit was complete" in restored[-1].message
    replay = [e for e in events if e.kind == "replay"]
    assert replay and "resumed at step test" in replay[-1].message
    assert kinds.count("started") == 2


def test_a_pipeline_that_completes_records_each_step(module_project: Path) -> None:
    run_id = _launch(module_project, "fit", "test")
    done = wait_ended(module_project, [run_id])[run_id]
    assert done.status is RunStatus.COMPLETED, done.error
    with index_of(module_project) as index:
        steps = index.run_steps(run_id)
        test_points = index.points(run_id, "test/loss")
        last = index.events(run_id)[-1]
    assert [(s.name, s.status) for s in steps] == [("fit", StepStatus.COMPLETED), ("test", StepStatus.COMPLETED)]
    assert all(s.started_at <= s.ended_at for s in steps) and steps[0].ended_at <= steps[1].started_at
    assert len(test_points) == 1 and "test: " in last.message

    shown = invoke(module_project, "show", run_id)
    assert re.search(r"steps +fit ✓ \S+ → test ✓ \S+$", shown.output, re.M), shown.output
    record = json.loads(invoke(module_project, "show", run_id, "--json").output)
    assert [(s["name"], s["status"], s["attempt"]) for s in record["steps"]] == [
        ("fit", "completed", 1), ("test", "completed", 1)]
    assert all(s["duration_s"] >= 0 for s in record["steps"])


@pytest.mark.parametrize("steps, complaint", [
    (("fit", "train"), "unknown step 'train'"),
    (("fit", "fit"), "each step once"),
    (("test",), "have no fit"),
    (("test", "fit"), "must start with fit"),
])
def test_bad_steps_are_one_line(steps: tuple[str, ...], complaint: str) -> None:
    with pytest.raises(WorkbenchError, match=complaint):
        check_steps(steps, "Piped")


def test_bad_steps_on_the_command_line_change_nothing(module_project: Path) -> None:
    with index_of(module_project) as index:
        before = index.count_runs()
    result = invoke(module_project, "run", "Piped", "--steps", "test,fit")
    assert result.exit_code == 2 and "must start with fit" in result.output
    assert result.output.count("\n") == 1
    with index_of(module_project) as index:
        assert index.count_runs() == before
