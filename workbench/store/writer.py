"""MetricWriter: log metrics from a training loop at the cost of a list append.

``log()`` appends a tuple to an in-memory list and returns. A daemon thread with its own
SQLite connection takes what has piled up every ``flush_interval`` seconds (sooner when
thousands of points wait) and writes it in one ``BEGIN IMMEDIATE`` transaction, together
with the run's progress and heartbeat.

The hot path takes no lock. Points go to one list per key; ``list.append`` is atomic under
the GIL, and the flusher takes the first ``n`` items of a list with ``buf[:n]`` then
``del buf[:n]`` (each atomic, and the lists are never replaced), so an append that races
with it lands either in this batch or in the next, never nowhere.

Each process makes its own writer; a writer must not be used across a ``fork``.
"""

from __future__ import annotations

import atexit
import operator
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workbench.store import _rollup
from workbench.store._db import immediate, update_time
from workbench.store._events import _check_artifact_path
from workbench.store.errors import MetricWriterError, UnknownField
from workbench.store.index import open_index

__all__ = ["MetricWriter"]

LogFunction = Callable[[str, float, int], None]

_LOOK_INTERVAL = 0.02  # seconds between looks at how many points wait
_EARLY_FLUSH = 8192  # points waiting that make the flusher write before its interval


def _make_log(buffers: dict[str, list[tuple]], run_id: str, attempt: int) -> LogFunction:
    # A closure, not a method: no attribute lookups on the hot path. One list per key, so
    # the flusher does not have to sort points out by key.
    setdefault, now = buffers.setdefault, time.time

    def log(key: str, value: float, step: int) -> None:
        try:
            buffer = buffers[key]
        except KeyError:  # a new key, once
            buffer = setdefault(key, [])
        buffer.append((run_id, key, step, float(value), now(), attempt))

    return log


def _closed_log(key: str, value: float, step: int) -> None:
    raise MetricWriterError("this MetricWriter is closed; make a new one to log more")


def _as_step(step: Any) -> int:
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    step = operator.index(step)
    if not -(2**63) <= step < 2**63:
        raise ValueError(f"step {step} is beyond SQLite's 64-bit integers")
    return step


def _clean(rows: list[tuple]) -> tuple[list[tuple], int]:
    """Coerce rows to plain types; return the rows that could be, and how many could not."""
    good, bad = [], 0
    for run_id, key, step, value, wall_time, attempt in rows:
        try:
            good.append((run_id, str(key), _as_step(step), float(value), float(wall_time), attempt))
        except (TypeError, ValueError):
            bad += 1
    return good, bad


