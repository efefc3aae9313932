"""``workbench export``: every format read back and checked against the index (TensorBoard
files with TensorBoard's own reader), the filter, refusals, and the sqlite-utils commands
that docs/run-index.md shows, run as written."""

from __future__ import annotations

import csv
import json
import math
import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import REPO, copy_quickstart
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli_compare import invoke, make_runs

from workbench.cli.export import _FORMATS, PROGRESS_MIN_POINTS
from workbench.runs.export import FORMATS, METRIC_FIELDS, export_runs
from workbench.store import Run, RunIndex

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, probe_cache: Path) -> tuple[Path, dict[str, Run]]:
    """The quickstart project with the three runs of ``make_runs`` (base, other, edited)."""
    base = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIT_CONFIG_GLOBAL", os.devnull)
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        mp.setenv("GIT_CEILING_DIRECTORIES", str(base))
        root = copy_quickstart(base, probe_cache)
        return root, make_runs(root)


def _points(project: Path, runs: list[Run]) -> list[tuple[Any, ...]]:
    """Every point of ``runs`` as the index holds it (NaN as None), in export order."""
    conn = sqlite3.connect(project / ".workbench" / "index.db")
    try:
        return [row for run in runs for row in conn.execute(
            "SELECT run_id, key, step, value, wall_time, attempt FROM metrics WHERE run_id = ? ORDER BY key, step",
            (run.id,))]
    finally:
        conn.close()


def _in_order(runs: dict[str, Run]) -> list[Run]:
    return sorted(runs.values(), key=lambda r: (r.created_at, r.id))


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def test_the_cli_and_the_library_offer_the_same_formats() -> None:
    assert sorted(_FORMATS) == sorted(FORMATS)


