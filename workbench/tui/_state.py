"""What the app knows, on its event loop: runs, curves and log lines read so far.

Workers read the index (see ``_watcher.py``); these caches merge what they found and tell
the widgets what changed. They import nothing from textual, so the benchmark and the tests
use them directly.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from itertools import chain
from dataclasses import dataclass, field
from typing import Any

from workbench.runs import present
from workbench.runs.filter import RunFilter, parse_filter
from workbench.store import Run, RunStatus
from workbench.tui._thin import thin
from workbench.tui._timing import Span, ran_seconds
from workbench.tui._watcher import LogChunk, SeriesKey, SeriesLoad, SeriesTail

__all__ = ["SORT_COLUMNS", "Changes", "LogCache", "RunCache", "SeriesCache", "SeriesData"]

_STATUS_ORDER = {s: i for i, s in enumerate(("running", "queued", "failed", "interrupted", "stopped", "pruned",
                                             "completed"))}


def _started(row: Run) -> float:
    return row.started_at or row.created_at or 0.0


def _none_last(value: Any) -> tuple[int, Any]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (1, 0)
    return (0, value)


#: Columns the run table can be sorted by, and the default direction of each (True: descending).
SORT_COLUMNS: dict[str, bool] = {
    "started": True, "name": False, "task": False, "status": False, "progress": True,
    "device": False, "duration": True, "metric": False, "git": False,
}


class RunCache:
    """Every run the app has seen, and the filtered, sorted view the run table shows.

    Args:
        clock: Returns the current unix time (tests pass a fixed one).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.rows: dict[str, Run] = {}
        self.last: dict[str, dict[str, float]] = {}
        self.spans: dict[str, list[Span]] = {}  # attempts of runs resumed at least once
        self.devices: dict[str, tuple[int, str | None]] = {}  # auto runs: (attempt, device it chose)
        self.since = 0.0  # the largest updated_at a tick has read (rows applied otherwise do not count)
        self.complete = False
        self.filter: RunFilter = parse_filter("")
        self.sort = "started"
        self.descending = True
        self.view: list[str] = []
        self.version = 0
        self._counts: dict[str, int] = {}
        self._live: dict[str, None] = {}
        self._headlines: dict[str, tuple[dict[str, float], str | None]] = {}

    # -- reading ---------------------------------------------------------------------

    def get(self, run_id: str | None) -> Run | None:
        """A run's row, or None."""
        return self.rows.get(run_id) if run_id else None

    def headline(self, run_id: str) -> tuple[str | None, float | None]:
        """The run's headline metric and its last value (None while unknown)."""
        last = self.last.get(run_id)
        if not last:
            return None, None
        # The key depends only on which metrics the run has: kept while its values are the
        # same dict (a tick that reads new values brings a new one).
        known = self._headlines.get(run_id)
        if known is not None and known[0] is last:
            key = known[1]
        else:
            key = present.headline_key(list(last))
            self._headlines[run_id] = (last, key)
        return key, last.get(key) if key else None

    def ran(self, row: Run, now: float) -> float | None:
        """Seconds the run actually ran: its attempts added up, not the time it sat stopped."""
        return ran_seconds(row, self.spans.get(row.id) if row.attempt > 1 else None, now)

    def device(self, row: Run) -> str | None:
        """The device the run trains on: for ``auto``, the one it chose, once known."""
        found = self.devices.get(row.id)
        if row.device == "auto" and found is not None and found[0] == row.attempt and found[1]:
            return found[1]
        return row.device

    def wants_device(self, row: Run) -> bool:
        """Whether the device an ``auto`` run chose is still to be read."""
        if row.device != "auto" or not row.run_dir or row.status is RunStatus.QUEUED:
            return False
        found = self.devices.get(row.id)
        return found is None or found[0] != row.attempt

    def set_devices(self, devices: dict[str, tuple[int, str | None]]) -> None:
        """Record the devices ``auto`` runs chose (a live run not set up yet is asked again)."""
        changed = False
        for run_id, (attempt, device) in devices.items():
            row = self.rows.get(run_id)
            if device is None and row is not None and row.status.is_live:
                continue
            self.devices[run_id] = (attempt, device)
            changed = True
        if changed:
            self.version += 1

    def set_spans(self, spans: dict[str, list[Span]]) -> None:
        """Record runs' attempts (read from their events)."""
        if spans:
            self.spans.update(spans)
            if self.sort == "duration":
                self.rebuild()
            else:
                self.version += 1

    def counts(self) -> dict[str, int]:
        """How many runs have each status (kept up to date as rows change)."""
        return {status: n for status, n in self._counts.items() if n}

    def live_ids(self) -> list[str]:
        """The runs that are queued or running (kept up to date as rows change)."""
        return list(self._live)

    # -- changes ---------------------------------------------------------------------

    def apply(self, rows: Iterable[Run]) -> set[str]:
        """Merge changed rows; rebuild the view when order or membership may have changed.

        Returns:
            The ids of the runs that changed.
        """
        changed: set[str] = set()
        resort = False
        sort_key = self._sort_key()
        for row in rows:
            run_id = row.id
            old = self.rows.get(run_id)
            self.rows[run_id] = row
            self._count(old, -1)
            self._count(row, 1)
            changed.add(run_id)
            if old is None or self.filter.active or sort_key(old) != sort_key(row):
                resort = True
        if changed:
            if resort:
                self.rebuild()
            else:
                self.version += 1
        return changed

    def set_last(self, values: dict[str, dict[str, float]]) -> None:
        """Record runs' last metric values (headline metric, compare rows)."""
        if values:
            self.last.update(values)
            if self.sort == "metric":
                self.rebuild()
            else:
                self.version += 1

    def remove(self, run_id: str) -> None:
        """Forget a deleted run."""
        old = self.rows.pop(run_id, None)
        if old is not None:
            self._count(old, -1)
            self.last.pop(run_id, None)
            self._headlines.pop(run_id, None)
            self.spans.pop(run_id, None)
            self.rebuild()

    def clear(self) -> set[str]:
        """Forget every run (the index was replaced); the next tick reads from the start.

        Returns:
            The ids of the runs forgotten.
        """
        gone = set(self.rows)
        self.rows.clear()
        self.last.clear()
        self._headlines.clear()
        self.spans.clear()
        self.devices.clear()
        self.since = 0.0
        self.complete = False
        self._counts.clear()
        self._live.clear()
        self.rebuild()
        return gone

    def _count(self, row: Run | None, delta: int) -> None:
        if row is None:
            return
        status = row.status
        self._counts[status] = self._counts.get(status, 0) + delta
        if status.is_live:
            if delta > 0:
                self._live[row.id] = None
            else:
                self._live.pop(row.id, None)

    def set_filter(self, text: str) -> RunFilter:
        """Filter the view (see ``workbench/runs/filter.py``); returns the parsed filter."""
        self.filter = parse_filter(text)
        self.rebuild()
        return self.filter

    def set_sort(self, column: str, descending: bool | None = None) -> None:
        """Sort the view by a column (its natural direction unless given)."""
        if column not in SORT_COLUMNS:
            raise ValueError(f"cannot sort by {column!r}")
        self.sort = column
        self.descending = SORT_COLUMNS[column] if descending is None else descending
        self.rebuild()

    def rebuild(self) -> None:
        """Recompute the view from every row."""
        rows = self.rows.values()
        if self.filter.active:
            rows = [r for r in rows if self.filter.matches(r)]
        key = self._sort_key()
        ordered = sorted(rows, key=lambda r: (key(r), r.id), reverse=self.descending)
        self.view = [r.id for r in ordered]
        self.version += 1

    def _sort_key(self) -> Callable[[Run], Any]:
        column = self.sort
        if column == "started":
            return _started
        if column == "status":
            return lambda r: _STATUS_ORDER.get(r.status, 9)
        if column == "progress":
            return lambda r: _none_last(present.percent(r))
        if column == "duration":
            now = self.clock()
            return lambda r: _none_last(self.ran(r, now))
        if column == "metric":
            return lambda r: _none_last(self.headline(r.id)[1])
        if column == "device":
            return lambda r: (self.device(r) or "", r.backend or "")
        if column == "git":
            return lambda r: r.git_head or ""
        return lambda r: str(getattr(r, column, None) or "").lower()


