"""A stop request whose reason is ``pruned`` (a sweep's poor trial) ends the run ``pruned``:
the trainer says so itself (DESIGN.md, "Who owns a run"), and it is never resumed."""

from __future__ import annotations

from pathlib import Path

import pytest
from runs_helpers import SLOW_TASK, index_of, invoke, launch, wait_ended, wait_training

from workbench.runs.outcome import read_outcome
from workbench.store import RunStatus

pytestmark = pytest.mark.slow

PROJECT_FILES = {"tasks/slow.py": SLOW_TASK}


def test_a_pruned_stop_ends_pruned_and_is_not_resumed(module_project: Path) -> None:
    run_id = launch(module_project, "Slow", "-s", "epochs=1000", "-s", "samples=2000")["id"]
    wait_training(module_project, run_id, min_step=2)
    with index_of(module_project) as index:
        index.request_stop(run_id, reason="pruned")

    row = wait_ended(module_project, [run_id])[run_id]

    assert row.status is RunStatus.PRUNED, (row.status, row.error)
    assert read_outcome(Path(row.run_dir), row.attempt).status is RunStatus.PRUNED
    result = invoke(module_project, "resume", run_id)
    assert result.exit_code != 0 and "pruned" in result.output
