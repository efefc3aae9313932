"""``workbench compare``: real runs in a real index (made with ``launch(..., start=False)``
and metrics written directly), compared as JSON and as a table; bad input is one line."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import copy_quickstart
from click.testing import CliRunner, Result

from workbench.cli import cli
from workbench.project import load_project
from workbench.runs import LaunchRequest, launch
from workbench.store import Run, RunIndex


def invoke(project: Path, *args: str) -> Result:
    """``workbench --project PROJECT ARGS`` in this process; a crash fails the test."""
    result = CliRunner().invoke(cli, ["--project", str(project), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def make_runs(project: Path) -> dict[str, Run]:
    """Three runs of SineRegression, made without processes:

    - ``base`` (completed, tag ``baseline``): lr 0.01; train/loss 1.0, 0.5, 0.25 at steps
      1-3; val/acc 0.5, 0.9, 0.8 (best is not last); val/loss 0.3 at step 3; a NaN
      ``grad/norm`` at step 3.
    - ``other`` (failed): lr 0.02, hidden 32, same code; train/loss 0.9, 0.4 at steps 1-2,
      val/acc 0.6, 0.7, val/loss 0.35 at step 2.
    - ``edited`` (completed, tag ``baseline``): base's config, launched after a task file
      changed; train/loss 0.8, 0.3, 0.2, 0.1 at steps 1-4.
    """
    loaded = load_project(project)
    specs = {
        "base": (["epochs=1", "lr=0.01"], ("baseline",)),
        "other": (["epochs=1", "lr=0.02", "hidden=32"], ()),
        "edited": (["epochs=1", "lr=0.01"], ("baseline",)),
    }
    made: dict[str, Run] = {}
    with RunIndex(project / ".workbench" / "index.db") as index:
        for name, (overrides, tags) in specs.items():
            if name == "edited":
                sine = project / "tasks" / "sine.py"
                sine.write_text(sine.read_text() + "\n# edited after the first two runs\n")
            made[name] = launch(loaded, LaunchRequest("SineRegression", overrides, name=name, tags=tags),
                                index=index, start=False)
        base, other, edited = (made[n].id for n in ("base", "other", "edited"))
        t0 = made["base"].created_at
        index.update_run(base, status="completed", started_at=t0 + 1, ended_at=t0 + 5, exit_code=0, step=3)
        index.update_run(other, status="failed", started_at=t0 + 1, ended_at=t0 + 3, exit_code=1,
                         error="RuntimeError: boom")
        index.update_run(edited, status="completed", started_at=t0 + 2, ended_at=t0 + 6, exit_code=0, step=4)
        index.add_metrics(base, [("train/loss", 1.0, 1, t0 + 1), ("train/loss", 0.5, 2, t0 + 2),
                                 ("train/loss", 0.25, 3, t0 + 3), ("val/acc", 0.5, 1, t0 + 1),
                                 ("val/acc", 0.9, 2, t0 + 2), ("val/acc", 0.8, 3, t0 + 3),
                                 ("val/loss", 0.3, 3, t0 + 3), ("grad/norm", math.nan, 3, t0 + 3)])
        index.add_metrics(other, [("train/loss", 0.9, 1, t0 + 1), ("train/loss", 0.4, 2, t0 + 2),
                                  ("val/acc", 0.6, 1, t0 + 1), ("val/acc", 0.7, 2, t0 + 2),
                                  ("val/loss", 0.35, 2, t0 + 2)])
        index.add_metrics(edited, [("train/loss", v, s, t0 + s) for s, v in ((1, 0.8), (2, 0.3), (3, 0.2), (4, 0.1))])
        index.add_event(base, "completed", "after 3 steps")
        made = {name: index.get_run(run.id) for name, run in made.items()}
    return made


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory, probe_cache: Path) -> tuple[Path, dict[str, Run]]:
    """A project with the three runs of :func:`make_runs` (tests must not change it)."""
    base = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIT_CONFIG_GLOBAL", os.devnull)
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        mp.setenv("GIT_CEILING_DIRECTORIES", str(base))
        root = copy_quickstart(base, probe_cache)
        return root, make_runs(root)


def _json(project: Path, *args: str) -> dict[str, Any]:
    result = invoke(project, "compare", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _metric(data: dict[str, Any], key: str) -> dict[str, Any]:
    return next(m for m in data["metrics"] if m["key"] == key)


def _values(cells: list[dict[str, Any] | None]) -> list[Any]:
    return [None if c is None else (c["value"], c["step"], c["delta"]) for c in cells]


def test_compare_json_config_metrics_and_code(compared: tuple[Path, dict[str, Run]]) -> None:
    project, runs = compared

    data = _json(project, "base", "other", runs["edited"].id[:8])

    assert set(data) == {"baseline", "runs", "config", "metrics", "evaluations"}
    assert data["baseline"] == runs["base"].id
    assert [r["name"] for r in data["runs"]] == ["base", "other", "edited"]
    assert set(data["runs"][0]) == {"id", "name", "task", "status", "created_at", "git", "data"}
    assert data["runs"][0]["data"] == {"digest": None, "files": None, "bytes": None, "same_data": None}
    assert [r["status"] for r in data["runs"]] == ["completed", "failed", "completed"]
    config = {row["key"]: row for row in data["config"]}
    assert config["lr"]["values"] == [0.01, 0.02, 0.01] and config["lr"]["differs"] is True
    assert config["hidden"]["values"] == [64, 32, 64] and config["hidden"]["differs"] is True
    assert config["epochs"]["values"] == [1, 1, 1] and config["epochs"]["differs"] is False
    assert config["epochs"]["missing"] == [False, False, False]

    loss = _metric(data, "train/loss")
    assert loss["better"] == "lower"
    assert _values(loss["last"]) == [(0.25, 3, None), (0.4, 2, pytest.approx(0.15)), (0.1, 4, pytest.approx(-0.15))]
    assert _values(loss["best"]) == _values(loss["last"])
    # @STEP: the largest step all three runs reached is 2.
    assert loss["at"]["step"] == 2
    assert _values(loss["at"]["cells"]) == [(0.5, 2, None), (0.4, 2, pytest.approx(-0.1)), (0.3, 2, pytest.approx(-0.2))]

    acc = _metric(data, "val/acc")
    assert acc["better"] == "higher"
    assert _values(acc["best"])[:2] == [(0.9, 2, None), (0.7, 2, pytest.approx(-0.2))]
    assert acc["best"][2] is None and acc["last"][2] is None  # edited never logged val/acc
    assert acc["at"]["step"] == 2  # over the runs that have the key

    val = _metric(data, "val/loss")
    assert val["at"]["step"] == 2
    assert val["at"]["cells"][0] is None  # base logged val/loss only at step 3

    nan = _metric(data, "grad/norm")
    assert nan["last"][0] == {"value": None, "step": 3, "delta": None}  # NaN is null in JSON

    git = [r["git"] for r in data["runs"]]
    assert all(g["snapshot"] and g["dirty"] is True for g in git)  # the private repository
    assert [g["same_code"] for g in git] == [None, True, False]
    assert git[0]["snapshot"] != git[1]["snapshot"]  # each run has its own snapshot commit


def test_pin_takes_deltas_against_another_run(compared: tuple[Path, dict[str, Run]]) -> None:
    project, runs = compared

    data = _json(project, "base", "other", "--pin", "other")
    added = _json(project, "base", "other", "--pin", "edited")

    assert data["baseline"] == runs["other"].id
    assert [r["name"] for r in data["runs"]] == ["base", "other"]
    loss = _metric(data, "train/loss")
    assert _values(loss["last"]) == [(0.25, 3, pytest.approx(-0.15)), (0.4, 2, None)]
    assert [r["git"]["same_code"] for r in data["runs"]] == [True, None]
    # A pinned run that is not among RUNS is added in front.
    assert [r["name"] for r in added["runs"]] == ["edited", "base", "other"]
    assert added["baseline"] == runs["edited"].id


def test_key_and_step_options(compared: tuple[Path, dict[str, Run]]) -> None:
    project, _ = compared

    data = _json(project, "base", "edited", "--key", "train/loss", "--step", "1")

    assert [m["key"] for m in data["metrics"]] == ["train/loss"]
    loss = data["metrics"][0]
    assert loss["at"]["step"] == 1
    assert _values(loss["at"]["cells"]) == [(1.0, 1, None), (0.8, 1, pytest.approx(-0.2))]


def test_compare_table(compared: tuple[Path, dict[str, Run]]) -> None:
    project, runs = compared

    result = invoke(project, "compare", "base", "other", "edited")
    everything = invoke(project, "compare", "base", "other", "edited", "--all")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["base", "(baseline)", "other", "edited"]
    row = {line.split()[0] + " " + line.split()[1]: line for line in lines if len(line.split()) > 1}
    assert row["config lr"].split()[2:] == ["0.01", "0.02", "0.01"]
    assert "config epochs" not in row
    assert lines[-1].strip() == "6 equal config key(s) not shown (--all shows them)"
    assert "config epochs" in everything.stdout and "not shown" not in everything.stdout
    snapshot = next(line for line in lines if line.startswith("snapshot"))
    assert "same code" in snapshot and "other code" in snapshot
    assert runs["base"].snapshot_commit[:10] in snapshot
    assert row["train/loss last"].split()[2:] == ["0.2500", "@3", "0.4000", "@2", "+0.1500", "0.1000", "@4", "-0.1500"]
    assert row["train/loss @2"].split()[2:] == ["0.5000", "0.4000", "-0.1000", "0.3000", "-0.2000"]
    assert next(line for line in lines if line.startswith("val/acc best")).split()[2] == "↑"
    assert next(line for line in lines if line.startswith("train/loss best")).split()[2] == "↓"
    assert "\x1b[" not in result.stdout  # no colour codes down a pipe


def test_at_step_row_is_left_out_when_it_repeats_last(compared: tuple[Path, dict[str, Run]]) -> None:
    project, _ = compared

    result = invoke(project, "compare", "base", "edited", "--key", "train/loss", "--step", "9")

    assert result.exit_code == 0
    assert "train/loss @9" not in result.stdout  # each run's point at or before 9 is its last
    assert "train/loss last" in result.stdout


BAD_COMPARE = {
    "one run": (["compare", "base"], "compare needs at least two runs"),
    "one run pinned to itself": (["compare", "base", "--pin", "base"], "compare needs at least two runs"),
    "unknown run": (["compare", "base", "zzzz"], "no run matches 'zzzz'"),
    "unknown pin": (["compare", "base", "other", "--pin", "zzzz"], "no run matches 'zzzz'"),
    "a run twice": (["compare", "base", "base"], "run base is given twice"),
    "unknown key": (["compare", "base", "other", "--key", "nope"],
                    "no run compared has metric 'nope'; they have: grad/norm, train/loss, val/acc, val/loss"),
    "negative step": (["compare", "base", "other", "--step", "-1"], "--step must be 0 or more"),
}


@pytest.mark.parametrize("case", list(BAD_COMPARE), ids=list(BAD_COMPARE))
def test_bad_compare_is_one_line_exit_2(case: str, compared: tuple[Path, dict[str, Run]]) -> None:
    project, _ = compared
    args, expected = BAD_COMPARE[case]

    result = invoke(project, *args)

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]


def test_no_runs_is_a_usage_error(compared: tuple[Path, dict[str, Run]]) -> None:
    project, _ = compared

    result = invoke(project, "compare")

    assert result.exit_code == 2
    assert "Missing argument 'RUNS...'" in result.stderr
