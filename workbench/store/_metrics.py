"""The metric tables: points, set-aside points and chart summaries (a RunIndex mixin)."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from workbench.store import _rollup
from workbench.store.errors import InvalidValue

if TYPE_CHECKING:
    import contextlib
    import threading

__all__ = ["TIME_KEYED_PREFIX", "MetricsTable"]

#: Keys stored against time (their step is milliseconds), not a training step: system
#: metrics sampled by a run's supervisor. Resuming never sets them aside.
TIME_KEYED_PREFIX = "sys/"

_LOWEST_STEP = -(2**63)
_ASIDE_FIELDS = ("key", "step", "value", "wall_time", "attempt", "set_aside_at")
_KEYS_SQL = (
    # A skip-scan over the (run_id, key, step) primary key: one seek per distinct key
    # instead of reading every point of the run.
    "WITH RECURSIVE k(key) AS ("
    " SELECT (SELECT min(key) FROM metrics WHERE run_id = :run)"
    " UNION ALL"
    " SELECT (SELECT min(key) FROM metrics WHERE run_id = :run AND key > k.key)"
    " FROM k WHERE k.key IS NOT NULL"
    ") SELECT key FROM k WHERE key IS NOT NULL"
)


def _last_values_sql(runs: int) -> str:
    """``(run_id, key, last value)`` of ``runs`` runs (bound first, then the top rollup level):
    a skip-scan over each run's keys in the rollup, then the newest top-level block of each
    (a scan of the run's rollup rows would read one row per 64 steps)."""
    return (
        "WITH RECURSIVE r(run_id) AS (VALUES " + ", ".join(["(?)"] * runs) + "),"
        " k(run_id, key) AS ("
        " SELECT run_id, (SELECT min(key) FROM metrics_rollup m WHERE m.run_id = r.run_id) FROM r"
        " UNION ALL"
        " SELECT run_id, (SELECT min(key) FROM metrics_rollup m WHERE m.run_id = k.run_id AND m.key > k.key)"
        " FROM k WHERE k.key IS NOT NULL"
        ") SELECT run_id, key, (SELECT last_value FROM metrics_rollup m WHERE m.run_id = k.run_id"
        " AND m.key = k.key AND m.level = ? ORDER BY block DESC LIMIT 1) FROM k WHERE key IS NOT NULL"
    )


class MetricsTable:
    """Methods of :class:`~workbench.store.RunIndex` over the metric tables."""

    _conn: sqlite3.Connection
    _lock: threading.RLock

    if TYPE_CHECKING:
        def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...
        def _read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...

    # -- metrics ----------------------------------------------------------------------

    def add_metrics(
        self, run_id: str, points: Iterable[tuple[Any, ...]], attempt: int = 1
    ) -> None:
        """Write metric points now, in one transaction (the training loop uses MetricWriter).

        Args:
            run_id: The run.
            points: ``(key, value, step)`` or ``(key, value, step, wall_time)`` tuples.
            attempt: The attempt that logged them.
        """
        now = time.time()
        rows = []
        for point in points:
            key, value, step = point[0], point[1], point[2]
            wall_time = point[3] if len(point) > 3 else now
            rows.append((run_id, str(key), int(step), float(value), float(wall_time), attempt))
        if rows:
            with self.write() as conn:
                _rollup.write_points(conn, run_id, _rollup.group_rows(rows))

    def metric_keys(self, run_id: str) -> list[str]:
        """The metrics a run has logged, sorted.

        Args:
            run_id: The run.

        Returns:
            The keys.
        """
        with self._lock:
            return [row[0] for row in self._conn.execute(_KEYS_SQL, {"run": run_id})]

    def last_metrics(self, run_id: str) -> dict[str, float]:
        """The value at the highest step of each of a run's metrics.

        Args:
            run_id: The run.

        Returns:
            ``{key: value}`` (NaN for a NaN value).
        """
        return self.last_metrics_of([run_id])[run_id]

    def last_metrics_of(self, run_ids: Iterable[str]) -> dict[str, dict[str, float]]:
        """:meth:`last_metrics` of several runs at once: one query for all of them.

        The last point of each series is kept in its chart summary's top level (one row per
        series there, for steps below 2**33), so this seeks each run's keys in the summaries
        and reads one row per series: one query for every live run of the app's tick.

        Args:
            run_ids: The runs.

        Returns:
            ``{run_id: {key: value}}`` with every run asked for (``{}`` for one with no metric).
        """
        ids = list(dict.fromkeys(run_ids))
        out: dict[str, dict[str, float]] = {run_id: {} for run_id in ids}
        with self._read() as conn:
            for first in range(0, len(ids), 400):
                chunk = ids[first:first + 400]
                for run_id, key, value in conn.execute(_last_values_sql(len(chunk)), (*chunk, len(_rollup.SHIFTS))):
                    out[run_id][key] = math.nan if value is None else value
            for run_id in ids:
                if not out[run_id]:  # no summaries: no points, or points written around the index
                    out[run_id] = self._last_from_points(conn, run_id)
        return out

    def _last_from_points(self, conn: sqlite3.Connection, run_id: str) -> dict[str, float]:
        out = {}
        for key in self.metric_keys(run_id):
            row = conn.execute(
                "SELECT value FROM metrics WHERE run_id = ? AND key = ? ORDER BY step DESC LIMIT 1",
                (run_id, key),
            ).fetchone()
            out[key] = math.nan if row[0] is None else row[0]
        return out

    def metrics_after(
        self,
        run_id: str,
        after_step: Mapping[str, int] | int = -1,
        keys: Iterable[str] | None = None,
    ) -> dict[str, list[tuple[int, float, float]]]:
        """Points logged after the ones a poller already has.

        Args:
            run_id: The run.
            after_step: The last step already seen: one for all keys, or one per key (a
                key missing from the mapping gets all its points).
            keys: Only these metrics (default: all).

        Returns:
            ``{key: [(step, value, wall_time), ...]}`` sorted by step, for keys with new
            points only.
        """
        out: dict[str, list[tuple[int, float, float]]] = {}
        with self._read() as conn:
            for key in list(keys) if keys is not None else self.metric_keys(run_id):
                if isinstance(after_step, Mapping):
                    after = after_step.get(key, _LOWEST_STEP)
                else:
                    after = after_step
                rows = conn.execute(
                    "SELECT step, value, wall_time FROM metrics WHERE run_id = ? AND key = ?"
                    " AND step > ? ORDER BY step",
                    (run_id, key, after),
                ).fetchall()
                if rows:
                    out[key] = [(s, math.nan if v is None else v, t) for s, v, t in rows]
        return out

    def step_span(self, run_id: str, key: str, upto: int) -> tuple[int, int | None, int | None]:
        """How many points a series has at or before step ``upto``, and their first and last step.

        Args:
            run_id: The run.
            key: The metric.
            upto: The last step counted.

        Returns:
            ``(count, first_step, last_step)`` (the steps are None without points).
        """
        with self._lock:
            count, first, last = self._conn.execute(
                "SELECT count(*), min(step), max(step) FROM metrics WHERE run_id = ? AND key = ? AND step <= ?",
                (run_id, key, upto),
            ).fetchone()
        return int(count), first, last

    def points(self, run_id: str, key: str) -> list[tuple[int, float, float]]:
        """A whole series, not downsampled.

        Args:
            run_id: The run.
            key: The metric.

        Returns:
            ``[(step, value, wall_time), ...]`` sorted by step.
        """
        return self.metrics_after(run_id, _LOWEST_STEP, [key]).get(key, [])

    def series(
        self, run_id: str, key: str, max_points: int = 1000, x: str = "step"
    ) -> list[tuple[float, float]]:
        """A series downsampled for a chart, keeping its spikes.

        Up to ``max_points`` points come back as they are. A longer series is cut into
        ``max_points // 3`` buckets along the step range, and each bucket keeps its
        minimum, maximum and last point. The work is done from summaries kept at write
        time: a million-point series costs a few thousand rows, not a million.

        Args:
            run_id: The run.
            key: The metric.
            max_points: The most points to return (at least 3).
            x: ``"step"`` for ``(step, value)`` points, or ``"time"`` for
                ``(wall_time, value)`` points bucketed along time.

        Returns:
            At most ``max_points`` ``(x, value)`` pairs sorted by x.
        """
        if x not in ("step", "time"):
            raise InvalidValue(f"x must be 'step' or 'time', not {x!r}")
        if max_points < 3:
            raise InvalidValue("a downsampled series needs max_points >= 3")
        with self._read() as conn:
            return _rollup.series(conn, run_id, key, max_points, x)

    def set_aside_after(self, run_id: str, step: int) -> int:
        """Move a run's points logged after ``step`` into ``metrics_aside``; copy the ones
        logged at ``step`` there too.

        Used when an attempt resumes from a checkpoint at ``step``: the new attempt logs
        the later steps again, and the old points stay for comparison. Points *at* the
        checkpoint's step stay on the curve (most are not logged again), but a copy is
        kept: one that the new attempt does log again (a validation the stop interrupted)
        is then compared too instead of silently overwritten.

        Args:
            run_id: The run.
            step: The checkpoint's step; points with a larger step move.

        Returns:
            How many points moved (the copies are not counted).
        """
        moved = 0
        with self.write() as conn:
            now = time.time()
            conn.execute(
                "INSERT OR REPLACE INTO metrics_aside"
                " (run_id, key, step, value, wall_time, attempt, set_aside_at)"
                " SELECT run_id, key, step, value, wall_time, attempt, ? FROM metrics"
                " WHERE run_id = ? AND step = ? AND key NOT LIKE ?",
                (now, run_id, step, TIME_KEYED_PREFIX + "%"),
            )
            for key in self.metric_keys(run_id):
                if key.startswith(TIME_KEYED_PREFIX):
                    continue  # system metrics are keyed by time, not by a training step
                (last,) = conn.execute(
                    "SELECT max(step) FROM metrics WHERE run_id = ? AND key = ?", (run_id, key)
                ).fetchone()
                if last is None or last <= step:
                    continue
                conn.execute(
                    "INSERT OR REPLACE INTO metrics_aside"
                    " (run_id, key, step, value, wall_time, attempt, set_aside_at)"
                    " SELECT run_id, key, step, value, wall_time, attempt, ? FROM metrics"
                    " WHERE run_id = ? AND key = ? AND step > ?",
                    (now, run_id, key, step),
                )
                moved += conn.execute(
                    "DELETE FROM metrics WHERE run_id = ? AND key = ? AND step > ?",
                    (run_id, key, step),
                ).rowcount
                _rollup.rebuild(conn, run_id, key, step + 1, last)
        return moved

    def attempt_points(self, run_id: str, attempt: int) -> dict[tuple[str, int], float]:
        """The points on a run's curves that attempt ``attempt`` logged: ``{(key, step): value}``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, step, value FROM metrics WHERE run_id = ? AND attempt = ?", (run_id, attempt)
            ).fetchall()
        return {(key, step): (math.nan if value is None else value) for key, step, value in rows}

    def aside_points(self, run_id: str, key: str | None = None) -> list[dict[str, Any]]:
        """Points set aside by :meth:`set_aside_after`.

        Args:
            run_id: The run.
            key: Only this metric.

        Returns:
            Dicts with ``key, step, value, wall_time, attempt, set_aside_at``, sorted by
            key, attempt and step.
        """
        sql = (
            "SELECT key, step, value, wall_time, attempt, set_aside_at FROM metrics_aside"
            " WHERE run_id = ?"
        )
        params: list[Any] = [run_id]
        if key is not None:
            sql += " AND key = ?"
            params.append(key)
        with self._lock:
            cursor = self._conn.execute(sql + " ORDER BY key, attempt, step", params)
            return [dict(zip(_ASIDE_FIELDS, row)) for row in cursor.fetchall()]

    def rebuild_summaries(self, run_id: str, key: str | None = None) -> None:
        """Recompute the chart summaries of a run from its points.

        Only needed if points were written around this class (with plain SQL).

        Args:
            run_id: The run.
            key: One metric, or all of the run's.
        """
        with self.write() as conn:
            _rollup.rebuild_series(conn, run_id, key)
