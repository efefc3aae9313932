"""Eight runs launched at once into one project: every launch succeeds, every run
completes, and no metric point is lost (one real index file, 8 writer processes).

Eight, not more: the launches race on the friendly name, the snapshot refs and the probe
cache with two at once already, and the index under sixteen writer processes at once is
``tests/store/test_writer.py``'s test (without torch); each run here costs a training
process's start-up (~6 s of CPU), on the two cores that run the whole suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runs_helpers import PATIENCE, index_of, wait_ended, wb_start

from workbench.snapshot import list_refs

pytestmark = pytest.mark.slow

RUNS = 8
#: 256 samples in batches of 16: 16 steps per epoch, 32 in all.
STEPS = 32


def test_eight_runs_at_once_lose_no_point(project: Path, cli_procs: list) -> None:
    for i in range(RUNS):
        cli_procs.append(wb_start(project, "run", "SineRegression", "-s", "epochs=2", "-s", "samples=256",
                                  "-s", "batch_size=16", "-s", f"seed={i}", "--json"))
    records = []
    for proc in cli_procs:
        stdout, stderr = proc.communicate(timeout=PATIENCE)
        assert proc.returncode == 0, stderr
        records.append(json.loads(stdout))
    ids = [r["id"] for r in records]
    assert len(set(ids)) == RUNS and len({r["name"] for r in records}) == RUNS

    rows = wait_ended(project, ids)

    with index_of(project) as index:
        for run_id, row in rows.items():
            assert row.status == "completed", (run_id, row.error)
            assert (row.step, row.total_steps, row.epoch) == (STEPS, STEPS, 2)
            points = index.points(run_id, "train/loss")
            assert [step for step, _, _ in points] == list(range(1, STEPS + 1)), run_id
            assert [step for step, _, _ in index.points(run_id, "val/loss")] == [16, 32]
            assert index.get_run(run_id).config["seed"] == int(row.config["seed"])
        assert len(index.list_runs()) == RUNS
    assert set(list_refs(project, state_dir=project / ".workbench")) == set(ids)
    for run_id in ids:
        run_dir = project / ".workbench" / "runs" / run_id
        log = (run_dir / "output.log").read_text() + (run_dir / "supervisor.log").read_text()
        assert "database is locked" not in log and "Traceback" not in log
