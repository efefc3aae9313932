"""The CLI's output and exit codes (click's CliRunner over a real index file), and bad
input: one line on stderr, exit status 2, no traceback, and nothing written."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import copy_quickstart
from click.testing import CliRunner, Result

from workbench.cli import cli
from workbench.project import load_project
from workbench.runs import LaunchRequest, launch
from workbench.snapshot import list_refs
from workbench.store import Run, RunIndex

RECORD_KEYS = {"id", "name", "task", "status", "device", "resolved_device", "backend", "nproc", "precision", "config", "tags",
               "profile", "created_at", "started_at", "ended_at", "duration_s", "attempt", "run_dir",
               "exit_code", "signal", "error", "progress", "git", "parent", "stop", "metrics", "kind", "command",
               "checkpoint", "overrides"}


def invoke(project: Path | None, *args: str, env: dict[str, str] | None = None) -> Result:
    """``workbench [--project PROJECT] ARGS`` in this process; a crash fails the test."""
    prefix = ["--project", str(project)] if project is not None else []
    result = CliRunner().invoke(cli, [*prefix, *args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def index_of(project: Path) -> RunIndex:
    return RunIndex(project / ".workbench" / "index.db")


@pytest.fixture
def runs(project: Path) -> dict[str, Run]:
    """Two finished runs made without processes: ``first`` completed with a short loss
    curve and an artifact, ``second`` failed with a traceback."""
    return _make_runs(project)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, probe_cache: Path) -> tuple[Path, dict[str, Run]]:
    """A project with the two runs of ``runs``, for the tests that must change nothing."""
    base = tmp_path_factory.mktemp("shared")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIT_CONFIG_GLOBAL", os.devnull)
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        mp.setenv("GIT_CEILING_DIRECTORIES", str(base))
        root = copy_quickstart(base, probe_cache)
        return root, _make_runs(root)


def _make_runs(project: Path) -> dict[str, Run]:
    loaded = load_project(project)
    made = {}
    with index_of(project) as index:
        for name, tags in (("first", ("baseline",)), ("second", ())):
            row = launch(loaded, LaunchRequest("SineRegression", ["epochs=1", "lr=0.01"], name=name, tags=tags),
                         index=index, start=False)
            made[name] = row
        first, second = made["first"].id, made["second"].id
        start = made["first"].created_at
        index.update_run(first, status="completed", started_at=start + 1, ended_at=start + 5, exit_code=0,
                         step=3, total_steps=3, epoch=1)
        index.add_metrics(first, [("train/loss", 1.0, 1), ("train/loss", 0.5, 2), ("train/loss", 0.25, 3),
                                  ("val/loss", 0.3, 3)])
        index.add_event(first, "completed", "after 3 steps")
        (Path(made["first"].run_dir) / "artifacts" / "curve.csv").write_text("step,loss\n1,1.0\n")
        index.update_run(second, status="failed", started_at=start + 2, ended_at=start + 3, exit_code=1,
                         error="RuntimeError: boom", traceback="Traceback (most recent call last):\nRuntimeError: boom\n")
        made = {name: index.get_run(row.id) for name, row in made.items()}
    return made


def _state(project: Path) -> dict[str, Any]:
    """Everything a refused command must leave alone: rows, events, run folders, refs."""
    state_dir = project / ".workbench"
    rows, events = [], []
    if (state_dir / "index.db").is_file():
        with index_of(project) as index:
            rows = index.list_runs()
            events = [e for r in rows for e in index.events(r.id)]
    return {
        "rows": rows,
        "events": events,
        "folders": sorted(p.name for p in (state_dir / "runs").iterdir()) if (state_dir / "runs").is_dir() else [],
        "refs": list_refs(project, state_dir=state_dir) if (state_dir / "git").is_dir() else {},
    }


def _missing_cuda(probe_cache: Path) -> str:
    devices = json.loads(probe_cache.read_text())["probe"]["devices"]
    gpus = sum(d.startswith("cuda") for d in devices)
    return f"cuda:{gpus}" if gpus else "cuda"


BAD_INPUT = {
    "unknown task": (["run", "Nope"], "no task named 'Nope'; available: "),
    "abstract task": (["run", "RegressionFramework"], "is abstract"),
    "unknown config key": (["run", "SineRegression", "-s", "nope=1"], "unknown config key 'nope'"),
    "wrong value type": (["run", "SineRegression", "-s", "epochs=abc"], "epochs: expected int"),
    "override without =": (["run", "SineRegression", "-s", "epochs"], "bad override 'epochs'"),
    "unknown profile": (["run", "SineRegression", "--profile", "nope"], "no profile 'nope'"),
    "missing device": (["run", "SineRegression", "--device", "{cuda}"], "is not available on this machine"),
    "unknown device": (["run", "SineRegression", "--device", "tpu"], "bad --device"),
    "nproc without ddp": (["run", "SineRegression", "--nproc", "2"], "--nproc 2 needs --backend ddp"),
    "nproc 0": (["run", "SineRegression", "--backend", "ddp", "--nproc", "0"], "--nproc must be 1 or more"),
    "bad precision": (["run", "SineRegression", "--precision", "8"], "bad --precision"),
    "taken name": (["run", "SineRegression", "--name", "first"], "a run named 'first' already exists"),
    "bad name": (["run", "SineRegression", "--name", "a/b"], "bad run name"),
    "unknown run: show": (["show", "zzzz"], "no run matches 'zzzz'"),
    "unknown run: metrics": (["metrics", "zzzz"], "no run matches 'zzzz'"),
    "unknown run: logs": (["logs", "zzzz"], "no run matches 'zzzz'"),
    "unknown run: stop": (["stop", "zzzz"], "no run matches 'zzzz'"),
    "unknown run: rm": (["rm", "zzzz", "--yes"], "no run matches 'zzzz'"),
    "unknown run: artifacts": (["artifacts", "zzzz"], "no run matches 'zzzz'"),
    "unknown run: diff": (["diff", "zzzz"], "no run matches 'zzzz'"),
    "ambiguous prefix": (["show", "{prefix}"], "matches 2 runs"),
    "unknown metric": (["metrics", "first", "--key", "nope"], "has no metric 'nope'; it has: train/loss, val/loss"),
    "stop a finished run": (["stop", "first"], "is completed; only a queued or running run can be stopped"),
    "rm without --yes": (["rm", "first"], "pass --yes"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
        case: str, shared: tuple[Path, dict[str, Run]], probe_cache: Path) -> None:
    project, runs = shared
    args, expected = BAD_INPUT[case]
    prefix = os.path.commonprefix([runs["first"].id, runs["second"].id])
    args = [a.format(cuda=_missing_cuda(probe_cache), prefix=prefix) for a in args]
    before = _state(project)

    result = invoke(project, *args)

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.output
    assert _state(project) == before


@pytest.mark.parametrize("where", ["--project without workbench.toml", "no workbench.toml above"])
def test_a_missing_project_is_one_line(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)

    result = invoke(empty if where.startswith("--project") else None, "run", "SineRegression")

    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "workbench.toml" in lines[0]
    assert list(empty.iterdir()) == []  # nothing made there


def test_bad_input_from_a_real_process_has_no_traceback(project: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "workbench.cli", "run", "Nope"], cwd=project,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: no task named 'Nope'") and result.stderr.count("\n") == 1


def test_a_bad_staleness_window_is_one_line(project: Path, runs: dict[str, Run]) -> None:
    result = invoke(project, "ls", env={"WORKBENCH_STALE_AFTER": "soon"})

    assert result.exit_code == 2
    assert result.stderr.strip() == "error: $WORKBENCH_STALE_AFTER must be a number of seconds, got 'soon'"


def test_ls_lists_newest_first_and_filters(project: Path, runs: dict[str, Run]) -> None:
    text = invoke(project, "ls")
    listed = json.loads(invoke(project, "ls", "--json").stdout)

    assert text.exit_code == 0
    assert text.stdout.splitlines()[0].split()[:4] == ["ID", "NAME", "TASK", "STATUS"]
    assert [r["name"] for r in listed] == ["second", "first"]
    assert all(set(r) == RECORD_KEYS for r in listed)
    assert [r["name"] for r in json.loads(invoke(project, "ls", "--status", "completed", "--json").stdout)] == ["first"]
    assert json.loads(invoke(project, "ls", "--task", "Nope", "--json").stdout) == []
    assert len(json.loads(invoke(project, "ls", "--limit", "1", "--json").stdout)) == 1


def test_ls_in_a_project_without_runs(project: Path) -> None:
    result = invoke(project, "ls")

    assert result.exit_code == 0
    assert "no runs yet" in result.stdout


def test_show_json_is_the_record_plus_events_traceback_and_artifacts(
        project: Path, runs: dict[str, Run]) -> None:
    first = json.loads(invoke(project, "show", "first", "--json").stdout)
    second = json.loads(invoke(project, "show", runs["second"].id[:-1], "--json").stdout)

    assert set(first) == RECORD_KEYS | {"artifacts", "events", "traceback", "evaluations", "steps", "slurm"}
    assert first["id"] == runs["first"].id and first["status"] == "completed"
    assert first["config"]["epochs"] == 1 and first["config"]["lr"] == 0.01
    assert first["tags"] == ["baseline"]
    assert first["metrics"] == {"train/loss": 0.25, "val/loss": 0.3}
    assert first["progress"] == {"step": 3, "total": 3, "epoch": 1}
    assert first["duration_s"] == pytest.approx(4.0)
    assert first["artifacts"] == 0  # recorded by the run's processes, which never ran here
    assert [e["kind"] for e in first["events"]] == ["launched", "completed"]
    assert set(first["events"][0]) == {"time", "kind", "message", "data"}
    assert first["events"][0]["time"].endswith("Z")
    assert first["git"]["snapshot"] and first["git"]["dirty"] is True  # the private repository
    assert second["status"] == "failed" and second["error"] == "RuntimeError: boom"
    assert second["traceback"].startswith("Traceback")


def test_show_text(project: Path, runs: dict[str, Run]) -> None:
    result = invoke(project, "show", "second")

    assert result.exit_code == 0
    assert result.stdout.startswith(f"run {runs['second'].id}  (second)  failed")
    assert "error    RuntimeError: boom" in result.stdout
    assert "epochs=1" in result.stdout and "lr=0.01" in result.stdout


def test_metrics_csv_and_json(project: Path, runs: dict[str, Run]) -> None:
    as_csv = invoke(project, "metrics", "first")
    as_json = invoke(project, "metrics", "first", "--key", "train/loss", "--format", "json")

    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0] == ["key", "step", "value", "time"]
    assert [(r[0], int(r[1]), float(r[2])) for r in rows[1:]] == [
        ("train/loss", 1, 1.0), ("train/loss", 2, 0.5), ("train/loss", 3, 0.25), ("val/loss", 3, 0.3)]
    series = json.loads(as_json.stdout)
    assert list(series) == ["train/loss"]
    assert [(p["step"], p["value"]) for p in series["train/loss"]] == [(1, 1.0), (2, 0.5), (3, 0.25)]
    assert all(isinstance(p["time"], float) for p in series["train/loss"])


def test_logs_of_a_run_without_output_prints_nothing(project: Path, runs: dict[str, Run]) -> None:
    result = invoke(project, "logs", "first")

    assert result.exit_code == 0 and result.stdout == ""


def test_artifacts_json_lists_the_runs_files(project: Path, runs: dict[str, Run]) -> None:
    listed = json.loads(invoke(project, "artifacts", "first", "--json").stdout)
    text = invoke(project, "artifacts", "first").stdout

    assert [(a["path"], a["size"], a["kind"]) for a in listed] == [("curve.csv", len("step,loss\n1,1.0\n"), "data")]
    assert set(listed[0]) == {"path", "size", "kind", "created_at"}
    assert "curve.csv" in text


def test_rm_yes_removes_rows_folder_and_ref_of_that_run_only(project: Path, runs: dict[str, Run]) -> None:
    first, second = runs["first"], runs["second"]
    state_dir = project / ".workbench"

    result = invoke(project, "rm", first.id[:8] if first.id[:8] != second.id[:8] else "first", "--yes")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"deleted run {first.id}"
    assert not Path(first.run_dir).exists() and Path(second.run_dir).is_dir()
    assert set(list_refs(project, state_dir=state_dir)) == {second.id}
    with index_of(project) as index:
        assert [r.id for r in index.list_runs()] == [second.id]
        assert index.metric_keys(first.id) == [] and index.events(first.id) == []
        assert index.artifacts(first.id) == []


def test_rm_takes_several_runs_and_a_typo_deletes_none(project: Path, runs: dict[str, Run]) -> None:
    first, second = runs["first"], runs["second"]

    typo = invoke(project, "rm", "first", "zzzz", "second", "--yes")
    assert typo.exit_code == 2 and "no run matches 'zzzz'" in typo.stderr
    assert Path(first.run_dir).is_dir() and Path(second.run_dir).is_dir()
    unasked = invoke(project, "rm", "first", "second")  # no terminal to ask on
    assert unasked.exit_code == 2 and unasked.stderr.strip() == "error: not deleting 2 runs without confirmation: pass --yes"

    result = invoke(project, "rm", "first", second.id, "first", "--yes")  # a run named twice is deleted once

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"deleted run {first.id}", f"deleted run {second.id}"]
    assert not Path(first.run_dir).exists() and not Path(second.run_dir).exists()
    with index_of(project) as index:
        assert index.list_runs() == []


def test_tasks_json(project: Path) -> None:
    data = json.loads(invoke(project, "tasks", "--json").stdout)

    assert set(data) == {"project", "root", "files", "tasks", "errors"}
    assert data["project"] == "quickstart" and data["errors"] == []
    sine = next(t for t in data["tasks"] if t["name"] == "SineRegression")
    assert sine["file"] == "tasks/sine.py" and not sine["abstract"]
    assert {"name": "epochs", "type": "int", "default": 5}.items() <= \
        next(f for f in sine["config"] if f["name"] == "epochs").items()


def test_snapshot_json(project: Path) -> None:
    data = json.loads(invoke(project, "snapshot", "--json").stdout)

    assert {"commit", "tree", "head", "branch", "dirty", "excluded", "private", "ref"} <= set(data)
    assert data["private"] is True and data["ref"] is None and len(data["commit"]) == 40


def test_help_lists_every_command() -> None:
    result = invoke(None, "--help")

    assert result.exit_code == 0
    for name in cli.commands:
        assert f"  {name} " in result.stdout or f"  {name}\n" in result.stdout
