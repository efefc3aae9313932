"""The sweeps table (in memory) and sweep files: no processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.runs.sweep import SweepRequest, load_sweep_file, merge_requests
from workbench.store import InvalidValue, RunIndex
from workbench.store._sweeps import AmbiguousSweep, SweepNotFound


def test_sweeps_are_resolved_by_id_prefix_and_name_and_never_guessed() -> None:
    index = RunIndex(memory=True)
    a = index.create_sweep(task="T", kind="grid", spec={"keys": ["lr"]}, name="lr", parallel=2)
    b = index.create_sweep(task="T", kind="random", id=a.id[:-1] + ("x" if a.id[-1] != "x" else "y"))
    assert index.resolve_sweep("lr").id == a.id and index.resolve_sweep(a.id).id == a.id
    assert index.resolve_sweep(b.id).spec == {}
    with pytest.raises(AmbiguousSweep):
        index.resolve_sweep(a.id[:-1])  # a prefix of both ids
    with pytest.raises(SweepNotFound):
        index.resolve_sweep("nope")
    c = index.create_sweep(task="T", kind="grid", name=b.id[:6])  # a name that reads as b's id prefix
    with pytest.raises(AmbiguousSweep):
        index.resolve_sweep(c.name)
    with pytest.raises(InvalidValue, match="already exists"):
        index.create_sweep(task="T", kind="grid", name="lr")
    index.update_sweep(a.id, status="stopped")
    assert index.get_sweep(a.id).status == "stopped" and index.sweep_parallel(a.id) == 2
    first = index.create_run(task="T", sweep_id=a.id)
    second = index.create_run(task="T", sweep_id=a.id, status="completed")
    index.create_run(task="T")
    assert [r.id for r in index.runs_of_sweep(a.id)] == [first.id, second.id]
    assert index.sweep_status_counts(a.id) == {"queued": 1, "completed": 1}
    assert [s.id for s in index.list_sweeps()] == [c.id, b.id, a.id]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def test_a_sweep_file_and_the_flags_on_top(tmp_path: Path) -> None:
    project = type("P", (), {"root": tmp_path})()
    path = write(tmp_path, 'task = "T"\nparallel = 2\nmetric = "val/acc"\n[grid]\nlr = [1e-3, 1e-2]\n'
                           'layers = [[64, 64], [32]]\n[set]\nepochs = 1\nopt = {name = "adam"}\n')
    request = load_sweep_file(project, path)
    assert request.task == "T" and request.parallel == 2 and request.random is None
    assert [p.describe() for p in request.file_params] == ["lr=0.001,0.01", "layers=[64, 64],[32]"]
    assert request.fixed == ["epochs=1", 'opt={"name" = "adam"}']
    merged = merge_requests(request, SweepRequest(params=["lr=0.1"], parallel=4, fixed=["seed=1"]))
    assert merged.parallel == 4 and merged.params == ["lr=0.1"] and merged.fixed[-1] == "seed=1"
    random = load_sweep_file(project, write(tmp_path, 'task = "T"\ntrials = 5\nseed = 2\n[random]\n'
                                                      'lr = "loguniform(1e-4, 1e-1)"\nh = [16, 32]\n'))
    assert random.random == 5 and random.seed == 2 and random.file_params[0].describe() == "lr=loguniform(0.0001, 0.1)"


@pytest.mark.parametrize("text, message", [
    ('task = "T"\n', "exactly one of [grid], [random] or [optuna]"),
    ('task = "T"\n[grid]\nlr = [1]\n[random]\nlr = [2]\n', "exactly one of"),
    ('task = "T"\nbogus = 1\n[grid]\nlr = [1]\n', "unknown key bogus"),
    ('task = "T"\n[random]\nlr = [1, 2]\n', "needs trials = N"),
    ('task = "T"\n[grid]\nlr = []\n', "empty array"),
    ('task = "T"\n[random]\nlr = "loguniform(0, 1)"\n', "bounds above 0"),
    ('task = \n', "s.toml"),
])
def test_a_bad_sweep_file_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    project = type("P", (), {"root": tmp_path})()
    with pytest.raises(WorkbenchError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        load_sweep_file(project, write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_show_stop_and_resume_take_a_sweep_by_id_or_name_and_refuse_a_ref_naming_both(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import cli

    (tmp_path / "workbench.toml").write_text('[project]\nname = "p"\n')
    with RunIndex(tmp_path / ".workbench" / "index.db") as index:
        sweep = index.create_sweep(task="T", kind="grid", spec={"keys": ["lr"]}, name="lr-grid")
        index.create_run(task="T", sweep_id=sweep.id, status="completed", config={"lr": 0.1})
        clash = index.create_run(task="T", name=sweep.id)  # a run named like the sweep's id

    def wb(*args: str):
        return CliRunner().invoke(cli, ["--project", str(tmp_path), *args])

    shown = wb("show", "lr-grid", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["id"] == sweep.id
    stopped = wb("stop", "lr-grid")
    assert stopped.exit_code == 0, stopped.output
    both = wb("show", sweep.id)
    assert both.exit_code == 2 and f"names run {clash.id} and sweep {sweep.id}" in both.output
    assert wb("stop", "lr-grid", "--kill").exit_code == 2


def test_a_grid_or_random_sweep_with_nothing_left_to_run_shows_done_or_stopped() -> None:
    from workbench.runs.present import sweep_status

    assert sweep_status("running", "grid", {"completed": 5, "failed": 1}) == "done"
    assert sweep_status("running", "random", {"completed": 2, "pruned": 1}) == "done"
    assert sweep_status("running", "grid", {"completed": 2, "stopped": 1}) == "stopped"  # resume SWEEP goes on
    assert sweep_status("running", "grid", {"completed": 2, "interrupted": 1}) == "stopped"
    assert sweep_status("running", "grid", {"completed": 2, "queued": 1}) == "running"
    assert sweep_status("running", "grid", {"completed": 2, "running": 1}) == "running"
    assert sweep_status("running", "grid", {}) == "running"  # its trials are being made
    assert sweep_status("running", "optuna", {"completed": 3}) == "running"  # its controller says done
    assert sweep_status("stopped", "grid", {"stopped": 2}) == "stopped"
    assert sweep_status("failed", "optuna", {"completed": 1}) == "failed"
