"""``workbench verify``: a replay from a checkpoint proves a run exact, or names where it
diverged. Real processes, a real index; the run's own points are never touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runs_helpers import index_of, wb

pytestmark = pytest.mark.slow

#: Adds noise drawn from the clock to its loss: no replay can match it.
JITTERY_TASK = '''"""SineRegression whose loss carries noise seeded from the clock."""

import time

import torch

from sine import SineRegression


class Jittery(SineRegression):
    """Nondeterministic on purpose."""

    def compute_loss(self, outputs, batch):
        noise = torch.randn((), generator=torch.Generator().manual_seed(time.time_ns() % 2**31))
        return super().compute_loss(outputs, batch) * (1 + 1e-3 * noise)
'''

PROJECT_FILES = {"tasks/jittery.py": JITTERY_TASK}
SMALL = ("-s", "epochs=3", "-s", "samples=640", "-s", "batch_size=32")


def _finished(project: Path, task: str, name: str, *extra: str) -> str:
    result = wb(project, "run", task, *SMALL, "--name", name, *extra, "--wait", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["id"]


def test_verify_reports_exact_for_a_sample_task(module_project: Path) -> None:
    # A pipeline: the points its test and evaluate steps logged are replayed and compared too.
    run_id = _finished(module_project, "SineRegression", "steady", "--steps", "fit,test,evaluate")
    # The supervisor may add a last system sample (sys/*) after --wait returns: not a point of
    # the run's training, and not one verify could touch.
    def training_points() -> dict:
        with index_of(module_project) as index:
            return {k: index.points(run_id, k) for k in index.metric_keys(run_id) if not k.startswith("sys/")}

    before = training_points()

    result = wb(module_project, "verify", run_id, "--json")

    assert result.returncode == 0, (result.stdout, result.stderr)
    verdict = json.loads(result.stdout)
    assert verdict["exact"] and verdict["weights"] == "equal" and verdict["compared"] > 10, verdict
    assert verdict["missing"] == 0, verdict
    assert verdict["summary"].startswith(f"verified: exact from step {verdict['from_step']}")
    shown = wb(module_project, "show", run_id)
    assert "verified: exact from step" in shown.stdout
    assert training_points() == before  # untouched
    with index_of(module_project) as index:
        assert not (Path(index.get_run(run_id).run_dir) / "verify").exists()


def test_verify_names_the_first_divergence_of_a_nondeterministic_task(module_project: Path) -> None:
    run_id = _finished(module_project, "Jittery", "jittery")

    # The text form (one replay, not two: the JSON form's summary is the same line).
    result = wb(module_project, "verify", run_id)

    assert result.returncode == 1
    assert "NOT exact" in result.stdout and "first divergence at step" in result.stdout, result.stdout
    assert "replaying run" in result.stderr
    with index_of(module_project) as index:  # the verdict is in the run's history, as verify --json prints it
        verdict = [e for e in index.events(run_id) if e.kind == "verified"][-1].data
    assert not verdict["exact"] and verdict["first_divergence"]["step"] > verdict["from_step"], verdict
    assert verdict["weights"] != "equal" and verdict["summary"] in result.stdout


def test_verify_refuses_a_missing_checkpoint_in_one_line(module_project: Path) -> None:
    result = wb(module_project, "verify", "steady", "--from", "1")
    assert result.returncode == 2 and "no checkpoint at step 1" in result.stderr
    assert "Traceback" not in result.stderr
