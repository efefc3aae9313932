"""The Optuna controller's decisions, driven look by look in this process: a real run index,
a real Optuna journal and the real :class:`Controller`, with the trials' rows and points
written as their trainers would write them (no training processes: what is asserted is
what the controller does with what the index holds, deterministically and in about a
second). The processes around it are tested in test_optuna.py and test_sweep_crash.py."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from workbench.store import RunIndex, RunStatus

optuna = pytest.importorskip("optuna")

from workbench.runs import sweep_controller  # noqa: E402 - after the skip: it needs optuna
from workbench.runs.sweep_controller import Controller  # noqa: E402


@pytest.fixture
def project(tmp_path: Path):  # noqa: ANN201 - a Project
    from workbench.project import load_project

    (tmp_path / "workbench.toml").write_text('[project]\nname = "p"\n')
    return load_project(tmp_path)


def controller(project, index: RunIndex, trials: int, **sweep: object) -> Controller:  # noqa: ANN001
    spec = {"params": ["lr=loguniform(1e-05, 0.1)"], "keys": ["lr"], "varied": ["lr"], "fixed": [],
            "trials": trials, "seed": 0, "prune": sweep.pop("prune", None)}
    row = index.create_sweep(task="SineRegression", kind="optuna", spec=spec, parallel=trials, status="running",
                             **sweep)
    return Controller(project, index, row)


def trial_run(index: RunIndex, c: Controller) -> str:
    """Ask the study for a trial and add its run, running, as the controller would have queued
    it; its owner (the supervisor that would deliver a stop request) is this process."""
    trial = c.study.ask(c.dists)
    me = psutil.Process()
    run = index.create_run(task="SineRegression", sweep_id=c.sweep.id, status="running", config=dict(trial.params),
                           tags=[f"optuna-trial-{trial.number}"], supervisor_pid=me.pid,
                           supervisor_create_time=me.create_time())
    return run.id


def test_hyperband_prunes_a_trial_that_trails_at_its_rung(project, tmp_path: Path) -> None:  # noqa: ANN001
    with RunIndex(project.index_path) as index:
        c = controller(project, index, 5, metric="val/loss", direction="min", prune="hyperband")
        assert isinstance(c.study.pruner, optuna.pruners.HyperbandPruner)
        ids = [trial_run(index, c) for _ in range(5)]
        first, good, bad = ids[0], ids[1:4], ids[4]
        # The first trial completes (Hyperband sizes its brackets from its last step: 1 here, so
        # one bracket in which every later trial competes), then three good trials report their
        # points and a bad one reports worse values at the same steps.
        index.add_metrics(first, [("val/loss", 0.5, 0), ("val/loss", 0.4, 1)])
        index.update_run(first, status=RunStatus.COMPLETED)
        assert c.step()
        for n, run_id in enumerate(good):
            index.add_metrics(run_id, [("val/loss", 0.5 - n / 100, 0), ("val/loss", 0.3 - n / 100, 1)])
        assert c.step()
        index.add_metrics(bad, [("val/loss", 3.0, 0), ("val/loss", 2.9, 1)])
        assert c.step()

        rows = {run_id: index.get_run(run_id) for run_id in ids}
        assert rows[bad].stop_requested and rows[bad].stop_reason == "pruned"
        assert not any(rows[run_id].stop_requested for run_id in good)
        trials = {t.number: t for t in c.study.get_trials(deepcopy=False)}
        assert trials[0].state.name == "COMPLETE" and trials[0].value == 0.4
        assert trials[4].intermediate_values == {0: 3.0, 1: 2.9}  # read from the index, at their steps

        # it dies before it could stop (a crash): the pruner decided, so it ends pruned, not resumable
        index.mark_interrupted(bad, "its processes are gone")
        index.update_run(bad, supervisor_pid=None)
        assert c.step()
        assert index.get_run(bad).status is RunStatus.PRUNED
        assert c.study.get_trials(deepcopy=False)[4].state.name == "PRUNED"


def wb(project, *args: str):  # noqa: ANN001, ANN201
    from workbench.cli import cli

    return CliRunner().invoke(cli, ["--project", str(project.root), *args])


def test_a_metric_no_trial_logs_is_warned_at_the_first_validation_then_fails_the_study(
        project, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(sweep_controller, "_SETTLE_S", 0.0)  # no waiting for the rest of a validation
    with RunIndex(project.index_path) as index:
        c = controller(project, index, 2, metric="val/acc", direction="max", name="typo")
        first, second = trial_run(index, c), trial_run(index, c)
        index.add_metrics(first, [("train/loss", 0.9, 5)])
        assert c.step()
        assert [e for e in index.events(first) if e.kind == "warning"] == []  # no validation yet
        assert wb(project, "sweep", "show", "typo", "--json").exit_code == 0
        index.add_metrics(first, [("train/loss", 0.8, 10), ("val/loss", 0.7, 10)])
        assert c.step()

        warnings = [e for e in index.events(first) if e.kind == "warning"]
        assert len(warnings) == 1 and "val/acc is not among the keys this trial logged (train/loss, val/loss)" \
            in warnings[0].message
        shown = wb(project, "sweep", "show", "typo")
        assert "warning   no trial has logged val/acc (the sweep's --metric); they log train/loss, val/loss" \
            in shown.output
        assert c.step() and len([e for e in index.events(first) if e.kind == "warning"]) == 1  # once

        index.update_run(first, status=RunStatus.COMPLETED)  # it ends without ever logging val/acc
        assert not c.step()  # the study failed: the controller ends

        sweep = index.get_sweep(c.sweep.id)
        assert sweep.status == "failed" and "no trial logged val/acc" in sweep.spec["failure"]
        assert {t.state.name for t in c.study.get_trials(deepcopy=False)} == {"FAIL"}
        assert len(c.study.get_trials(deepcopy=False)) == 2  # nothing more was asked
        assert index.get_run(second).stop_reason == "sweep failed"  # the other trial is asked to stop
    record = json.loads(wb(project, "sweep", "show", "typo", "--json").output)
    assert record["status"] == "failed" and record["failure"] == sweep.spec["failure"]
    shown = wb(project, "sweep", "show", "typo").output
    assert [line for line in shown.splitlines() if line.strip().startswith("failed")] == \
        [f"  failed    {sweep.spec['failure']}"]
    resumed = wb(project, "sweep", "resume", "typo")
    assert resumed.exit_code == 2 and "a failed study does not resume" in resumed.output
    assert len(resumed.output.strip().splitlines()) == 1