def test_tensorboard_export_reads_back_with_tensorboard(sample: tuple[Path, dict[str, Run]], tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    project, runs = sample
    out = tmp_path / "tb"
    # A real process: it must not import torch or TensorFlow, nor print their warnings.
    check = ("import sys; from workbench.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
             "heavy = sorted(m for m in ('torch', 'tensorflow') if m in sys.modules)\n"
             "print('heavy:', heavy, file=sys.stderr); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", check, "--project", str(project), "export",
                           "--format", "tensorboard", "-o", str(out)],
                          capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stderr == "heavy: []\n"
    assert done.stdout.splitlines() == [
        f"exported 3 run(s), {len(_points(project, _in_order(runs)))} point(s) (events are not written "
        f"to TensorBoard) to {out} (tensorboard)",
        f"  open them with: tensorboard --logdir {out}"]
    assert sorted(p.name for p in out.iterdir()) == ["base", "edited", "other"]
    for name, run in runs.items():
        files = list((out / name).iterdir())
        assert len(files) == 1 and files[0].name.startswith("events.out.tfevents.")
        acc = EventAccumulator(str(out / name), size_guidance={"scalars": 0, "tensors": 0})
        acc.Reload()
        expected: dict[str, list[tuple[int, Any, float]]] = {}
        for _run_id, key, step, value, wall, _attempt in _points(project, [run]):
            expected.setdefault(key, []).append((step, value, wall))
        assert sorted(acc.Tags()["scalars"]) == sorted(expected)
        for key, points in expected.items():
            read = [(e.step, e.value, e.wall_time) for e in acc.Scalars(key)]
            assert [s for s, _, _ in read] == [s for s, _, _ in points]
            assert [w for _, _, w in read] == pytest.approx([w for _, _, w in points])
            for (_, got, _), (_, want, _) in zip(read, points):
                assert math.isnan(got) if want is None else got == pytest.approx(want, rel=1e-6)  # float32
        metadata = acc.SummaryMetadata("_hparams_/session_start_info")
        session = plugin_data_pb2.HParamsPluginData.FromString(metadata.plugin_data.content).session_start_info
        assert session.group_name == run.id
        assert session.hparams["lr"].number_value == pytest.approx(run.config["lr"])
        assert session.hparams["hidden"].number_value == run.config["hidden"]


def test_tensorboard_force_replaces_the_earlier_event_files(sample: tuple[Path, dict[str, Run]], tmp_path: Path) -> None:
    project, _ = sample
    out = tmp_path / "tb"
    _ok(invoke(project, "export", "base", "--format", "tensorboard", "-o", str(out)))

    refused = invoke(project, "export", "base", "--format", "tensorboard", "-o", str(out))
    _ok(invoke(project, "export", "base", "other", "--format", "tensorboard", "-o", str(out), "--force"))

    assert refused.exit_code == 2 and "is not empty; pass --force" in refused.stderr
    assert sorted(p.name for p in out.iterdir()) == ["base", "other"]
    assert len(list((out / "base").iterdir())) == 1  # not two files with every point twice


def test_csv_export(sample: tuple[Path, dict[str, Run]], tmp_path: Path) -> None:
    project, runs = sample
    out = tmp_path / "csv"

    result = _ok(invoke(project, "export", "--format", "csv", "-o", str(out)))

    assert sorted(p.name for p in out.iterdir()) == ["events.csv", "metrics.csv", "runs.csv"]
    with open(out / "runs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["name"] for r in rows] == ["base", "other", "edited"]  # oldest first
    assert [r["config.lr"] for r in rows] == ["0.01", "0.02", "0.01"]
    assert [r["config.hidden"] for r in rows] == ["64", "32", "64"]
    assert json.loads(rows[0]["config"]) == runs["base"].config
    assert json.loads(rows[0]["tags"]) == ["baseline"]
    assert rows[1]["status"] == "failed" and rows[1]["error"] == "RuntimeError: boom"
    assert rows[0]["snapshot_commit"] == runs["base"].snapshot_commit
    with open(out / "metrics.csv", newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == list(METRIC_FIELDS)
        points = list(reader)
    want = _points(project, _in_order(runs))
    assert len(points) == len(want)
    for got, (run_id, key, step, value, wall, attempt) in zip(points, want):
        assert got[:3] == [run_id, key, str(step)] and got[5] == str(attempt)
        assert got[3] == "nan" if value is None else float(got[3]) == value
        assert float(got[4]) == wall
    with open(out / "events.csv", newline="") as handle:
        events = list(csv.DictReader(handle))
    assert {e["kind"] for e in events} == {"launched", "completed"}
    assert f"{len(want)} point(s) and {len(events)} event(s)" in result.stdout


def test_json_and_jsonl_exports(sample: tuple[Path, dict[str, Run]], tmp_path: Path) -> None:
    project, runs = sample
    want = [dict(zip(METRIC_FIELDS, row)) for row in _points(project, _in_order(runs))]

    _ok(invoke(project, "export", "--format", "json", "-o", str(tmp_path / "runs.json")))
    piped = _ok(invoke(project, "export", "--format", "jsonl", "-o", "-", "--where", "tag:baseline"))

    data = json.loads((tmp_path / "runs.json").read_text())
    assert data["format"] == "workbench-export" and data["version"] == 1
    assert [r["name"] for r in data["runs"]] == ["base", "other", "edited"]
    assert data["runs"][0]["config"] == runs["base"].config
    assert data["runs"][0]["metrics"]["train/loss"] == 0.25
    assert data["runs"][0]["metrics"]["grad/norm"] is None  # NaN
    assert data["metrics"] == want
    assert {e["kind"] for e in data["events"]} == {"launched", "completed"}
    lines = [json.loads(line) for line in piped.stdout.splitlines()]
    assert lines[0]["type"] == "export"
    assert [line["name"] for line in lines if line["type"] == "run"] == ["base", "edited"]
    metrics = [{k: v for k, v in line.items() if k != "type"} for line in lines if line["type"] == "metric"]
    assert metrics == [p for p in want if p["run_id"] in (runs["base"].id, runs["edited"].id)]
    assert piped.stderr.startswith("exported 2 run(s)")  # stdout holds only the export


def test_sqlite_export_opens_with_sqlite_utils(sample: tuple[Path, dict[str, Run]], tmp_path: Path) -> None:
    import sqlite_utils

    project, runs = sample
    out = tmp_path / "runs.db"

    _ok(invoke(project, "export", "--format", "sqlite", "-o", str(out), "--where", "status:completed"))

    db = sqlite_utils.Database(out)
    assert set(db.table_names()) == {"runs", "metrics", "events"}
    assert [r["name"] for r in db["runs"].rows] == ["base", "edited"]
    assert db["metrics"].pks == ["run_id", "key", "step"]
    assert {fk.other_table for fk in db["metrics"].foreign_keys} == {"runs"}
    assert [tuple(r.values()) for r in db.query("select * from metrics order by run_id, key, step")] == \
        sorted(_points(project, [runs["base"], runs["edited"]]))
    done = subprocess.run([str(BIN / "sqlite-utils"), "query", str(out),
                           "select r.name, count(*) as n from runs r join metrics m on m.run_id = r.id group by r.id"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"name": "base", "n": 8}, {"name": "edited", "n": 4}]


def _state(project: Path, out: Path) -> tuple[Any, ...]:
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else None
    return files, (project / ".workbench" / "index.db").stat().st_size


BAD_EXPORT = {
    "bad filter": (["--format", "csv", "-o", "{out}", "--where", "status:done colour:red lr>fast"],
                   "bad --where 'status:done colour:red lr>fast': status:done: no status 'done'; one of queued, "
                   "running, completed, failed, stopped, interrupted, pruned; colour:red: unknown field 'colour'; "
                   "one of status, task, tag, device, name, backend, id; lr>fast: > compares numbers; "
                   "'fast' is not a number"),
    "no match": (["--format", "csv", "-o", "{out}", "--where", "task:Nope"],
                 "nothing to export: no run of 3 matches --where 'task:Nope'"),
    "unknown run": (["zzzz", "--format", "csv", "-o", "{out}"], "no run matches 'zzzz'"),
    "file exists": (["--format", "json", "-o", "{file}"], "exists; pass --force to replace it"),
    "folder not empty": (["--format", "csv", "-o", "{full}"], "is not empty; pass --force"),
    "file for a folder format": (["--format", "csv", "-o", "{file}"], "is not a folder; --format csv writes a folder"),
    "folder for a file format": (["--format", "sqlite", "-o", "{full}"], "is a folder; --format sqlite writes one file"),
    "stdout for sqlite": (["--format", "sqlite", "-o", "-"], "--format sqlite cannot go to stdout"),
}


@pytest.mark.parametrize("case", list(BAD_EXPORT), ids=list(BAD_EXPORT))
def test_bad_export_is_one_line_exit_2_and_writes_nothing(
        case: str, sample: tuple[Path, dict[str, Run]], tmp_path: Path) -> None:
    project, _ = sample
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine\n")
    (tmp_path / "file").write_text("mine\n")
    args, expected = BAD_EXPORT[case]
    args = [a.format(out=tmp_path / "out", file=tmp_path / "file", full=tmp_path / "full") for a in args]
    before = _state(project, tmp_path)

    result = invoke(project, "export", *args)

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert _state(project, tmp_path) == before
    assert (tmp_path / "file").read_text() == "mine\n"


def test_force_replaces_a_file(sample: tuple[Path, dict[str, Run]], tmp_path: Path) -> None:
    project, _ = sample
    out = tmp_path / "runs.jsonl"
    out.write_text("old\n")

    _ok(invoke(project, "export", "base", "--format", "jsonl", "-o", str(out), "--force"))

    assert json.loads(out.read_text().splitlines()[1])["name"] == "base"
    assert [p.name for p in tmp_path.iterdir()] == ["runs.jsonl"]  # no temporary file left


def test_missing_tensorboard_is_one_line(sample: tuple[Path, dict[str, Run]], tmp_path: Path) -> None:
    project, _ = sample
    # A None entry in sys.modules makes `import tensorboard` fail as if it were not installed.
    code = "import sys; sys.modules['tensorboard'] = None; from workbench.cli import main; main(sys.argv[1:])"
    done = subprocess.run([sys.executable, "-c", code, "--project", str(project), "export", "--format",
                           "tensorboard", "-o", str(tmp_path / "tb")], capture_output=True, text=True, timeout=120)

    assert done.returncode == 2
    assert done.stderr == ("error: --format tensorboard needs the tensorboard package: "
                           "pip install 'workbench[tensorboard]'\n")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, probe_cache: Path) -> Path:
    """A project with one run of 120,000 points (more than a progress bar's threshold)."""
    project = copy_quickstart(tmp_path_factory.mktemp("big"), probe_cache)
    with RunIndex(project / ".workbench" / "index.db") as index:
        run = index.create_run(task="SineRegression", status="completed", name="big")
        index.add_metrics(run.id, [("train/loss", 1.0 / (s + 1), s, 1.0) for s in range(120_000)])
    return project


def test_a_large_export_shows_a_progress_bar_on_a_terminal(big: Path, tmp_path: Path) -> None:
    import pty

    assert PROGRESS_MIN_POINTS <= 120_000
    out = tmp_path / "big.csv"
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "workbench.cli", "export", "--format", "csv", "-o", str(out)],
                              cwd=big, stdout=subprocess.PIPE, stderr=secondary, timeout=120)
        os.close(secondary)
        secondary = -1
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
        if secondary != -1:
            os.close(secondary)

    assert done.returncode == 0
    assert b"exporting points" in shown and b"120000" in shown
    assert done.stdout.decode().startswith("exported 1 run(s), 120000 point(s)")


