"""An Optuna sweep whose ``--metric`` no trial logs, with real processes: the controller fails
the study when the first trial completes without it (the other trial is stopped, every
trial of the journal fails), ``sweep show`` says why in one line and ``sweep resume``
refuses, in one line too. (The warning at a trial's first validation is asserted look by
look in test_sweep_controller.py: a trial this short may complete before the next look.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.projects import index_of, poll, wait_ended
from test_sweeps import invoke, start

optuna = pytest.importorskip("optuna")


def test_a_metric_no_trial_logs_fails_the_study_clearly(project: Path) -> None:
    record = start(project, "SineRegression", "--optuna", "4", "-g", "lr=loguniform(1e-3,1e-2)",
                   "-s", "epochs=2", "-s", "samples=300", "--parallel", "2", "--metric", "val/acc",
                   "--prune", "hyperband", "--name", "typo")
    sweep_id = record["id"]

    def failed() -> bool:
        with index_of(project) as index:
            return index.get_sweep(sweep_id).status == "failed"

    poll(failed, "the study to fail")
    with index_of(project) as index:
        runs = index.runs_of_sweep(sweep_id)
    rows = wait_ended(project, [r.id for r in runs])
    assert len(rows) == 2  # the first trial's completion failed the study: nothing more was asked
    completed = [r for r in rows.values() if r.status.value == "completed"]
    assert completed
    with index_of(project) as index:
        # the trial whose completion failed the study says why; the other may have completed
        # before the stop the failure sent it (the controller had exited: nobody told it)
        warned = [e.message for r in completed for e in index.events(r.id) if e.kind == "warning"]
    assert any("val/acc" in message for message in warned), warned

    shown = json.loads(invoke(project, "sweep", "show", "typo", "--json").output)
    assert shown["status"] == "failed" and shown["failure"].startswith("no trial logged val/acc")
    assert "val/loss" in shown["failure"] and "val/loss" in shown["warning"]
    text = invoke(project, "sweep", "show", "typo").output
    assert sum(line.startswith("  failed    no trial logged val/acc") for line in text.splitlines()) == 1
    resumed = invoke(project, "sweep", "resume", "typo")
    assert resumed.exit_code == 2 and len(resumed.output.strip().splitlines()) == 1
    assert "a failed study does not resume" in resumed.output

    journal = project / ".workbench" / "sweeps" / sweep_id / "study.journal"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name=sweep_id, storage=storage)
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    log = (journal.parent / "controller.log").read_text()
    assert "the study failed" in log and "Traceback" not in log  # its Hyperband pruner, too, ran cleanly


def _trial(tmp_path: Path, kind: str, metric: str | None) -> tuple:
    """A real index with a sweep of ``kind`` and one trial of it; its metric writer."""
    from workbench.store import MetricWriter, RunIndex

    index = RunIndex(tmp_path / "index.db")
    sweep = index.create_sweep(task="SineRegression", kind=kind, metric=metric)
    run = index.create_run(task="SineRegression", status="running", sweep_id=sweep.id)
    return index, run.id, MetricWriter(tmp_path / "index.db", run.id)


@pytest.mark.parametrize("kind", ["grid", "random"])
def test_a_grid_or_random_trial_warns_once_at_its_first_epoch(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                              kind: str) -> None:
    from workbench.runs.sweep_metric import sweep_metric_check

    index, run_id, writer = _trial(tmp_path, kind, "val/acc")
    writer.log("train/loss", 0.5, 1)
    writer.log("val/loss", 0.4, 1)
    check = sweep_metric_check(index, run_id, writer)
    assert check is not None
    check()  # the writer is flushed first: the epoch's keys are in the index
    check()  # told once, whatever asks again (a resumed attempt's first epoch)
    warned = [e for e in index.events(run_id) if e.kind == "warning"]
    assert len(warned) == 1 and warned[0].data["missing_metric"] == "val/acc"
    assert "val/acc is not among the keys this trial logged (train/loss, val/loss)" in warned[0].message
    assert "warning: the sweep's metric val/acc" in capsys.readouterr().out
    writer.close()
    index.close()


def test_no_warning_where_the_metric_is_logged_or_someone_else_checks(tmp_path: Path) -> None:
    from workbench.runs.sweep_metric import sweep_metric_check

    for kind, metric, wanted in (("grid", "val/loss", True), ("optuna", "val/acc", False),
                                 ("grid", None, False), ("grid", "test/acc", False)):
        folder = tmp_path / f"{kind}-{metric}".replace("/", "_")
        folder.mkdir()
        index, run_id, writer = _trial(folder, kind, metric)
        writer.log("val/loss", 0.4, 1)
        check = sweep_metric_check(index, run_id, writer)
        assert (check is not None) is wanted, (kind, metric)
        if check is not None:
            check()
        assert not [e for e in index.events(run_id) if e.kind == "warning"]
        writer.close()
        index.close()


def test_a_real_grid_trial_says_at_its_first_epoch_that_the_metric_is_missing(project: Path) -> None:
    # One trial: the warning is per trial (a second trial beside it added a training process, not a case)
    record = start(project, "SineRegression", "-g", "lr=1e-3", "-s", "epochs=2", "-s", "samples=200",
                   "--metric", "val/acc", "--name", "typo-grid")
    with index_of(project) as index:
        ids = [r.id for r in index.runs_of_sweep(record["id"])]
    assert len(ids) == 1
    rows = wait_ended(project, ids)
    assert all(row.status.value == "completed" for row in rows.values())  # a grid trial goes on
    with index_of(project) as index:
        for run_id in ids:
            warned = [e for e in index.events(run_id) if e.kind == "warning"]
            assert [e.data["missing_metric"] for e in warned] == ["val/acc"], run_id
            log = (Path(rows[run_id].run_dir) / "output.log").read_text()
            # said after the first epoch's line, not at the end
            assert log.index("warning: the sweep's metric val/acc") < log.index("epoch 2/2"), log
