"""The ``run_steps`` table: a run's pipeline of atomic steps (a RunIndex mixin).

A run that performs several steps (``fit``, then ``test``, then ``evaluate``) records each
one here with its status and times. A resumed run asks :meth:`StepsTable.run_steps` which
steps are done and continues at the first one that is not, as mml's scheduler continues at
the atomic step it was interrupted in. Every change also bumps the run's ``updated_at``, so
a poller of :meth:`~workbench.store.RunIndex.runs_changed_since` sees it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from workbench.store._db import update_time
from workbench.store.errors import InvalidValue
from workbench.store.records import RunStep, StepStatus

if TYPE_CHECKING:
    import contextlib
    import threading

__all__ = ["StepsTable"]

_FINAL = tuple(s.value for s in (StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.STOPPED,
                                 StepStatus.INTERRUPTED))


def _touch(conn: sqlite3.Connection, run_id: str) -> None:
    conn.execute("UPDATE runs SET updated_at = ? WHERE id = ?", (update_time(conn), run_id))


class StepsTable:
    """Methods of :class:`~workbench.store.RunIndex` over ``run_steps``."""

    _conn: sqlite3.Connection
    _lock: threading.RLock

    if TYPE_CHECKING:
        def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...

    def plan_steps(self, run_id: str, names: Sequence[str]) -> list[RunStep]:
        """Record the steps a run will perform, in order (once: a later call keeps the plan).

        Args:
            run_id: The run.
            names: The steps' names (``fit``, ``test``, ``evaluate``), at least one, each once.

        Returns:
            The run's steps as recorded.

        Raises:
            InvalidValue: No names, or a name twice.
        """
        names = [str(name) for name in names]
        if not names or len(set(names)) != len(names):
            raise InvalidValue(f"a pipeline needs one or more distinct steps, got {names}")
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM run_steps WHERE run_id = ? LIMIT 1", (run_id,)).fetchone() is None:
                conn.executemany(
                    "INSERT INTO run_steps (run_id, position, name) VALUES (?, ?, ?)",
                    [(run_id, position, name) for position, name in enumerate(names)],
                )
                _touch(conn, run_id)
        return self.run_steps(run_id)

    def run_steps(self, run_id: str) -> list[RunStep]:
        """A run's steps, in order (empty for a run that recorded none)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT run_id, position, name, status, attempt, started_at, ended_at, error"
                " FROM run_steps WHERE run_id = ? ORDER BY position", (run_id,),
            ).fetchall()
        return [RunStep(r[0], r[1], r[2], StepStatus(r[3]), r[4], r[5], r[6], r[7]) for r in rows]

    def start_step(self, run_id: str, name: str, attempt: int) -> None:
        """Mark step ``name`` running in ``attempt`` (its earlier end and error cleared).

        Raises:
            InvalidValue: The run has no such step.
        """
        with self.write() as conn:
            cursor = conn.execute(
                "UPDATE run_steps SET status = 'running', attempt = ?, started_at = ?,"
                " ended_at = NULL, error = NULL WHERE run_id = ? AND name = ?",
                (int(attempt), time.time(), run_id, name),
            )
            if not cursor.rowcount:
                raise InvalidValue(f"run {run_id} has no step {name!r}")
            _touch(conn, run_id)

    def end_step(self, run_id: str, name: str, status: StepStatus | str, error: str | None = None) -> None:
        """Record how step ``name`` ended.

        Raises:
            InvalidValue: Not a final step status, or the run has no such step.
        """
        status = StepStatus(status)
        if status.value not in _FINAL:
            raise InvalidValue(f"{status} is not how a step ends; one of {', '.join(_FINAL)}")
        with self.write() as conn:
            cursor = conn.execute(
                "UPDATE run_steps SET status = ?, ended_at = ?, error = ? WHERE run_id = ? AND name = ?",
                (status.value, time.time(), error, run_id, name),
            )
            if not cursor.rowcount:
                raise InvalidValue(f"run {run_id} has no step {name!r}")
            _touch(conn, run_id)

    def end_open_steps(self, run_id: str, status: StepStatus | str, error: str | None = None) -> int:
        """End the run's running step, if any, with ``status`` (its process is gone).

        Returns:
            How many steps were ended (0 or 1).
        """
        status = StepStatus(status)
        with self.write() as conn:
            cursor = conn.execute(
                "UPDATE run_steps SET status = ?, ended_at = ?, error = coalesce(error, ?)"
                " WHERE run_id = ? AND status = 'running'",
                (status.value, time.time(), error, run_id),
            )
            if cursor.rowcount:
                _touch(conn, run_id)
            return cursor.rowcount