def test_a_reader_that_stops_early_gets_no_traceback(big: Path) -> None:
    reader = subprocess.Popen([sys.executable, "-m", "workbench.cli", "export", "--format", "jsonl", "-o", "-"],
                              cwd=big, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    first = json.loads(reader.stdout.readline())
    reader.stdout.close()  # like `| head -1`, long before the 120,000 points are written
    stderr = reader.stderr.read().decode()
    reader.wait(timeout=120)

    assert first["type"] == "export"
    assert reader.returncode == 1
    assert stderr == ""


# -- the library: what is written reads back the same -----------------------------------

_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                    st.integers(min_value=-(10**6), max_value=10**6).map(float))
_series = st.dictionaries(st.sampled_from(["loss", "val/loss", "acc", "lr"]),
                          st.dictionaries(st.integers(min_value=-5, max_value=10**9), _values, min_size=1, max_size=8),
                          min_size=1, max_size=3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(series=_series, fmt=st.sampled_from(["csv", "jsonl", "sqlite"]))
def test_exported_points_read_back_as_the_index_holds_them(tmp_path: Path, series: dict[str, dict[int, float]],
                                                           fmt: str) -> None:
    import sqlite_utils

    folder = tmp_path / f"case-{os.urandom(4).hex()}"
    with RunIndex(folder / "index.db") as index:
        run = index.create_run(task="T", config={"lr": 0.1, "nested": {"a": [1, 2]}})
        index.add_metrics(run.id, [(k, v, s, 1000.0 + s) for k, points in series.items() for s, v in points.items()])
        want = [(run.id, k, s, None if math.isnan(v) else v, 1000.0 + s, 1)
                for k in sorted(series) for s, v in sorted(series[k].items())]
        export_runs(index, [run], fmt, folder / "out")

    if fmt == "csv":
        with open(folder / "out" / "metrics.csv", newline="") as handle:
            rows = list(csv.reader(handle))[1:]
        got = [(r, k, int(s), None if v == "nan" else float(v), float(w), int(a)) for r, k, s, v, w, a in rows]
    elif fmt == "jsonl":
        lines = [json.loads(line) for line in (folder / "out").read_text().splitlines()]
        got = [tuple(line[f] for f in METRIC_FIELDS) for line in lines if line["type"] == "metric"]
        # JSON has no infinity: it is null, like NaN.
        want = [(*w[:3], None if w[3] is not None and math.isinf(w[3]) else w[3], *w[4:]) for w in want]
    else:
        got = [tuple(r.values()) for r in sqlite_utils.Database(folder / "out").query(
            "select * from metrics order by key, step")]
    assert got == want


# -- docs/run-index.md: the sqlite-utils commands, run as written ------------------------

def _documented_commands() -> list[list[str]]:
    """The commands in the shell blocks of docs/run-index.md's sqlite-utils section."""
    text = (REPO / "docs" / "run-index.md").read_text(encoding="utf-8")
    section = text.split("## With sqlite-utils and Datasette", 1)[1].split("\n## ", 1)[0]
    commands: list[list[str]] = []
    for block in section.split("```sh\n")[1:]:
        current = ""
        for line in block.split("```", 1)[0].splitlines():
            if not current and (not line.strip() or line.lstrip().startswith("#")):
                continue
            current += line + "\n"
            if current.rstrip().endswith("\\"):
                continue
            try:
                words = shlex.split(current.replace("\\\n", " "))
            except ValueError:  # a quoted string goes on on the next line
                continue
            commands.append(words)
            current = ""
    return commands


def test_the_documented_sqlite_utils_commands_work_on_the_index(tmp_path: Path, probe_cache: Path) -> None:
    project = copy_quickstart(tmp_path, probe_cache)
    make_runs(project)
    commands = _documented_commands()
    assert [c[0] for c in commands].count("sqlite-utils") >= 6
    ran = 0
    for words in commands:
        if words[0] == "datasette":
            continue  # a server (Datasette is not a dependency)
        program = {"sqlite-utils": [str(BIN / "sqlite-utils")],
                   "workbench": [sys.executable, "-m", "workbench.cli"]}[words[0]]
        done = subprocess.run([*program, *words[1:]], cwd=project, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{shlex.join(words)}\n{done.stderr}"
        assert done.stdout.strip(), shlex.join(words)
        assert "error" not in done.stderr.lower(), done.stderr
        ran += 1
        if words[0] == "sqlite-utils" and "-p" in words and "tag" in words:
            assert "base" in done.stdout and "edited" in done.stdout and "other" not in done.stdout
        if "json_extract(config" in " ".join(words):
            assert "0.02" in done.stdout
    assert ran == len([c for c in commands if c[0] != "datasette"])
