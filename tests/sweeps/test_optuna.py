"""An Optuna sweep with real processes: the controller asks trials, queues them as runs,
prunes poor ones through the stop request (they end ``pruned``) and tells the study each
outcome; Optuna is loaded by the controller only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.projects import clean_env, index_of, poll
from support.slow_sine import commit_slow_sine
from test_sweeps import invoke, start

from workbench.store import RunStatus

optuna = pytest.importorskip("optuna")


def study(project: Path, sweep_id: str):  # noqa: ANN201 - an optuna.Study
    path = project / ".workbench" / "sweeps" / sweep_id / "study.journal"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    return optuna.load_study(study_name=sweep_id, storage=storage)


def test_an_optuna_study_prunes_poor_trials_and_reports_the_best(project: Path) -> None:
    # lr from 1e-5 (barely learns in 4 epochs) to 1e-1: a search with bad trials to prune. 57
    # steps an epoch at 0.02 s a step or slower: an epoch lasts over a second, so the
    # controller (a look every 0.5 s) sees a poor trial's epochs while it still trains (a
    # bare SineRegression ran all 4 epochs between two looks on a fast machine: none pruned)
    commit_slow_sine(project, clean_env(project.parent))
    record = start(project, "SlowSine", "--optuna", "8", "-g", "lr=loguniform(1e-5,1e-1)",
                   "-s", "epochs=4", "-s", "samples=2000", "-s", "pause=0.02", "--parallel", "2", "--prune", "median",
                   "--seed", "3", "--metric", "val/loss", "--name", "tpe")
    sweep_id = record["id"]

    def done() -> bool:
        with index_of(project) as index:
            return index.get_sweep(sweep_id).status == "done"

    poll(done, "the study to finish its 8 trials")

    with index_of(project) as index:
        runs = index.runs_of_sweep(sweep_id)
    trials = study(project, sweep_id).trials
    assert len(trials) == 8 and len(runs) == 8  # one run per trial, none redone
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    pruned = [r for r in runs if r.status is RunStatus.PRUNED]
    assert pruned and sum(t.state.name == "PRUNED" for t in trials) == len(pruned)
    assert all(r.stop_reason == "pruned" for r in pruned)
    best = study(project, sweep_id).best_trial
    best_run = next(r for r in runs if f"optuna-trial-{best.number}" in r.tags)
    assert best_run.config["lr"] == best.params["lr"] and best_run.status is RunStatus.COMPLETED
    shown = json.loads(invoke(project, "sweep", "show", "tpe", "--json").output)
    assert shown["best"]["id"] == best_run.id and shown["best"]["metric"] == pytest.approx(best.value)
    # every trial ran the sweep's one snapshot
    assert {r.snapshot_commit for r in runs} == {record["snapshot_commit"]}


def test_optuna_is_loaded_by_the_controller_only() -> None:
    code = ("import sys; import workbench.cli, workbench.runs.sweep, workbench.runs.sweep_controller;"
            "from workbench.cli import cli; print('optuna' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
