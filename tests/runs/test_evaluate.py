"""``workbench test`` / ``workbench eval``: an evaluation of a run's checkpoint is a run of its
own, recorded under the run, with eval-time overrides only. Real processes, a real index;
one finished run serves the whole module."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from runs_helpers import index_of, wait_ended, wb

from workbench.errors import WorkbenchError
from workbench.project import ConfigField, TaskInfo
from workbench.runs.evaluate import check_overrides, choose_checkpoint
from workbench.runs.spec import read_spec
from workbench.store import EVALUATION, Run, RunStatus, StepStatus

SINE_EVAL = '''"""SineRegression whose noise and batch size may change at evaluation."""

from sine import SineRegression


class SineEval(SineRegression):
    """Noise and batch size are eval-time."""

    eval_fields = ("noise", "batch_size")
'''

PROJECT_FILES = {"tasks/sine_eval.py": SINE_EVAL}
SMALL = ("-s", "epochs=2", "-s", "samples=640")


def _json(result) -> dict:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def trained(module_project: Path) -> dict:
    """One finished SineEval run (two epochs: a checkpoint after each)."""
    return _json(wb(module_project, "run", "SineEval", *SMALL, "--name", "base", "--wait", "--json"))


def _state(project: Path) -> tuple[set[str], list[str]]:
    with index_of(project) as index:
        ids = index.run_ids()
    return ids, sorted(p.name for p in (project / ".workbench" / "runs").iterdir())


# -- recorded under the run --------------------------------------------------------------------

@pytest.mark.slow
def test_an_evaluation_with_an_eval_time_override_is_recorded_under_the_run(module_project: Path,
                                                                            trained: dict) -> None:
    record = _json(wb(module_project, "eval", "base", "-s", "noise=0.5", "--wait", "--json"))

    assert record["kind"] == EVALUATION and record["parent"] == trained["id"]
    assert record["status"] == "completed" and record["overrides"] == {"noise": 0.5}
    assert record["config"] == {**trained["config"], "noise": 0.5}
    assert record["checkpoint"] == f"checkpoints/step-{trained['progress']['step']:09d}.pt"
    # more noise in the validation data than the run trained with: a worse loss
    assert record["metrics"]["val/loss"] > trained["metrics"]["val/loss"] * 2, (record, trained)
    with index_of(module_project) as index:
        evaluation = index.get_run(record["id"])
        assert [e.id for e in index.evaluations_of(trained["id"])] == [record["id"]]
        assert record["id"] not in {r.id for r in index.list_runs()}  # ls leaves it out
        assert [(s.name, s.status) for s in index.run_steps(record["id"])] == [("evaluate", StepStatus.COMPLETED)]
        points = index.points(record["id"], "val/loss")
    assert [step for step, _, _ in points] == [trained["progress"]["step"]]  # at the checkpoint's step
    spec = read_spec(Path(evaluation.run_dir))
    assert spec.steps == ["evaluate"] and spec.evaluation_of == trained["id"]
    assert spec.weights == str(Path(trained["run_dir"]) / record["checkpoint"])
    assert (Path(evaluation.run_dir) / "code" / "tasks" / "sine_eval.py").is_file()

    shown = wb(module_project, "show", "base").stdout
    line = next(line for line in shown.splitlines() if record["id"] in line)
    assert "evaluate" in line and "last (step" in line and "noise=0.5" in line and "val/loss" in line, shown
    listed = _json(wb(module_project, "show", "base", "--json"))["evaluations"]
    assert listed == [{
        "id": record["id"], "name": record["name"], "verb": "evaluate",
        "checkpoint": f"last (step {trained['progress']['step']})", "checkpoint_path": record["checkpoint"],
        "at_step": trained["progress"]["step"], "overrides": {"noise": 0.5}, "status": "completed",
        "created_at": record["created_at"], "error": None, "metrics": {"val/loss": record["metrics"]["val/loss"]},
    }]
    itself = wb(module_project, "show", record["id"]).stdout
    assert f"evaluates evaluate of run {trained['id']} (base) at last (step" in itself, itself
    assert "with noise=0.5" in itself


@pytest.mark.slow
def test_a_test_of_an_earlier_checkpoint_shows_in_compare(module_project: Path, trained: dict) -> None:
    first = min(int(p.name[5:14]) for p in (Path(trained["run_dir"]) / "checkpoints").glob("step-*.pt"))

    record = _json(wb(module_project, "test", "base", "--checkpoint", f"step-{first}", "--wait", "--json"))

    assert record["status"] == "completed" and record["overrides"] == {}
    assert set(k for k in record["metrics"] if not k.startswith("sys/")) == {"test/loss"}
    table = wb(module_project, "compare", "base", record["id"]).stdout
    assert f"test/loss (test step {first})" in table, table
    rows = _json(wb(module_project, "compare", "base", record["id"], "--key", "test/loss", "--json"))["evaluations"]
    assert [(r["key"], r["verb"], r["checkpoint"]) for r in rows] == [("test/loss", "test", f"step {first}")]
    assert rows[0]["cells"][0]["evaluation"] == record["id"] and rows[0]["cells"][1] is None


# -- refusals: one line, nothing written ---------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("args,expected", [
    (("test", "base", "-s", "lr=1"), "'lr' is a training field of SineEval; an evaluation may change only "
                                     "its eval-time fields: noise, batch_size"),
    (("test", "base", "-s", "nois=1"), "unknown config key 'nois' for SineEval; the fields it may change: "
                                       "noise, batch_size; did you mean 'noise'?"),
    (("test", "base", "-s", "batch_size=0"), "batch_size"),
    (("test", "base", "--checkpoint", "step-7"), "has no checkpoint at step 7; it has: step-"),
    (("eval", "base", "--checkpoint", "best"), "has no best checkpoint"),
    (("test", "base", "--checkpoint", "newest"), "bad --checkpoint 'newest': use last, best or step-N"),
    (("test", "no-such-run"), "no-such-run"),
])
def test_refusals_are_one_line_and_write_nothing(module_project: Path, trained: dict, args: tuple,
                                                 expected: str) -> None:
    before = _state(module_project)

    result = wb(module_project, *args)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and expected in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert _state(module_project) == before


@pytest.mark.slow
def test_an_evaluation_of_an_evaluation_is_refused(module_project: Path, trained: dict) -> None:
    with index_of(module_project) as index:
        done = [e.id for e in index.evaluations_of(trained["id"])]
    if not done:  # this test alone
        done = [_json(wb(module_project, "test", "base", "--wait", "--json"))["id"]]

    result = wb(module_project, "test", done[0])

    assert result.returncode == 2
    assert f"is itself an evaluation (of run {trained['id']})" in result.stderr, result.stderr


@pytest.mark.slow
def test_rm_removes_the_evaluations_and_waits_for_live_ones(module_project: Path) -> None:
    started = _json(wb(module_project, "run", "SineEval", "-s", "epochs=1", "-s", "samples=320", "--json"))
    refused = wb(module_project, "test", started["id"])
    assert refused.returncode == 2 and "wait for it or stop it" in refused.stderr, refused.stderr
    wait_ended(module_project, [started["id"]])
    evaluation = _json(wb(module_project, "test", started["id"], "-s", "batch_size=64", "--json"))

    live = wb(module_project, "rm", started["id"], "--yes")  # the evaluation is still starting

    assert live.returncode == 2 and f"evaluation {evaluation['id']} is still running" in live.stderr, live.stderr
    wait_ended(module_project, [evaluation["id"]])
    assert wb(module_project, "rm", started["id"], "--yes").returncode == 0
    ids, folders = _state(module_project)
    assert started["id"] not in ids and evaluation["id"] not in ids
    assert started["id"] not in folders and evaluation["id"] not in folders


# -- the checks themselves, without processes ----------------------------------------------------

def _zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data.pkl", b"x" * 64)


def test_choose_checkpoint_last_skips_a_torn_file_and_names_what_it_has(tmp_path: Path) -> None:
    run = Run(id="r1", status=RunStatus.COMPLETED, created_at=0.0, updated_at=0.0, step=30)
    folder = tmp_path / "checkpoints"
    with pytest.raises(WorkbenchError, match="has no checkpoint to test"):
        choose_checkpoint(run, tmp_path)
    folder.mkdir()
    for step in (10, 20):
        _zip(folder / f"step-{step:09d}.pt")
    (folder / "step-000000030.pt").write_bytes(b"PK\x03\x04 torn")  # a save cut short

    assert choose_checkpoint(run, tmp_path) == (folder / "step-000000020.pt", "last (step 20)")
    assert choose_checkpoint(run, tmp_path, "step-10") == (folder / "step-000000010.pt", "step 10")
    assert choose_checkpoint(run, tmp_path, "step-000000010") == (folder / "step-000000010.pt", "step 10")
    with pytest.raises(WorkbenchError, match="at step 30 .* is not whole"):
        choose_checkpoint(run, tmp_path, "step-30")
    with pytest.raises(WorkbenchError, match="no best checkpoint.*it has: step-10, step-20, step-30"):
        choose_checkpoint(run, tmp_path, "best")
    _zip(folder / "best.pt")
    assert choose_checkpoint(run, tmp_path, "best") == (folder / "best.pt", "best")


def test_a_task_without_eval_fields_refuses_every_override_and_says_how_to_declare() -> None:
    fields = (ConfigField("lr", "float", 0.1, True), ConfigField("batch_size", "int", 32, True))
    plain = TaskInfo("Plain", "tasks.p.Plain", "tasks.p", "tasks/p.py", 1, config=fields)
    nested = TaskInfo("Nested", "tasks.p.Nested", "tasks.p", "tasks/p.py", 1, eval_fields=("data",),
                      config=(*fields, ConfigField("data.split", "str", "val", True)))

    with pytest.raises(WorkbenchError, match=r"declares no eval-time fields.*eval_fields = \(\"batch_size\",\)"):
        check_overrides(plain, ["lr=0.2"])
    assert check_overrides(plain, []) == []
    assert check_overrides(nested, ["data.split=test", "data={split='x'}"]) == ["data.split", "data"]
    with pytest.raises(WorkbenchError, match="'lr' is a training field of Nested.*: data$"):
        check_overrides(nested, ["lr=0.2"])
