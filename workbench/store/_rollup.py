"""Metric points and their multi-level summaries ("rollup"), kept in step with each other.

A chart of a million-point series needs a few hundred points that keep the spikes: the
minimum, maximum and last point of each of a few hundred buckets. Computing that from the
points means reading all of them (here about 0.1 s per million rows just to count them), so
writes keep summaries instead: ``metrics_rollup`` holds, for each series and each level
``L`` (1..10), one row per block of ``2 ** SHIFTS[L-1]`` steps (64, 512, 4096, ... steps),
with the block's point count, last point, and the points holding its minimum and maximum
(NaN values are skipped for min and max). A query picks the coarsest level whose blocks are
narrower than its buckets, reads at most about 8 rows per bucket, and merges them.

Summaries are merged incrementally when a batch only appends steps beyond the series'
last one (the normal case), and rebuilt exactly from the points of the affected range
otherwise (a step logged again, out of order, or points set aside on resume).
"""

from __future__ import annotations

import math
import sqlite3
from bisect import bisect_left
from collections.abc import Sequence
from itertools import chain
from operator import itemgetter, lt

__all__ = [
    "SHIFTS",
    "downsample",
    "group_rows",
    "rebuild",
    "rebuild_series",
    "series",
    "upsert_points",
    "write_points",
]

#: Block width of each level as a power of two: level 1 blocks hold 64 steps, and each
#: level's blocks are 8 times wider than the one below.
SHIFTS = (6, 9, 12, 15, 18, 21, 24, 27, 30, 33)

_ON_CONFLICT = (
    " ON CONFLICT (run_id, key, step) DO UPDATE SET value = excluded.value,"
    " wall_time = excluded.wall_time, attempt = excluded.attempt"
)
_INSERT_POINTS = "INSERT INTO metrics (run_id, key, step, value, wall_time, attempt) VALUES "
UPSERT_POINT = _INSERT_POINTS + "(?, ?, ?, ?, ?, ?)" + _ON_CONFLICT

# Points go in 128 to a statement: about half the cost per point of one statement per
# point, and the thread gives the GIL up (around each sqlite3_step) 128 times less often,
# which matters when the training loop wants it back. 128 * 6 parameters stay below the
# 999 that old SQLite builds allow.
_CHUNK = 128
_UPSERT_CHUNK = _INSERT_POINTS + ", ".join(["(?, ?, ?, ?, ?, ?)"] * _CHUNK) + _ON_CONFLICT

