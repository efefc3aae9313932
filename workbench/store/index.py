"""The run index: one SQLite file that every workbench process reads and writes.

See ``docs/run-index.md`` for the tables. A :class:`RunIndex` owns one connection; its
methods may be called from several threads (they take turns on a lock). Each process opens
its own: a connection must not cross a ``fork``.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from workbench.store import _rollup
from workbench.store._db import connect, enable_wal, immediate, update_time
from workbench.store._process import current_host, pid_alive
from workbench.store._schema import MIGRATIONS, RUN_COLUMNS, STATUSES
from workbench.store.errors import (
    AmbiguousRun,
    InvalidValue,
    RunNotFound,
    StoreError,
    UnknownField,
)
from workbench.store.ids import new_run_id

__all__ = ["INTERRUPTED_ERROR", "RunIndex", "open_index"]

#: The error recorded on a run that :meth:`RunIndex.reconcile` marks interrupted.
INTERRUPTED_ERROR = (
    "the run's processes are gone (machine crash or kill -9); resume it to continue"
)

_JSON_COLUMNS = ("config", "tags")
_ARTIFACT_FIELDS = ("path", "size", "kind", "created_at")
_LOWEST_STEP = -(2**63)
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


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _decode_run(row: dict[str, Any]) -> dict[str, Any]:
    for column in _JSON_COLUMNS:
        if row.get(column) is not None:
            row[column] = json.loads(row[column])
    if row.get("git_dirty") is not None:
        row["git_dirty"] = bool(row["git_dirty"])
    return row


def _encode_run_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(RUN_COLUMNS))
    if unknown:
        raise UnknownField(
            f"runs has no column {', '.join(unknown)}; known: {', '.join(RUN_COLUMNS)}"
        )
    out = dict(fields)
    if "status" in out and out["status"] not in STATUSES:
        raise InvalidValue(f"unknown run status {out['status']!r}; one of {', '.join(STATUSES)}")
    if out.get("config") is not None:
        out["config"] = json.dumps(out["config"])
    if out.get("tags") is not None:
        tags = out["tags"]
        out["tags"] = json.dumps([tags] if isinstance(tags, str) else list(tags))
    if out.get("git_dirty") is not None:
        out["git_dirty"] = int(bool(out["git_dirty"]))
    return out


def _check_artifact_path(path: str) -> str:
    text = str(path).replace("\\", "/")
    pure = PurePosixPath(text)
    if not text or pure.is_absolute() or ".." in pure.parts or text.startswith("~"):
        raise InvalidValue(f"artifact path {path!r} must be relative to the run folder")
    return str(pure)


class RunIndex:
    """The run index of one project (``<project>/.workbench/index.db``).

    Opening applies pending migrations; a file written by a newer workbench is refused
    and left as it was.

    Args:
        path: The database file; its folder is made if missing.
        memory: Use a private in-memory database instead (for tests).

    Raises:
        SchemaTooNew: The file was written by a newer workbench.
        StoreError: The file is not a SQLite database.

    Example:
        >>> index = RunIndex(memory=True)
        >>> run = index.create_run(task="mnist", config={"lr": 0.1})
        >>> index.resolve_run(run["id"][:6])["task"]
        'mnist'
    """

    def __init__(self, path: str | Path | None = None, *, memory: bool = False) -> None:
        if (path is None) != memory:
            raise ValueError("give RunIndex a path, or memory=True")
        self.path: Path | None = None if memory else Path(path)  # type: ignore[arg-type]
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = open_index(self.path)

    # -- connection and transactions ------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection (autocommit mode; wrap writes in :meth:`write`)."""
        return self._conn

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        with self._lock:
            return MIGRATIONS.current(self._conn)

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """Group writes in one ``BEGIN IMMEDIATE`` transaction.

        The block commits when it ends and rolls back if it raises. Index methods called
        inside join the transaction, so several changes appear to readers at once.

        Yields:
            The connection, for statements of your own (always parameterised).
        """
        with self._lock, immediate(self._conn) as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """Several reads that see one snapshot (joins a write transaction if open)."""
        with self._lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection. The index cannot be used afterwards."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- runs -------------------------------------------------------------------------

    def create_run(self, **fields: Any) -> dict[str, Any]:
        """Add a run.

        Args:
            **fields: Columns of ``runs``. ``id`` defaults to :func:`new_run_id`,
                ``status`` to ``queued``, ``created_at`` to now, ``attempt`` to 1 and
                ``host`` to this machine. ``config`` (a dict) and ``tags`` (a list) are
                stored as JSON.

        Returns:
            The new run, as :meth:`get_run` returns it.

        Raises:
            UnknownField: A field is not a column.
            InvalidValue: A bad status, or the name or id is taken.
        """
        row = _encode_run_fields(fields)
        row.setdefault("status", "queued")
        row.setdefault("created_at", time.time())
        row.setdefault("attempt", 1)
        row.setdefault("host", current_host())
        given_id = "id" in row
        for _ in range(5):
            if not given_id:
                row["id"] = new_run_id()
            try:
                with self.write() as conn:
                    row["updated_at"] = update_time(conn)
                    names = ", ".join(row)
                    marks = ", ".join("?" * len(row))
                    conn.execute(f"INSERT INTO runs ({names}) VALUES ({marks})", list(row.values()))
                break
            except sqlite3.IntegrityError as exc:
                if "runs.name" in str(exc):
                    raise InvalidValue(f"a run named {row['name']!r} already exists") from exc
                if "runs.id" not in str(exc) or given_id:
                    raise InvalidValue(f"cannot add run: {exc}") from exc
        run = self.get_run(row["id"])
        assert run is not None
        return run

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Change columns of a run; ``updated_at`` moves forward.

        Args:
            run_id: The run's id.
            **fields: Columns and their new values (``config`` and ``tags`` as Python
                values).

        Raises:
            UnknownField: A field is not a column.
            InvalidValue: A bad status, a taken name, or an attempt to change ``id``.
            RunNotFound: No run has this id.
        """
        values = _encode_run_fields(fields)
        if "id" in values:
            raise InvalidValue("a run's id cannot change")
        values.pop("updated_at", None)
        with self.write() as conn:
            values["updated_at"] = update_time(conn)
            assignments = ", ".join(f"{name} = ?" for name in values)
            try:
                cursor = conn.execute(
                    f"UPDATE runs SET {assignments} WHERE id = ?", [*values.values(), run_id]
                )
            except sqlite3.IntegrityError as exc:
                raise InvalidValue(f"cannot update run {run_id}: {exc}") from exc
            if cursor.rowcount == 0:
                raise RunNotFound(run_id)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """Read one run by its exact id.

        Args:
            run_id: The id.

        Returns:
            The run's columns (config and tags decoded, git_dirty a bool), or ``None``.
        """
        with self._lock:
            rows = _dicts(self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)))
        return _decode_run(rows[0]) if rows else None

    def resolve_run(self, ref: str) -> dict[str, Any]:
        """Find the run a user means: an id, a run name, or a unique prefix of an id.

        An exact id wins over a name, and a name over an id prefix.

        Args:
            ref: What the user typed.

        Returns:
            The run.

        Raises:
            RunNotFound: Nothing matches.
            AmbiguousRun: The prefix matches several ids.
        """
        ref = ref.strip()
        if not ref:
            raise RunNotFound(ref)
        lowered = ref.lower()
        with self._read() as conn:
            for sql, value in (
                ("SELECT * FROM runs WHERE id = ?", lowered),
                ("SELECT * FROM runs WHERE name = ?", ref),
            ):
                rows = _dicts(conn.execute(sql, (value,)))
                if rows:
                    return _decode_run(rows[0])
            # ids use only [0-9a-z], all below "~": the range is the prefix's ids.
            rows = _dicts(conn.execute(
                "SELECT * FROM runs WHERE id >= ? AND id < ? ORDER BY id DESC LIMIT 50",
                (lowered, lowered + "~"),
            ))
        if not rows:
            raise RunNotFound(ref)
        if len(rows) > 1:
            raise AmbiguousRun(ref, [row["id"] for row in rows])
        return _decode_run(rows[0])

    def list_runs(
        self,
        status: str | Iterable[str] | None = None,
        task: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """List runs, newest first.

        Args:
            status: Keep runs with this status (or any of these statuses).
            task: Keep runs of this task.
            limit: At most this many.

        Returns:
            The runs.
        """
        clauses, params = [], []
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
        if task is not None:
            clauses.append("task = ?")
            params.append(task)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM runs{where} ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            return [_decode_run(row) for row in _dicts(self._conn.execute(sql, params))]

    def run_names(self) -> set[str]:
        """The names every run has, read without decoding whole rows (launches check them)."""
        with self._lock:
            return {name for (name,) in self._conn.execute("SELECT name FROM runs WHERE name IS NOT NULL")}

    def run_ids(self) -> set[str]:
        """Every run's id."""
        with self._lock:
            return {run_id for (run_id,) in self._conn.execute("SELECT id FROM runs")}

    def runs_changed_since(self, since: float) -> list[dict[str, Any]]:
        """Runs whose row changed after ``since`` (created, updated or heartbeat).

        ``updated_at`` values increase strictly in commit order, so a poller that passes
        the largest ``updated_at`` it has seen misses nothing. Deleted runs are not
        reported.

        Args:
            since: An ``updated_at`` value (unix seconds); 0 for every run.

        Returns:
            The runs, oldest change first.
        """
        with self._lock:
            rows = _dicts(self._conn.execute(
                "SELECT * FROM runs WHERE updated_at > ? ORDER BY updated_at", (since,)
            ))
        return [_decode_run(row) for row in rows]

    def delete_run(self, run_id: str) -> bool:
        """Delete a run with its metrics, set-aside points, events and artifacts rows.

        The run's folder on disk is left alone.

        Args:
            run_id: The run's id.

        Returns:
            Whether the run existed.
        """
        with self.write() as conn:
            for table in ("metrics", "metrics_aside", "metrics_rollup", "events", "artifacts"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            return conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0

    # -- events -----------------------------------------------------------------------

    def add_event(
        self, run_id: str, kind: str, message: str = "", data: Any = None
    ) -> int:
        """Record a lifecycle event (``launched``, ``started``, ``checkpoint``, ...).

        Args:
            run_id: The run.
            kind: The kind of event.
            message: One line for people.
            data: Anything JSON can hold.

        Returns:
            The event's id.
        """
        if not kind:
            raise InvalidValue("an event needs a kind")
        encoded = None if data is None else json.dumps(data)
        with self.write() as conn:
            cursor = conn.execute(
                "INSERT INTO events (run_id, time, kind, message, data) VALUES (?, ?, ?, ?, ?)",
                (run_id, time.time(), kind, message, encoded),
            )
            return int(cursor.lastrowid or 0)

    def events(self, run_id: str) -> list[dict[str, Any]]:
        """A run's events in the order they happened.

        Args:
            run_id: The run.

        Returns:
            Dicts with ``id, run_id, time, kind, message, data`` (data decoded).
        """
        with self._lock:
            rows = _dicts(self._conn.execute(
                "SELECT * FROM events WHERE run_id = ? ORDER BY time, id", (run_id,)
            ))
        for row in rows:
            if row["data"] is not None:
                row["data"] = json.loads(row["data"])
        return rows

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
        out = {}
        with self._read() as conn:
            for key in self.metric_keys(run_id):
                row = conn.execute(
                    "SELECT value FROM metrics WHERE run_id = ? AND key = ?"
                    " ORDER BY step DESC LIMIT 1",
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
        """Move a run's points logged after ``step`` into ``metrics_aside``.

        Used when an attempt resumes from a checkpoint at ``step``: the new attempt logs
        those steps again, and the old points stay for comparison.

        Args:
            run_id: The run.
            step: The checkpoint's step; points with a larger step move.

        Returns:
            How many points moved.
        """
        moved = 0
        with self.write() as conn:
            now = time.time()
            for key in self.metric_keys(run_id):
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
            return _dicts(self._conn.execute(sql + " ORDER BY key, attempt, step", params))

    def rebuild_summaries(self, run_id: str, key: str | None = None) -> None:
        """Recompute the chart summaries of a run from its points.

        Only needed if points were written around this class (with plain SQL).

        Args:
            run_id: The run.
            key: One metric, or all of the run's.
        """
        with self.write() as conn:
            _rollup.rebuild_series(conn, run_id, key)

    # -- artifacts --------------------------------------------------------------------

    def add_artifacts(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Record files of a run's folder; a path already recorded is updated.

        Args:
            run_id: The run.
            rows: Mappings with ``path`` (relative to the run folder) and optionally
                ``size``, ``kind`` and ``created_at`` (default now).

        Raises:
            UnknownField: A mapping has another key.
            InvalidValue: A path is absolute or leaves the run folder.
        """
        values = []
        for row in rows:
            unknown = sorted(set(row) - set(_ARTIFACT_FIELDS))
            if unknown:
                raise UnknownField(f"artifacts has no column {', '.join(unknown)}")
            values.append((
                run_id, _check_artifact_path(row["path"]), row.get("size"), row.get("kind"),
                row.get("created_at", time.time()),
            ))
        with self.write() as conn:
            conn.executemany(
                "INSERT INTO artifacts (run_id, path, size, kind, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, path) DO UPDATE SET"
                " size = excluded.size, kind = excluded.kind, created_at = excluded.created_at",
                values,
            )

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        """A run's recorded files.

        Args:
            run_id: The run.

        Returns:
            Dicts with ``path, size, kind, created_at``, sorted by path.
        """
        with self._lock:
            return _dicts(self._conn.execute(
                "SELECT path, size, kind, created_at FROM artifacts WHERE run_id = ?"
                " ORDER BY path",
                (run_id,),
            ))

    # -- liveness ---------------------------------------------------------------------

    def reconcile(self, stale_after: float = 15.0) -> list[str]:
        """Mark interrupted the runs of this machine whose processes are gone.

        A ``running`` or ``queued`` run qualifies when its heartbeat (or start, or
        creation) is older than ``stale_after`` seconds and its supervisor process (or,
        without one, its training process) is not alive here. Runs of other hosts are
        left alone. When nothing is stale this is one indexed query.

        Args:
            stale_after: Seconds without a heartbeat before a run is suspect.

        Returns:
            The ids of the runs it marked.
        """
        cutoff = time.time() - stale_after
        stale_sql = (
            "status IN ('running', 'queued')"
            " AND coalesce(heartbeat_at, started_at, created_at) < ?"
        )
        with self._lock:
            suspects = _dicts(self._conn.execute(
                "SELECT id, host, supervisor_pid, supervisor_create_time, pid FROM runs"
                f" WHERE {stale_sql}",
                (cutoff,),
            ))
        if not suspects:
            return []
        host = current_host()
        dead = []
        for run in suspects:
            if run["host"] not in (None, host):
                continue
            if run["supervisor_pid"] is not None:
                alive = pid_alive(run["supervisor_pid"], run["supervisor_create_time"])
            else:
                alive = pid_alive(run["pid"])
            if not alive:
                dead.append(run["id"])
        changed = []
        if dead:
            with self.write() as conn:
                for run_id in dead:
                    now = time.time()
                    cursor = conn.execute(
                        "UPDATE runs SET status = 'interrupted', ended_at = ?, error = ?,"
                        f" updated_at = ? WHERE id = ? AND {stale_sql}",
                        (now, INTERRUPTED_ERROR, update_time(conn), run_id, cutoff),
                    )
                    if cursor.rowcount:
                        self.add_event(run_id, "interrupted", INTERRUPTED_ERROR)
                        changed.append(run_id)
        return changed


def open_index(path: Path | None) -> sqlite3.Connection:
    """Open (or create) an index database and bring its schema up to date.

    Args:
        path: The file, or ``None`` for an in-memory database.

    Returns:
        The connection.

    Raises:
        SchemaTooNew: The file was written by a newer workbench (nothing is written).
        StoreError: The file is not a SQLite database.
    """
    shown = str(path) if path is not None else ":memory:"
    conn = None
    try:
        conn = connect(path)
        MIGRATIONS.check(conn, shown)  # before anything writes to the file
        if path is not None:
            enable_wal(conn)
        if MIGRATIONS.pending(conn):
            MIGRATIONS.apply(conn, shown)
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"cannot open the run index {shown}: {exc}") from exc
        raise
    return conn

