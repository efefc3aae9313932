"""Runs in journal mode, end to end: ``workbench run --sink journal`` leaves the index as an
index-mode run does, and a killed and resumed journal run has every point once, its points
set aside and its replay checked. Real supervisors, trainers and index."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from journal_helpers import content
from support.projects import clean_env, index_of, poll, run_row, wait_ended, wb
from support.slow_sine import commit_slow_sine

from workbench.runs.ingest import read_position
from workbench.store import RunStatus
from workbench.store.journal import JOURNAL_FILE

pytestmark = pytest.mark.slow

SMALL = ["-s", "epochs=2", "-s", "samples=400"]


def _launch(project: Path, *args: str, task: str = "SineRegression") -> str:
    result = wb(project, "run", task, *SMALL, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["id"]


def _comparable(project: Path, run_id: str) -> dict[str, Any]:
    """The run's index content without what differs between any two runs: system samples
    and rates (timing), the snapshot commit, pids, the run's own id, file sizes."""
    with index_of(project) as index:
        got = content(index, run_id)
    got["points"] = [p for p in got["points"] if not p[0].startswith("sys/") and not p[0].endswith("_per_s")]
    scrub = lambda text: re.sub(r"pid \d+", "pid N", str(text).replace(run_id, "RUN"))  # noqa: E731
    got["events"] = [(kind, scrub(message), scrub({k: v for k, v in (data or {}).items() if k != "snapshot"}))
                     for kind, message, data in got["events"]]
    got["artifacts"] = [(path, kind) for path, _, kind in got["artifacts"]]
    return got


def test_a_journal_run_leaves_the_index_as_an_index_run_does(project: Path) -> None:
    direct = _launch(project)
    wait_ended(project, [direct])
    journaled = _launch(project, "--sink", "journal")
    row = wait_ended(project, [journaled])[journaled]
    assert row.status is RunStatus.COMPLETED, row.error
    run_dir = Path(row.run_dir)
    assert (run_dir / JOURNAL_FILE).is_file() and not (Path(run_row(project, direct).run_dir) / JOURNAL_FILE).exists()
    assert read_position(run_dir) == (run_dir / JOURNAL_FILE).stat().st_size  # all of it ingested
    expected, got = _comparable(project, direct), _comparable(project, journaled)
    assert got["points"] and got == expected


def test_a_killed_journal_run_resumes_with_every_point_once(project: Path) -> None:
    # 360 steps at 0.02 s or more: still training when the test kills it, however fast the
    # machine (a bare SineRegression of 360 steps once ended first on a fast one)
    commit_slow_sine(project, clean_env(project.parent))
    run_id = _launch(project, "--sink", "journal", "-s", "epochs=30", "-s", "pause=0.02", task="SlowSine")

    def past_a_checkpoint() -> int | None:
        row = run_row(project, run_id)
        assert row.status.is_live, f"run ended early: {row.status} {row.error}"
        with index_of(project) as index:
            saved = any(e.kind == "checkpoint" for e in index.events(run_id))
        return row.pid if saved and (row.step or 0) > 20 else None

    os.kill(poll(past_a_checkpoint, "a checkpoint in the index"), signal.SIGKILL)
    killed = wait_ended(project, [run_id])[run_id]
    assert killed.status is RunStatus.INTERRUPTED, killed.error
    result = wb(project, "resume", run_id)
    assert result.returncode == 0, result.stderr
    done = wait_ended(project, [run_id])[run_id]
    assert done.status is RunStatus.COMPLETED and done.attempt == 2, done.error
    with index_of(project) as index:
        steps = [s for s, _, _ in index.points(run_id, "train/loss")]
        events = index.events(run_id)
    assert steps == list(range(steps[0], steps[-1] + 1)) and steps[-1] == done.step
    restored = [e for e in events if e.kind == "restored"]
    replay = [e.data for e in events if e.kind == "replay"]
    assert len(restored) == 1 and len(replay) == 1
    assert replay[0]["compared"] == replay[0]["matched"] and replay[0]["first_divergence"] is None
    assert [e.kind for e in events].count("started") == 2