class MetricWriter:
    """Buffers metric points in memory and writes them to the run index in the background.

    Usable from any process, with or without a Task. Call :meth:`close` (or use it as a
    context manager); an ``atexit`` hook closes it at a normal interpreter exit anyway, so
    nothing logged is lost unless the process is killed.

    Args:
        db_path: The run index file (``<project>/.workbench/index.db``).
        run_id: The run the points belong to.
        attempt: The run's attempt number, stored with every point.
        flush_interval: Seconds between background writes (a write comes sooner when
            more than 8192 points wait).
        heartbeat_interval: The run's ``heartbeat_at`` is written at least this often.

    Raises:
        SchemaTooNew: The index was written by a newer workbench.

    Example:
        >>> with MetricWriter(".workbench/index.db", run_id) as writer:  # doctest: +SKIP
        ...     for step in range(1000):
        ...         writer.log("loss", loss, step)
        ...         writer.progress(step, total=1000)
    """

    def __init__(
        self,
        db_path: str | Path,
        run_id: str,
        attempt: int = 1,
        flush_interval: float = 0.25,
        heartbeat_interval: float = 2.0,
    ) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self.flush_interval = flush_interval
        self.heartbeat_interval = heartbeat_interval
        self._conn: sqlite3.Connection = open_index(Path(db_path))
        self._buffers: dict[str, list[tuple]] = {}
        self.log: LogFunction = _make_log(self._buffers, run_id, attempt)
        self._progress: tuple[int, int | None, int | None] | None = None
        self._files: list[tuple] = []  # artifact rows waiting for the next write
        self._written_progress: tuple[int, int | None, int | None] | None = None
        self._last_heartbeat = -float("inf")
        self._error: MetricWriterError | None = None  # points were lost
        self._unwritten: MetricWriterError | None = None  # points wait for a retry
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._requested = 0
        self._completed = 0
        self._stopping = False
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name=f"workbench-metrics-{run_id}", daemon=True
        )
        self._thread.start()
        atexit.register(self._at_exit)

    # The instance attribute set in __init__ replaces this method: it is what the
    # training loop calls. This definition documents it.
    def log(self, key: str, value: float, step: int) -> None:  # type: ignore[no-redef]
        """Record one point; returns at once (about the cost of a ``list.append``).

        Args:
            key: The metric's name, e.g. ``"train/loss"``.
            value: Anything ``float()`` accepts (a 0-d tensor works but makes CUDA wait;
                pass ``loss.item()`` where you already have it).
            step: An int. A step logged twice for a key keeps the later value.
        """

    def progress(self, step: int, total: int | None = None, epoch: int | None = None) -> None:
        """Remember the run's progress; the next background write stores it.

        The training loop calls this a few times a second, so it is also where a failed
        background write surfaces: a run must not train on while its points are dropped.

        Args:
            step: The current step.
            total: The number of steps planned (unchanged when ``None``).
            epoch: The current epoch (unchanged when ``None``).

        Raises:
            MetricWriterError: A background write dropped points since the last check.
        """
        if self._error is not None:
            self._raise_error()
        self._progress = (step, total, epoch)

    def add_artifacts(self, rows: list[dict[str, Any]]) -> None:
        """Record files of the run's folder with the next background write (as
        :meth:`RunIndex.add_artifacts <workbench.store.RunIndex.add_artifacts>`; a logged image).

        Raises:
            InvalidValue: A path is absolute or leaves the run folder.
            UnknownField: A row has another key.
        """
        for row in rows:
            unknown = sorted(set(row) - {"path", "size", "kind", "created_at"})
            if unknown:
                raise UnknownField(f"artifacts has no column {', '.join(unknown)}")
            self._files.append((self.run_id, _check_artifact_path(row["path"]), row.get("size"),
                                row.get("kind"), row.get("created_at", time.time())))

    def flush(self) -> None:
        """Write everything logged so far; when this returns it is in the index.

        Raises:
            MetricWriterError: A background write failed since the last check.
        """
        if not self._closed and threading.current_thread() is not self._thread:
            with self._cond:
                self._requested += 1
                target = self._requested
            self._wake.set()
            with self._cond:
                while self._completed < target and self._thread.is_alive():
                    self._cond.wait(0.5)
        self._raise_error()

    def close(self) -> None:
        """Write what is left, stop the background thread and close the connection.

        Calling it again does nothing.

        Raises:
            MetricWriterError: A background write failed (the points it held are lost).
        """
        if self._closed:
            return
        atexit.unregister(self._at_exit)
        with self._cond:
            self._stopping = True
            self._requested += 1
        self._wake.set()
        self._thread.join()
        self._closed = True
        self.log = _closed_log
        self._raise_error()

    def __enter__(self) -> MetricWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the background thread --------------------------------------------------------

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is None:
            error = self._unwritten  # still failing: the points wait in memory
        if error is not None:
            raise error

    def _record(self, error: MetricWriterError) -> None:
        if self._error is None:  # the first failure is the one to explain
            self._error = error

    def _run(self) -> None:
        try:
            due = time.monotonic() + self.flush_interval
            while True:
                # Look often, write rarely: every flush_interval, when asked to, or early
                # when points pile up (the write then overlaps the loop that logs them,
                # and memory stays bounded however fast the loop logs).
                woken = self._wake.wait(min(self.flush_interval, _LOOK_INTERVAL))
                if not woken and time.monotonic() < due and self._pending() < _EARLY_FLUSH:
                    continue
                due = time.monotonic() + self.flush_interval
                self._wake.clear()
                with self._cond:
                    target, stopping = self._requested, self._stopping
                try:
                    self._flush_once(final=stopping)
                except BaseException as exc:  # never let the thread die silently
                    self._record(MetricWriterError(f"metric writer of run {self.run_id}: {exc}"))
                with self._cond:
                    self._completed = target
                    self._cond.notify_all()
                if stopping:
                    return
        finally:
            self._conn.close()

    def _pending(self) -> int:
        return sum(map(len, list(self._buffers.values())))

    def _flush_once(self, final: bool = False) -> None:
        batch = {}
        for key, buffer in list(self._buffers.items()):
            count = len(buffer)
            if count:
                batch[key] = buffer[:count]
                del buffer[:count]
        count = len(self._files)
        files = self._files[:count]
        del self._files[:count]
        progress = self._progress
        now = time.monotonic()
        beat = (
            progress != self._written_progress
            or now - self._last_heartbeat >= self.heartbeat_interval
            or (final and progress is not None)
        )
        if not batch and not beat and not files:
            return
        try:
            self._write(batch, progress if beat else None, beat, files)
        except sqlite3.OperationalError as exc:
            # Locked past the busy timeout, disk full, ...: keep the points for next time.
            for key, rows in batch.items():
                self._buffers[key][0:0] = rows
            self._files[0:0] = files
            self._unwritten = MetricWriterError(
                f"could not write metrics of run {self.run_id} (will retry): {exc}"
            )
            return
        except (sqlite3.Error, TypeError, ValueError, OverflowError) as exc:
            good, bad = _clean([row for rows in batch.values() for row in rows])
            self._write(_rollup.group_rows(good), progress if beat else None, beat, files)
            if bad:
                self._record(MetricWriterError(
                    f"dropped {bad} metric point(s) of run {self.run_id} that are not"
                    f" (str key, number value, int step within SQLite's 64-bit range): {exc}"
                ))
        self._unwritten = None  # whatever failed before is written now
        if beat:
            self._last_heartbeat = now
            self._written_progress = progress

    def _write(self, batch: dict[str, list[tuple]], progress: tuple | None, beat: bool,
               files: Sequence[tuple] = ()) -> None:
        conn = self._conn
        with immediate(conn):
            if batch:
                _rollup.write_points(conn, self.run_id, batch)
            if files:
                conn.executemany(
                    "INSERT INTO artifacts (run_id, path, size, kind, created_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, path) DO UPDATE SET"
                    " size = excluded.size, kind = excluded.kind, created_at = excluded.created_at",
                    files,
                )
            if beat:
                stamp = time.time()
                if progress is None:
                    conn.execute(
                        "UPDATE runs SET heartbeat_at = ?, updated_at = ? WHERE id = ?",
                        (stamp, update_time(conn), self.run_id),
                    )
                else:
                    step, total, epoch = progress
                    conn.execute(
                        "UPDATE runs SET step = ?, total_steps = coalesce(?, total_steps),"
                        " epoch = coalesce(?, epoch), heartbeat_at = ?, updated_at = ?"
                        " WHERE id = ?",
                        (step, total, epoch, stamp, update_time(conn), self.run_id),
                    )

    def _at_exit(self) -> None:
        try:
            self.close()
        except Exception as exc:  # at exit there is no caller left to raise to
            print(f"workbench: {exc}", file=sys.stderr)