_SUMMARY_COLUMNS = (
    "block, n, last_step, last_value, last_time, min_step, min_value, min_time,"
    " max_step, max_value, max_time"
)
_INSERT_SUMMARY = (
    f"INSERT INTO metrics_rollup (run_id, key, level, {_SUMMARY_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# In SQLite's UPDATE every right-hand side reads the row as it was, so the CASEs compare
# against the old values. Ties keep the earlier point, as a rebuild does.
_MERGE_SUMMARY = (
    _INSERT_SUMMARY
    + " ON CONFLICT (run_id, key, level, block) DO UPDATE SET n = n + excluded.n,"
    " last_step = CASE WHEN excluded.last_step >= last_step THEN excluded.last_step ELSE last_step END,"
    " last_value = CASE WHEN excluded.last_step >= last_step THEN excluded.last_value ELSE last_value END,"
    " last_time = CASE WHEN excluded.last_step >= last_step THEN excluded.last_time ELSE last_time END,"
    " min_step = CASE WHEN excluded.min_value < min_value OR min_value IS NULL THEN excluded.min_step ELSE min_step END,"
    " min_time = CASE WHEN excluded.min_value < min_value OR min_value IS NULL THEN excluded.min_time ELSE min_time END,"
    " min_value = CASE WHEN excluded.min_value < min_value OR min_value IS NULL THEN excluded.min_value ELSE min_value END,"
    " max_step = CASE WHEN excluded.max_value > max_value OR max_value IS NULL THEN excluded.max_step ELSE max_step END,"
    " max_time = CASE WHEN excluded.max_value > max_value OR max_value IS NULL THEN excluded.max_time ELSE max_time END,"
    " max_value = CASE WHEN excluded.max_value > max_value OR max_value IS NULL THEN excluded.max_value ELSE max_value END"
)

# A summary is a tuple laid out as _SUMMARY_COLUMNS.
_BLOCK, _N, _LAST_STEP, _LAST_VALUE, _LAST_TIME = 0, 1, 2, 3, 4
_MIN_STEP, _MIN_VALUE, _MIN_TIME, _MAX_STEP, _MAX_VALUE, _MAX_TIME = 5, 6, 7, 8, 9, 10

_KEY, _STEP, _VALUE, _TIME = itemgetter(1), itemgetter(2), itemgetter(3), itemgetter(4)


def _is_number(value: float | None) -> bool:
    return value is not None and value == value


def _summarise_points(
    steps: Sequence[int], values: Sequence[float | None], times: Sequence[float | None], shift: int
) -> list[tuple]:
    """Summarise points sorted by strictly increasing step into blocks of ``2**shift``."""
    out = []
    count = len(steps)
    i = 0
    while i < count:
        block = steps[i] >> shift
        j = bisect_left(steps, (block + 1) << shift, i)
        seg = values[i:j]
        try:
            low, high = min(seg), max(seg)
            clean = sum(seg) == sum(seg)  # False when a NaN (or inf - inf) is in seg
        except TypeError:  # a None (NaN read back from SQLite)
            clean = False
        if clean:
            k_low, k_high = i + seg.index(low), i + seg.index(high)
        else:
            numbers = [k for k in range(i, j) if _is_number(values[k])]
            if numbers:
                k_low = min(numbers, key=values.__getitem__)
                k_high = max(numbers, key=values.__getitem__)
            else:
                k_low = k_high = None
        last = j - 1
        out.append(
            (
                block, j - i, steps[last], values[last], times[last],
                None if k_low is None else steps[k_low],
                None if k_low is None else values[k_low],
                None if k_low is None else times[k_low],
                None if k_high is None else steps[k_high],
                None if k_high is None else values[k_high],
                None if k_high is None else times[k_high],
            )
        )
        i = j
    return out


def _combine(a: tuple, b: tuple, block: int) -> tuple:
    """Merge two summaries; ``b`` holds later steps than ``a``."""
    if b[_MIN_VALUE] is not None and (a[_MIN_VALUE] is None or b[_MIN_VALUE] < a[_MIN_VALUE]):
        low = b[_MIN_STEP : _MIN_TIME + 1]
    else:
        low = a[_MIN_STEP : _MIN_TIME + 1]
    if b[_MAX_VALUE] is not None and (a[_MAX_VALUE] is None or b[_MAX_VALUE] > a[_MAX_VALUE]):
        high = b[_MAX_STEP : _MAX_TIME + 1]
    else:
        high = a[_MAX_STEP : _MAX_TIME + 1]
    return (block, a[_N] + b[_N], *b[_LAST_STEP : _LAST_TIME + 1], *low, *high)


def _summarise_blocks(children: list[tuple], shift_up: int = 3) -> list[tuple]:
    """Summarise summaries sorted by block into the next level (blocks ``2**shift_up`` wider)."""
    out: list[tuple] = []
    current = None
    for child in children:
        block = child[_BLOCK] >> shift_up
        if current is not None and current[_BLOCK] == block:
            current = _combine(current, child, block)
        else:
            if current is not None:
                out.append(current)
            current = (block, *child[1:])
    if current is not None:
        out.append(current)
    return out


def _prior_last_step(conn: sqlite3.Connection, run_id: str, key: str) -> int | None:
    (step,) = conn.execute(
        "SELECT max(step) FROM metrics WHERE run_id = ? AND key = ?", (run_id, key)
    ).fetchone()
    return step


def upsert_points(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """Insert points, replacing a step already there; a later row wins over an earlier one.

    Args:
        conn: A connection inside a write transaction.
        rows: ``(run_id, key, step, value, wall_time, attempt)`` tuples.
    """
    full = len(rows) - len(rows) % _CHUNK
    if full:
        conn.executemany(
            _UPSERT_CHUNK,
            (tuple(chain.from_iterable(rows[i : i + _CHUNK])) for i in range(0, full, _CHUNK)),
        )
    if full < len(rows):
        conn.executemany(UPSERT_POINT, rows[full:])


def group_rows(rows: list[tuple]) -> dict[str, list[tuple]]:
    """Split ``(run_id, key, step, value, wall_time, attempt)`` rows by key, keeping order."""
    groups: dict[str, list[tuple]] = {}
    for row in rows:
        key = row[1]
        group = groups.get(key)
        if group is None:
            groups[key] = group = []
        group.append(row)
    return groups


def write_points(conn: sqlite3.Connection, run_id: str, groups: dict[str, list[tuple]]) -> None:
    """Upsert points of one run and bring the rollup up to date, in the open transaction.

    Args:
        conn: A connection inside a write transaction.
        run_id: The run every row belongs to.
        groups: For each key, its ``(run_id, key, step, value, wall_time, attempt)`` rows
            in the order they were logged; when a step appears twice the later row wins.
    """
    merged: list[tuple] = []
    for key, group in groups.items():
        if not group:
            continue
        last = _prior_last_step(conn, run_id, key)
        upsert_points(conn, group)
        steps = list(map(_STEP, group))
        appends = (last is None or steps[0] > last) and all(map(lt, steps, steps[1:]))
        if not appends:
            rebuild(conn, run_id, key, min(steps), max(steps))
            continue
        summaries = _summarise_points(
            steps, list(map(_VALUE, group)), list(map(_TIME, group)), SHIFTS[0]
        )
        for level in range(1, len(SHIFTS) + 1):
            if level > 1:
                summaries = _summarise_blocks(summaries)
            prefix = (run_id, key, level)
            merged.extend([(*prefix, *summary) for summary in summaries])
    conn.executemany(_MERGE_SUMMARY, merged)


def rebuild(conn: sqlite3.Connection, run_id: str, key: str, low: int, high: int) -> None:
    """Recompute the rollup of one series for the blocks that cover steps ``low..high``.

    Reads the points of the level-1 blocks in range, then at each level above the
    summaries of the blocks below, so its cost follows the size of the range, not the
    length of the series.

    Args:
        conn: A connection inside a write transaction.
        run_id: The run.
        key: The metric.
        low: The first step whose summaries may be stale.
        high: The last such step.
    """
    for level, shift in enumerate(SHIFTS, 1):
        first, last = low >> shift, high >> shift
        conn.execute(
            "DELETE FROM metrics_rollup WHERE run_id = ? AND key = ? AND level = ?"
            " AND block BETWEEN ? AND ?",
            (run_id, key, level, first, last),
        )
        if level == 1:
            points = conn.execute(
                "SELECT step, value, wall_time FROM metrics WHERE run_id = ? AND key = ?"
                " AND step BETWEEN ? AND ? ORDER BY step",
                (run_id, key, first << shift, ((last + 1) << shift) - 1),
            ).fetchall()
            steps, values, times = (list(column) for column in zip(*points)) if points else ([], [], [])
            summaries = _summarise_points(steps, values, times, shift)
        else:
            step_down = shift - SHIFTS[level - 2]
            children = conn.execute(
                f"SELECT {_SUMMARY_COLUMNS} FROM metrics_rollup WHERE run_id = ? AND key = ?"
                " AND level = ? AND block BETWEEN ? AND ? ORDER BY block",
                (run_id, key, level - 1, first << step_down, ((last + 1) << step_down) - 1),
            ).fetchall()
            summaries = _summarise_blocks(children, step_down)
        conn.executemany(_INSERT_SUMMARY, [(run_id, key, level, *s) for s in summaries])


def rebuild_series(conn: sqlite3.Connection, run_id: str, key: str | None = None) -> None:
    """Recompute the whole rollup of a run (or one of its series) from its points.

    Args:
        conn: A connection inside a write transaction.
        run_id: The run.
        key: One metric, or every metric of the run when ``None``.
    """
    if key is None:
        conn.execute("DELETE FROM metrics_rollup WHERE run_id = ?", (run_id,))
        keys = [row[0] for row in conn.execute(
            "SELECT DISTINCT key FROM metrics WHERE run_id = ?", (run_id,)
        )]
    else:
        conn.execute("DELETE FROM metrics_rollup WHERE run_id = ? AND key = ?", (run_id, key))
        keys = [key]
    for name in keys:
        (low, high) = conn.execute(
            "SELECT min(step), max(step) FROM metrics WHERE run_id = ? AND key = ?",
            (run_id, name),
        ).fetchone()
        if low is not None:
            rebuild(conn, run_id, name, low, high)


def _value(value: float | None) -> float:
    return math.nan if value is None else value


def series(
    conn: sqlite3.Connection, run_id: str, key: str, max_points: int, axis: str
) -> list[tuple[float, float]]:
    """Read a series downsampled to at most ``max_points`` points (see RunIndex.series)."""
    where = "FROM metrics WHERE run_id = ? AND key = ?"
    raw = conn.execute(
        f"SELECT step, value, wall_time {where} ORDER BY step LIMIT ?",
        (run_id, key, max_points + 1),
    ).fetchall()
    if len(raw) <= max_points:
        points = raw
    else:
        (high,) = conn.execute(f"SELECT max(step) {where}", (run_id, key)).fetchone()
        low = raw[0][0]
        buckets = max_points // 3
        width = (high - low + 1) / buckets
        level = sum(1 for shift in SHIFTS if (1 << shift) <= width)
        summaries = []
        if level > 0:
            summaries = conn.execute(
                f"SELECT {_SUMMARY_COLUMNS} FROM metrics_rollup"
                " WHERE run_id = ? AND key = ? AND level = ? ORDER BY block",
                (run_id, key, level),
            ).fetchall()
        if not summaries:
            # Fewer than 64 steps per bucket (so few points), or points written around
            # the index with plain SQL and never summarised: read the points themselves.
            rows = conn.execute(
                f"SELECT step, value, wall_time {where} ORDER BY step", (run_id, key)
            ).fetchall()
            summaries = [
                (s, 1, s, v, t, *((s, v, t) * 2 if _is_number(v) else (None,) * 6))
                for s, v, t in rows
            ]
        points = _bucket(summaries, buckets, low, high, raw[0][2], axis)
    if axis == "time":
        return sorted((t if t is not None else math.nan, _value(v)) for _, v, t in points)
    return [(s, _value(v)) for s, v, _ in points]


def downsample(points: Sequence[tuple[float, float]], max_points: int, axis: str = "step") -> list[tuple[float, float]]:
    """Downsample points already in memory by the rule :func:`series` applies in the index.

    ``max_points // 3`` buckets of equal width along x, from the first point's x to the
    last's; each keeps its minimum and maximum (NaN skipped) and its last point. A live
    curve that grew since its first look is thinned the same way as one read whole.

    Args:
        points: ``(x, value)`` pairs sorted by x (x a step, or a wall time).
        max_points: At most this many points come back (at least 3).
        axis: ``"step"`` or ``"time"``: which x the points carry.
    """
    if len(points) <= max_points:
        return list(points)
    buckets = max(1, max_points // 3)
    summaries = [
        (i, 1, x, v, x, *((x, v, x) * 2 if _is_number(v) else (None,) * 6))
        for i, (x, v) in enumerate(points)
    ]
    low, high = points[0][0], points[-1][0]
    chosen = _bucket(summaries, buckets, low, high, low, axis)  # type: ignore[arg-type]
    return [(x, _value(v)) for x, v, _ in chosen]


def _bucket(
    summaries: list[tuple], buckets: int, low: int, high: int, first_time: float | None, axis: str
) -> list[tuple]:
    """Keep the min, max and last point of each bucket; return them sorted by step."""
    if axis == "time":
        times = [s[_LAST_TIME] for s in summaries if s[_LAST_TIME] is not None]
        start = first_time if first_time is not None else min(times, default=0.0)
        span = max(max(times, default=start) - start, 1e-9)
        position = _LAST_TIME
    else:
        start, span, position = low, high - low + 1, _LAST_STEP
    chosen: dict[int, tuple] = {}
    for summary in summaries:
        x = summary[position]
        index = 0 if x is None else min(buckets - 1, max(0, int((x - start) * buckets / span)))
        previous = chosen.get(index)
        chosen[index] = summary if previous is None else _combine(previous, summary, index)
    points: dict[int, tuple] = {}
    for s in chosen.values():
        points[s[_LAST_STEP]] = (s[_LAST_STEP], s[_LAST_VALUE], s[_LAST_TIME])
        if s[_MIN_STEP] is not None:
            points[s[_MIN_STEP]] = (s[_MIN_STEP], s[_MIN_VALUE], s[_MIN_TIME])
            points[s[_MAX_STEP]] = (s[_MAX_STEP], s[_MAX_VALUE], s[_MAX_TIME])
    return [points[step] for step in sorted(points)]
