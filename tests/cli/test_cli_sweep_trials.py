"""``workbench compare SWEEP --top N`` and ``workbench export SWEEP``: a sweep's trials, best
first by its metric and direction; bad input is one line. The index is real; its rows are
written here (no processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from workbench.cli import cli
from workbench.store import RunIndex


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A sweep ``acc`` (higher is better) of five trials, one without a value; a run of no sweep."""
    root = tmp_path_factory.mktemp("sweep-compare")
    (root / "workbench.toml").write_text('[project]\nname = "p"\n')
    ids = {}
    with RunIndex(root / ".workbench" / "index.db") as index:
        sweep = index.create_sweep(task="T", kind="grid", spec={"keys": ["lr"], "varied": ["lr"]}, name="acc",
                                   metric="val/acc", direction="max")
        for name, lr, acc in (("a", 0.1, 0.7), ("b", 0.2, 0.9), ("c", 0.3, None), ("d", 0.4, 0.8), ("e", 0.5, 0.6)):
            run = index.create_run(task="T", name=name, sweep_id=sweep.id, status="completed", config={"lr": lr})
            if acc is not None:
                index.add_metrics(run.id, [("val/acc", acc / 2, 1), ("val/acc", acc, 2)])
            ids[name] = run.id
        ids["other"] = index.create_run(task="T", name="other", status="completed", config={"lr": 1.0}).id
        ids["sweep"] = sweep.id
        # two sweeps whose ids share all but their last character (and no run's id starts so:
        # ids made in the same moment share their time prefix, so theirs are written out)
        for twin in ("zztwin00000a", "zztwin00000b"):
            index.create_sweep(task="T", kind="grid", id=twin)
    return root, ids


def wb(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--project", str(root), *args])


def test_compare_a_sweeps_best_trials_in_order(project: tuple[Path, dict[str, str]]) -> None:
    root, ids = project
    top = wb(root, "compare", "acc", "--top", "2", "--json")
    assert top.exit_code == 0, top.output
    shown = json.loads(top.output)
    assert [r["name"] for r in shown["runs"]] == ["b", "d"] and shown["baseline"] == ids["b"]
    assert [c["value"] for c in shown["metrics"][0]["last"]] == [0.9, 0.8]
    # no --top: every trial, best first, the one without a value last; the sweep by its id
    every = json.loads(wb(root, "compare", ids["sweep"], "--json").output)
    assert [r["name"] for r in every["runs"]] == ["b", "d", "a", "e", "c"]
    # more than it has: the ranked ones
    assert [r["name"] for r in json.loads(wb(root, "compare", "acc", "--top", "9", "--json").output)["runs"]] == \
        ["b", "d", "a", "e"]
    table = wb(root, "compare", "acc", "--top", "3")
    assert table.exit_code == 0 and "b (baseline)" in table.output


def test_export_a_sweeps_trials(project: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, ids = project
    result = wb(root, "export", "acc", "--format", "json", "-o", str(tmp_path / "all.json"))
    assert result.exit_code == 0, result.output
    exported = json.loads((tmp_path / "all.json").read_text())
    names = sorted(r["name"] for r in exported["runs"])
    assert names == ["a", "b", "c", "d", "e"]  # its trials, not the other run
    result = wb(root, "export", "acc", "--top", "2", "--format", "json", "-o", str(tmp_path / "top.json"))
    assert result.exit_code == 0, result.output
    assert sorted(r["name"] for r in json.loads((tmp_path / "top.json").read_text())["runs"]) == ["b", "d"]


@pytest.mark.parametrize("args, message", [
    (("compare", "acc", "--top", "0"), "--top must be 1 or more, got 0"),
    (("export", "acc", "--top", "-1", "--format", "json", "-o", "-"), "--top must be 1 or more, got -1"),
    (("compare", "other", "--top", "2"), "--top takes a sweep (workbench compare SWEEP --top N); other names no sweep"),
    (("compare", "nope", "--top", "2"), "nope names no sweep"),
    (("compare", "acc", "other"), "'acc' is a sweep: give it alone"),
    (("compare", "{twin}", "--top", "1"), "matches 2 sweeps"),
])
def test_bad_input_is_one_line(project: tuple[Path, dict[str, str]], args: tuple[str, ...], message: str) -> None:
    root, ids = project
    args = tuple(a.replace("{twin}", "zztwin00000") for a in args)
    result = wb(root, *args)

    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
