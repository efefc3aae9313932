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
