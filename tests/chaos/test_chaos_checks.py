"""The chaos test's checks see a broken promise: each one fails on a run doctored to break
it (a gap, a duplicate attempt's point, a changed value, other weights, a missing outcome,
a process left behind, a touched git index). Fast: no run is started."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch
from chaos_checks import check_run, final_state, git_state, leftover_processes, series_of
from support.projects import clean_env, make_project

from workbench.checkpoint_names import checkpoint_folder, step_file
from workbench.runs.outcome import Outcome, write_outcome
from workbench.store import RunIndex, RunStatus

TOTAL = 6


def _checkpoint(run_dir: Path, weight: float) -> None:
    state = {"model": {"w": torch.full((2,), weight)}, "optimizer": {"state": {}, "param_groups": []},
             "scheduler": {}, "state": {"step": TOTAL}}
    checkpoint_folder(run_dir).mkdir(parents=True)
    torch.save(state, checkpoint_folder(run_dir) / step_file(TOTAL))


def _run(index: RunIndex, tmp_path: Path, name: str, *, losses: dict[int, float], weight: float = 1.0,
         attempt: int = 1, outcome: bool = True) -> str:
    run_dir = tmp_path / name
    row = index.create_run(name=name, task="Chaos", status=RunStatus.COMPLETED, run_dir=str(run_dir), attempt=attempt)
    index.add_metrics(row.id, [("train/loss", v, s) for s, v in losses.items()], attempt=attempt)
    index.add_metrics(row.id, [("val/loss", 0.5, TOTAL), ("train/samples_per_s", 100.0 + attempt, TOTAL)],
                      attempt=attempt)
    _checkpoint(run_dir, weight)
    if outcome:
        write_outcome(run_dir, Outcome(attempt, RunStatus.COMPLETED, time.time(), 0, None, "", TOTAL))
    return row.id


def _problems(tmp_path: Path, name: str, resumes: int = 0, **run: object) -> list[str]:
    """What check_run finds in a run doctored as ``run`` says, against an equal baseline."""
    folder = tmp_path / name
    with RunIndex(folder / "index.db") as index:
        base_id = _run(index, folder, "base", losses={s: s / 10 for s in range(1, TOTAL + 1)})
        run_id = _run(index, folder, "run", **run)  # type: ignore[arg-type]
        problems, _ = check_run(index, run_id, resumes, series_of(index, base_id), final_state(folder / "base"), TOTAL)
    return problems


def test_an_equal_run_passes_and_each_broken_promise_is_named(tmp_path: Path) -> None:
    good = {s: s / 10 for s in range(1, TOTAL + 1)}

    assert _problems(tmp_path, "equal", losses=good) == []
    gap = _problems(tmp_path, "gap", losses={s: v for s, v in good.items() if s != 3})
    assert any("train/loss is logged every step, but 5 point(s) for 6 steps (missing [3])" in p for p in gap), gap
    assert _problems(tmp_path, "value", losses={**good, 4: 9.0}) == [
        "train/loss differs from the uninterrupted run's from step 4"]
    assert any("final model.w differs" in p for p in _problems(tmp_path, "weights", losses=good, weight=2.0))
    assert any("outcome.json" in p for p in _problems(tmp_path, "no-outcome", losses=good, outcome=False))
    assert any("'resumed' event" in p for p in _problems(tmp_path, "resumes", losses=good, resumes=1))


def test_a_set_aside_point_of_the_final_attempt_is_a_problem(tmp_path: Path) -> None:
    good = {s: s / 10 for s in range(1, TOTAL + 1)}
    with RunIndex(tmp_path / "index.db") as index:
        base_id = _run(index, tmp_path, "base", losses=good)
        run_id = _run(index, tmp_path, "run", losses=good, attempt=2)
        index.add_metrics(run_id, [("train/loss", 1.0, TOTAL + 1)], attempt=2)
        index.set_aside_after(run_id, TOTAL)  # no restored event, and from the final attempt
        index.add_event(run_id, "resumed", "attempt 2")
        problems, _ = check_run(index, run_id, 1, series_of(index, base_id), final_state(tmp_path / "base"), TOTAL)
    assert any("of attempt 2 (the run ended in attempt 2)" in p for p in problems), problems
    assert any("before every restored checkpoint" in p for p in problems), problems


def test_a_process_left_behind_is_found(tmp_path: Path) -> None:
    needle = str(tmp_path / "project-xyz")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", needle])
    try:
        found = leftover_processes([needle], wait=0.5)
    finally:
        proc.kill()
        proc.wait()
    assert [line.split(":")[0] for line in found] == [str(proc.pid)]
    assert leftover_processes([needle], wait=5) == []


def test_a_touched_git_index_or_status_is_a_difference(tmp_path: Path) -> None:
    root = make_project(tmp_path, None)
    env = clean_env(tmp_path)
    before = git_state(root, env)
    assert before.differences(git_state(root, env)) == []  # reading it changes nothing

    (root / "notes.txt").write_text("new\n")
    subprocess.run(["git", "add", "notes.txt"], cwd=root, env=env, check=True)
    changed = before.differences(git_state(root, env))
    assert any(p.startswith("status:") for p in changed) and any(".git/index changed" in p for p in changed)
