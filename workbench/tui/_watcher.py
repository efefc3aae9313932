"""What one refresh tick reads from the run index, off the event loop.

The app builds a :class:`PollRequest` on its event loop from what the screens show, a
thread worker hands it to :meth:`Watcher.poll`, and the :class:`PollResult` goes back as a
message. Each tick reads only what changed: runs by ``updated_at`` since the last look,
metric points after the last step the app has per series, log bytes after the last offset.
A chart's first look at a series asks the store for it already downsampled to the chart's
width.

This module imports neither textual nor torch: the benchmark and the tests drive it directly.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from workbench.runs import reconcile
from workbench.runs.present import resolved_device
from workbench.store import Run, RunIndex
from workbench.tui._timing import Span, attempt_spans

__all__ = ["LogChunk", "PollRequest", "PollResult", "SeriesKey", "SeriesLoad", "SeriesTail", "Watcher"]

#: At most this many bytes of a log are read on a first look (the tail of the file).
LOG_FIRST_BYTES = 64 * 1024
#: At most this many bytes of a log are read in one tick.
LOG_TICK_BYTES = 256 * 1024


@dataclass(frozen=True)
class SeriesKey:
    """One curve: a run's metric against step or wall time."""

    run_id: str
    key: str
    x: str = "step"


@dataclass(frozen=True)
class SeriesLoad:
    """A series read whole, downsampled by the store to ``width`` points."""

    series: SeriesKey
    width: int
    points: list[tuple[float, float]]
    last_step: int | None


@dataclass(frozen=True)
class SeriesTail:
    """Points logged after ``after_step``, which the app already had."""

    series: SeriesKey
    after_step: int | None
    points: list[tuple[float, float]]
    last_step: int | None


@dataclass(frozen=True)
class LogChunk:
    """Bytes of a run's ``output.log`` from ``offset`` (text decoded) and where to read next."""

    run_id: str
    offset: int
    text: str
    next_offset: int
    truncated: bool = False


@dataclass
class PollRequest:
    """What to read this tick.

    Attributes:
        since: The largest ``updated_at`` seen so far (0 for a first look).
        loads: Series to read whole: ``(series, width)``.
        tails: Series to extend: ``(series, last_step)``.
        last_of: Runs whose last metric values (and keys) to read.
        logs: Logs to read: ``(run_id, path, offset)``; offset -1 for a first look.
        reconcile: Mark runs whose processes are gone as interrupted first.
        spans_of: Runs of more than one attempt whose attempts' spans to read (events).
        devices_of: Runs launched on ``auto`` whose resolved device to read:
            ``(run_id, run_dir, attempt)``.
    """

    since: float = 0.0
    loads: list[tuple[SeriesKey, int]] = field(default_factory=list)
    tails: list[tuple[SeriesKey, int | None]] = field(default_factory=list)
    last_of: list[str] = field(default_factory=list)
    logs: list[tuple[str, str, int]] = field(default_factory=list)
    reconcile: bool = False
    spans_of: list[str] = field(default_factory=list)
    devices_of: list[tuple[str, str, int]] = field(default_factory=list)


@dataclass
class PollResult:
    """What one tick found."""

    runs: list[Run] = field(default_factory=list)
    since: float = 0.0
    last: dict[str, dict[str, float]] = field(default_factory=dict)
    loads: list[SeriesLoad] = field(default_factory=list)
    tails: list[SeriesTail] = field(default_factory=list)
    logs: list[LogChunk] = field(default_factory=list)
    spans: dict[str, list[Span]] = field(default_factory=dict)
    devices: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    seconds: float = 0.0


class Watcher:
    """Reads a tick's worth of changes from a :class:`~workbench.store.RunIndex`.

    Args:
        index: The open run index (its methods take turns on a lock, so a worker thread
            may call them while another reads).
    """

    def __init__(self, index: RunIndex) -> None:
        self.index = index

    def first_page(self, limit: int) -> list[Run]:
        """The newest ``limit`` runs: enough to paint the table before the rest arrive."""
        return self.index.list_runs(limit=limit)

    def poll(self, request: PollRequest) -> PollResult:
        """Read what changed since the last tick (see :class:`PollRequest`)."""
        began = time.perf_counter()
        result = PollResult(since=request.since)
        index = self.index
        if request.reconcile:
            reconcile(index)  # the CLI's rule ($WORKBENCH_STALE_AFTER)
        changed = index.runs_changed_since(request.since)
        if changed:
            result.since = max(request.since, max(r.updated_at for r in changed))
        # Evaluations are shown under their run, not in the run list: a change to one is a
        # change of its run (whose screen lists it).
        result.runs = [r for r in changed if not r.is_evaluation]
        seen = {r.id for r in result.runs}
        for parent_id in dict.fromkeys(r.parent_id for r in changed if r.is_evaluation and r.parent_id):
            parent = index.get_run(parent_id) if parent_id not in seen else None
            if parent is not None:
                result.runs.append(parent)
        if request.last_of:
            result.last = index.last_metrics_of(request.last_of)
        for run_id in dict.fromkeys(request.spans_of):
            result.spans[run_id] = attempt_spans(index.events(run_id))
        for run_id, run_dir, attempt in request.devices_of:
            result.devices[run_id] = (attempt, resolved_device(Path(run_dir)))
        for series, width in request.loads:
            points = index.series(series.run_id, series.key, max_points=max(3, width), x=series.x)
            if series.x == "step":
                last = int(points[-1][0]) if points else None
            else:
                steps = index.series(series.run_id, series.key, max_points=3)
                last = int(steps[-1][0]) if steps else None
            result.loads.append(SeriesLoad(series, width, points, last))
        by_run: dict[str, list[tuple[SeriesKey, int | None]]] = {}
        for series, last in request.tails:
            by_run.setdefault(series.run_id, []).append((series, last))
        for run_id, wanted in by_run.items():
            after = {s.key: (-(2**63) if last is None else last) for s, last in wanted}
            new = index.metrics_after(run_id, after_step=after, keys=list(after))
            for series, last in wanted:
                rows = new.get(series.key, [])
                if not rows:
                    continue
                if series.x == "step":
                    points = [(float(s), v) for s, v, _ in rows]
                else:
                    points = [(t, v) for _, v, t in rows]
                result.tails.append(SeriesTail(series, last, points, int(rows[-1][0])))
        for run_id, path, offset in request.logs:
            chunk = read_log(run_id, Path(path), offset)
            if chunk is not None:
                result.logs.append(chunk)
        result.seconds = time.perf_counter() - began
        return result


def read_log(run_id: str, path: Path, offset: int) -> LogChunk | None:
    """Read a log's new bytes; on a first look (``offset < 0``) only its last 64 KiB.

    A line the run is still writing is left for the next tick (unless the chunk holds no
    newline at all), so a multi-byte character is never cut in two.

    Returns:
        The chunk, or None when there is nothing new (or no file yet).
    """
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    first = offset < 0 or offset > size  # a first look, or the file was replaced
    start = max(0, size - LOG_FIRST_BYTES) if first else offset
    if start >= size and not first:
        return None
    end = min(size, start + LOG_TICK_BYTES)
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    truncated = first and start > 0
    if truncated:  # drop the partial first line
        newline = data.find(b"\n")
        if newline >= 0:
            data = data[newline + 1:]
            start += newline + 1
    newline = data.rfind(b"\n")
    if newline >= 0:
        data = data[: newline + 1]
    text = data.decode("utf-8", "replace")
    return LogChunk(run_id, max(0, offset), text, start + len(data), truncated)
