"""Exporting runs from the index: CSV, JSON, JSON Lines, SQLite and TensorBoard.

Every format carries the same three things: the runs (with their config), their metric
points in long format (one row per ``run_id, key, step``), and their lifecycle events.
``csv`` and ``tensorboard`` write a folder, the others one file; the layouts are in
docs/cli.md. Points are streamed from the index, never held all at once, and a callback
reports progress. CSV goes through :mod:`csv`, SQLite through sqlite-utils, TensorBoard
event files through the ``tensorboard`` package (:mod:`workbench.runs.export_tb`); torch is
never imported.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.runs.present import flatten_config, iso, run_record

if TYPE_CHECKING:
    from workbench.store import Run, RunIndex

__all__ = [
    "EXPORT_VERSION",
    "FILE_FORMATS",
    "FOLDER_FORMATS",
    "FORMATS",
    "METRIC_FIELDS",
    "ExportResult",
    "check_target",
    "count_points",
    "event_rows",
    "export_runs",
    "metric_rows",
    "run_row",
    "select_runs",
]

#: Formats that write one file (``-`` for stdout where the format streams).
FILE_FORMATS = ("json", "jsonl", "sqlite")
#: Formats that write a folder.
FOLDER_FORMATS = ("csv", "tensorboard")
FORMATS = ("csv", "json", "jsonl", "sqlite", "tensorboard")
#: The version of the ``json`` and ``jsonl`` layouts (docs/cli.md).
EXPORT_VERSION = 1
#: The fields of a metric point, in every format.
METRIC_FIELDS = ("run_id", "key", "step", "value", "wall_time", "attempt")
_EVENT_FIELDS = ("id", "run_id", "time", "kind", "message", "data")
_CSV_FILES = ("runs.csv", "metrics.csv", "events.csv")
_STDOUT_FORMATS = ("json", "jsonl")

Progress = Callable[[int], None]
_PROGRESS_EVERY = 10_000


@dataclass
class ExportResult:
    """What an export wrote.

    Attributes:
        runs: How many runs.
        points: How many metric points.
        events: How many events.
        paths: The files written (empty for stdout).
    """

    runs: int = 0
    points: int = 0
    events: int = 0
    paths: list[Path] = field(default_factory=list)


# -- choosing runs and the target -----------------------------------------------------

def select_runs(index: RunIndex, refs: Sequence[str], where: str | None = None) -> list[Run]:
    """The runs to export: those named (or every run), kept by the ``--where`` filter.

    Live runs whose processes are gone are reconciled first. Runs come oldest first.

    Args:
        index: The run index.
        refs: Run ids, id prefixes or names; none for every run.
        where: A run filter (the app's ``/`` filter, :mod:`workbench.runs.filter`).

    Returns:
        The runs, oldest first.

    Raises:
        WorkbenchError: The filter has problems (all listed in one line), a run is
            unknown or ambiguous, or no run is left to export.
    """
    from workbench.runs import reconcile
    from workbench.runs.filter import parse_filter

    chosen = parse_filter(where or "")
    if chosen.problems:
        raise WorkbenchError(f"bad --where {where!r}: {'; '.join(chosen.problems)}")
    reconcile(index)
    if refs:
        runs = list({run.id: run for run in (index.resolve_run(ref) for ref in refs)}.values())
    else:
        runs = index.list_runs()
    kept = sorted((run for run in runs if chosen.matches(run)), key=lambda r: (r.created_at, r.id))
    if not kept:
        if not runs:
            raise WorkbenchError("nothing to export: the index has no runs yet")
        raise WorkbenchError(f"nothing to export: no run of {len(runs)} matches --where {where!r}")
    return kept


def check_target(fmt: str, target: Path | str, force: bool = False) -> None:
    """Refuse a target that would lose data or cannot take the format.

    ``csv`` and ``tensorboard`` write a folder: it may be missing or empty, or, with
    ``force``, hold files (only the files the export writes are replaced). The other
    formats write one file, which may be missing or empty, or be replaced with ``force``.
    ``-`` (stdout) is allowed for ``json`` and ``jsonl``.

    Raises:
        WorkbenchError: The target is refused (one line saying why).
    """
    if fmt not in FORMATS:
        raise WorkbenchError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    if str(target) == "-":
        if fmt not in _STDOUT_FORMATS:
            raise WorkbenchError(f"--format {fmt} cannot go to stdout (-o -); give a "
                                 f"{'folder' if fmt in FOLDER_FORMATS else 'file'}")
        return
    path = Path(target)
    if fmt in FOLDER_FORMATS:
        if path.exists() and not path.is_dir():
            raise WorkbenchError(f"{path} is not a folder; --format {fmt} writes a folder")
        if path.is_dir() and any(path.iterdir()) and not force:
            raise WorkbenchError(f"{path} is not empty; pass --force to write into it "
                                 "(the export's own files are replaced)")
    else:
        if path.is_dir():
            raise WorkbenchError(f"{path} is a folder; --format {fmt} writes one file")
        if path.exists() and path.stat().st_size > 0 and not force:
            raise WorkbenchError(f"{path} exists; pass --force to replace it")
        if not path.parent.is_dir():
            raise WorkbenchError(f"{path.parent} is not a folder")


def count_points(index: RunIndex, runs: Sequence[Run]) -> int:
    """How many metric points the runs have (to size a progress bar)."""
    conn = index.connection
    return sum(conn.execute("SELECT count(*) FROM metrics WHERE run_id = ?", (r.id,)).fetchone()[0]
               for r in runs)


# -- rows -----------------------------------------------------------------------------

_RUN_COLUMNS = ("id", "name", "task", "status", "device", "backend", "nproc", "precision", "profile",
                "created_at", "started_at", "ended_at", "duration_s", "attempt")


def run_row(run: Run) -> dict[str, Any]:
    """A run as one flat row (``runs.csv``, the ``runs`` table of ``--format sqlite``).

    Times are ISO 8601 UTC strings, as in the run record; ``tags`` and ``config`` are
    JSON text, and each config value is also a ``config.<dotted key>`` column (lists and
    tables as JSON text).
    """
    record = run_record(run)
    row = {name: record[name] for name in _RUN_COLUMNS}
    row.update({
        "step": run.step, "total_steps": run.total_steps, "epoch": run.epoch,
        "exit_code": run.exit_code, "signal": run.signal, "error": run.error,
        "tags": json.dumps(list(run.tags)), "parent_id": run.parent_id,
        "git_head": run.git_head, "git_branch": run.git_branch, "git_dirty": run.git_dirty,
        "snapshot_commit": run.snapshot_commit, "run_dir": run.run_dir,
        "config": json.dumps(dict(run.config), sort_keys=False),
    })
    for key, value in flatten_config(run.config).items():
        row[f"config.{key}"] = json.dumps(value) if isinstance(value, (list, tuple, dict)) else value
    return row


def metric_rows(index: RunIndex, run: Run) -> Iterator[tuple[Any, ...]]:
    """A run's points as ``(run_id, key, step, value, wall_time, attempt)``, by key and step.

    Streamed from the index (a NaN value is ``None``, as the index stores it).
    """
    # One range of the metrics table's (run_id, key, step) primary key: no sort, no copy.
    yield from index.connection.execute(
        "SELECT run_id, key, step, value, wall_time, attempt FROM metrics WHERE run_id = ?"
        " ORDER BY key, step", (run.id,))


def event_rows(index: RunIndex, run: Run) -> list[dict[str, Any]]:
    """A run's events as rows: ``id, run_id, time`` (unix seconds)``, kind, message, data``."""
    return [{"id": e.id, "run_id": e.run_id, "time": e.time, "kind": e.kind, "message": e.message,
             "data": e.data} for e in index.events(run.id)]


class _Counter:
    """Counts points and calls ``progress`` every few thousand."""

    def __init__(self, progress: Progress | None) -> None:
        self.total = 0
        self._pending = 0
        self._progress = progress

    def add(self, n: int = 1) -> None:
        self.total += n
        self._pending += n
        if self._pending >= _PROGRESS_EVERY:
            self.flush()

    def flush(self) -> None:
        if self._progress is not None and self._pending:
            self._progress(self._pending)
        self._pending = 0


# -- writing --------------------------------------------------------------------------

@contextlib.contextmanager
def _replacing(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write ``path`` through a hidden temporary file beside it, renamed at the end."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8",
                  newline=None if "b" in mode else "") as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_runs(
    index: RunIndex,
    runs: Sequence[Run],
    fmt: str,
    target: Path | str,
    *,
    force: bool = False,
    progress: Progress | None = None,
    stdout: IO[str] | None = None,
) -> ExportResult:
    """Write ``runs`` to ``target`` in format ``fmt`` (layouts in docs/cli.md).

    Args:
        index: The run index.
        runs: The runs (see :func:`select_runs`).
        fmt: One of :data:`FORMATS`.
        target: A folder (``csv``, ``tensorboard``), a file, or ``-`` for stdout.
        force: Replace what is there (see :func:`check_target`).
        progress: Called with the number of points written since its last call.
        stdout: Where ``-`` writes (default: ``sys.stdout``).

    Returns:
        What was written.

    Raises:
        WorkbenchError: The target is refused, or a package the format needs is missing.
    """
    check_target(fmt, target, force)
    counter = _Counter(progress)
    if str(target) == "-":
        out = stdout or sys.stdout
        result = (_write_json if fmt == "json" else _write_jsonl)(index, runs, out, counter)
    elif fmt == "tensorboard":
        from workbench.runs.export_tb import write_tensorboard

        paths = write_tensorboard(runs, Path(target), lambda run: metric_rows(index, run), counter.add)
        result = ExportResult(paths=paths)
    elif fmt == "csv":
        result = _write_csv(index, runs, Path(target), counter)
    elif fmt == "sqlite":
        result = _write_sqlite(index, runs, Path(target), counter)
    else:
        writer = _write_json if fmt == "json" else _write_jsonl
        with _replacing(Path(target)) as handle:
            result = writer(index, runs, handle, counter)
        result.paths = [Path(target)]
    counter.flush()
    result.runs = len(runs)
    result.points = counter.total
    return result


def _csv_value(value: Any) -> Any:
    return "nan" if value is None else value


def _write_csv(index: RunIndex, runs: Sequence[Run], folder: Path, counter: _Counter) -> ExportResult:
    folder.mkdir(parents=True, exist_ok=True)
    result = ExportResult()
    rows = [run_row(run) for run in runs]
    columns = list(dict.fromkeys(name for row in rows for name in row))
    paths = [folder / name for name in _CSV_FILES]
    with _replacing(paths[0]) as handle:
        writer = csv.DictWriter(handle, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    with _replacing(paths[1]) as handle:
        out = csv.writer(handle)
        out.writerow(METRIC_FIELDS)
        for run in runs:
            for run_id, key, step, value, wall, attempt in metric_rows(index, run):
                out.writerow((run_id, key, step, _csv_value(value), wall, attempt))
                counter.add()
    result.points = counter.total
    with _replacing(paths[2]) as handle:
        events = csv.DictWriter(handle, _EVENT_FIELDS)
        events.writeheader()
        for run in runs:
            for event in event_rows(index, run):
                event["data"] = None if event["data"] is None else json.dumps(event["data"])
                events.writerow(event)
                result.events += 1
    result.paths = paths
    return result


def _json_float(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _point_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    point = dict(zip(METRIC_FIELDS, row))
    point["value"] = _json_float(point["value"])
    return point


def _run_json(index: RunIndex, run: Run) -> dict[str, Any]:
    metrics = {k: _json_float(v) for k, v in index.last_metrics(run.id).items()}
    return run_record(run, metrics)


def _write_json(index: RunIndex, runs: Sequence[Run], out: IO[str], counter: _Counter) -> ExportResult:
    result = ExportResult()
    # Written piece by piece: the points are streamed, never held in one list.
    header = {"format": "workbench-export", "version": EXPORT_VERSION, "exported_at": iso(time.time())}
    out.write("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in header.items()))
    out.write(',\n "runs": [')
    for i, run in enumerate(runs):
        out.write(("," if i else "") + "\n  " + json.dumps(_run_json(index, run)))
    out.write('\n ],\n "events": [')
    first = True
    for run in runs:
        for event in event_rows(index, run):
            out.write(("" if first else ",") + "\n  " + json.dumps(event))
            first = False
            result.events += 1
    out.write('\n ],\n "metrics": [')
    first = True
    for run in runs:
        for row in metric_rows(index, run):
            out.write(("" if first else ",") + "\n  " + json.dumps(_point_dict(row)))
            first = False
            counter.add()
    out.write("\n ]\n}\n")
    result.points = counter.total
    return result


def _write_jsonl(index: RunIndex, runs: Sequence[Run], out: IO[str], counter: _Counter) -> ExportResult:
    result = ExportResult()
    out.write(json.dumps({"type": "export", "format": "workbench-export", "version": EXPORT_VERSION,
                          "exported_at": iso(time.time())}) + "\n")
    for run in runs:
        out.write(json.dumps({"type": "run", **_run_json(index, run)}) + "\n")
        for event in event_rows(index, run):
            out.write(json.dumps({"type": "event", **event}) + "\n")
            result.events += 1
        for row in metric_rows(index, run):
            out.write(json.dumps({"type": "metric", **_point_dict(row)}) + "\n")
            counter.add()
    result.points = counter.total
    return result


def _write_sqlite(index: RunIndex, runs: Sequence[Run], path: Path, counter: _Counter) -> ExportResult:
    import sqlite_utils

    result = ExportResult()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        db = sqlite_utils.Database(tmp)
        # A new private file, renamed into place only when complete: no journal and no
        # sync per batch (sqlite-utils commits every batch), one fsync at the end.
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        try:
            db["runs"].insert_all((run_row(run) for run in runs), pk="id", alter=True)

            def points() -> Iterator[dict[str, Any]]:
                for run in runs:
                    for row in metric_rows(index, run):
                        counter.add()
                        yield dict(zip(METRIC_FIELDS, row))

            db["metrics"].create(
                {"run_id": str, "key": str, "step": int, "value": float, "wall_time": float, "attempt": int},
                pk=("run_id", "key", "step"), foreign_keys=[("run_id", "runs", "id")],
            )
            db["metrics"].insert_all(points(), batch_size=2000)
            events = [event for run in runs for event in event_rows(index, run)]
            db["events"].create(
                {"id": int, "run_id": str, "time": float, "kind": str, "message": str, "data": str},
                pk="id", foreign_keys=[("run_id", "runs", "id")],
            )
            db["events"].insert_all(events)
            db["events"].create_index(["run_id", "time"])
            result.events = len(events)
        finally:
            db.close()
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    result.points = counter.total
    result.paths = [path]
    return result
