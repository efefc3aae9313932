"""Comparing runs side by side: config, metrics and code (``workbench compare``).

A :class:`Comparison` holds, for two or more runs, every config key with each run's value,
three rows per metric key (the ``last`` value, the ``best`` value, and the value at the
largest step every run reached), each with its delta against a baseline run, and the code
each run used (snapshot commit, dirty flag, and whether its code is the baseline's), and
the data each run saw at launch (the digest of its ``[data]`` fingerprint, and whether it
is the baseline's). The CLI renders it as a table or as JSON (:meth:`Comparison.to_json`,
documented in docs/cli.md); nothing here prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.runs.present import better_is_higher, flatten_config, iso
from workbench.store import TIME_KEYED_PREFIX

if TYPE_CHECKING:
    from workbench.store import Run, RunIndex

__all__ = [
    "MISSING",
    "CodeCell",
    "Comparison",
    "ConfigRow",
    "DataCell",
    "EvaluationRow",
    "MetricCell",
    "MetricRow",
    "compare_runs",
    "snapshot_comparer",
]


class _Missing:
    """A config key a run does not have (distinct from a ``None`` value)."""

    def __repr__(self) -> str:
        return "MISSING"


#: The value of a config key that a run does not have.
MISSING: Any = _Missing()

#: ``same_code(baseline_commit, other_commit)``: True, False, or None when unknown.
SameCode = Callable[[str, str], "bool | None"]


@dataclass(frozen=True)
class ConfigRow:
    """One config key (dotted, as :func:`flatten_config` writes it) across the runs.

    Attributes:
        key: The key, e.g. ``optim.lr``.
        values: Each run's value, in the comparison's run order; :data:`MISSING` where a
            run lacks the key.
        differs: Whether the values are not all equal.
    """

    key: str
    values: tuple[Any, ...]
    differs: bool


@dataclass(frozen=True)
class MetricCell:
    """One run's value in a metric row.

    Attributes:
        value: The value (NaN when the point was NaN).
        step: The step of the point.
        delta: ``value - baseline's value``; None for the baseline itself, or when
            either value is missing or NaN.
    """

    value: float
    step: int
    delta: float | None


@dataclass(frozen=True)
class MetricRow:
    """One statistic of one metric key across the runs.

    Attributes:
        key: The metric key.
        kind: ``"last"`` (the point at the run's highest step), ``"best"`` (the lowest
            value, or the highest for accuracy-like keys), or ``"at"`` (the last point
            at or before :attr:`step`).
        step: For ``"at"``: the step compared (default: the largest step that every run
            having the key reached); None otherwise.
        higher_is_better: Whether a larger value is better for this key.
        cells: Each run's cell, in run order; None where a run has no such point.
    """

    key: str
    kind: str
    step: int | None
    higher_is_better: bool
    cells: tuple[MetricCell | None, ...]


@dataclass(frozen=True)
class EvaluationRow:
    """One metric of the runs' evaluations that ran alike: the same step (``test`` or
    ``evaluate``), checkpoint choice (``last``, ``best``, ``step N``) and overrides.

    Attributes:
        key: The metric key the evaluations logged (``test/acc``).
        verb: ``test`` or ``evaluate``.
        checkpoint: ``last`` (the run's final step), ``best`` or ``step N``.
        overrides: The eval-time overrides, as ``(field, value)`` pairs.
        higher_is_better: Whether a larger value is better for this key.
        cells: Each run's value (its newest such evaluation), in run order; None where a
            run has none. Deltas are against the baseline's cell.
        evaluations: Each run's evaluation id, in run order; None where it has none.
    """

    key: str
    verb: str
    checkpoint: str
    overrides: tuple[tuple[str, Any], ...]
    higher_is_better: bool
    cells: tuple[MetricCell | None, ...]
    evaluations: tuple[str | None, ...]

    @property
    def kind(self) -> str:
        """``eval`` (a :class:`MetricRow` has ``last``, ``best`` or ``at``)."""
        return "eval"

    @property
    def label(self) -> str:
        """``test/acc (test last, threshold=0.7)``."""
        changed = "".join(f", {k}={v}" for k, v in self.overrides)
        return f"{self.key} ({self.verb} {self.checkpoint}{changed})"


@dataclass(frozen=True)
class CodeCell:
    """The code a run used.

    Attributes:
        snapshot: The snapshot commit (None for a run without one).
        head: The HEAD commit at launch (None outside git).
        branch: The branch at launch.
        dirty: Whether the working tree had uncommitted changes.
        same_code: Whether the snapshot holds the same files as the baseline's: None for
            the baseline itself, or when it cannot be told.
    """

    snapshot: str | None
    head: str | None
    branch: str | None
    dirty: bool | None
    same_code: bool | None


@dataclass(frozen=True)
class DataCell:
    """The data a run saw at launch (its ``data`` event: see ``workbench.runs.fingerprint``).

    Attributes:
        digest: The fingerprint's digest; None for a run launched without ``[data]`` paths.
        files: How many files the fingerprint holds.
        bytes: Their total size.
        same_data: Whether the digest is the baseline's: None for the baseline itself, or
            when either run has no fingerprint.
    """

    digest: str | None
    files: int | None
    bytes: int | None
    same_data: bool | None

    @property
    def short(self) -> str:
        """The digest's first 12 hex digits, or ``—``."""
        return self.digest[:12] if self.digest else "—"

    @property
    def text(self) -> str:
        """``1a2b3c4d5e6f``, with `` other data`` when it is not the baseline's."""
        return self.short + (" other data" if self.same_data is False else "")


@dataclass(frozen=True)
class Comparison:
    """Two or more runs compared (see the module docstring).

    Attributes:
        runs: The runs, in the order given.
        baseline: The position of the baseline run in :attr:`runs`.
        config: Every config key of any run, in first-seen order.
        metrics: For each metric key of any run (sorted): its ``last``, ``best`` and
            ``at`` rows.
        code: Each run's code, in run order.
        data: Each run's data, in run order.
        evaluations: The metrics of the runs' evaluations (``workbench test``/``eval``),
            one row per metric key and kind of evaluation.
    """

    runs: tuple[Run, ...]
    baseline: int
    config: tuple[ConfigRow, ...]
    metrics: tuple[MetricRow, ...]
    code: tuple[CodeCell, ...]
    data: tuple[DataCell, ...] = ()
    evaluations: tuple[EvaluationRow, ...] = ()

    @property
    def data_differs(self) -> bool:
        """Whether some run saw other data than the baseline (as far as fingerprints tell)."""
        return any(cell.same_data is False for cell in self.data)

    @property
    def baseline_run(self) -> Run:
        """The run the deltas are taken against."""
        return self.runs[self.baseline]

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``workbench compare --json`` (docs/cli.md)."""
        runs = []
        for run, code, data in zip(self.runs, self.code, self.data):
            runs.append({
                "id": run.id, "name": run.name, "task": run.task, "status": run.status.value,
                "created_at": iso(run.created_at),
                "git": {"head": code.head, "branch": code.branch, "dirty": code.dirty,
                        "snapshot": code.snapshot, "same_code": code.same_code},
                "data": {"digest": data.digest, "files": data.files, "bytes": data.bytes,
                         "same_data": data.same_data},
            })
        metrics: dict[str, dict[str, Any]] = {}
        for row in self.metrics:
            entry = metrics.setdefault(row.key, {
                "key": row.key, "better": "higher" if row.higher_is_better else "lower"})
            cells = [None if c is None else {"value": _json_number(c.value), "step": c.step,
                                             "delta": _json_number(c.delta)} for c in row.cells]
            if row.kind == "at":
                entry["at"] = {"step": row.step, "cells": cells}
            else:
                entry[row.kind] = cells
        return {
            "baseline": self.baseline_run.id,
            "runs": runs,
            "config": [{"key": row.key, "differs": row.differs,
                        "values": [None if v is MISSING else v for v in row.values],
                        "missing": [v is MISSING for v in row.values]} for row in self.config],
            "metrics": list(metrics.values()),
            "evaluations": [{
                "key": row.key, "verb": row.verb, "checkpoint": row.checkpoint,
                "overrides": dict(row.overrides), "better": "higher" if row.higher_is_better else "lower",
                "cells": [None if c is None else {"value": _json_number(c.value), "step": c.step,
                                                  "delta": _json_number(c.delta), "evaluation": e}
                          for c, e in zip(row.cells, row.evaluations)],
            } for row in self.evaluations],
        }


def _json_number(value: float | None) -> float | None:
    """JSON has no NaN or infinity: they become null."""
    if value is None or not math.isfinite(value):
        return None
    return value


# -- building a comparison ------------------------------------------------------------

def compare_runs(
    index: RunIndex,
    runs: Sequence[Run],
    *,
    baseline: Run | None = None,
    keys: Sequence[str] = (),
    step: int | None = None,
    same_code: SameCode | None = None,
) -> Comparison:
    """Compare runs: config, metrics with deltas against a baseline, and code.

    Args:
        index: The run index the runs are in.
        runs: Two or more distinct runs, in the order to show them.
        baseline: The run deltas are taken against (default: the first). If it is not
            among ``runs`` it is put first.
        keys: Only these metric keys (default: every key of any run).
        step: The step of the ``at`` rows (default, per key: the largest step that every
            run having the key reached).
        same_code: Tells whether two snapshot commits hold the same files (see
            :func:`snapshot_comparer`); without it ``same_code`` is decided by equal
            commits only.

    Returns:
        The comparison.

    Raises:
        WorkbenchError: Fewer than two runs, a run given twice, an unknown metric key, or
            a negative step.
    """
    chosen = list(runs)
    if baseline is not None and all(r.id != baseline.id for r in chosen):
        chosen.insert(0, baseline)
    seen: set[str] = set()
    for run in chosen:
        if run.id in seen:
            raise WorkbenchError(f"run {run.label} is given twice; name each run once")
        seen.add(run.id)
    if len(chosen) < 2:
        raise WorkbenchError("compare needs at least two runs (`workbench ls` lists them)")
    if step is not None and step < 0:
        raise WorkbenchError(f"--step must be 0 or more, got {step}")
    base = 0 if baseline is None else next(i for i, r in enumerate(chosen) if r.id == baseline.id)

    run_keys = [index.metric_keys(r.id) for r in chosen]
    evaluated = _evaluation_points(index, chosen)
    known = sorted({k for ks in run_keys for k in ks})
    unknown = [k for k in keys if k not in known and all(k != label[0] for label in evaluated)]
    if unknown:
        raise WorkbenchError(f"no run compared has metric {unknown[0]!r}; they have: {', '.join(known) or 'none'}")
    # System metrics (sys/*) are stored against wall time, not steps: "last at step" and "at the
    # common step" mean nothing for them, so they are compared only when asked for by name.
    wanted = [k for k in dict.fromkeys(keys) if k in known] if keys else \
        [k for k in known if not k.startswith(TIME_KEYED_PREFIX)]

    return Comparison(
        runs=tuple(chosen),
        baseline=base,
        config=tuple(_config_rows(chosen)),
        metrics=tuple(row for key in wanted
                      for row in _metric_rows(index, chosen, run_keys, base, key, step)),
        code=tuple(_code_cells(chosen, base, same_code)),
        data=tuple(_data_cells(index, chosen, base)),
        evaluations=tuple(_evaluation_rows(evaluated, base, keys)),
    )


_Label = tuple[str, str, str, tuple[tuple[str, Any], ...]]  # key, verb, checkpoint, overrides


def _evaluation_points(index: RunIndex, runs: Sequence[Run]) -> dict[_Label, list[tuple[int, float, str] | None]]:
    """Each run's evaluations' metrics, grouped by how they ran: ``{(key, verb, checkpoint,
    overrides): [(step, value, evaluation id) or None per run]}`` (a run's newest wins)."""
    from workbench.runs.evaluate import evaluation_records

    found: dict[_Label, list[tuple[int, float, str] | None]] = {}
    for i, run in enumerate(runs):
        if run.is_evaluation:
            continue
        for record in evaluation_records(index, run):  # oldest first: a newer one replaces it
            checkpoint = record["checkpoint"].split(" (")[0]  # "last (step 120)" -> "last"
            overrides = tuple(sorted((k, v) for k, v in record["overrides"].items()))
            for key, value in record["metrics"].items():
                label = (key, record["verb"], checkpoint, overrides)
                cells = found.setdefault(label, [None] * len(runs))
                cells[i] = (record["at_step"] or 0, value, record["id"])
    return found


def _evaluation_rows(found: dict[_Label, list[tuple[int, float, str] | None]], base: int,
                     keys: Sequence[str]) -> list[EvaluationRow]:
    rows = []
    for label in sorted(found, key=lambda lb: (lb[0], lb[1], lb[2], repr(lb[3]))):
        key, verb, checkpoint, overrides = label
        if keys and key not in keys:
            continue
        points = found[label]
        cells = _cells([None if p is None else (p[0], p[1]) for p in points], base)
        rows.append(EvaluationRow(key, verb, checkpoint, overrides, better_is_higher(key), cells,
                                  tuple(None if p is None else p[2] for p in points)))
    return rows


def _config_rows(runs: Sequence[Run]) -> list[ConfigRow]:
    flats = [flatten_config(r.config) for r in runs]
    order = list(dict.fromkeys(k for flat in flats for k in flat))
    rows = []
    for key in order:
        values = tuple(flat.get(key, MISSING) for flat in flats)
        differs = any(not _same_value(values[0], v) for v in values[1:])
        rows.append(ConfigRow(key, values, differs))
    return rows


def _same_value(a: Any, b: Any) -> bool:
    # 1 and 1.0 are the same setting; True and 1 are not.
    if a is MISSING or b is MISSING:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


# Direct reads of the ``metrics`` table: each is one seek along its (run_id, key, step)
# primary key, except ``best``, which scans one series (no summary keeps a series' extremes
# exactly). The store has no method for these statistics.
_LAST = "SELECT step, value FROM metrics WHERE run_id = ? AND key = ? ORDER BY step DESC LIMIT 1"
_AT = ("SELECT step, value FROM metrics WHERE run_id = ? AND key = ? AND step <= ?"
       " ORDER BY step DESC LIMIT 1")
_LOWEST = ("SELECT step, value FROM metrics WHERE run_id = ? AND key = ? AND value IS NOT NULL"
           " ORDER BY value ASC, step ASC LIMIT 1")
_HIGHEST = ("SELECT step, value FROM metrics WHERE run_id = ? AND key = ? AND value IS NOT NULL"
            " ORDER BY value DESC, step ASC LIMIT 1")


def _point(row: tuple[int, float | None] | None) -> tuple[int, float] | None:
    if row is None:
        return None
    return int(row[0]), (math.nan if row[1] is None else float(row[1]))


def _metric_rows(index: RunIndex, runs: Sequence[Run], run_keys: Sequence[Sequence[str]], base: int,
                 key: str, step: int | None) -> list[MetricRow]:
    conn = index.connection
    higher = better_is_higher(key)
    has = [key in ks for ks in run_keys]
    last = [_point(conn.execute(_LAST, (r.id, key)).fetchone()) if h else None for r, h in zip(runs, has)]
    best_sql = _HIGHEST if higher else _LOWEST
    best = []
    for run, h, fallback in zip(runs, has, last):
        point = _point(conn.execute(best_sql, (run.id, key)).fetchone()) if h else None
        best.append(point if point is not None else fallback)  # an all-NaN series: its last point
    if step is None:
        reached = [p[0] for p in last if p is not None]
        at_step = min(reached) if reached else None
    else:
        at_step = step
    at = [None] * len(runs)
    if at_step is not None:
        at = [_point(conn.execute(_AT, (r.id, key, at_step)).fetchone()) if h else None
              for r, h in zip(runs, has)]
    return [
        MetricRow(key, "last", None, higher, _cells(last, base)),
        MetricRow(key, "best", None, higher, _cells(best, base)),
        MetricRow(key, "at", at_step, higher, _cells(at, base)),
    ]


def _cells(points: Sequence[tuple[int, float] | None], base: int) -> tuple[MetricCell | None, ...]:
    reference = points[base]
    cells: list[MetricCell | None] = []
    for i, point in enumerate(points):
        if point is None:
            cells.append(None)
            continue
        delta = None
        if i != base and reference is not None and not (math.isnan(point[1]) or math.isnan(reference[1])):
            delta = point[1] - reference[1]
        cells.append(MetricCell(point[1], point[0], delta))
    return tuple(cells)


def _code_cells(runs: Sequence[Run], base: int, same_code: SameCode | None) -> list[CodeCell]:
    reference = runs[base].snapshot_commit
    cells = []
    for i, run in enumerate(runs):
        same: bool | None = None
        if i != base and reference and run.snapshot_commit:
            if run.snapshot_commit == reference:
                same = True
            elif same_code is not None:
                same = same_code(reference, run.snapshot_commit)
        cells.append(CodeCell(run.snapshot_commit, run.git_head, run.git_branch, run.git_dirty, same))
    return cells


def _data_cells(index: RunIndex, runs: Sequence[Run], base: int) -> list[DataCell]:
    found = []
    for run in runs:
        event = next((e for e in reversed(index.events(run.id)) if e.kind == "data"), None)
        data = event.data if event is not None and isinstance(event.data, dict) else {}
        found.append((data.get("digest"), data.get("files"), data.get("bytes")))
    reference = found[base][0]
    return [DataCell(digest, files, size,
                     None if i == base or not (digest and reference) else digest == reference)
            for i, (digest, files, size) in enumerate(found)]


def snapshot_comparer(root: Path, state_dir: Path) -> SameCode:
    """A ``same_code`` function for :func:`compare_runs` over a project's snapshots.

    Two snapshot commits hold the same code when ``git diff`` between them is empty (each
    run's snapshot is its own commit, so the commits differ even when the files do not).

    Args:
        root: The project folder.
        state_dir: The project's ``.workbench`` folder.

    Returns:
        ``same(a, b)``: True or False, or None when a commit cannot be read.
    """
    def same(a: str, b: str) -> bool | None:
        from workbench.snapshot import SnapshotError, diff

        try:
            return not diff(root, a, b, state_dir=state_dir, stat=True).strip()
        except SnapshotError:
            return None

    return same