@dataclass
class SeriesData:
    """A curve as the app holds it: downsampled at first look, then extended.

    ``points`` is the curve; :meth:`xy` the same points as an array for drawing, made once per
    version and extended in place of being made again when a tick only appends points.
    """

    points: list[tuple[float, float]]
    last_step: int | None
    width: int
    version: int = 0
    _xy: Any = field(default=None, repr=False, compare=False)
    _xy_version: int = field(default=-1, repr=False, compare=False)

    def xy(self) -> Any:
        """The points as an ``(n, 2)`` float64 numpy array (x, value); do not change it."""
        if self._xy is None or self._xy_version != self.version:
            self._xy = _as_array(self.points)
            self._xy_version = self.version
        return self._xy

    def extend(self, points: list[tuple[float, float]]) -> None:
        """Append points (a tick's tail) and move to the next version."""
        current = self._xy is not None and self._xy_version == self.version
        self.points = self.points + points
        self.version += 1
        if current and points:
            import numpy as np

            self._xy = np.concatenate([self._xy, _as_array(points)])
            self._xy_version = self.version


def _as_array(points: list[tuple[float, float]]) -> Any:
    import numpy as np  # (only once there is a curve: the first paint comes before any)

    return np.fromiter(chain.from_iterable(points), np.float64, 2 * len(points)).reshape(-1, 2)


class SeriesCache:
    """The curves the charts show, and which of them each chart wants."""

    def __init__(self) -> None:
        self.data: dict[SeriesKey, SeriesData] = {}
        self._wants: dict[int, dict[SeriesKey, int]] = {}

    def want(self, owner: object, wanted: dict[SeriesKey, int]) -> bool:
        """Say which curves ``owner`` shows, at which width; True if that needs a read."""
        self._wants[id(owner)] = dict(wanted)
        return any(self._needs_load(s, w) for s, w in wanted.items())

    def drop(self, owner: object) -> None:
        """``owner`` shows nothing any more."""
        self._wants.pop(id(owner), None)

    def wanted(self) -> dict[SeriesKey, int]:
        """Every curve some chart shows, at the widest width asked."""
        out: dict[SeriesKey, int] = {}
        for wants in self._wants.values():
            for series, width in wants.items():
                out[series] = max(width, out.get(series, 0))
        return out

    def _needs_load(self, series: SeriesKey, width: int) -> bool:
        have = self.data.get(series)
        return have is None or width > 2 * have.width

    def plan(self, live: set[str]) -> tuple[list[tuple[SeriesKey, int]], list[tuple[SeriesKey, int | None]]]:
        """This tick's reads: curves to load whole, and curves of live runs to extend."""
        loads, tails = [], []
        for series, width in self.wanted().items():
            if self._needs_load(series, width):
                loads.append((series, width))
            elif series.run_id in live:
                tails.append((series, self.data[series].last_step))
        return loads, tails

    def apply(self, loads: Iterable[SeriesLoad], tails: Iterable[SeriesTail]) -> set[SeriesKey]:
        """Merge what a tick read; returns the curves that changed."""
        changed: set[SeriesKey] = set()
        for load in loads:
            old = self.data.get(load.series)
            version = old.version + 1 if old else 0
            self.data[load.series] = SeriesData(list(load.points), load.last_step, load.width, version)
            changed.add(load.series)
        for tail in tails:
            have = self.data.get(tail.series)
            if have is None or have.last_step != tail.after_step:
                continue  # read against an older state; the next tick asks again
            have.extend(tail.points)
            if len(have.points) > 2 * max(3, have.width):  # thinned back to the chart's width
                have.points = thin(have.points, have.xy(), max(3, have.width), tail.series.x)
                have.version += 1
            have.last_step = tail.last_step
            changed.add(tail.series)
        return changed

    def forget_run(self, run_id: str) -> None:
        """Drop a deleted run's curves."""
        for series in [s for s in self.data if s.run_id == run_id]:
            del self.data[series]


@dataclass
class _Log:
    offset: int = -1
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=2000))
    partial: str = ""
    version: int = 0
    total: int = 0


class LogCache:
    """The last lines of the logs some widget shows."""

    def __init__(self) -> None:
        self.logs: dict[str, _Log] = {}
        self._paths: dict[str, str] = {}
        self._wants: dict[int, set[str]] = {}

    def want(self, owner: object, run_ids: Iterable[str], paths: dict[str, str]) -> None:
        """Say which runs' logs ``owner`` shows (``paths``: run id → output.log)."""
        self._wants[id(owner)] = set(run_ids)
        self._paths.update(paths)

    def drop(self, owner: object) -> None:
        """``owner`` shows no log any more."""
        self._wants.pop(id(owner), None)

    def plan(self) -> list[tuple[str, str, int]]:
        """This tick's reads: ``(run_id, path, offset)``."""
        ids = set().union(*self._wants.values()) if self._wants else set()
        return [(i, self._paths[i], self.logs[i].offset if i in self.logs else -1)
                for i in sorted(ids) if i in self._paths]

    def apply(self, chunks: Iterable[LogChunk]) -> set[str]:
        """Merge what a tick read; returns the runs whose logs changed."""
        changed = set()
        for chunk in chunks:
            log = self.logs.setdefault(chunk.run_id, _Log())
            if chunk.offset != max(0, log.offset):
                continue  # an answer to an older request
            text = log.partial + chunk.text
            parts = text.split("\n")
            log.partial = parts.pop()
            log.lines.extend(line.rstrip("\r").rsplit("\r", 1)[-1] for line in parts)
            log.total += len(parts)
            log.offset = chunk.next_offset
            log.version += 1
            changed.add(chunk.run_id)
        return changed

    def lines(self, run_id: str) -> list[str]:
        """The run's lines read so far (a line still being written included)."""
        log = self.logs.get(run_id)
        if log is None:
            return []
        return list(log.lines) + ([log.partial] if log.partial else [])

    def new_lines(self, run_id: str, seen: int) -> tuple[list[str], int]:
        """Complete lines after the first ``seen`` ones, and how many there are in all."""
        log = self.logs.get(run_id)
        if log is None:
            return [], 0
        count = min(len(log.lines), log.total - seen)
        return (list(log.lines)[-count:] if count > 0 else []), log.total

    def version(self, run_id: str) -> int:
        """Changes whenever the run's lines change."""
        log = self.logs.get(run_id)
        return -1 if log is None else log.version


@dataclass
class Changes:
    """What one tick changed, handed down to the screen on top."""

    runs: set[str] = field(default_factory=set)
    series: set[SeriesKey] = field(default_factory=set)
    logs: set[str] = field(default_factory=set)
    last: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
